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
import { readFileSync } from 'node:fs';
import Ajv, { type ErrorObject } from 'ajv';
import { ConfigError } from '../wire/errors';
import type { ConfigProblem, McpFrontConfig, ServerConfig, TransportType } from '../types';

/** A server, normalized: durations in ms, `$env` resolved, transport decided. */
interface ResolvedServerBase {
  name: string;
  /** Token names allowed on this server (every configured token when `authTokens` is omitted). */
  authTokens: ReadonlySet<string>;
  timeoutMs: number;
}

export interface RemoteServer extends ResolvedServerBase {
  kind: 'remote';
  transport: 'sse' | 'streamable-http';
  url: URL;
  headers: Record<string, string>;
}

export interface StdioServer extends ResolvedServerBase {
  kind: 'stdio';
  transport: 'stdio';
  command: string;
  args: string[];
  /** Only the configured variables; the bridge adds the minimal allowlist. */
  env: Record<string, string>;
  cwd?: string;
  idleTimeoutMs: number;
  maxSessions: number;
}

export type ResolvedServer = RemoteServer | StdioServer;

export interface ResolvedConfig {
  name: string;
  addr: string;
  /** Token name → token value. */
  tokens: ReadonlyMap<string, string>;
  /** Names of tokens whose value is written literally in the config (not `$env`). */
  literalTokens: ReadonlySet<string>;
  maxBodyBytes: number;
  maxEventBytes: number;
  keepAliveMs: number;
  /** `'*'`, a set of origins, or `undefined` (same-origin only). */
  allowedOrigins: '*' | ReadonlySet<string> | undefined;
  /** Failed-authentication throttling; absent when off (the default). */
  authThrottle?: { maxFailures: number; windowMs: number };
  servers: ReadonlyMap<string, ResolvedServer>;
}

export const DEFAULTS = {
  name: 'mcp-front',
  addr: ':8080',
  maxBodyBytes: 10 * 1024 * 1024,
  maxEventBytes: 64 * 1024 * 1024,
  keepAliveMs: 15_000,
  timeoutMs: 60_000,
  idleTimeoutMs: 30 * 60_000,
  maxSessions: 100,
} as const;

// ---------------------------------------------------------------------------------------------
// Schema

const STRING_OR_ENV = { $ref: '#/$defs/stringOrEnv' };
const DURATION = { $ref: '#/$defs/duration' };
const DURATION_PATTERN = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;

// `satisfies Record<keyof …>` makes the compiler reject a schema that lacks a key of the public
// type, or has one the type does not: the schema cannot drift from lib/types.ts.
const serverProperties = {
  url: STRING_OR_ENV,
  command: STRING_OR_ENV,
  args: { type: 'array', items: STRING_OR_ENV },
  env: { type: 'object', additionalProperties: STRING_OR_ENV },
  cwd: STRING_OR_ENV,
  headers: { type: 'object', additionalProperties: STRING_OR_ENV },
  transportType: { enum: ['stdio', 'sse', 'streamable-http'] },
  authTokens: { type: 'array', items: { type: 'string' } },
  timeout: DURATION,
  idleTimeout: DURATION,
  maxSessions: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
} satisfies Record<keyof ServerConfig, object>;

const proxyProperties = {
  name: { type: 'string', minLength: 1 },
  addr: { type: 'string' },
  auth: {
    type: 'object',
    required: ['kind', 'tokens'],
    additionalProperties: false,
    properties: {
      kind: { const: 'bearer_token' },
      tokens: { type: 'object', minProperties: 1, additionalProperties: STRING_OR_ENV },
    } satisfies Record<keyof McpFrontConfig['proxy']['auth'], object>,
  },
  maxBodyBytes: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
  maxEventBytes: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
  keepAlive: DURATION,
  cors: {
    type: 'object',
    required: ['allowedOrigins'],
    additionalProperties: false,
    properties: {
      allowedOrigins: { type: 'array', items: { type: 'string' } },
    } satisfies Record<keyof NonNullable<McpFrontConfig['proxy']['cors']>, object>,
  },
  // Both keys required: a default threshold would be a guess about the deployment's clients.
  authThrottle: {
    type: 'object',
    required: ['maxFailures', 'window'],
    additionalProperties: false,
    properties: {
      maxFailures: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
      window: DURATION,
    } satisfies Record<keyof NonNullable<McpFrontConfig['proxy']['authThrottle']>, object>,
  },
} satisfies Record<keyof McpFrontConfig['proxy'], object>;

const configSchema = {
  type: 'object',
  required: ['proxy', 'mcpServers'],
  additionalProperties: false,
  properties: {
    version: { type: 'string', pattern: '^1(\\.\\d+)?$' },
    proxy: { type: 'object', required: ['auth'], additionalProperties: false, properties: proxyProperties },
    // An empty object is valid: a proxy with no servers still answers /health and can be
    // filled by reload(), which is how a deployment may start before its upstreams exist.
    mcpServers: {
      type: 'object',
      additionalProperties: { type: 'object', additionalProperties: false, properties: serverProperties },
    },
  } satisfies Record<keyof McpFrontConfig, object>,
  $defs: {
    // Union types keep one error per bad value; `oneOf`/`anyOf` would report every branch.
    stringOrEnv: {
      type: ['string', 'object'],
      properties: { $env: { type: 'string', minLength: 1 } },
      required: ['$env'],
      additionalProperties: false,
    },
    duration: { type: ['integer', 'string'], minimum: 0, pattern: DURATION_PATTERN.source },
  },
};

// Compiled once at module load: compiling generates code and is far slower than validating.
const validateShape = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, verbose: true }).compile(
  configSchema,
);

// ---------------------------------------------------------------------------------------------
// Problems and paths

type Segment = string | number;

interface Problem {
  at: Segment[];
  message: string;
}

const IDENTIFIER = /^[A-Za-z_$][\w$-]*$/;

function formatPath(at: readonly Segment[]): string {
  let out = '';
  for (const seg of at) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (IDENTIFIER.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** A JSON pointer → segments, telling array indices from object keys by looking at the data. */
function pointerToSegments(pointer: string, data: unknown): Segment[] {
  const out: Segment[] = [];
  if (pointer === '') return out;
  let cur: unknown = data;
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(cur)) {
      out.push(Number(key));
      cur = cur[Number(key)];
    } else {
      out.push(key);
      cur = isObject(cur) && Object.hasOwn(cur, key) ? cur[key] : undefined;
    }
  }
  return out;
}

/** Optimal string alignment distance: a swap of two neighbours ("nmae") counts as one edit. */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The closest candidate to a mistyped name, if one is close enough to be a likely typo. */
function closest(word: string, candidates: Iterable<string>): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/[-_]/g, '');
  const w = norm(word);
  let best: string | undefined;
  let bestScore = Infinity;
  for (const c of candidates) {
    const n = norm(c);
    let score = editDistance(w, n);
    // `type` for `transportType`, `servers` for `mcpServers`: a fragment of the real name. It
    // ranks behind a true one-edit typo, or `authThrotle` would suggest `auth` (its prefix).
    if (score > 1 && Math.min(w.length, n.length) >= 4 && (n.includes(w) || w.includes(n))) score = 1.5;
    if (score <= Math.max(1.5, Math.floor(n.length / 3)) && score < bestScore) {
      best = c;
      bestScore = score;
    }
  }
  return best;
}

const didYouMean = (word: string, candidates: Iterable<string>): string => {
  const guess = closest(word, candidates);
  return guess === undefined ? '' : `; did you mean "${guess}"?`;
};

const ENV_REF_SCHEMA = '#/$defs/stringOrEnv/';
const DURATION_SCHEMA = '#/$defs/duration/';
const STRING_OR_ENV_HINT = 'must be a string or {"$env": "NAME"}';
const DURATION_HINT = 'must be a duration: milliseconds, or a string such as "500ms", "30s", "5m" or "1h"';

const TYPE_NAMES: Record<string, string> = {
  object: 'an object',
  array: 'an array',
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
};

/** An ajv error → a readable problem. Never quotes the offending value (it may be a secret). */
function fromAjv(e: ErrorObject, data: unknown): Problem {
  const at = pointerToSegments(e.instancePath, data);
  const params = e.params as Record<string, unknown>;
  const inEnvRef = e.schemaPath.startsWith(ENV_REF_SCHEMA);
  const inDuration = e.schemaPath.startsWith(DURATION_SCHEMA);

  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(params.additionalProperty);
      if (inEnvRef) {
        const hint = key === 'env' || key === 'ENV' || key === 'name' ? '; did you mean "$env"?' : '';
        return { at: [...at, key], message: `unknown key "${key}": an environment reference is just {"$env": "NAME"}${hint}` };
      }
      const known = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {});
      return { at: [...at, key], message: `unknown key "${key}"${didYouMean(key, known)}` };
    }
    case 'required': {
      const key = String(params.missingProperty);
      if (inEnvRef) return { at, message: STRING_OR_ENV_HINT };
      const hint = key === 'kind' ? ' (use "bearer_token")' : key === 'mcpServers' ? ' (use {} for no servers)' : '';
      return { at: [...at, key], message: `is required${hint}` };
    }
    case 'type': {
      if (inEnvRef) return { at, message: STRING_OR_ENV_HINT };
      if (inDuration) return { at, message: DURATION_HINT };
      const t = String(params.type);
      return { at, message: `must be ${TYPE_NAMES[t] ?? t}` };
    }
    case 'minLength':
      if (e.schemaPath.includes('%24env')) return { at, message: 'must be the name of an environment variable' };
      return { at, message: 'must not be empty' };
    case 'pattern':
      if (inDuration) return { at, message: DURATION_HINT };
      // The version is not a secret, and quoting it makes the mismatch obvious.
      return { at, message: `unsupported version ${JSON.stringify(e.data)}; this release reads version "1.0" (any "1.x")` };
    case 'minimum':
      if (inDuration) return { at, message: DURATION_HINT };
      return { at, message: 'must be a positive integer' };
    case 'maximum':
      return { at, message: `must be at most ${String(params.limit)}` };
    case 'minProperties':
      return { at, message: 'must define at least one token' };
    case 'const':
      return { at, message: `must be ${JSON.stringify(params.allowedValue)} (the only supported kind)` };
    case 'enum':
      return { at, message: `must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}` };
    default:
      return { at, message: e.message ?? `fails ${e.keyword}` };
  }
}

const MAX_ORDER_DEPTH = 16;

/** Sorts problems into the order their paths appear in the document, so a report reads top-down. */
function inDocumentOrder(problems: Problem[], data: unknown): Problem[] {
  const order = new Map<string, number>();
  const walk = (value: unknown, at: Segment[]) => {
    order.set(formatPath(at), order.size);
    // Problems sit no deeper than the schema reaches; without a bound, a hostile document nested
    // thousands of levels deep would overflow the stack (a RangeError instead of a ConfigError).
    if (at.length >= MAX_ORDER_DEPTH) return;
    if (Array.isArray(value)) value.forEach((v, i) => walk(v, [...at, i]));
    else if (isObject(value)) for (const [k, v] of Object.entries(value)) walk(v, [...at, k]);
  };
  walk(data, []);
  const rank = (at: Segment[]): number => {
    for (let n = at.length; n >= 0; n--) {
      const r = order.get(formatPath(at.slice(0, n)));
      if (r !== undefined) return r;
    }
    return 0;
  };
  return problems
    .map((p, i) => ({ p, i, r: rank(p.at) }))
    .sort((a, b) => a.r - b.r || a.i - b.i)
    .map(({ p }) => p);
}

function toConfigProblems(problems: Problem[], data: unknown): ConfigProblem[] {
  const seen = new Set<string>();
  const out: ConfigProblem[] = [];
  for (const p of inDocumentOrder(problems, data)) {
    const problem = { path: formatPath(p.at), message: p.message };
    const key = `${problem.path}\0${problem.message}`;
    if (!seen.has(key)) out.push(problem);
    seen.add(key);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Resolution

type Env = Record<string, string | undefined>;
type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// Node timers silently turn anything above 2^31-1 ms into 1 ms (TimeoutOverflowWarning), so a
// "30d" idle timeout would end sessions at once instead of never.
const MAX_TIMER_MS = 2 ** 31 - 1;

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `"500ms"`, `"30s"`, `"5m"`, `"1h"` or a number of ms → ms; `undefined` when invalid. */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const m = DURATION_PATTERN.exec(value);
  if (!m) return undefined;
  const ms = Math.round(Number(m[1]) * UNITS[m[2]]);
  return Number.isSafeInteger(ms) ? ms : undefined;
}

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
// Token names go into log lines (README: Logs and debugging) and server names into URL paths (README: Routes).
const NAME = /^[A-Za-z0-9._-]+$/;
const NAME_RULE = 'use only letters, digits, ".", "_" and "-"';
const MAX_QUOTED_NAME = 32;
// A bearer token travels as `Authorization: Bearer <token>`; anything outside visible ASCII is
// either cut by the one-space rule (README: Authentication and status codes) or re-encoded by clients, so it could never match.
const TOKEN_VALUE = /^[\x21-\x7e]+$/;
const ADDR = /^(?:(?:\[[0-9A-Fa-f:.]+(?:%[\w.-]+)?\])|(?:[A-Za-z0-9.-]+))?:(\d{1,5})$/;
const STDIO_ONLY = ['args', 'env', 'cwd', 'idleTimeout', 'maxSessions'] as const;
const REMOTE_ONLY = ['headers'] as const;

interface Resolved {
  value: string;
  /** The variable it was read from, when it came from `{"$env": …}`. */
  envName?: string;
}

class Resolver {
  readonly problems: Problem[] = [];

  private values: string[] | undefined;

  constructor(
    private readonly env: Env,
    private readonly raw: unknown,
  ) {}

  /**
   * Does `s` occur inside a string value of the document (outside `authTokens`) or of the
   * environment? Then it may be a secret, or part of one (`--api-key=…`, a variable with a
   * trailing newline), and a message must not quote it. Collected on first use: only a config
   * that is already wrong needs it.
   */
  occursInValues(s: string): boolean {
    if (this.values === undefined) {
      const values: string[] = [];
      for (const v of Object.values(this.env)) if (typeof v === 'string') values.push(v);
      // A loop, not recursion: the document may be nested deeper than the stack.
      const pending: [unknown, string | undefined][] = [[this.raw, undefined]];
      for (let item = pending.pop(); item !== undefined; item = pending.pop()) {
        const [node, key] = item;
        if (typeof node === 'string') values.push(node);
        else if (Array.isArray(node)) {
          if (key !== 'authTokens') for (const n of node) pending.push([n, undefined]);
        } else if (isObject(node)) for (const [k, v] of Object.entries(node)) pending.push([v, k]);
      }
      this.values = values;
    }
    return this.values.some((v) => v.includes(s));
  }

  add(at: Segment[], message: string): void {
    this.problems.push({ at, message });
  }

  /**
   * A string or `{"$env": NAME}` → its value. `secret`: an empty value is an error, because an
   * empty token or API key is always a deployment mistake, never an intent.
   */
  string(value: unknown, at: Segment[], secret = false): Resolved | undefined {
    if (typeof value === 'string') {
      if (secret && value === '') {
        this.add(at, 'must not be empty');
        return undefined;
      }
      return { value };
    }
    if (!isObject(value) || Object.keys(value).length !== 1 || typeof value.$env !== 'string' || value.$env === '') {
      return undefined; // reported by the schema
    }
    const name = value.$env;
    const found = Object.hasOwn(this.env, name) ? this.env[name] : undefined;
    if (typeof found !== 'string') {
      this.add(at, `environment variable ${name} is not set`);
      return undefined;
    }
    if (secret && found === '') {
      this.add(at, `environment variable ${name} is empty`);
      return undefined;
    }
    return { value: found, envName: name };
  }

  duration(value: unknown, at: Segment[], fallback: number): number {
    if (value === undefined) return fallback;
    const ms = parseDuration(value);
    if (ms === undefined) return fallback; // reported by the schema
    if (ms === 0) this.add(at, 'must be greater than 0');
    else if (ms > MAX_TIMER_MS) this.add(at, `must be at most ${MAX_TIMER_MS} ms (about 24 days)`);
    return ms;
  }
}

const fromEnv = (r: Resolved) => (r.envName === undefined ? '' : ` (value of environment variable ${r.envName})`);

interface ResolvedProxy {
  name: string;
  addr: string;
  tokens: Map<string, string>;
  /** Every token name the config defines, even those whose value failed to resolve. */
  tokenNames: string[];
  literalTokens: Set<string>;
  maxBodyBytes: number;
  maxEventBytes: number;
  keepAliveMs: number;
  allowedOrigins: '*' | Set<string> | undefined;
  authThrottle?: { maxFailures: number; windowMs: number };
}

function resolveProxy(proxy: unknown, r: Resolver): ResolvedProxy {
  const p = isObject(proxy) ? proxy : {};
  const at = ['proxy'];
  const out: ResolvedProxy = {
    name: DEFAULTS.name,
    addr: DEFAULTS.addr,
    tokens: new Map(),
    tokenNames: [],
    literalTokens: new Set(),
    maxBodyBytes: DEFAULTS.maxBodyBytes,
    maxEventBytes: DEFAULTS.maxEventBytes,
    keepAliveMs: DEFAULTS.keepAliveMs,
    allowedOrigins: undefined,
  };

  if (typeof p.name === 'string' && p.name !== '') {
    // The name is written into `WWW-Authenticate: Bearer realm="<name>"` and into log lines.
    if (/["\\\x00-\x1f\x7f]/.test(p.name)) {
      r.add([...at, 'name'], 'must not contain double quotes, backslashes or control characters');
    }
    out.name = p.name;
  }

  if (typeof p.addr === 'string') {
    const m = ADDR.exec(p.addr);
    if (!m || Number(m[1]) > 65535) {
      r.add([...at, 'addr'], 'must look like ":8080", "127.0.0.1:8080" or "[::1]:8080" (port 0-65535)');
    }
    out.addr = p.addr;
  }

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

  if (typeof p.maxBodyBytes === 'number') out.maxBodyBytes = p.maxBodyBytes;
  if (typeof p.maxEventBytes === 'number') out.maxEventBytes = p.maxEventBytes;
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
  return out;
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
    return { kind: 'remote', name, transport, url, headers, authTokens, timeoutMs };
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
    };
  }
  return undefined;
}

function checkServerName(name: string, r: Resolver): void {
  const at = ['mcpServers', name];
  if (!NAME.test(name)) r.add(at, `invalid server name; ${NAME_RULE} (it is a URL path segment)`);
  else if (name === '.' || name === '..') r.add(at, '"." and ".." cannot be server names (URL normalization removes them)');
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

function resolveAuthTokens(raw: unknown, at: Segment[], proxy: ResolvedProxy, r: Resolver): Set<string> {
  if (!Array.isArray(raw)) return new Set(proxy.tokenNames);
  if (raw.length === 0) {
    r.add(at, 'must list at least one token name (omit "authTokens" to allow every token)');
    return new Set();
  }
  const known = new Set(proxy.tokenNames);
  const values = new Set(proxy.tokens.values());
  const out = new Set<string>();
  raw.forEach((name, i) => {
    if (typeof name !== 'string') return;
    if (out.has(name)) {
      r.add([...at, i], known.has(name) ? `duplicate token name "${name}"` : 'duplicate entry');
    } else if (!known.has(name) && values.has(name)) {
      // Someone pasted a token value where its name belongs; quoting it would leak it.
      r.add([...at, i], 'is a token value, not a token name; use its name from proxy.auth.tokens');
    } else if (known.size > 0 && !known.has(name)) {
      const hint = didYouMean(name, known) || `; defined tokens: ${[...known].map((k) => `"${k}"`).join(', ')}`;
      r.add([...at, i], `unknown token name ${quotableName(name, r) ? JSON.stringify(name) : '(not shown: it may be a secret)'}${hint}`);
    }
    out.add(name);
  });
  return out;
}

/**
 * May an unknown `authTokens` entry be quoted? Quoting makes a typo ("stagng") obvious, but the
 * entry may be a pasted token value whose variable is not set where the config is checked (CI).
 * So only what can be a token name, is no longer than names usually are (generated tokens are
 * 43 characters), and occurs in no value of the config or the environment.
 */
function quotableName(name: string, r: Resolver): boolean {
  return NAME.test(name) && name.length <= MAX_QUOTED_NAME && !r.occursInValues(name);
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
export function resolveConfig(raw: unknown, env: Record<string, string | undefined> = process.env): ResolvedConfig {
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
  problems.push(...r.problems);
  if (problems.length > 0) throw new ConfigError(toConfigProblems(problems, raw));

  return {
    name: proxy.name,
    addr: proxy.addr,
    tokens: proxy.tokens,
    literalTokens: proxy.literalTokens,
    maxBodyBytes: proxy.maxBodyBytes,
    maxEventBytes: proxy.maxEventBytes,
    keepAliveMs: proxy.keepAliveMs,
    allowedOrigins: proxy.allowedOrigins,
    ...(proxy.authThrottle === undefined ? {} : { authThrottle: proxy.authThrottle }),
    servers,
  };
}

// ---------------------------------------------------------------------------------------------
// Files

/** Reads a JSON file, validates it (same rules as `mcpFront()`), and returns the config. */
export function loadConfig(path: string, env: Record<string, string | undefined> = process.env): McpFrontConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unknown error';
    throw new ConfigError([{ path: '(file)', message: `cannot read config file ${JSON.stringify(path)}: ${code}` }]);
  }
  // Editors on Windows write a BOM, which JSON.parse rejects.
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    // V8's own message quotes the text around the error, which may be a token value.
    throw new ConfigError([{ path: '(file)', message: `invalid JSON in ${JSON.stringify(path)}${describeJsonError(text)}` }]);
  }
  resolveConfig(raw, env);
  return raw as McpFrontConfig;
}

/** `" at line L, column C: reason"` for the first syntax error in `text`, found by a small scanner. */
function describeJsonError(text: string): string {
  let i = 0;
  function fail(reason: string): never {
    throw Object.assign(new Error(reason), { offset: i });
  }
  function unexpected(): never {
    if (i >= text.length) fail('unexpected end of file');
    if (text[i] === '/') fail('comments are not allowed in JSON');
    if (text[i] === "'") fail('strings must use double quotes');
    fail('unexpected character');
  }
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  };
  const string = () => {
    const start = i++;
    for (;;) {
      const c = text[i];
      if (c === undefined) {
        i = start; // the opening quote is what the reader needs to find
        fail('unterminated string');
      }
      if (c === '"') return void i++;
      if (c < ' ') fail('control character in a string (write it as an escape such as \\n)');
      if (c === '\\') {
        const e = text[i + 1];
        if (e === 'u' ? !/^[0-9A-Fa-f]{4}$/.test(text.slice(i + 2, i + 6)) : !'"\\/bfnrt'.includes(e ?? 'x')) {
          fail('invalid escape sequence in a string');
        }
        i += e === 'u' ? 6 : 2;
      } else i++;
    }
  };
  const value = (): void => {
    const c = text[i];
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']';
      i++;
      ws();
      if (text[i] === close) return void i++;
      for (;;) {
        if (close === '}') {
          if (text[i] !== '"') {
            if (text[i] === '}') fail('trailing comma before "}"');
            if (i >= text.length || text[i] === '/' || text[i] === "'") unexpected();
            fail('expected a property name in double quotes');
          }
          string();
          ws();
          if (text[i] !== ':') fail('expected ":" after a property name');
          i++;
          ws();
        } else if (text[i] === ']') fail('trailing comma before "]"');
        value();
        ws();
        if (text[i] === ',') {
          i++;
          ws();
        } else if (text[i] === close) return void i++;
        else if (i >= text.length) unexpected();
        else fail(`expected "," or "${close}"`);
      }
    }
    if (c === '"') return string();
    for (const lit of ['true', 'false', 'null']) if (text.startsWith(lit, i)) return void (i += lit.length);
    const num = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
    num.lastIndex = i;
    if ((c === '-' || (c >= '0' && c <= '9')) && num.test(text)) return void (i = num.lastIndex);
    unexpected();
  };
  try {
    ws();
    value();
    ws();
    if (i < text.length) fail('unexpected content after the end of the document');
    return '';
  } catch (err) {
    const offset = (err as { offset?: number }).offset;
    if (offset === undefined) return ''; // e.g. nesting too deep for the scanner's stack
    const before = text.slice(0, offset);
    const line = before.split('\n').length;
    const column = offset - before.lastIndexOf('\n');
    return ` at line ${line}, column ${column}: ${(err as Error).message}`;
  }
}
