// Every public type of mcp-front lives here (README: Mounting in an existing app; Configuration).
import type { Router } from 'express';

/** A reference to an environment variable, resolved when the config is loaded. */
export interface EnvRef {
  $env: string;
}

/** A string, or `{"$env": "NAME"}` read from `options.env`. */
export type StringOrEnv = string | EnvRef;

/** Milliseconds, or a string such as `"500ms"`, `"30s"`, `"5m"`, `"1h"`. */
export type Duration = number | string;

/** The upstream transport of a server; inferred when omitted. */
export type TransportType = 'stdio' | 'sse' | 'streamable-http';

export interface BearerTokenAuthConfig {
  kind: 'bearer_token';
  /**
   * Token name (used in logs and `authTokens`) → token value. At least one of `tokens` and
   * `oauth` is required.
   */
  tokens?: Record<string, StringOrEnv>;
  /** OAuth 2.1 access tokens of the user's own authorization server, beside `tokens`. Default: off. */
  oauth?: OAuthConfig;
}

/**
 * A claim's value to match (README: OAuth 2.1): a string is an exact value or a `*` pattern, a
 * list matches when any of its values does, `true`/`false`/numbers match exactly; a claim that is
 * an array matches when any of its elements does.
 */
export type ClaimMatch = string | number | boolean | (string | number | boolean)[];

/** A principal: a name in the same namespace as token names, for the tokens whose claims match. */
export interface OAuthPrincipalConfig {
  /** Claim name → what it must match; every listed claim must match. */
  claims: Record<string, ClaimMatch>;
}

/** RFC 7662 introspection of access tokens that are not JWTs. */
export interface OAuthIntrospectionConfig {
  clientId: StringOrEnv;
  clientSecret: StringOrEnv;
  /** Default: the issuer's `introspection_endpoint` (RFC 8414 / OpenID Connect discovery). */
  endpoint?: StringOrEnv;
}

/**
 * mcp-front as an OAuth 2.1 resource server (MCP specification, Authorization): access tokens of
 * `issuer` are validated and mapped to principals.
 */
export interface OAuthConfig {
  /** The authorization server's issuer identifier: `https://…` (`http://` on loopback only). Required. */
  issuer: StringOrEnv;
  /**
   * Audiences accepted for every server, beside each server's own resource URLs (for
   * authorization servers that issue one fixed audience). Default: none.
   */
  audiences?: string[];
  /** Scopes every server requires. Default: none. */
  scopes?: string[];
  /** Default: the issuer's `jwks_uri` (RFC 8414 / OpenID Connect discovery). */
  jwksUri?: StringOrEnv;
  /** Allowed JWS algorithms. Default: the asymmetric ones (RS*, PS*, ES*, EdDSA); never `none` or HMAC. */
  algorithms?: string[];
  /** Default: none (tokens that are not JWTs are refused). */
  introspection?: OAuthIntrospectionConfig;
  /** Principal name → the claims that select it; the first match in this order wins. Required. */
  principals: Record<string, OAuthPrincipalConfig>;
}

export interface CorsConfig {
  /**
   * Origins allowed to call the proxy from a browser, or `["*"]` for any.
   * Default: none configured, so only same-origin browser requests pass.
   */
  allowedOrigins: string[];
}

/**
 * Failed-authentication throttling per client IP (`req.ip`, so it honours `trust proxy`). After
 * `maxFailures` `401`s from one IP within `window`, that IP's requests get `429` with
 * `Retry-After` until the window ends, before any token is compared.
 */
export interface AuthThrottleConfig {
  /** Failed authentications (`401`s) from one IP that a window allows; a positive integer. Required, no default. */
  maxFailures: number;
  /** Length of the window, which starts at an IP's first failure. Required, no default. */
  window: Duration;
}

/**
 * Where shared counters live (the auth throttle's). Default: in the memory of each instance.
 */
export interface StoreConfig {
  /** Count in Redis, shared by every instance that uses the same server and `keyPrefix`. */
  redis: RedisStoreConfig;
}

export interface RedisStoreConfig {
  /** `redis://[user:password@]host:port[/db]` or `rediss://…` (TLS). Required, no default. */
  url: StringOrEnv;
  /** Prefix of every key, so several deployments can share one Redis. Default: `"mcp-front:"`. */
  keyPrefix?: string;
}

/**
 * Express's `trust proxy` setting for the standalone command: a hop count, `true` (trust every
 * hop), or addresses/CIDRs (an array or a comma-separated string; `loopback`, `linklocal` and
 * `uniquelocal` allowed).
 */
export type TrustProxy = number | boolean | string | string[];

export interface ProxyConfig {
  /** Shown in logs, `/health` and the `WWW-Authenticate` realm. Default: `"mcp-front"`. */
  name?: string;
  /** Listen address of the standalone command (`":8080"`, `"127.0.0.1:8080"`). Default: `":8080"`. */
  addr?: StringOrEnv;
  auth: BearerTokenAuthConfig;
  /**
   * Where the router is reachable from outside, mount path included
   * (`https://mcp.example.com/gw`): the base of every resource URL and metadata URL of OAuth
   * (RFC 9728). Required with `auth.oauth`; never derived from `Host`. Default: none.
   */
  publicUrl?: StringOrEnv;
  /** Largest accepted request body in bytes; larger → `413`. Default: 10 MiB. */
  maxBodyBytes?: number;
  /**
   * Largest event in bytes that a remote upstream may send on an event stream; larger → that
   * session ends with an error. Default: 64 MiB.
   */
  maxEventBytes?: number;
  /**
   * Most messages in one JSON-RPC batch; a larger batch is answered `400` before any of it is
   * decided or forwarded. Default: 1000.
   */
  maxBatch?: number;
  /** Interval of keep-alive comments on idle SSE streams. Default: `"15s"`. */
  keepAlive?: Duration;
  /** Browser access. Default: same-origin only. */
  cors?: CorsConfig;
  /** `429` for client IPs with too many failed authentications. Default: off. */
  authThrottle?: AuthThrottleConfig;
  /**
   * Name of this instance among several: 1–32 of `A-Z a-z 0-9 _ -`. Shown in authenticated
   * `/health`. Default: none (the standalone command uses `$HOSTNAME`).
   */
  instanceId?: StringOrEnv;
  /** Standalone command only: Express's `trust proxy` setting, for clients behind a load balancer. Default: `false`. */
  trustProxy?: TrustProxy;
  /** Where the auth throttle counts. Default: in memory, per instance. */
  store?: StoreConfig;
  /**
   * Standalone command: on SIGTERM/SIGINT, how long requests in flight may take to finish
   * before everything is closed. Default: `"30s"`.
   */
  drainTimeout?: Duration;
  /**
   * One `mcp request` log line per JSON-RPC request once it is answered (README: Monitoring).
   * Default: `true`.
   */
  audit?: boolean;
  /**
   * Standalone command only: serve Prometheus metrics at `GET /metrics`, for the tokens listed
   * (`{}`: open to anyone who can reach the port). Default: off.
   */
  metrics?: MetricsEndpointConfig;
  /**
   * Limits per token, keyed by token name or `"*"` (every token without its own entry); each
   * field falls back on its own to the `"*"` entry. Default: no limits.
   */
  limits?: Record<string, TokenLimits>;
}

export interface MetricsEndpointConfig {
  /** Token names allowed to scrape `/metrics`. Default: no token needed. */
  authTokens?: string[];
}

/** What one token may use of the proxy (README: Limits per token). */
export interface TokenLimits {
  /** JSON-RPC requests (notifications and responses not counted) per window; beyond → `429`. Default: unlimited. */
  requests?: { max: number; window: Duration };
  /** Live sessions across every server of this instance; beyond → `429`. Default: unlimited. */
  maxSessions?: number;
}

/**
 * What one token may use on a server (README: Permissions per token): pattern lists matched
 * exactly and case-sensitively, where `*` matches any run of characters. An omitted kind is
 * unrestricted; an empty list allows nothing.
 */
export interface ServerPermissions {
  /** Tool names. Default: every tool. */
  tools?: string[];
  /** Prompt names. Default: every prompt. */
  prompts?: string[];
  /** Resource URIs and URI templates (as literal text). Default: every resource. */
  resources?: string[];
}

export interface ServerConfig {
  /** Remote server URL (`…/sse` → legacy SSE, anything else → Streamable HTTP). */
  url?: StringOrEnv;
  /** Command of a local stdio server, spawned without a shell. */
  command?: StringOrEnv;
  /** Arguments of `command`. Default: `[]`. */
  args?: StringOrEnv[];
  /** Extra environment of `command`, on top of a minimal allowlist. Default: `{}`. */
  env?: Record<string, StringOrEnv>;
  /** Working directory of `command`. Default: the proxy's. */
  cwd?: StringOrEnv;
  /** Headers sent to a remote upstream. Default: `{}`. */
  headers?: Record<string, StringOrEnv>;
  /** Upstream transport. Default: inferred from `command` / `url`. */
  transportType?: TransportType;
  /** Token names allowed on this server. Default: every configured token. */
  authTokens?: string[];
  /** Time for the upstream to start answering a request; exceeded → `504`. Default: `"60s"`. */
  timeout?: Duration;
  /** Stdio only: a session with no request and no open stream for this long ends. Default: `"30m"`. */
  idleTimeout?: Duration;
  /** Stdio only: concurrent sessions (child processes); beyond → `503`. Default: `100`. */
  maxSessions?: number;
  /**
   * Narrows what each token may use here, keyed by token name (from `authTokens`) or `"*"` (every
   * other token). Default: no restriction.
   */
  permissions?: Record<string, ServerPermissions>;
  /** OAuth scopes this server requires, beside `proxy.auth.oauth.scopes`. Default: none. */
  requiredScopes?: string[];
}

/** One member of an aggregate (README: Aggregates). */
export interface AggregateMemberConfig {
  /**
   * What the member's tools and prompts (`<prefix><separator><name>`) and resource URIs
   * (`<prefix>+<uri>`) start with: `^[a-z][a-z0-9-]{0,15}$`. Default: the server's name, which
   * must then match.
   */
  prefix?: string;
}

/** Several configured servers served as one (README: Aggregates). */
export interface AggregateConfig {
  /** Member servers, in the order their lists are merged; an object gives each its options. */
  servers: string[] | Record<string, AggregateMemberConfig>;
  /** Token names that may open the aggregate. Default: every token allowed on at least one member. */
  authTokens?: string[];
  /** Between a member's prefix and a tool or prompt name. Default: `"__"`. */
  separator?: '__' | '-' | '--' | '_';
  /** A member that cannot be reached: left out (`"omit"`), or `initialize` fails (`"fail"`). Default: `"omit"`. */
  onUnavailable?: 'omit' | 'fail';
}

/** The configuration document (the MCP Front bearer-token format). */
export interface McpFrontConfig {
  version?: string;
  proxy: ProxyConfig;
  mcpServers: Record<string, ServerConfig>;
  /** Several servers behind one endpoint, named like servers (README: Aggregates). Default: none. */
  aggregates?: Record<string, AggregateConfig>;
}

/** Structured fields of a log event. Never holds a token value. */
export type LogFields = Record<string, string | number | boolean | undefined | null>;

/** pino, winston, console or anything with these four methods. */
export interface Logger {
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  debug(message: string, fields?: LogFields): void;
}

export interface McpFrontOptions {
  /** Where `{"$env": "NAME"}` is looked up. Default: `process.env`. */
  env?: Record<string, string | undefined>;
  /** Receives one call per event. Default: one line per event on stderr. */
  logger?: Logger;
  /**
   * Where the auth throttle counts; overrides `proxy.store`. The caller owns it: `close()` does
   * not close it. Default: `proxy.store`, else in memory.
   */
  store?: CounterStore;
  /** Name of this instance; overrides `proxy.instanceId`. Default: `proxy.instanceId`. */
  instanceId?: string;
  /**
   * A `prom-client` `Registry` to register the `mcp_front_*` metrics in (README: Monitoring);
   * `prom-client` is loaded only when this is given. Default: no metrics.
   */
  metrics?: MetricsRegistry;
}

/** The part of a `prom-client` `Registry` used here (typed here: prom-client is an optional peer dependency). */
export interface MetricsRegistry {
  getSingleMetric(name: string): unknown;
  registerMetric(metric: never): void;
  metrics(): Promise<string>;
  readonly contentType: string;
}

/** A counter's current fixed window. */
export interface CounterWindow {
  /** Hits in the window, this one included. */
  count: number;
  /**
   * Milliseconds until the window ends. Relative, not a date: instances and Redis do not share a
   * clock, and Redis reports what is left of a key's life (`PTTL`).
   */
  resetInMs: number;
}

/**
 * Fixed-window counters shared by whatever uses one store (in the style of express-rate-limit's
 * `Store`). A window starts at a key's first hit and lasts `windowMs`.
 */
export interface CounterStore {
  /** Counts one hit of `key`, starting a window when there is none; atomic per key. */
  increment(key: string, windowMs: number): Promise<CounterWindow>;
  /** The current window of `key`, or `undefined` when it has none; counts nothing. */
  get(key: string): Promise<CounterWindow | undefined>;
  /** Releases connections and timers. */
  close?(): Promise<void>;
}

export interface MemoryStoreOptions {
  /**
   * Most keys kept at once; beyond, the oldest window is forgotten. Bounds memory against an
   * attacker rotating keys (client addresses). Default: 10,000.
   */
  maxEntries?: number;
  /** Clock in ms, injectable for tests. Default: `performance.now()`, monotonic so that a wall-clock step cannot lengthen or end a window. */
  now?: () => number;
}

/** The part of an ioredis client that `RedisStore` uses (typed here: ioredis is an optional peer dependency). */
export interface RedisClient {
  readonly status: string;
  eval(script: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
  on(event: 'ready', listener: () => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  removeListener(event: 'ready', listener: () => void): unknown;
  removeListener(event: 'error', listener: (err: Error) => void): unknown;
  quit(): Promise<unknown>;
  disconnect(): void;
}

export interface RedisStoreOptions {
  /** `redis://…` or `rediss://…`; ignored when `client` is given. */
  url?: string;
  /**
   * An ioredis client to use instead of one made from `url`; the caller closes it. Create it with
   * `enableOfflineQueue: false` and a `commandTimeout`, so that calls fail fast while Redis is away.
   */
  client?: RedisClient;
  /** Default: `"mcp-front:"`. */
  keyPrefix?: string;
  /** Bound of every Redis call in ms. Default: 500. */
  timeoutMs?: number;
  /** Where the one WARN of an outage and the INFO of the recovery go. Required. */
  logger: Logger;
}

/** One problem found in a configuration. */
export interface ConfigProblem {
  /** JSON path, e.g. `mcpServers.database.authTokens[1]`. */
  path: string;
  message: string;
}

/** The Express router returned by `mcpFront()`. */
export interface McpFrontRouter extends Router {
  /** Validate and swap the configuration; rejects with `ConfigError` and keeps the old one. */
  reload(config: McpFrontConfig): Promise<void>;
  /** End every session and stop every spawned process; resolves when they are gone. */
  close(): Promise<void>;
  /**
   * Graceful stop: refuse new sessions at once (`503` with `Retry-After`; `/health` answers `503`
   * `"status":"draining"`) while the requests of live sessions are still served, wait up to
   * `timeoutMs` for requests in flight (open streams included) to finish, then `close()`.
   * Default `timeoutMs`: `proxy.drainTimeout`.
   */
  drain(timeoutMs?: number): Promise<void>;
  /**
   * The OAuth Protected Resource Metadata of every server at the location RFC 9728 §3.1 derives
   * from its resource URL, which is at the host's root (outside any mount path): mount it there,
   * `app.use(router.wellKnown)`. It answers nothing without `proxy.auth.oauth`. The router also
   * serves the same documents under its own mount path, which its `401` challenges point to.
   */
  wellKnown: Router;
}
