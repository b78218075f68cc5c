// OAuth 2.1 access tokens (README: OAuth 2.1; MCP specification, Authorization): is this token
// one the configured authorization server issued, still valid, and what does it say? JWTs
// (RFC 9068) are verified against the server's keys; other tokens are introspected (RFC 7662)
// when introspection is configured. Which server, audience and scopes a request needs is the
// router's business; this answers for the token alone.
import type { ResolvedOAuth } from '../../config/resolved-config';
import { logFault } from '../../logger';
import type { Logger } from '../../types';
import { AuthorizationServer, IssuerUnavailable } from './authorization-server';
import { audienceList, scopeSet } from './claims';
import { loadJose } from './jose';
import { TokenCache, tokenDigest } from './token-cache';

export type OAuthFailure = 'invalid_token' | 'expired' | 'issuer_unavailable';

export interface VerifiedToken {
  iss: string;
  sub: string | undefined;
  /** `aud` as a list (a string aud becomes a one-element list). */
  aud: readonly string[];
  /**
   * Whether `aud` binds it to resources: always for a JWT (RFC 9068 §2.2 requires `aud`); for an
   * introspection answer only when it has an `aud` (RFC 7662 §2.2 makes it optional, and the
   * proxy checks it when present).
   */
  audienceBound: boolean;
  /** Seconds since the epoch; always present (exp is required). */
  exp: number;
  /** The `scope` claim split on spaces (or `scp` as an array, as Entra and Okta send). */
  scopes: ReadonlySet<string>;
  /** Every claim, for principal matching (from the JWT payload or the introspection answer). */
  claims: Readonly<Record<string, unknown>>;
}

export type VerifyResult = { ok: true; token: VerifiedToken } | { ok: false; reason: OAuthFailure };

export interface OAuthVerifier {
  /**
   * Synchronous when no authorization server needs asking: a token verified before (from the
   * cache), or one refused on sight. The router then dispatches a cached token's request in the
   * same tick, as it does a static token's. `key`: the token's `tokenDigest`, when the caller
   * has hashed the token already.
   */
  verify(token: string, key?: string): VerifyResult | Promise<VerifyResult>;
  /**
   * Starts discovery (RFC 8414 `/.well-known/oauth-authorization-server`, then OpenID Connect
   * `/.well-known/openid-configuration`, path-inserted per RFC 8414 §3.1 for issuers with a path)
   * and the key fetch without waiting; failures are retried on demand.
   */
  warmUp(): void;
  /** Drops the cache and aborts requests in flight; `verify` answers `issuer_unavailable` from now on. */
  close(): void;
}

export interface OAuthVerifierOptions {
  logger: Logger;
  /** Default: the global `fetch`. */
  fetch?: typeof fetch;
  /** Milliseconds since the epoch. Default: `Date.now`. */
  now?: () => number;
}

/** Clock skew allowed between mcp-front and the authorization server, on `exp` and `nbf`. */
export const CLOCK_TOLERANCE_S = 60;
/**
 * An introspection answer is trusted this long at most (a revoked token stops working within it);
 * one without `exp` is taken to expire then.
 */
export const INTROSPECTION_CACHE_MS = 60_000;
/** Verified tokens kept; beyond this the oldest make room. */
export const MAX_CACHED_TOKENS = 10_000;
/** No longer token is looked at (the `Authorization` header parser allows no more). */
const MAX_TOKEN_LENGTH = 4096;

const INVALID: VerifyResult = { ok: false, reason: 'invalid_token' };
const EXPIRED: VerifyResult = { ok: false, reason: 'expired' };
const UNAVAILABLE: VerifyResult = { ok: false, reason: 'issuer_unavailable' };

/** A result, and until when (milliseconds since the epoch) a valid one may be served from the cache. */
type Checked = { result: VerifyResult; until: number };

const refused = (result: VerifyResult): Checked => ({ result, until: 0 });

/** `none` and HMAC are never accepted, whatever is configured: a public key must not verify as a shared secret (RFC 8725 §3.1, §2.1). */
function isAsymmetric(alg: string): boolean {
  return alg !== 'none' && !/^HS/i.test(alg);
}

/** A JWS in compact form has three parts (RFC 7515 §7.1); anything else is not a JWT we can verify. */
function isCompactJws(token: string): boolean {
  const first = token.indexOf('.');
  const second = token.indexOf('.', first + 1);
  return first !== -1 && second !== -1 && token.indexOf('.', second + 1) === -1;
}

/**
 * A token bound to a key (`cnf`: DPoP, RFC 9449 §6; mutual TLS, RFC 8705 §3) may only be used
 * with a proof of that key, which a bearer request does not carry.
 */
function isSenderConstrained(claims: Readonly<Record<string, unknown>>): boolean {
  return claims.cnf !== undefined;
}

function verifiedToken(iss: string, exp: number, claims: Readonly<Record<string, unknown>>, audienceBound = true): VerifiedToken {
  return {
    iss,
    sub: typeof claims.sub === 'string' ? claims.sub : undefined,
    aud: audienceList(claims.aud),
    audienceBound,
    exp,
    scopes: scopeSet(claims),
    claims,
  };
}

export function createOAuthVerifier(config: ResolvedOAuth, options: OAuthVerifierOptions): OAuthVerifier {
  const { logger } = options;
  const now = options.now ?? Date.now;
  const server = new AuthorizationServer(config, { logger, fetch: options.fetch ?? globalThis.fetch, now });
  const algorithms = config.algorithms.filter(isAsymmetric);
  // Holds the results themselves: a hit is the very object the verification gave, nothing new.
  const cache = new TokenCache<VerifyResult>(MAX_CACHED_TOKENS);
  // Concurrent requests with the same new token share one verification.
  const inFlight = new Map<string, Promise<VerifyResult>>();
  const keyFor = server.keyFor.bind(server);
  let closed = false;

  async function checkJwt(token: string): Promise<Checked> {
    const jose = await loadJose();
    // jose refuses an algorithm outside `algorithms` before it asks for a key: a forged header
    // costs the authorization server nothing.
    const { payload } = await jose.jwtVerify(token, keyFor, {
      issuer: config.issuer,
      algorithms,
      clockTolerance: CLOCK_TOLERANCE_S,
      requiredClaims: ['exp'],
      currentDate: new Date(now()),
    });
    if (isSenderConstrained(payload)) return refused(INVALID);
    const verified = verifiedToken(config.issuer, payload.exp!, payload);
    return { result: { ok: true, token: verified }, until: verified.exp * 1000 };
  }

  async function checkIntrospected(token: string): Promise<Checked> {
    const answer = await server.introspect(token);
    const at = now();
    // RFC 7662 §2.2: only `active` is required; the rest is checked when it is there.
    if (answer.active !== true) return refused(INVALID);
    if (answer.iss !== undefined && answer.iss !== config.issuer) return refused(INVALID);
    if (answer.token_type !== undefined && (typeof answer.token_type !== 'string' || answer.token_type.toLowerCase() !== 'bearer')) {
      return refused(INVALID);
    }
    if (isSenderConstrained(answer)) return refused(INVALID);
    const { exp, nbf } = answer;
    if (exp !== undefined && typeof exp !== 'number') return refused(INVALID);
    if (nbf !== undefined && (typeof nbf !== 'number' || nbf * 1000 > at + CLOCK_TOLERANCE_S * 1000)) return refused(INVALID);
    if (exp !== undefined && exp * 1000 <= at - CLOCK_TOLERANCE_S * 1000) return refused(EXPIRED);
    const until = Math.min(at + INTROSPECTION_CACHE_MS, exp === undefined ? Infinity : exp * 1000);
    const verified = verifiedToken(config.issuer, exp ?? Math.floor(until / 1000), answer, answer.aud !== undefined);
    return { result: { ok: true, token: verified }, until };
  }

  async function check(token: string): Promise<Checked> {
    try {
      if (isCompactJws(token)) return await checkJwt(token);
      return config.introspection === undefined ? refused(INVALID) : await checkIntrospected(token);
    } catch (err) {
      if (err instanceof IssuerUnavailable) return refused(UNAVAILABLE);
      const code = (err as { code?: unknown } | null)?.code;
      if (code === 'ERR_JWT_EXPIRED') return refused(EXPIRED);
      // jose's verdicts (ERR_JWS_…, ERR_JWT_…, ERR_JWKS_…, ERR_JOSE_…): the token is not valid.
      if (typeof code === 'string' && code.startsWith('ERR_J')) return refused(INVALID);
      logFault(logger, 'oauth verification failed', { issuer: config.issuer }, err);
      return refused(INVALID);
    }
  }

  async function verifyAndCache(token: string, key: string): Promise<VerifyResult> {
    try {
      const { result, until } = await check(token);
      if (closed) return UNAVAILABLE;
      if (result.ok) cache.set(key, result, until, now());
      return result;
    } finally {
      inFlight.delete(key);
    }
  }

  return {
    verify(token, key) {
      if (closed) return UNAVAILABLE;
      if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) return INVALID;
      key ??= tokenDigest(token);
      const cached = cache.get(key, now());
      if (cached !== undefined) return cached;
      let pending = inFlight.get(key);
      if (pending === undefined) {
        pending = verifyAndCache(token, key);
        inFlight.set(key, pending);
      }
      return pending;
    },
    warmUp() {
      if (!closed) server.warmUp();
    },
    close() {
      closed = true;
      cache.clear();
      server.close();
    },
  };
}
