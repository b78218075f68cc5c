// Bearer-token authentication (README: Authentication and status codes; RFC 6750 §2.1 for the header form).
import { createHash, hash, timingSafeEqual } from 'node:crypto';

/** Why a request was refused; these words appear in `auth failed reason=…` log lines. */
export type AuthFailure = 'missing_token' | 'malformed_header' | 'invalid_token';

export type AuthResult = { ok: true; token: string } | { ok: false; reason: AuthFailure };

// RFC 7230 visible characters; a longer header than this is no token of ours and is not hashed.
const TOKEN_CHARS = /^[\x21-\x7e]+$/;
const MAX_TOKEN_LENGTH = 4096;

// `crypto.hash` (Node 20.12+) hashes in one call, without a Hash object: about half the time of
// createHash().update().digest() for a token (bench/README.md). Older Node 20 falls back. A
// presented token is hashed once per request: compared here, and, as base64, the key of the OAuth
// token cache (auth/oauth/token-cache.ts).
export const digest: (value: string) => Buffer =
  typeof hash === 'function' ? (value) => hash('sha256', value, 'buffer') : (value) => createHash('sha256').update(value, 'utf8').digest();

/**
 * Matches presented tokens against the configured ones. Digests are computed once here; each
 * check compares fixed-length digests with `timingSafeEqual` against *every* configured token, so
 * neither the value nor which token matched can be learned from timing.
 */
export class TokenIndex {
  private readonly entries: { name: string; digest: Buffer }[];

  constructor(tokens: ReadonlyMap<string, string>) {
    this.entries = [...tokens].map(([name, value]) => ({ name, digest: digest(value) }));
  }

  /** The name of the token with this value, or undefined. */
  match(presented: string): string | undefined {
    return this.matchDigest(digest(presented));
  }

  /** The name of the token whose `digest` this is, or undefined. */
  matchDigest(candidate: Buffer): string | undefined {
    let found: string | undefined;
    for (const entry of this.entries) {
      // No early exit: every entry is compared whatever the outcome.
      const equal = timingSafeEqual(candidate, entry.digest);
      if (equal && found === undefined) found = entry.name;
    }
    return found;
  }

  /** Parses `Authorization` and resolves the token name. */
  authenticate(header: string | undefined): AuthResult {
    const parsed = parseAuthorization(header);
    if ('reason' in parsed) return { ok: false, reason: parsed.reason };
    const name = this.match(parsed.token);
    return name === undefined ? { ok: false, reason: 'invalid_token' } : { ok: true, token: name };
  }
}

/**
 * `Bearer <token>`: the scheme is case-insensitive (RFC 7235 §2.1), exactly one space, then one
 * token. Another scheme counts as no bearer token at all; a broken bearer header as malformed.
 */
export function parseAuthorization(header: string | undefined): { token: string } | { reason: AuthFailure } {
  if (header === undefined || header === '') return { reason: 'missing_token' };
  const space = header.indexOf(' ');
  const scheme = space === -1 ? header : header.slice(0, space);
  if (scheme.toLowerCase() !== 'bearer') return { reason: 'missing_token' };
  const token = header.slice(space + 1);
  if (space === -1 || token.length === 0 || token.length > MAX_TOKEN_LENGTH || !TOKEN_CHARS.test(token)) {
    return { reason: 'malformed_header' };
  }
  return { token };
}
