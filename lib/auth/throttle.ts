// Failed-authentication throttling per client IP (`proxy.authThrottle`, off by default). It
// slows down token guessing: bearer tokens are long random strings, but a proxy that answers
// unlimited guesses at full speed invites an online attack and fills the logs.
//
// Fixed window per IP, starting at that IP's first failure: up to `maxFailures` 401s are
// answered normally, after which the IP gets 429 until the window ends; the next failure after
// that starts a new window. One small entry per IP (no timestamp list), and since every window
// has the same length, the Map's insertion order is also expiry order: expired entries are
// pruned lazily from the front, and the cap evicts the entry closest to expiry. No timers, so
// nothing to stop on reload() or close().
import { performance } from 'node:perf_hooks';
import type { ServerResponse } from 'node:http';
import { JsonRpcCode, sendJsonRpcError } from '../wire/errors';
import { debug } from '../logger';

const log = debug.extend('throttle');

export interface AuthThrottleSettings {
  maxFailures: number;
  windowMs: number;
}

export interface AuthThrottleOptions {
  /**
   * Most client IPs tracked at once; beyond, the oldest window is forgotten. Bounds memory
   * against an attacker rotating addresses (one small entry per IP). Default: 10,000.
   */
  maxEntries?: number;
  /** Clock in ms, injectable for tests. Default: `performance.now()`, monotonic so that a wall-clock step cannot lengthen or end a window. */
  now?: () => number;
}

export type ThrottleCheck = { throttled: false } | { throttled: true; retryAfterSeconds: number; firstRefusal: boolean };

interface Entry {
  windowEnd: number;
  failures: number;
  /** A refusal of this window has been reported, so the caller logs once per window per IP. */
  refused: boolean;
}

const NOT_THROTTLED: ThrottleCheck = { throttled: false };
const DEFAULT_MAX_ENTRIES = 10_000;

export class AuthThrottle {
  readonly settings: Readonly<AuthThrottleSettings>;
  private readonly entries = new Map<string, Entry>();
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor(settings: AuthThrottleSettings, options: AuthThrottleOptions = {}) {
    this.settings = { maxFailures: settings.maxFailures, windowMs: settings.windowMs };
    this.maxEntries = Math.max(1, options.maxEntries ?? DEFAULT_MAX_ENTRIES);
    this.now = options.now ?? (() => performance.now());
  }

  /** Number of client IPs currently tracked. */
  get size(): number {
    return this.entries.size;
  }

  /**
   * Is `ip` refused now? Call before comparing any token, so a throttled client learns nothing
   * more about them. An unknown address (`req.ip` of an already closed socket) is never refused:
   * there is no one left to answer, and one shared bucket would let anyone lock others out.
   */
  check(ip: string | undefined): ThrottleCheck {
    if (ip === undefined) return NOT_THROTTLED;
    const now = this.now();
    this.prune(now);
    const entry = this.entries.get(ip);
    if (entry === undefined || entry.failures < this.settings.maxFailures) return NOT_THROTTLED;
    const firstRefusal = !entry.refused;
    entry.refused = true;
    // At least 1: `Retry-After: 0` would invite an immediate retry that is still refused.
    return { throttled: true, retryAfterSeconds: Math.max(1, Math.ceil((entry.windowEnd - now) / 1000)), firstRefusal };
  }

  /**
   * Counts a failed authentication (a 401) of `ip`. Successes deliberately reset nothing: a
   * client holding one valid token could otherwise interleave it with guesses for another.
   */
  recordFailure(ip: string | undefined): void {
    if (ip === undefined) return;
    const now = this.now();
    this.prune(now);
    const entry = this.entries.get(ip);
    if (entry !== undefined) {
      entry.failures++;
      return;
    }
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(ip, { windowEnd: now + this.settings.windowMs, failures: 1, refused: false });
  }

  /** Drops ended windows. Insertion order is expiry order, so this stops at the first live one. */
  private prune(now: number): void {
    for (const [ip, entry] of this.entries) {
      if (entry.windowEnd > now) return;
      this.entries.delete(ip);
    }
  }
}

/**
 * The throttle of a (re)loaded config: the previous one when its settings are unchanged, so a
 * reload (which the command line does on every change of the file) does not wipe the counts.
 */
export function authThrottleFor(
  settings: AuthThrottleSettings | undefined,
  previous: AuthThrottle | undefined,
): AuthThrottle | undefined {
  if (settings === undefined) return undefined;
  if (previous && previous.settings.maxFailures === settings.maxFailures && previous.settings.windowMs === settings.windowMs) {
    return previous;
  }
  log('failed-auth throttle: %o', settings);
  return new AuthThrottle(settings);
}

/** `429` (RFC 6585 §4) with `Retry-After` in seconds (RFC 9110 §10.2.3) and a JSON-RPC body. */
export function sendThrottled(res: ServerResponse, retryAfterSeconds: number): void {
  sendJsonRpcError(res, 429, JsonRpcCode.ServerError, 'Too Many Requests: too many failed authentications from this address', {
    headers: { 'Retry-After': String(retryAfterSeconds) },
  });
}
