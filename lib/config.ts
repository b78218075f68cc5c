// Validation and resolution of the configuration (CONTRACT §3). Everything here runs once, in
// the factory or in reload(), never per request.
import type { McpFrontConfig } from './types';

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
  keepAliveMs: number;
  /** `'*'`, a set of origins, or `undefined` (same-origin only). */
  allowedOrigins: '*' | ReadonlySet<string> | undefined;
  servers: ReadonlyMap<string, ResolvedServer>;
}

export const DEFAULTS = {
  name: 'mcp-front',
  addr: ':8080',
  maxBodyBytes: 10 * 1024 * 1024,
  keepAliveMs: 15_000,
  timeoutMs: 60_000,
  idleTimeoutMs: 30 * 60_000,
  maxSessions: 100,
} as const;

/** Validates and resolves a configuration; throws `ConfigError` listing every problem. */
export function resolveConfig(raw: unknown, env: Record<string, string | undefined> = process.env): ResolvedConfig {
  void raw;
  void env;
  throw new Error('not implemented');
}

/** Reads a JSON file, validates it (same rules as `mcpFront()`), and returns the config. */
export function loadConfig(path: string, env: Record<string, string | undefined> = process.env): McpFrontConfig {
  void path;
  void env;
  throw new Error('not implemented');
}

/** `"500ms"`, `"30s"`, `"5m"`, `"1h"` or a number of ms → ms; `undefined` when invalid. */
export function parseDuration(value: unknown): number | undefined {
  void value;
  throw new Error('not implemented');
}
