// The one session model: ids, lookup by token, the idle clock, revocation and the counts of
// `maxSessions`, on the registry itself (every transport uses it; their tests drive it over HTTP).
import { EventEmitter } from 'node:events';
import { newSessionId } from '../lib/sessions/ids';
import { SessionRegistry, type OpenOptions, type SessionInfo } from '../lib/sessions/registry';
import { HttpError, JsonRpcCode, sessionGone, shuttingDown } from '../lib/wire/errors';

const REVOKED = new HttpError(403, JsonRpcCode.ServerError, 'revoked');
const owner = {};

function opener(registry: SessionRegistry) {
  const torn: string[] = [];
  const open = (extra: Partial<OpenOptions> = {}) =>
    registry.open({
      server: 's',
      kind: 'streamable',
      upstream: 'stdio',
      token: 'dev',
      owner,
      teardown: async (reason) => void torn.push(reason),
      ...extra,
    });
  return { open, torn };
}

describe('session ids', () => {
  it('are 32 random bytes in base64url, all different', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => newSessionId()));
    expect(ids.size).toBe(1000);
    for (const id of ids) {
      expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(Buffer.from(id, 'base64url')).toHaveLength(32);
    }
  });

  it('carry the instance prefix, separated by a dot, when the registry has one', () => {
    const prefixed = opener(new SessionRegistry({ instanceId: 'eu-1' })).open();
    expect(prefixed.id).toMatch(/^eu-1\.[A-Za-z0-9_-]{43}$/);
    expect(opener(new SessionRegistry()).open().id).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('can be chosen by the transport (a passthrough keeps its upstream id)', () => {
    expect(opener(new SessionRegistry()).open({ id: 'upstream-id' }).id).toBe('upstream-id');
  });
});

describe('SessionRegistry', () => {
  afterEach(() => jest.useRealTimers());

  it('finds a started session by its token only, and not before it started or once it ends', async () => {
    const registry = new SessionRegistry();
    const { open, torn } = opener(registry);
    const h = open();
    expect(registry.find('s', 'streamable', h.id, 'dev')).toBeUndefined();
    h.start();
    expect(registry.find('s', 'streamable', h.id, 'dev')).toBe(h);
    expect(registry.find('s', 'streamable', h.id, 'prod')).toBeUndefined();
    expect(registry.find('s', 'sse', h.id, 'dev')).toBeUndefined();
    expect(registry.find('other', 'streamable', h.id, 'dev')).toBeUndefined();
    expect(registry.has('s', 'streamable', h.id)).toBe(true);
    expect(registry.findOwned(owner, 'dev')).toBe(h);
    expect(registry.findOwned(owner, 'prod')).toBeUndefined();

    const ending = h.end('bye');
    expect(registry.find('s', 'streamable', h.id, 'dev')).toBeUndefined();
    await Promise.all([ending, h.end('again')]);
    expect(torn).toEqual(['bye']);
    expect(registry.size).toBe(0);
  });

  it('counts a session from open() until its teardown is done, per owner', async () => {
    const registry = new SessionRegistry();
    let finish!: () => void;
    const h = registry.open({
      server: 's',
      kind: 'sse',
      upstream: 'stdio',
      token: 'dev',
      owner,
      teardown: () => new Promise<void>((resolve) => (finish = resolve)),
    });
    opener(registry).open({ owner: {} });
    expect(registry.countOf(owner)).toBe(1);
    const ending = h.end('bye');
    expect(h.ending).toBe(true);
    expect(registry.countOf(owner)).toBe(1);
    finish();
    await ending;
    expect(registry.countOf(owner)).toBe(0);
  });

  it('runs the idle clock only while nothing is in progress, and ends the session once', async () => {
    jest.useFakeTimers();
    const registry = new SessionRegistry();
    const { open, torn } = opener(registry);
    const h = open({ idleTimeoutMs: 1000 });
    h.start();
    const res = new EventEmitter();
    h.busyUntilClosed(res);
    h.busy();
    await jest.advanceTimersByTimeAsync(10_000);
    expect(torn).toEqual([]);

    h.idle();
    await jest.advanceTimersByTimeAsync(10_000);
    expect(torn).toEqual([]);

    res.emit('close');
    await jest.advanceTimersByTimeAsync(999);
    expect(torn).toEqual([]);
    h.busy(); // activity before the deadline starts the clock over
    h.idle();
    await jest.advanceTimersByTimeAsync(999);
    expect(torn).toEqual([]);
    await jest.advanceTimersByTimeAsync(1);
    expect(torn).toEqual(['idle timeout']);

    h.busy();
    h.idle();
    await jest.advanceTimersByTimeAsync(10_000);
    expect(torn).toEqual(['idle timeout']);
  });

  it('has no idle clock without idleTimeoutMs', async () => {
    jest.useFakeTimers();
    const { open, torn } = opener(new SessionRegistry());
    const h = open();
    h.busy();
    h.idle();
    await jest.advanceTimersByTimeAsync(24 * 3600_000);
    expect(torn).toEqual([]);
  });

  it('closeWhere aborts the matching requests in flight and ends the matching sessions, started or not', async () => {
    const registry = new SessionRegistry();
    const { open, torn } = opener(registry);
    const started = open();
    started.start();
    const starting = open();
    const other = open({ token: 'prod' });
    other.start();
    const aborted: string[] = [];
    registry.track({ server: 's', token: 'dev', abort: (reason, error) => aborted.push(`${reason}:${error.status}`) });
    const untrackProd = registry.track({ server: 's', token: 'prod', abort: () => aborted.push('prod') });
    expect(registry.inFlightCount).toBe(2);

    await registry.closeWhere((s) => s.token === 'dev', 'token revoked', REVOKED);
    expect(aborted).toEqual(['token revoked:403']);
    expect(torn).toEqual(['token revoked', 'token revoked']);
    expect(started.ending && starting.ending).toBe(true);
    expect(other.ending).toBe(false);
    expect(registry.inFlightCount).toBe(1);
    untrackProd();
    expect(registry.inFlightCount).toBe(0);
    expect(registry.countOf(owner)).toBe(1);
  });

  it('closeOwned ends the sessions of one owner only', async () => {
    const registry = new SessionRegistry();
    const { open, torn } = opener(registry);
    open().start();
    const elsewhere = open({ owner: {} });
    await registry.closeOwned(owner, 'server closed');
    expect(torn).toEqual(['server closed']);
    expect(elsewhere.ending).toBe(false);
  });

  it('tells the observer when a session starts and when it has ended, never for one that never started', async () => {
    const events: string[] = [];
    const infos: SessionInfo[] = [];
    const registry = new SessionRegistry({
      observer: {
        sessionStarted: (info) => {
          infos.push(info);
          events.push(`started ${info.token} ${info.kind} ${info.upstream} ${JSON.stringify(info.fields)}`);
        },
        sessionEnded: (info, reason) => events.push(`ended ${info.token} ${reason}`),
      },
    });
    const { open } = opener(registry);
    const h = open({ kind: 'stateless', fields: () => ({ pid: 42 }) });
    h.start();
    h.start();
    await h.end('child exited');
    await open({ token: 'prod' }).end('failed to start');
    expect(events).toEqual(['started dev stateless stdio {"pid":42}', 'ended dev child exited']);
    expect(infos[0]).toMatchObject({ id: h.id, server: 's' });
  });

  it('picks the least recently used session of the token holding at least two more', () => {
    const registry = new SessionRegistry();
    const { open } = opener(registry);
    const older = open();
    const newer = open();
    expect(registry.evictionFor(owner, 'prod')).toBe(older);
    older.touch();
    expect(registry.evictionFor(owner, 'prod')).toBe(newer);
    open({ token: 'prod' });
    expect(registry.evictionFor(owner, 'prod')).toBeUndefined();
    expect(registry.evictionFor(owner, 'dev')).toBeUndefined();
  });
});

describe('the shared answers', () => {
  it('say "session gone" with 404 and "shutting down" with 503 and one Retry-After', () => {
    expect(sessionGone()).toMatchObject({ status: 404, message: 'Not Found: unknown or ended session; initialize a new one' });
    expect(shuttingDown()).toMatchObject({ status: 503, headers: { 'Retry-After': '1' }, message: 'Service Unavailable: mcp-front is shutting down' });
    expect(shuttingDown('db')).toMatchObject({ status: 503, headers: { 'Retry-After': '1' }, message: 'Service Unavailable: server "db" is shutting down' });
  });
});
