// The default counter store (README: Running several instances): fixed windows in memory, bounded.
import { MemoryStore } from '../lib/store';

/** A clock the test moves by hand, so windows pass without sleeping. */
function fakeClock(start = 1_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

describe('MemoryStore', () => {
  it('counts hits in a fixed window that starts with the first hit and is not extended by later ones', async () => {
    const clock = fakeClock();
    const store = new MemoryStore({ now: clock.now });
    expect(await store.get('k')).toBeUndefined();
    expect(await store.increment('k', 10_000)).toEqual({ count: 1, resetInMs: 10_000 });
    clock.advance(4_000);
    expect(await store.increment('k', 10_000)).toEqual({ count: 2, resetInMs: 6_000 });
    expect(await store.get('k')).toEqual({ count: 2, resetInMs: 6_000 });
    clock.advance(6_000);
    expect(await store.get('k')).toBeUndefined();
    expect(await store.increment('k', 10_000)).toEqual({ count: 1, resetInMs: 10_000 });
  });

  it('counts each key on its own', async () => {
    const store = new MemoryStore({ now: fakeClock().now });
    await store.increment('a', 1_000);
    await store.increment('a', 1_000);
    expect((await store.increment('b', 1_000)).count).toBe(1);
    expect((await store.get('a'))?.count).toBe(2);
  });

  it('drops ended windows without a timer', async () => {
    const clock = fakeClock();
    const store = new MemoryStore({ now: clock.now });
    for (let i = 0; i < 100; i++) await store.increment(`k${i}`, 1_000);
    clock.advance(500);
    await store.increment('late', 1_000);
    expect(store.size).toBe(101);
    clock.advance(500);
    expect(await store.get('other')).toBeUndefined();
    expect(store.size).toBe(1);
    clock.advance(500);
    await store.get('other');
    expect(store.size).toBe(0);
  });

  it('drops an ended window of a key on its next use, whatever the order of windows', async () => {
    const clock = fakeClock();
    const store = new MemoryStore({ now: clock.now });
    await store.increment('long', 60_000);
    await store.increment('short', 1_000);
    clock.advance(1_000);
    expect(await store.get('short')).toBeUndefined();
    expect(await store.increment('short', 1_000)).toEqual({ count: 1, resetInMs: 1_000 });
    expect((await store.get('long'))?.count).toBe(1);
  });

  it('holds at most maxEntries keys, forgetting the oldest window first', async () => {
    const store = new MemoryStore({ now: fakeClock().now, maxEntries: 3 });
    for (const key of ['a', 'b', 'c', 'd']) await store.increment(key, 60_000);
    expect(store.size).toBe(3);
    expect(await store.get('a')).toBeUndefined();
    for (const key of ['b', 'c', 'd']) expect((await store.get(key))?.count).toBe(1);
  });

  it('holds 10,000 keys by default', async () => {
    const store = new MemoryStore({ now: fakeClock().now });
    for (let i = 0; i < 10_050; i++) store.incrementNow(`k${i}`, 60_000);
    expect(store.size).toBe(10_000);
    expect(store.getNow('k49')).toBeUndefined();
    expect(store.getNow('k50')?.count).toBe(1);
  });
});
