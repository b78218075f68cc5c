// Verified access tokens, so that a client's next request costs neither a signature check nor an
// introspection. Keyed by a SHA-256 of the token: the cache holds no token value.
import { createHash, hash } from 'node:crypto';

// `crypto.hash` (Node 20.12+) hashes in one call; older Node 20 falls back.
export const tokenDigest: (token: string) => string =
  typeof hash === 'function' ? (token) => hash('sha256', token, 'base64') : (token) => createHash('sha256').update(token, 'utf8').digest('base64');

/** A bounded map of verified tokens, each until its own deadline; the oldest entry makes room. */
export class TokenCache<T> {
  private readonly entries = new Map<string, { value: T; until: number }>();

  constructor(private readonly max: number) {}

  get(key: string, now: number): T | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.until > now) return entry.value;
    this.entries.delete(key);
    return undefined;
  }

  /** Keeps `value` until `until` (milliseconds since the epoch); nothing when that is already past. */
  set(key: string, value: T, until: number, now: number): void {
    if (until <= now) return;
    this.entries.delete(key);
    if (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, { value, until });
  }

  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    this.entries.clear();
  }
}
