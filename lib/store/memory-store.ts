// The default counter store: fixed windows in this process's memory (README: Running several
// instances). Bounded, with no timers, so there is nothing to stop on reload() or close().
import { performance } from 'node:perf_hooks';
import type { CounterStore, CounterWindow, MemoryStoreOptions } from '../types';

interface Entry {
  count: number;
  windowEnd: number;
}

const DEFAULT_MAX_ENTRIES = 10_000;

export class MemoryStore implements CounterStore {
  private readonly entries = new Map<string, Entry>();
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor(options: MemoryStoreOptions = {}) {
    this.maxEntries = Math.max(1, options.maxEntries ?? DEFAULT_MAX_ENTRIES);
    this.now = options.now ?? (() => performance.now());
  }

  /** Keys currently held (expired ones may linger until pruned). */
  get size(): number {
    return this.entries.size;
  }

  incrementNow(key: string, windowMs: number): CounterWindow {
    const now = this.now();
    this.prune(now);
    const entry = this.live(key, now);
    if (entry !== undefined) {
      entry.count++;
      return { count: entry.count, resetInMs: entry.windowEnd - now };
    }
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(key, { count: 1, windowEnd: now + windowMs });
    return { count: 1, resetInMs: windowMs };
  }

  getNow(key: string): CounterWindow | undefined {
    const now = this.now();
    this.prune(now);
    const entry = this.live(key, now);
    return entry && { count: entry.count, resetInMs: entry.windowEnd - now };
  }

  increment(key: string, windowMs: number): Promise<CounterWindow> {
    return Promise.resolve(this.incrementNow(key, windowMs));
  }

  get(key: string): Promise<CounterWindow | undefined> {
    return Promise.resolve(this.getNow(key));
  }

  private live(key: string, now: number): Entry | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined || entry.windowEnd > now) return entry;
    this.entries.delete(key);
    return undefined;
  }

  /**
   * Drops ended windows from the front. When every caller uses one window length, insertion order
   * is expiry order and this stops at the first live one; with mixed lengths an ended window
   * behind a live one waits for its key's next use or for eviction, which the bound covers.
   */
  private prune(now: number): void {
    for (const [key, entry] of this.entries) {
      if (entry.windowEnd > now) return;
      this.entries.delete(key);
    }
  }
}
