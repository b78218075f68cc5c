// Failed-authentication throttling per client IP (`proxy.authThrottle`, off by default). It
// slows down token guessing: bearer tokens are long random strings, but a proxy that answers
// unlimited guesses at full speed invites an online attack and fills the logs.
//
// Fixed window per IP, starting at that IP's first failure: up to `maxFailures` 401s are
// answered normally, after which the IP gets 429 until the window ends; the next failure after
// that starts a new window. The counts live in a counter store (README: Running several
// instances): this process's memory by default, Redis to share them between instances, so that
// N instances still allow `maxFailures`, not N times as many.
import type { ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { CounterStore, Logger } from '../types';
import { JsonRpcCode, sendJsonRpcError } from '../wire/errors';
import { debug, logFault } from '../logger';
import { MemoryStore } from '../store/memory-store';

const log = debug.extend('throttle');

export interface AuthThrottleSettings {
  maxFailures: number;
  windowMs: number;
}

export interface AuthThrottleOptions {
  /** Where failures are counted. Default: a `MemoryStore` of this throttle's own. */
  store?: CounterStore;
  /**
   * Most client IPs a default memory store tracks at once; beyond, the oldest window is
   * forgotten. Bounds memory against an attacker rotating addresses. Default: 10,000.
   */
  maxEntries?: number;
  /** Clock in ms, injectable for tests. Default: `performance.now()`, monotonic so that a wall-clock step cannot lengthen or end a window. */
  now?: () => number;
}

export type ThrottleCheck = { throttled: false } | { throttled: true; retryAfterSeconds: number; firstRefusal: boolean };

const NOT_THROTTLED: ThrottleCheck = { throttled: false };
/** Most windows remembered as already reported, so each is logged once per process. */
const MAX_REPORTED = 1_000;

export class AuthThrottle {
  readonly settings: Readonly<AuthThrottleSettings>;
  readonly store: CounterStore;
  // IP → end of the window whose refusal this process has logged.
  private readonly reported = new Map<string, number>();
  private readonly now: () => number;
  private readonly keyPrefix: string;

  constructor(settings: AuthThrottleSettings, options: AuthThrottleOptions = {}) {
    this.settings = { maxFailures: settings.maxFailures, windowMs: settings.windowMs };
    // The settings are part of the key: a count made under other settings (before a reload, or on
    // an instance not yet reloaded) means something else, so a change starts afresh.
    this.keyPrefix = `auth-fail:${settings.maxFailures}:${settings.windowMs}:`;
    this.now = options.now ?? (() => performance.now());
    this.store = options.store ?? new MemoryStore({ now: this.now, maxEntries: options.maxEntries });
  }

  /** Client IPs tracked, when the store is this process's memory; `undefined` otherwise. */
  get size(): number | undefined {
    return this.store instanceof MemoryStore ? this.store.size : undefined;
  }

  /**
   * Is `ip` refused now? Call before comparing any token, so a throttled client learns nothing
   * more about them. An unknown address (`req.ip` of an already closed socket) is never refused:
   * there is no one left to answer, and one shared bucket would let anyone lock others out.
   */
  async check(ip: string | undefined): Promise<ThrottleCheck> {
    if (ip === undefined) return NOT_THROTTLED;
    const window = await this.store.get(this.keyPrefix + ip);
    if (window === undefined || window.count < this.settings.maxFailures) return NOT_THROTTLED;
    return {
      throttled: true,
      // At least 1: `Retry-After: 0` would invite an immediate retry that is still refused.
      retryAfterSeconds: Math.max(1, Math.ceil(window.resetInMs / 1000)),
      firstRefusal: this.firstReport(ip, window.resetInMs),
    };
  }

  /**
   * Counts a failed authentication (a 401) of `ip`. Successes deliberately reset nothing: a
   * client holding one valid token could otherwise interleave it with guesses for another.
   */
  async recordFailure(ip: string | undefined): Promise<void> {
    if (ip === undefined) return;
    await this.store.increment(this.keyPrefix + ip, this.settings.windowMs);
  }

  /** One `auth throttled` line per window per IP: the window is known by when it ends. */
  private firstReport(ip: string, resetInMs: number): boolean {
    const now = this.now();
    const end = now + resetInMs;
    const previous = this.reported.get(ip);
    // A window's end seen from two calls differs by clock resolution and round trips, never by a second.
    if (previous !== undefined && Math.abs(previous - end) < 1_000) return false;
    this.reported.delete(ip);
    if (this.reported.size >= MAX_REPORTED) {
      for (const [key, until] of this.reported) if (until <= now || this.reported.size >= MAX_REPORTED) this.reported.delete(key);
    }
    this.reported.set(ip, end);
    return true;
  }
}

/**
 * The throttle of a (re)loaded config: the previous one when its settings and store are
 * unchanged, so a reload (which the command line does on every change of the file) does not
 * reset what it remembers. The counts themselves live in the store, which outlives both.
 */
export function authThrottleFor(
  settings: AuthThrottleSettings | undefined,
  previous: AuthThrottle | undefined,
  store: CounterStore = previous?.store ?? new MemoryStore(),
): AuthThrottle | undefined {
  if (settings === undefined) return undefined;
  if (
    previous &&
    previous.store === store &&
    previous.settings.maxFailures === settings.maxFailures &&
    previous.settings.windowMs === settings.windowMs
  ) {
    return previous;
  }
  log('failed-auth throttle: %o', settings);
  return new AuthThrottle(settings, { store });
}

/** `429` (RFC 6585 §4) with `Retry-After` in seconds (RFC 9110 §10.2.3) and a JSON-RPC body. */
export function sendThrottled(res: ServerResponse, retryAfterSeconds: number): void {
  sendJsonRpcError(res, 429, JsonRpcCode.ServerError, 'Too Many Requests: too many failed authentications from this address', {
    headers: { 'Retry-After': String(retryAfterSeconds) },
  });
}

/**
 * Is `ip` throttled? Its `Retry-After` in seconds, else `undefined`. Logs the first refusal of
 * each window.
 */
export async function checkThrottle(throttle: AuthThrottle | undefined, ip: string | undefined, logger: Logger): Promise<number | undefined> {
  if (throttle === undefined) return undefined;
  const throttled = await throttle.check(ip);
  if (!throttled.throttled) return undefined;
  if (throttled.firstRefusal) logger.warn('auth throttled', { client_ip: ip, retry_after: throttled.retryAfterSeconds });
  return throttled.retryAfterSeconds;
}

/**
 * Whether a refusal counts toward the throttle: a guess does (a token that is invalid, expired,
 * malformed or meant for another resource); a request that presents no token does not — it guesses
 * nothing, and it is the first step of every OAuth client's authorization (MCP Authorization), so
 * users behind one address must not lock each other out by connecting — and neither does an
 * authorization server that could not be asked.
 */
export function countsAsGuess(reason: string): boolean {
  return reason !== 'missing_token' && reason !== 'issuer_unavailable';
}

/** Counts a failed authentication; a failing custom store is logged, never fatal. */
export function countFailure(throttle: AuthThrottle | undefined, ip: string | undefined, logger: Logger): void {
  throttle?.recordFailure(ip).catch((err: unknown) => logFault(logger, 'counter store failed', {}, err));
}
