// The configuration after resolution (README: Configuration): durations in milliseconds, `$env`
// references replaced by their values, each server's transport decided. The rest of lib/ reads only these.

/** A server, normalized: durations in ms, `$env` resolved, transport decided. */
interface ResolvedServerBase {
  name: string;
  /** Token names allowed on this server (every configured token when `authTokens` is omitted). */
  authTokens: ReadonlySet<string>;
  timeoutMs: number;
  /** Token name or `"*"` → what it may use; absent when the server restricts nobody. */
  permissions?: ReadonlyMap<string, ResolvedPermissions>;
  /** OAuth scopes an access token needs here: `oauth.scopes` and the server's `requiredScopes`, deduplicated, in that order. Empty without OAuth. */
  scopes: readonly string[];
}

/** How one claim is matched: compiled once per config (README: OAuth 2.1). */
export type ResolvedClaimMatch = { kind: 'exact'; value: string | number | boolean } | { kind: 'pattern'; pattern: string };

/** A principal: its name (in the token namespace) and every claim that must match. */
export interface ResolvedPrincipal {
  name: string;
  /** Claim name → the alternatives, any of which matches. */
  claims: ReadonlyMap<string, readonly ResolvedClaimMatch[]>;
}

/** `proxy.auth.oauth`, resolved. */
export interface ResolvedOAuth {
  issuer: string;
  audiences: readonly string[];
  scopes: readonly string[];
  jwksUri?: string;
  algorithms: readonly string[];
  introspection?: { clientId: string; clientSecret: string; endpoint?: string };
  /** In the order given: the first match wins. */
  principals: readonly ResolvedPrincipal[];
}

/** One entry of `permissions`: a kind left out (`undefined`) is unrestricted. */
export interface ResolvedPermissions {
  tools?: readonly string[];
  prompts?: readonly string[];
  resources?: readonly string[];
}

/** One entry of `proxy.limits`, fields as configured (the `"*"` fallback is per field). */
export interface ResolvedLimits {
  requests?: { max: number; windowMs: number };
  maxSessions?: number;
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

/** A member of an aggregate: a configured server and its prefix. */
export interface ResolvedMember {
  server: string;
  prefix: string;
}

/** An aggregate (README: Aggregates), resolved: it is served on the routes of a server of its name. */
export interface ResolvedAggregate {
  name: string;
  /** In the configured order, which is the order of merged lists. */
  members: readonly ResolvedMember[];
  separator: '__' | '-' | '--' | '_';
  onUnavailable: 'omit' | 'fail';
  /** Token names that may open it: `authTokens`, else every token allowed on at least one member. */
  authTokens: ReadonlySet<string>;
  /** OAuth scopes an access token needs to open it: `oauth.scopes` and every member's `requiredScopes`, deduplicated. Empty without OAuth. */
  scopes: readonly string[];
}

export interface ResolvedConfig {
  name: string;
  addr: string;
  /** Token name → token value. */
  tokens: ReadonlyMap<string, string>;
  /** OAuth access tokens beside the static ones; absent when off. */
  oauth?: ResolvedOAuth;
  /**
   * `proxy.publicUrl` without a trailing slash (`https://mcp.example.com/gw`); required with
   * `oauth`, absent otherwise unless configured.
   */
  publicUrl?: string;
  /** Names of tokens whose value is written literally in the config (not `$env`). */
  literalTokens: ReadonlySet<string>;
  maxBodyBytes: number;
  maxEventBytes: number;
  /** Most messages in one JSON-RPC batch. */
  maxBatch: number;
  keepAliveMs: number;
  /** `'*'`, a set of origins, or `undefined` (same-origin only). */
  allowedOrigins: '*' | ReadonlySet<string> | undefined;
  /** Failed-authentication throttling; absent when off (the default). */
  authThrottle?: { maxFailures: number; windowMs: number };
  servers: ReadonlyMap<string, ResolvedServer>;
  /** Aggregates by name (none: an empty map); their names never clash with servers'. */
  aggregates: ReadonlyMap<string, ResolvedAggregate>;
  /** This instance's name among several (`proxy.instanceId` or `options.instanceId`); absent when none. */
  instanceId?: string;
  /** Express's `trust proxy` value for the standalone command; `false` by default. */
  trustProxy: boolean | number | string[];
  /** Shared counters in Redis; absent: in memory. */
  store?: { redis: { url: string; keyPrefix: string } };
  drainTimeoutMs: number;
  /** The `mcp request` line per JSON-RPC request. */
  audit: boolean;
  /** `GET /metrics` of the standalone command: absent when off; `authTokens` absent when open. */
  metrics?: { authTokens?: ReadonlySet<string> };
  /** Token name or `"*"` → its limits; absent when there are none. */
  limits?: ReadonlyMap<string, ResolvedLimits>;
}

/** The JWS algorithms allowed by default: asymmetric only (never `none`, never HMAC). */
export const DEFAULT_OAUTH_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;

export const DEFAULTS = {
  name: 'mcp-front',
  addr: ':8080',
  maxBodyBytes: 10 * 1024 * 1024,
  maxEventBytes: 64 * 1024 * 1024,
  maxBatch: 1000,
  keepAliveMs: 15_000,
  timeoutMs: 60_000,
  idleTimeoutMs: 30 * 60_000,
  maxSessions: 100,
  drainTimeoutMs: 30_000,
  keyPrefix: 'mcp-front:',
  audit: true,
} as const;
