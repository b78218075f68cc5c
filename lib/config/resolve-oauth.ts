// Resolution of OAuth 2.1 access tokens beside the static ones (README: OAuth 2.1): `proxy.auth.oauth`,
// `proxy.publicUrl` and each server's `requiredScopes`. mcp-front is an OAuth resource server
// (MCP specification, Authorization): what it trusts is decided here, once per configuration.
//
// Secrets: the introspection client secret is never quoted; neither are URLs, scopes, audiences or
// claim values, which may be anything the author pasted. Principal names are names, like tokens'.
import { isIP } from 'node:net';
import { didYouMean, isObject, type Obj, type Segment } from './problems';
import { fromEnv, NAME, type Resolver } from './resolver';
import { DEFAULT_OAUTH_ALGORITHMS, type ResolvedClaimMatch, type ResolvedOAuth, type ResolvedPrincipal } from './resolved-config';

// RFC 6749 §3.3 scope-token: %x21 / %x23-5B / %x5D-7E (visible ASCII but `"` and `\`). A scope
// goes into `WWW-Authenticate: Bearer scope="…"` (RFC 6750 §3), space-separated.
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;
// RFC 6749 Appendix A.1, A.2: client_id and client_secret are *VSCHAR (%x20-7E).
const VSCHAR = /^[\x20-\x7e]+$/;
const HMAC = /^HS(256|384|512)$/i;
const LOOPBACK_RULE = 'http:// only on loopback: localhost, 127.0.0.0/8, [::1]';
const DEFAULT_ALGORITHMS: readonly string[] = DEFAULT_OAUTH_ALGORITHMS;
const ASYMMETRIC_INSTEAD = 'use an asymmetric algorithm such as RS256 or ES256';
const PUBLIC_URL_REQUIRED =
  'is required with "oauth": the URL clients use to reach this proxy, mount path included (e.g. "https://mcp.example.com/gw"); ' +
  'resource URLs are built from it, never from the Host header';
const SCOPES_NEED_OAUTH =
  'needs proxy.auth.oauth: scopes are only ever granted to OAuth access tokens, so this server could never be reached with them';
const ONE_NAMESPACE = 'tokens and principals share one namespace (authTokens, permissions, limits, logs)';
const NAME_RULE = 'use only letters, digits, ".", "_" and "-" (principal names appear in log lines)';

export interface OAuthNames {
  /** The resolved settings; absent when `oauth` is not configured or has a problem. */
  oauth?: ResolvedOAuth;
  /** Whether `proxy.auth.oauth` is present at all, valid or not (rules that depend on it are then checked). */
  configured: boolean;
  /** Every principal name the config defines, even those with a problem: they are still known names. */
  principalNames: string[];
}

/** `proxy.auth.oauth`; principal names share the namespace of `tokenNames`. */
export function resolveOAuth(raw: unknown, tokenNames: readonly string[], r: Resolver): OAuthNames {
  if (!isObject(raw)) return { configured: raw !== undefined, principalNames: [] };
  const at = ['proxy', 'auth', 'oauth'];
  const before = r.problems.length;

  // RFC 8414 §2: an issuer is an https URL without query or fragment. It is kept exactly as
  // written: tokens' `iss` and discovery's `issuer` are compared to it as strings (RFC 8414 §3.3).
  const issuer = secureUrl(raw.issuer, [...at, 'issuer'], r, { query: false });
  const jwksUri = raw.jwksUri === undefined ? undefined : secureUrl(raw.jwksUri, [...at, 'jwksUri'], r, { query: true });
  const audiences = valueList(raw.audiences, [...at, 'audiences'], r, AUDIENCE_RULE);
  const scopes = valueList(raw.scopes, [...at, 'scopes'], r, SCOPE_RULE);
  const algorithms = raw.algorithms === undefined ? [...DEFAULT_ALGORITHMS] : resolveAlgorithms(raw.algorithms, [...at, 'algorithms'], r);
  const introspection = isObject(raw.introspection) ? resolveIntrospection(raw.introspection, [...at, 'introspection'], r) : undefined;
  const { principals, names } = resolvePrincipals(raw.principals, [...at, 'principals'], tokenNames, r);

  if (r.problems.length > before || issuer === undefined) return { configured: true, principalNames: names };
  const oauth: ResolvedOAuth = {
    issuer: issuer.value,
    audiences,
    scopes,
    ...(jwksUri === undefined ? {} : { jwksUri: jwksUri.url.href }),
    algorithms,
    ...(introspection === undefined ? {} : { introspection }),
    principals,
  };
  return { oauth, configured: true, principalNames: names };
}

/**
 * `proxy.publicUrl`: where clients reach the router, mount path included. Every resource URL is
 * built by appending `/<server>/mcp` to it, and RFC 9728 §3.3 needs that URL identical to the one
 * the client connected to, so it is kept in the URL parser's form (what clients send) without
 * a trailing slash.
 */
export function resolvePublicUrl(raw: unknown, oauthConfigured: boolean, r: Resolver): string | undefined {
  const at = ['proxy', 'publicUrl'];
  if (raw === undefined) {
    if (oauthConfigured) r.add(at, PUBLIC_URL_REQUIRED);
    return undefined;
  }
  return secureUrl(raw, at, r, { query: false })?.url.href.replace(/\/+$/, '');
}

/** A server's scopes: `oauth.scopes`, then its `requiredScopes`, each once. Empty without OAuth. */
export function resolveServerScopes(raw: unknown, at: Segment[], oauth: OAuthNames, r: Resolver): string[] {
  if (raw === undefined) return oauth.oauth === undefined ? [] : [...oauth.oauth.scopes];
  if (!oauth.configured) {
    r.add(at, SCOPES_NEED_OAUTH);
    return [];
  }
  return [...new Set([...(oauth.oauth?.scopes ?? []), ...valueList(raw, at, r, SCOPE_RULE)])];
}

/**
 * An http(s) URL that is https unless its host is loopback: bearer tokens and keys travel over it
 * (OAuth 2.1 §1.5, RFC 8414 §2, RFC 9728 §2), and clients such as Claude.ai connect over TLS only.
 * Never with credentials (fetch refuses them) or a fragment; `query: false` refuses a query too.
 */
function secureUrl(raw: unknown, at: Segment[], r: Resolver, rules: { query: boolean }): { value: string; url: URL } | undefined {
  const v = r.string(raw, at);
  if (v === undefined) return undefined;
  let url: URL | undefined;
  try {
    url = new URL(v.value);
  } catch {
    url = undefined;
  }
  const where = fromEnv(v);
  // The URL parser would drop them silently, but the issuer is compared as written, and a
  // variable's trailing newline is the usual way they get in.
  if (/[\s\x00-\x1f\x7f]/.test(v.value)) r.add(at, `must not contain spaces or control characters${where}`);
  else if (url === undefined || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
    r.add(at, `must be an absolute https:// URL (${LOOPBACK_RULE})${where}`);
  } else if (url.protocol === 'http:' && !isLoopback(url.hostname)) {
    r.add(at, `must be https:// (${LOOPBACK_RULE})${where}`);
  } else if (url.username !== '' || url.password !== '') {
    r.add(at, `must not contain a user name or password${where}`);
  } else if (url.hash !== '' || v.value.includes('#') || (!rules.query && (url.search !== '' || v.value.includes('?')))) {
    r.add(at, `must not have ${rules.query ? 'a fragment' : 'a query or fragment'}${where}`);
  } else {
    return { value: v.value, url };
  }
  return undefined;
}

/** Loopback hosts, where plain http never leaves the machine; `URL` has already normalized `127.1` and `[0:0::1]`. */
function isLoopback(hostname: string): boolean {
  if (hostname === 'localhost') return true;
  const ip = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
  if (isIP(ip) === 4) return ip.startsWith('127.');
  return ip === '::1';
}

interface ValueRule {
  test: RegExp;
  message: string;
}

const WITHOUT_SPACES = 'visible ASCII characters without spaces, double quotes or backslashes';
const SCOPE_RULE: ValueRule = { test: SCOPE_TOKEN, message: `must be a scope: ${WITHOUT_SPACES} (RFC 6749 §3.3)` };
const AUDIENCE_RULE: ValueRule = { test: SCOPE_TOKEN, message: `must be an audience: ${WITHOUT_SPACES}` };

/** Scopes or audiences: each checked, none quoted, duplicates dropped (a set, in the order given). */
function valueList(raw: unknown, at: Segment[], r: Resolver, rule: ValueRule): string[] {
  if (!Array.isArray(raw)) return []; // absent, or reported by the schema
  const out = new Set<string>();
  raw.forEach((value, i) => {
    if (typeof value !== 'string') return;
    if (value === '') r.add([...at, i], 'must not be empty');
    else if (!rule.test.test(value)) r.add([...at, i], rule.message);
    else out.add(value);
  });
  return [...out];
}

/**
 * RFC 9068 §4 and RFC 8725 §2.1, §3.1: a resource server accepts only the algorithms it expects.
 * `none` means no signature at all; an HMAC key is a shared secret that no authorization server
 * publishes in its JWKS, and accepting HMAC beside RSA is the classic key-confusion attack.
 */
function resolveAlgorithms(raw: unknown, at: Segment[], r: Resolver): string[] {
  if (!Array.isArray(raw)) return [];
  if (raw.length === 0) {
    r.add(at, `must list at least one algorithm (omit "algorithms" for the default: ${DEFAULT_ALGORITHMS.join(', ')})`);
    return [];
  }
  const out = new Set<string>();
  raw.forEach((alg, i) => {
    if (typeof alg !== 'string') return;
    if (DEFAULT_ALGORITHMS.includes(alg)) out.add(alg);
    else if (alg.toLowerCase() === 'none') {
      r.add([...at, i], `"none" would accept unsigned tokens that anyone can write (RFC 8725 §3.1, RFC 9068 §4); ${ASYMMETRIC_INSTEAD}`);
    } else if (HMAC.test(alg)) {
      const why = 'its key is a shared secret no authorization server publishes, and accepting it beside public keys invites key confusion';
      r.add([...at, i], `"${alg.toUpperCase()}" is an HMAC algorithm: ${why} (RFC 8725 §2.1); ${ASYMMETRIC_INSTEAD}`);
    } else {
      const hint = didYouMean(alg, DEFAULT_ALGORITHMS) || `; use one of ${DEFAULT_ALGORITHMS.join(', ')}`;
      r.add([...at, i], `is not a supported asymmetric JWS algorithm${hint}`);
    }
  });
  return [...out];
}

/** RFC 7662 §2.1: the resource server authenticates to the introspection endpoint as a client. */
function resolveIntrospection(raw: Obj, at: Segment[], r: Resolver): ResolvedOAuth['introspection'] {
  const clientId = clientCredential(raw.clientId, [...at, 'clientId'], r);
  const clientSecret = clientCredential(raw.clientSecret, [...at, 'clientSecret'], r);
  const endpoint = raw.endpoint === undefined ? undefined : secureUrl(raw.endpoint, [...at, 'endpoint'], r, { query: true });
  if (clientId === undefined || clientSecret === undefined) return undefined;
  return { clientId, clientSecret, ...(endpoint === undefined ? {} : { endpoint: endpoint.url.href }) };
}

/** A client id or secret: non-empty printable ASCII; the value is never quoted. */
function clientCredential(raw: unknown, at: Segment[], r: Resolver): string | undefined {
  const v = r.string(raw, at, true);
  if (v === undefined) return undefined;
  if (!VSCHAR.test(v.value)) {
    r.add(
      at,
      v.envName === undefined
        ? 'must contain only printable ASCII characters (RFC 6749 Appendix A)'
        : `environment variable ${v.envName} contains control or non-ASCII characters (a trailing newline?)`,
    );
    return undefined;
  }
  return v.value;
}

/** Principal name → the claims that select it, in the order written: the first match wins. */
function resolvePrincipals(
  raw: unknown,
  at: Segment[],
  tokenNames: readonly string[],
  r: Resolver,
): { principals: ResolvedPrincipal[]; names: string[] } {
  const principals: ResolvedPrincipal[] = [];
  const names: string[] = [];
  if (!isObject(raw)) return { principals, names }; // reported by the schema
  const tokens = new Set(tokenNames);
  for (const [name, entry] of Object.entries(raw)) {
    const pat = [...at, name];
    names.push(name);
    if (!NAME.test(name)) r.add(pat, `invalid principal name; ${NAME_RULE}`);
    // One namespace: `authTokens: ["ops"]` must mean one thing, and so must `token=ops` in a log line.
    else if (tokens.has(name)) r.add(pat, `"${name}" is also a token name; ${ONE_NAMESPACE}`);
    if (!isObject(entry) || !isObject(entry.claims)) continue; // reported by the schema
    const claims = new Map<string, ResolvedClaimMatch[]>();
    for (const [claim, value] of Object.entries(entry.claims)) {
      if (claim === '') {
        r.add([...pat, 'claims', claim], 'a claim name must not be empty (nested claims are written "realm_access.roles")');
        continue;
      }
      const alternatives = (Array.isArray(value) ? value : [value]).flatMap(claimMatch);
      claims.set(claim, alternatives);
    }
    principals.push({ name, claims });
  }
  return { principals, names };
}

/** One claim value; anything else was reported by the schema. A `*` makes a string a pattern. */
function claimMatch(value: unknown): ResolvedClaimMatch[] {
  if (typeof value === 'string') {
    if (value === '') return []; // reported by the schema
    return [value.includes('*') ? { kind: 'pattern', pattern: value } : { kind: 'exact', value }];
  }
  if (typeof value === 'number' || typeof value === 'boolean') return [{ kind: 'exact', value }];
  return [];
}
