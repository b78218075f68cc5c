// How one server's bridged sessions behave (front-sessions.ts serves them, front-session.ts is
// each of them): its limits, its server side, its stateless route.
import type { ServerResponse } from 'node:http';
import type { Channel } from './channel';
import type { Classification } from '../wire/revisions';
import type { Exchange } from '../pipeline/hooks';
import type { ProxySettings, RequestContext } from '../transport';
import type { UpstreamKind } from '../sessions/registry';

/**
 * Serves stateless 2026-07-28 requests (a POST without a session that carries its version in
 * `params._meta`): the stdio server kind provides one; the bridge only hands them over.
 */
export interface StatelessRequests {
  handle(res: ServerResponse, ctx: RequestContext, classified: Extract<Classification, { kind: 'modern' }>, flight: Exchange | undefined): Promise<void>;
}

/** How one server's bridged sessions behave: its limits, its server side, its stateless route. */
export interface FrontOptions {
  /** Name of the server, as configured. */
  server: string;
  /** Time for the server side to start answering a request (`timeout`); exceeded → `504`. */
  timeoutMs: number;
  /** A session without requests or open stream for this long ends. */
  idleTimeoutMs: number;
  /** Concurrent sessions; beyond → `503` with `Retry-After`. */
  maxSessions: number;
  /** How client-facing messages and log events name the server side. */
  noun: 'stdio server' | 'upstream' | 'aggregate';
  /** What the channels reach, for the session events and the pipeline's hooks. */
  upstream: UpstreamKind;
  /** Prefix of the session fault events: `stdio` → `stdio session failed`. */
  logPrefix: string;
  /** A new, unopened channel for a session of `token`, under the proxy settings of its first request (`ctx`). */
  newChannel(token: string, proxy: ProxySettings, ctx: RequestContext): Channel;
  /** Serves stateless 2026-07-28 requests; without it they get `-32022` naming `legacyVersions`. */
  stateless?: StatelessRequests;
  /** The protocol versions the server side speaks, for that `-32022`. Default: the 2025 era's. */
  legacyVersions?: string[];
}
