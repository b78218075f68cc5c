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
  /** Token name (used in logs and `authTokens`) → token value. */
  tokens: Record<string, StringOrEnv>;
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

export interface ProxyConfig {
  /** Shown in logs, `/health` and the `WWW-Authenticate` realm. Default: `"mcp-front"`. */
  name?: string;
  /** Listen address of the standalone command (`":8080"`, `"127.0.0.1:8080"`). Default: `":8080"`. */
  addr?: string;
  auth: BearerTokenAuthConfig;
  /** Largest accepted request body in bytes; larger → `413`. Default: 10 MiB. */
  maxBodyBytes?: number;
  /**
   * Largest event in bytes that a remote upstream may send on an event stream; larger → that
   * session ends with an error. Default: 64 MiB.
   */
  maxEventBytes?: number;
  /** Interval of keep-alive comments on idle SSE streams. Default: `"15s"`. */
  keepAlive?: Duration;
  /** Browser access. Default: same-origin only. */
  cors?: CorsConfig;
  /** `429` for client IPs with too many failed authentications. Default: off. */
  authThrottle?: AuthThrottleConfig;
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
}

/** The configuration document (the MCP Front bearer-token format). */
export interface McpFrontConfig {
  version?: string;
  proxy: ProxyConfig;
  mcpServers: Record<string, ServerConfig>;
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
}
