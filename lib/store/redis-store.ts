// Counters in Redis, shared by every instance that uses the same server and key prefix (README:
// Running several instances). `ioredis` is an optional peer dependency, loaded only when a Redis
// store is configured.
//
// Redis is for counting only, never on a request's critical path: every call is bounded by a
// short timeout, and while Redis is unreachable (or hung) the store counts in this process's
// memory and serves on, logging one WARN per outage and one INFO when Redis is back. A call that
// timed out on a hung server may still be counted there when it wakes: counts err on the strict side.
// An outage is noticed by the first call it affects, not only by the client's `error` event: a
// Redis that restarts quickly is reconnected to without any error, and the calls in between count
// in memory all the same (README: Running several instances, on what that does to budgets).
import type { CounterStore, CounterWindow, RedisClient, RedisStoreOptions } from '../types';
import { debug } from '../logger';
import { MemoryStore } from './memory-store';

const log = debug.extend('store');

export const DEFAULT_KEY_PREFIX = 'mcp-front:';
/** Longest a counter call may wait for Redis before this request counts in memory instead. */
const DEFAULT_TIMEOUT_MS = 500;
/** While Redis is down but the connection looks up (a hung server), how often one call may try it. */
const PROBE_INTERVAL_MS = 1_000;
/** Reconnection back-off, capped so that recovery is noticed within seconds. */
const MAX_RECONNECT_DELAY_MS = 2_000;

// One round trip, atomic per key (Redis runs a script without interleaving other commands): the
// window starts with the key's first hit and its length is never extended by later hits. The
// second PEXPIRE repairs a key that lost its expiry (written by something else), which would
// otherwise count forever.
const INCREMENT = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {count, ttl}`;
const GET = `
local count = redis.call('GET', KEYS[1])
if not count then return nil end
return {tonumber(count), redis.call('PTTL', KEYS[1])}`;

type Health = 'starting' | 'up' | 'down';

export class RedisStore implements CounterStore {
  readonly keyPrefix: string;
  private readonly client: RedisClient;
  private readonly ownsClient: boolean;
  private readonly fallback = new MemoryStore();
  private readonly logger: RedisStoreOptions['logger'];
  private readonly target: string;
  private readonly secret: string | undefined;
  private readonly timeoutMs: number;
  private health: Health = 'starting';
  private nextProbe = 0;
  private startup: Promise<void> | undefined;
  /** Once closed (its router reloaded onto another store, or closed), a late call is no outage. */
  private closed = false;

  constructor(options: RedisStoreOptions) {
    this.keyPrefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
    this.logger = options.logger;
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.timeoutMs = timeoutMs;
    if (options.client) {
      this.client = options.client;
      this.ownsClient = false;
      this.target = 'client';
    } else {
      if (options.url === undefined) throw new TypeError('RedisStore needs a url or a client');
      const url = new URL(options.url);
      // Logged instead of the URL, which may carry a password.
      this.target = `${url.protocol}//${url.host}${url.pathname.length > 1 ? url.pathname : ''}`;
      this.secret = url.password === '' ? undefined : decodeURIComponent(url.password);
      this.client = createClient(options.url, timeoutMs);
      this.ownsClient = true;
    }
    if (this.client.status === 'ready') this.health = 'up';
    this.client.on('ready', () => this.markUp());
    // ioredis reports connection failures as 'error' events (and prints them when nobody listens).
    this.client.on('error', (err) => this.markDown(err.message));
  }

  async increment(key: string, windowMs: number): Promise<CounterWindow> {
    if (!(await this.useRedis())) return this.fallback.incrementNow(key, windowMs);
    try {
      const reply = await this.client.eval(INCREMENT, 1, this.keyPrefix + key, Math.max(1, Math.round(windowMs)));
      this.markUp();
      return toWindow(reply) ?? { count: 1, resetInMs: windowMs };
    } catch (err) {
      this.markDown((err as Error).message);
      return this.fallback.incrementNow(key, windowMs);
    }
  }

  async get(key: string): Promise<CounterWindow | undefined> {
    if (!(await this.useRedis())) return this.fallback.getNow(key);
    try {
      const reply = await this.client.eval(GET, 1, this.keyPrefix + key);
      this.markUp();
      return toWindow(reply);
    } catch (err) {
      this.markDown((err as Error).message);
      return this.fallback.getNow(key);
    }
  }

  async close(): Promise<void> {
    if (!this.ownsClient) return;
    this.closed = true;
    if (this.client.status === 'ready') {
      try {
        await this.client.quit();
        return;
      } catch {
        // Fall through: the connection is going away anyway.
      }
    }
    this.client.disconnect();
  }

  /**
   * Calls go to Redis only on a ready connection (the client queues nothing offline, so a call
   * on a broken one fails at once). The first calls wait for the first connection, within the
   * timeout, so that a fresh instance counts where the others do. A call that cannot be sent
   * marks the outage as a failed one does. While Redis is down on a connection that still looks
   * ready (a hung server), one call per interval probes it and the others count in memory.
   */
  private async useRedis(): Promise<boolean> {
    if (this.closed) return false;
    if (this.client.status !== 'ready') {
      if (this.health === 'starting') await (this.startup ??= this.firstConnection());
      if (this.client.status !== 'ready') {
        this.markDown(`not connected (${this.client.status})`);
        return false;
      }
    }
    if (this.health !== 'down') return true;
    const now = Date.now();
    if (now < this.nextProbe) return false;
    this.nextProbe = now + PROBE_INTERVAL_MS;
    return true;
  }

  private firstConnection(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.client.removeListener('ready', done);
        this.client.removeListener('error', done);
        resolve();
      };
      const timer = setTimeout(done, this.timeoutMs);
      this.client.on('ready', done);
      this.client.on('error', done);
    });
  }

  private markUp(): void {
    if (this.health === 'down') this.logger.info('store recovered', { store: 'redis', target: this.target });
    this.health = 'up';
  }

  private markDown(reason: string): void {
    this.nextProbe = Date.now() + PROBE_INTERVAL_MS;
    log('redis unavailable: %s', reason);
    if (this.health === 'down') return;
    this.health = 'down';
    this.logger.warn('store unavailable; counting in memory until it is back', {
      store: 'redis',
      target: this.target,
      error: this.redact(reason),
    });
  }

  private redact(message: string): string {
    return this.secret === undefined ? message : message.split(this.secret).join('***');
  }
}

function toWindow(reply: unknown): CounterWindow | undefined {
  if (!Array.isArray(reply)) return undefined;
  const [count, ttl] = reply.map(Number);
  if (!Number.isFinite(count) || !Number.isFinite(ttl)) return undefined;
  return { count, resetInMs: Math.max(0, ttl) };
}

function createClient(url: string, timeoutMs: number): RedisClient {
  let Redis: new (url: string, options: Record<string, unknown>) => RedisClient;
  try {
    // Loaded here only: without a Redis store the package never needs ioredis.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require('ioredis') as { default?: typeof Redis; Redis?: typeof Redis };
    Redis = (mod.Redis ?? mod.default ?? mod) as typeof Redis;
  } catch {
    throw new Error('proxy.store.redis needs the "ioredis" package: npm install ioredis');
  }
  return new Redis(url, {
    // Fail at once rather than queue while disconnected: the caller counts in memory meanwhile.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: timeoutMs,
    connectTimeout: Math.max(timeoutMs, 2_000),
    retryStrategy: (times: number) => Math.min(times * 100, MAX_RECONNECT_DELAY_MS),
  });
}
