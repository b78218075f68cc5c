// Validation and resolution of the configuration (README: Configuration). Everything here runs once, in
// the factory or in reload(), never per request.
//
// Two passes, both collecting every problem before anything is thrown: an ajv schema for the
// shape (types, unknown keys, enums), then code for what a schema cannot express (cross-field
// rules, `$env` lookups, URLs, origins, token references). The second pass silently skips any
// value of the wrong shape, because the first one has already reported it.
//
// Secrets: token values, header values, env values and anything read through `$env` are never
// put into a message. Only key names, `$env` variable names and values known not to be secret
// (version, origins, token *names*) are quoted.
import type { TransportType } from '../types';
import { ConfigError } from './config-error';
import { didYouMean, fromAjv, isObject, type Obj, type Problem, type Segment, toConfigProblems } from './problems';
import { fromEnv, NAME, quotableName, Resolver } from './resolver';
import { validateShape } from './schema';
import { hideSecretKeys, nameKind, nameWords, resolvePermissions } from './resolve-policy';
import { INSTANCE_ID, INSTANCE_ID_RULE, NAME_RULE, resolveProxy } from './resolve-proxy';
import type { ResolvedProxy } from './resolved-proxy';
import { resolveServerScopes } from './resolve-oauth';
import { hideSecretMembers, resolveAggregates, type AggregateNames } from './resolve-aggregates';
import { DEFAULTS, type ResolvedConfig, type ResolvedServer } from './resolved-config';

// RFC 9110 §5.1 field-name token.
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// What Node's http module accepts in a header value; CR/LF would allow header injection.
const BAD_HEADER_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
// Headers the proxy itself owns on the upstream request; a configured value would corrupt
// framing (content-length, transfer-encoding), routing (host) or sessions (mcp-session-id).
const RESERVED_HEADERS = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'proxy-connection',
  'mcp-session-id',
]);
const STDIO_ONLY = ['args', 'env', 'cwd', 'idleTimeout', 'maxSessions'] as const;
const REMOTE_ONLY = ['headers'] as const;


function resolveServer(name: string, raw: Obj, proxy: ResolvedProxy, r: Resolver): ResolvedServer | undefined {
  const at: Segment[] = ['mcpServers', name];
  const sub = (...rest: Segment[]) => [...at, ...rest];

  const hasUrl = raw.url !== undefined;
  const hasCommand = raw.command !== undefined;
  if (hasUrl && hasCommand) {
    r.add(at, 'has both "url" and "command"; a server is either remote ("url") or stdio ("command")');
  } else if (!hasUrl && !hasCommand) {
    r.add(at, 'needs "url" (a remote server) or "command" (a stdio server)');
  } else {
    const wrong = hasUrl ? STDIO_ONLY : REMOTE_ONLY;
    for (const key of wrong) {
      if (raw[key] !== undefined) {
        r.add(sub(key), hasUrl ? 'only for stdio servers (with "command")' : 'only for remote servers (with "url")');
      }
    }
  }

  const transportType = raw.transportType as TransportType | undefined;
  if (transportType === 'stdio' && hasUrl && !hasCommand) {
    r.add(sub('transportType'), '"stdio" needs "command"; this server has "url"');
  } else if ((transportType === 'sse' || transportType === 'streamable-http') && hasCommand && !hasUrl) {
    r.add(sub('transportType'), `"${transportType}" needs "url"; this server has "command"`);
  }

  const authTokens = resolveAuthTokens(raw.authTokens, sub('authTokens'), proxy, r);
  const timeoutMs = r.duration(raw.timeout, sub('timeout'), DEFAULTS.timeoutMs);
  const resolvedPermissions = resolvePermissions(raw.permissions, sub('permissions'), authTokens, proxy, r);
  const permissions = resolvedPermissions === undefined || resolvedPermissions.size === 0 ? {} : { permissions: resolvedPermissions };
  const scopes = resolveServerScopes(raw.requiredScopes, sub('requiredScopes'), proxy.oauth, r);

  if (hasUrl && !hasCommand) {
    const u = r.string(raw.url, sub('url'));
    let url: URL | undefined;
    if (u !== undefined) {
      url = parseHttpUrl(u.value);
      if (url === undefined) r.add(sub('url'), `must be an absolute http:// or https:// URL${fromEnv(u)}`);
    }
    const headers = resolveHeaders(raw.headers, sub('headers'), r);
    if (url === undefined) return undefined;
    const inferred = url.pathname.endsWith('/sse') ? 'sse' : 'streamable-http';
    const transport = transportType === 'sse' || transportType === 'streamable-http' ? transportType : inferred;
    return { kind: 'remote', name, transport, url, headers, authTokens, timeoutMs, ...permissions, scopes };
  }

  if (hasCommand && !hasUrl) {
    const c = r.string(raw.command, sub('command'));
    if (c !== undefined && c.value === '') r.add(sub('command'), `must not be empty${fromEnv(c)}`);
    const args: string[] = [];
    if (Array.isArray(raw.args)) {
      raw.args.forEach((a, i) => {
        const v = r.string(a, sub('args', i));
        if (v === undefined) return;
        if (v.value.includes('\0')) r.add(sub('args', i), `must not contain NUL characters${fromEnv(v)}`);
        args.push(v.value);
      });
    }
    const env = resolveEnv(raw.env, sub('env'), r);
    let cwd: string | undefined;
    if (raw.cwd !== undefined) {
      const v = r.string(raw.cwd, sub('cwd'));
      if (v !== undefined && v.value === '') r.add(sub('cwd'), `must not be empty${fromEnv(v)}`);
      cwd = v?.value;
    }
    const idleTimeoutMs = r.duration(raw.idleTimeout, sub('idleTimeout'), DEFAULTS.idleTimeoutMs);
    const maxSessions = typeof raw.maxSessions === 'number' ? raw.maxSessions : DEFAULTS.maxSessions;
    if (c === undefined) return undefined;
    return {
      kind: 'stdio',
      transport: 'stdio',
      name,
      command: c.value,
      args,
      env,
      ...(cwd === undefined ? {} : { cwd }),
      idleTimeoutMs,
      maxSessions,
      authTokens,
      timeoutMs,
      ...permissions,
      scopes,
    };
  }
  return undefined;
}

function checkServerName(name: string, r: Resolver, at: Segment[] = ['mcpServers', name]): void {
  const noun = at[0] === 'aggregates' ? 'aggregate' : 'server';
  if (!NAME.test(name)) r.add(at, `invalid ${noun} name; ${NAME_RULE} (it is a URL path segment)`);
  else if (name === '.' || name === '..') r.add(at, `"." and ".." cannot be ${noun} names (URL normalization removes them)`);
  // Case-insensitive because Express routes are: `/HEALTH` reaches the health route too.
  else if (name.toLowerCase() === 'health') r.add(at, '"health" is reserved for the health check route');
}

function parseHttpUrl(s: string): URL | undefined {
  try {
    const u = new URL(s);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u : undefined;
  } catch {
    return undefined;
  }
}

/**
 * `authTokens` (of a server, an aggregate or `proxy.metrics`): token and principal names; omitted =
 * all of them, or what `omitted` says for the message of an empty list.
 */
function resolveAuthTokens(raw: unknown, at: Segment[], proxy: ResolvedProxy, r: Resolver, omitted?: string): Set<string> {
  if (!Array.isArray(raw)) return new Set(proxy.names);
  const words = nameWords(proxy);
  if (raw.length === 0) {
    r.add(at, `must list at least one ${words.name} (omit "authTokens" to allow ${omitted ?? `every ${words.every}`})`);
    return new Set();
  }
  const known = new Set(proxy.names);
  const values = new Set(proxy.tokens.values());
  const out = new Set<string>();
  raw.forEach((name, i) => {
    if (typeof name !== 'string') return;
    if (out.has(name)) {
      r.add([...at, i], known.has(name) ? `duplicate ${nameKind(name, proxy)} name "${name}"` : 'duplicate entry');
    } else if (!known.has(name) && values.has(name)) {
      // Someone pasted a token value where its name belongs; quoting it would leak it.
      r.add([...at, i], 'is a token value, not a token name; use its name from proxy.auth.tokens');
    } else if (known.size > 0 && !known.has(name)) {
      const hint = didYouMean(name, known) || `; defined ${words.plural}: ${[...known].map((k) => `"${k}"`).join(', ')}`;
      r.add([...at, i], `unknown ${words.name} ${quotableName(name, r) ? JSON.stringify(name) : '(not shown: it may be a secret)'}${hint}`);
    }
    out.add(name);
  });
  return out;
}

function resolveHeaders(raw: unknown, at: Segment[], r: Resolver): Record<string, string> {
  if (!isObject(raw)) return {};
  const entries: [string, string][] = [];
  const seen = new Map<string, string>();
  for (const [name, value] of Object.entries(raw)) {
    const hat = [...at, name];
    const lower = name.toLowerCase();
    if (!HEADER_NAME.test(name)) r.add(hat, 'is not a valid HTTP header name');
    else if (RESERVED_HEADERS.has(lower)) r.add(hat, `"${name}" is managed by the proxy and cannot be configured`);
    else if (seen.has(lower)) r.add(hat, `duplicates header "${seen.get(lower)}" (header names are case-insensitive)`);
    seen.set(lower, seen.get(lower) ?? name);
    const v = r.string(value, hat, true);
    if (v === undefined) continue;
    if (BAD_HEADER_VALUE.test(v.value)) {
      r.add(hat, `must not contain CR, LF or other control characters${fromEnv(v)}`);
      continue;
    }
    entries.push([name, v.value]);
  }
  // fromEntries defines own properties, so a key such as "__proto__" stays a plain key.
  return Object.fromEntries(entries);
}

function resolveEnv(raw: unknown, at: Segment[], r: Resolver): Record<string, string> {
  if (!isObject(raw)) return {};
  const entries: [string, string][] = [];
  for (const [name, value] of Object.entries(raw)) {
    const eat = [...at, name];
    // spawn() rejects these outright; better to say so at load time than at the first request.
    if (name === '' || name.includes('=') || name.includes('\0')) {
      r.add(eat, 'is not a valid environment variable name (no "=" or NUL, not empty)');
    }
    const v = r.string(value, eat);
    if (v === undefined) continue;
    if (v.value.includes('\0')) {
      r.add(eat, `must not contain NUL characters${fromEnv(v)}`);
      continue;
    }
    entries.push([name, v.value]);
  }
  return Object.fromEntries(entries);
}

/** Validates and resolves a configuration; throws `ConfigError` listing every problem. */
export function resolveConfig(
  raw: unknown,
  env: Record<string, string | undefined> = process.env,
  overrides: { instanceId?: string } = {},
): ResolvedConfig {
  const problems: Problem[] = [];
  if (!validateShape(raw)) {
    for (const e of validateShape.errors ?? []) problems.push(fromAjv(e, raw));
  }

  const r = new Resolver(env, raw);
  const root = isObject(raw) ? raw : {};
  const proxy = resolveProxy(root.proxy, r);
  const servers = new Map<string, ResolvedServer>();
  if (isObject(root.mcpServers)) {
    for (const [name, server] of Object.entries(root.mcpServers)) {
      checkServerName(name, r);
      if (!isObject(server)) continue; // reported by the schema
      const resolved = resolveServer(name, server, proxy, r);
      if (resolved !== undefined) servers.set(name, resolved);
    }
  }
  const names: AggregateNames = {
    servers: new Set(isObject(root.mcpServers) ? Object.keys(root.mcpServers) : []),
    aggregates: new Set(isObject(root.aggregates) ? Object.keys(root.aggregates) : []),
  };
  const aggregates = resolveAggregates(root.aggregates, {
    names,
    servers,
    proxy,
    r,
    authTokens: (list, at, omitted) => resolveAuthTokens(list, at, proxy, r, omitted),
    checkName: (at, name) => checkServerName(name, r, at),
  });
  let instanceId = proxy.instanceId;
  if (overrides.instanceId !== undefined) {
    if (typeof overrides.instanceId !== 'string' || !INSTANCE_ID.test(overrides.instanceId)) {
      r.add(['options', 'instanceId'], INSTANCE_ID_RULE);
    } else instanceId = overrides.instanceId;
  }
  const rawProxy = isObject(root.proxy) ? root.proxy : {};
  let metrics: ResolvedConfig['metrics'];
  if (isObject(rawProxy.metrics)) {
    const listed = rawProxy.metrics.authTokens;
    metrics = listed === undefined ? {} : { authTokens: resolveAuthTokens(listed, ['proxy', 'metrics', 'authTokens'], proxy, r) };
  }
  problems.push(...r.problems);
  if (problems.length > 0) throw new ConfigError(toConfigProblems(problems.map((p) => hideSecretMembers(hideSecretKeys(p, proxy, r), names, r)), raw));

  return {
    name: proxy.name,
    addr: proxy.addr,
    tokens: proxy.tokens,
    ...(proxy.oauth.oauth === undefined ? {} : { oauth: proxy.oauth.oauth }),
    ...(proxy.publicUrl === undefined ? {} : { publicUrl: proxy.publicUrl }),
    literalTokens: proxy.literalTokens,
    maxBodyBytes: proxy.maxBodyBytes,
    maxEventBytes: proxy.maxEventBytes,
    maxBatch: proxy.maxBatch,
    keepAliveMs: proxy.keepAliveMs,
    allowedOrigins: proxy.allowedOrigins,
    ...(proxy.authThrottle === undefined ? {} : { authThrottle: proxy.authThrottle }),
    servers,
    aggregates,
    ...(instanceId === undefined ? {} : { instanceId }),
    trustProxy: proxy.trustProxy,
    ...(proxy.store === undefined ? {} : { store: proxy.store }),
    drainTimeoutMs: proxy.drainTimeoutMs,
    audit: typeof rawProxy.audit === 'boolean' ? rawProxy.audit : DEFAULTS.audit,
    ...(metrics === undefined ? {} : { metrics }),
    ...(proxy.limits === undefined || proxy.limits.size === 0 ? {} : { limits: proxy.limits }),
  };
}
