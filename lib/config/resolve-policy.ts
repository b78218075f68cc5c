// Resolution of the per-token policy sections of a configuration (README: Permissions and limits
// per token): `proxy.limits` and each server's `permissions`. Their keys are token or principal
// names, which a careless edit may replace with a pasted token value: such a key is never quoted.
import { didYouMean, isObject, type Obj, type Problem, type Segment } from './problems';
import { quotableName, type Resolver } from './resolver';
import type { ResolvedLimits, ResolvedPermissions } from './resolved-config';
import type { ResolvedProxy } from './resolved-proxy';

/** How messages call the names a reference may use: principals are mentioned once OAuth is on. */
export function nameWords(proxy: ResolvedProxy): { name: string; plural: string; every: string } {
  return proxy.oauth.configured
    ? { name: 'token or principal name', plural: 'tokens and principals', every: 'token and principal' }
    : { name: 'token name', plural: 'tokens', every: 'token' };
}

export function nameKind(name: string, proxy: ResolvedProxy): 'token' | 'principal' {
  return proxy.oauth.principalNames.includes(name) && !proxy.tokenNames.includes(name) ? 'principal' : 'token';
}

export function resolveLimits(raw: Obj, at: Segment[], proxy: ResolvedProxy, r: Resolver): Map<string, ResolvedLimits> {
  const out = new Map<string, ResolvedLimits>();
  const known = new Set(proxy.names);
  for (const [key, entry] of Object.entries(raw)) {
    if (key !== '*' && !known.has(key)) {
      r.add([...at, key], unknownTokenKey(key, proxy, r));
      continue;
    }
    if (!isObject(entry)) continue; // reported by the schema
    const limits: ResolvedLimits = {};
    if (isObject(entry.requests) && typeof entry.requests.max === 'number') {
      const windowMs = r.duration(entry.requests.window, [...at, key, 'requests', 'window'], 0);
      limits.requests = { max: entry.requests.max, windowMs };
    }
    if (typeof entry.maxSessions === 'number') limits.maxSessions = entry.maxSessions;
    out.set(key, limits);
  }
  return out;
}

/** The message for a key of `permissions` or `limits` that names no configured token or principal. */
function unknownTokenKey(key: string, proxy: ResolvedProxy, r: Resolver): string {
  const words = nameWords(proxy);
  const hint = didYouMean(key, [...proxy.names, '*']) || `; defined ${words.plural}: ${proxy.names.map((k) => `"${k}"`).join(', ')}, or "*"`;
  return `unknown ${words.name} ${quotableName(key, r) ? JSON.stringify(key) : '(not shown: it may be a secret)'}${hint}`;
}

/**
 * Keys of `permissions` and `limits` are meant to be token names, but may be a pasted token
 * value; a path through such a key would quote it. The problem is then reported at the map.
 */
export function hideSecretKeys(problem: Problem, proxy: ResolvedProxy, r: Resolver): Problem {
  const { at } = problem;
  const depth = at[0] === 'mcpServers' && at[2] === 'permissions' ? 3 : at[0] === 'proxy' && at[1] === 'limits' ? 2 : -1;
  if (depth === -1 || at.length <= depth) return problem;
  const key = String(at[depth]);
  if (key === '*' || proxy.names.includes(key) || quotableName(key, r)) return problem;
  const message = problem.message.startsWith('unknown token') ? problem.message : `an entry whose key is not shown (it may be a secret): ${problem.message}`;
  return { at: at.slice(0, depth), message };
}

/**
 * A server's `permissions`: keys are token names this server allows (`authTokens`) or `"*"`.
 * A name it does not allow would be a rule that can never apply, which is always a mistake.
 */
export function resolvePermissions(raw: unknown, at: Segment[], authTokens: ReadonlySet<string>, proxy: ResolvedProxy, r: Resolver): Map<string, ResolvedPermissions> | undefined {
  if (!isObject(raw)) return undefined;
  const out = new Map<string, ResolvedPermissions>();
  const known = new Set(proxy.names);
  for (const [key, entry] of Object.entries(raw)) {
    if (key !== '*' && !known.has(key)) {
      r.add([...at, key], unknownTokenKey(key, proxy, r));
      continue;
    }
    if (key !== '*' && !authTokens.has(key)) {
      r.add([...at, key], `${nameKind(key, proxy)} "${key}" is not in this server's "authTokens", so it can never use these permissions`);
      continue;
    }
    if (!isObject(entry)) continue; // reported by the schema
    const p: { tools?: string[]; prompts?: string[]; resources?: string[] } = {};
    for (const kind of ['tools', 'prompts', 'resources'] as const) {
      const list = entry[kind];
      if (!Array.isArray(list)) continue;
      const patterns: string[] = [];
      list.forEach((pattern, i) => {
        if (typeof pattern !== 'string') return;
        // Not quoted: a pattern may be anything, even a pasted secret.
        if (patterns.includes(pattern)) r.add([...at, key, kind, i], `duplicate of entry ${patterns.indexOf(pattern)}`);
        patterns.push(pattern);
      });
      p[kind] = patterns;
    }
    out.set(key, p);
  }
  return out;
}
