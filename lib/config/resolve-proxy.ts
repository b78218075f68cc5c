// The `proxy` section of a configuration (README: Configuration): its name and address, static
// tokens and OAuth, body and batch limits, CORS, the auth throttle, instance id, trust proxy, the
// counter store, drain and limits, resolved before the servers, which refer to its names.
import { isIP } from 'node:net';
import { didYouMean, isObject, type Segment } from './problems';
import { fromEnv, NAME, type Resolver } from './resolver';
import { resolveLimits } from './resolve-policy';
import { resolveOAuth, resolvePublicUrl } from './resolve-oauth';
import { DEFAULTS } from './resolved-config';
import type { ResolvedProxy } from './resolved-proxy';

// Token names go into log lines (README: Logs and debugging) and server names into URL paths (README: Routes).
export const NAME_RULE = 'use only letters, digits, ".", "_" and "-"';
// A bearer token travels as `Authorization: Bearer <token>`; anything outside visible ASCII is
// either cut by the one-space rule (README: Authentication and status codes) or re-encoded by clients, so it could never match.
const TOKEN_VALUE = /^[\x21-\x7e]+$/;
const ADDR = /^(?:(?:\[[0-9A-Fa-f:.]+(?:%[\w.-]+)?\])|(?:[A-Za-z0-9.-]+))?:(\d{1,5})$/;
// Session ids will begin with `<instanceId>.` for load balancers to route on, so no dot inside.
export const INSTANCE_ID = /^[A-Za-z0-9_-]{1,32}$/;
export const INSTANCE_ID_RULE = 'must be 1 to 32 of the characters A-Z a-z 0-9 _ - (no dot)';
// The names Express's `trust proxy` (proxy-addr) knows besides addresses.
const TRUST_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

export function resolveProxy(proxy: unknown, r: Resolver): ResolvedProxy {
  const p = isObject(proxy) ? proxy : {};
  const at = ['proxy'];
  const out: ResolvedProxy = {
    name: DEFAULTS.name,
    addr: DEFAULTS.addr,
    tokens: new Map(),
    tokenNames: [],
    oauth: { configured: false, principalNames: [] },
    names: [],
    literalTokens: new Set(),
    maxBodyBytes: DEFAULTS.maxBodyBytes,
    maxEventBytes: DEFAULTS.maxEventBytes,
    maxBatch: DEFAULTS.maxBatch,
    keepAliveMs: DEFAULTS.keepAliveMs,
    allowedOrigins: undefined,
    trustProxy: false,
    drainTimeoutMs: DEFAULTS.drainTimeoutMs,
  };

  if (typeof p.name === 'string' && p.name !== '') {
    // The name is written into `WWW-Authenticate: Bearer realm="<name>"` and into log lines.
    if (/["\\\x00-\x1f\x7f]/.test(p.name)) {
      r.add([...at, 'name'], 'must not contain double quotes, backslashes or control characters');
    }
    out.name = p.name;
  }

  if (p.addr !== undefined) {
    // `$env` too, so that one file serves every instance of a deployment.
    const a = r.string(p.addr, [...at, 'addr']);
    if (a !== undefined) {
      const m = ADDR.exec(a.value);
      if (!m || Number(m[1]) > 65535) {
        r.add([...at, 'addr'], `must look like ":8080", "127.0.0.1:8080" or "[::1]:8080" (port 0-65535)${fromEnv(a)}`);
      }
      out.addr = a.value;
    }
  }

  if (p.instanceId !== undefined) {
    const v = r.string(p.instanceId, [...at, 'instanceId']);
    if (v !== undefined) {
      if (!INSTANCE_ID.test(v.value)) r.add([...at, 'instanceId'], `${INSTANCE_ID_RULE}${fromEnv(v)}`);
      else out.instanceId = v.value;
    }
  }

  if (p.trustProxy !== undefined) out.trustProxy = resolveTrustProxy(p.trustProxy, [...at, 'trustProxy'], r);

  if (isObject(p.store) && isObject(p.store.redis)) {
    const sat = [...at, 'store', 'redis'];
    // Secret: the URL may carry a password, so it is never quoted.
    const u = r.string(p.store.redis.url, [...sat, 'url'], true);
    if (u !== undefined) {
      const url = parseUrl(u.value);
      if (url === undefined || (url.protocol !== 'redis:' && url.protocol !== 'rediss:') || url.hostname === '') {
        r.add([...sat, 'url'], `must be a redis:// or rediss:// URL such as "redis://redis:6379"${fromEnv(u)}`);
      } else {
        const keyPrefix = typeof p.store.redis.keyPrefix === 'string' ? p.store.redis.keyPrefix : DEFAULTS.keyPrefix;
        out.store = { redis: { url: u.value, keyPrefix } };
      }
    }
  }
  out.drainTimeoutMs = r.duration(p.drainTimeout, [...at, 'drainTimeout'], DEFAULTS.drainTimeoutMs);

  const auth = isObject(p.auth) ? p.auth : {};
  if (isObject(auth.tokens)) {
    for (const [name, raw] of Object.entries(auth.tokens)) {
      const tat = [...at, 'auth', 'tokens', name];
      out.tokenNames.push(name);
      if (!NAME.test(name)) r.add(tat, `invalid token name; ${NAME_RULE} (token names appear in log lines)`);
      const v = r.string(raw, tat, true);
      if (v === undefined) continue;
      if (!TOKEN_VALUE.test(v.value)) {
        r.add(
          tat,
          v.envName === undefined
            ? 'must contain only visible ASCII characters (no spaces, control or non-ASCII characters)'
            : `environment variable ${v.envName} contains spaces, control or non-ASCII characters (a trailing newline?)`,
        );
        continue;
      }
      // Two names for one value are allowed (the MCP Front documentation does not forbid them) but
      // warned about at start (token-warnings.ts): a request is attributed to the first name.
      out.tokens.set(name, v.value);
      if (v.envName === undefined) out.literalTokens.add(name);
    }
  }
  // Static tokens and OAuth access tokens are both RFC 6750 bearer tokens; either may be the only kind.
  if (auth.tokens === undefined && auth.oauth === undefined && isObject(p.auth)) {
    r.add([...at, 'auth'], 'needs "tokens" (static bearer tokens), "oauth" (OAuth 2.1 access tokens), or both');
  }
  out.oauth = resolveOAuth(auth.oauth, out.tokenNames, r);
  out.names = [...out.tokenNames, ...out.oauth.principalNames];
  const publicUrl = resolvePublicUrl(p.publicUrl, out.oauth.configured, r);
  if (publicUrl !== undefined) out.publicUrl = publicUrl;

  if (typeof p.maxBodyBytes === 'number') out.maxBodyBytes = p.maxBodyBytes;
  if (typeof p.maxEventBytes === 'number') out.maxEventBytes = p.maxEventBytes;
  if (typeof p.maxBatch === 'number') out.maxBatch = p.maxBatch;
  out.keepAliveMs = r.duration(p.keepAlive, [...at, 'keepAlive'], DEFAULTS.keepAliveMs);

  if (isObject(p.cors) && Array.isArray(p.cors.allowedOrigins)) {
    out.allowedOrigins = resolveOrigins(p.cors.allowedOrigins, [...at, 'cors', 'allowedOrigins'], r);
  }

  if (isObject(p.authThrottle)) {
    // Both keys are required by the schema, so the fallbacks are only ever seen when a problem
    // has been reported and the config is refused.
    const windowMs = r.duration(p.authThrottle.window, [...at, 'authThrottle', 'window'], 0);
    const maxFailures = typeof p.authThrottle.maxFailures === 'number' ? p.authThrottle.maxFailures : 0;
    out.authThrottle = { maxFailures, windowMs };
  }

  if (isObject(p.limits)) out.limits = resolveLimits(p.limits, [...at, 'limits'], out, r);
  return out;
}

/** `proxy.limits`: keys are token names or `"*"`; each entry as configured. */
/** Express's `trust proxy` setting, checked entry by entry so that a typo is not a silent `false`. */
function resolveTrustProxy(raw: unknown, at: Segment[], r: Resolver): boolean | number | string[] {
  if (typeof raw === 'boolean' || typeof raw === 'number') return raw;
  let entries: { value: string; at: Segment[] }[];
  if (typeof raw === 'string') entries = raw.split(',').map((value) => ({ value: value.trim(), at }));
  else if (Array.isArray(raw)) entries = raw.flatMap((v, i) => (typeof v === 'string' ? [{ value: v.trim(), at: [...at, i] }] : []));
  else return false; // reported by the schema
  if (entries.length === 0) {
    r.add(at, 'must list at least one address (or be a hop count, or true)');
    return false;
  }
  const out: string[] = [];
  for (const e of entries) {
    if (TRUST_NAMES.has(e.value) || isAddressOrRange(e.value)) out.push(e.value);
    else {
      const hint = didYouMean(e.value, TRUST_NAMES);
      r.add(e.at, `${JSON.stringify(e.value)} is not an IP address, a CIDR range ("10.0.0.0/8") or one of loopback, linklocal, uniquelocal${hint}`);
    }
  }
  return out;
}

/** An IP address, `address/prefix-length`, or (IPv4) `address/netmask`, as Express accepts them. */
function isAddressOrRange(s: string): boolean {
  const slash = s.indexOf('/');
  const ip = slash === -1 ? s : s.slice(0, slash);
  const family = isIP(ip);
  if (family === 0) return false;
  if (slash === -1) return true;
  const range = s.slice(slash + 1);
  if (/^\d{1,3}$/.test(range)) return Number(range) <= (family === 4 ? 32 : 128);
  return family === 4 && isIP(range) === 4;
}

function parseUrl(s: string): URL | undefined {
  try {
    return new URL(s);
  } catch {
    return undefined;
  }
}

function resolveOrigins(list: unknown[], at: Segment[], r: Resolver): '*' | Set<string> {
  if (list.includes('*')) {
    list.forEach((o, i) => {
      if (o === '*' && list.length > 1) r.add([...at, i], '"*" allows every origin, so it must be the only entry');
    });
    return '*';
  }
  const origins = new Set<string>();
  list.forEach((o, i) => {
    if (typeof o !== 'string') return;
    const origin = normalizeOrigin(o);
    if (origin === undefined) {
      r.add([...at, i], `${JSON.stringify(o)} is not an origin; use scheme://host[:port] without a path, e.g. "https://app.example.com"`);
    } else {
      origins.add(origin);
    }
  });
  return origins;
}

/** Browsers send `Origin` in the serialized form that `URL#origin` produces, so compare that. */
function normalizeOrigin(o: string): string | undefined {
  let u: URL;
  try {
    u = new URL(o);
  } catch {
    return undefined;
  }
  if (u.host === '' || u.username !== '' || u.password !== '' || u.search !== '' || u.hash !== '') return undefined;
  if (u.pathname !== '/' && u.pathname !== '') return undefined;
  if (o.includes('?') || o.includes('#')) return undefined;
  // Non-special schemes (chrome-extension://…) have an opaque `URL#origin` of "null", but
  // browsers still send `scheme://host` for them.
  return u.origin !== 'null' ? u.origin : `${u.protocol}//${u.host}`;
}
