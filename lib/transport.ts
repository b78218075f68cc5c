// The seam between the router and the servers: after authentication, server lookup and
// authorization, each request is handed to its server's transport, which owns everything after.
import type { Request, Response } from 'express';
import type { ResolvedServer } from './config';
import type { Pipeline } from './pipeline/pipeline';
import type { SessionRegistry } from './sessions/registry';
import type { Logger } from './types';

/** Proxy-wide settings a transport needs per request (they may change on reload). */
export interface ProxySettings {
  name: string;
  maxBodyBytes: number;
  /** Largest event of an upstream event stream, in bytes. */
  maxEventBytes: number;
  /** Most messages in one JSON-RPC batch (README: Configuration). */
  maxBatch: number;
  keepAliveMs: number;
}

export interface RequestContext {
  /** Name of the authenticated token, or of the OAuth principal its access token matched. */
  token: string;
  /**
   * Whose sessions it may use: the token's name, or — for an OAuth access token — its principal
   * and user (`iss` and `sub`), so that another user of the same principal gets `404` for them and
   * a refreshed token of the same user keeps them (README: OAuth 2.1).
   */
  identity: string;
  /** The OAuth user (`sub`), for log lines; absent for static tokens. */
  subject?: string;
  proxy: ProxySettings;
}

export interface TransportDeps {
  sessions: SessionRegistry;
  logger: Logger;
  /** Every request and answer of every route passes it. */
  pipeline: Pipeline;
}

/** What serves the routes of one name: a server's transport, or an aggregate's (README: Aggregates). */
export interface RouteHandler {
  /** `GET /:server/sse`: opens a legacy SSE session. */
  handleSse(req: Request, res: Response, ctx: RequestContext): void;
  /** `POST /:server/message?sessionId=…`: a message of a legacy SSE session. */
  handleMessage(req: Request, res: Response, ctx: RequestContext): void;
  /** `POST|GET|DELETE /:server/mcp`: Streamable HTTP. */
  handleMcp(req: Request, res: Response, ctx: RequestContext): void;
  /** Ends every session of this server and stops its processes; resolves when they are gone. */
  close(): Promise<void>;
}

export interface ServerTransport extends RouteHandler {
  readonly server: ResolvedServer;
}

/**
 * The message route a legacy SSE client is told to post to: this proxy's own, under the mount
 * path (`req.baseUrl`), never the upstream's (README: Routes).
 */
export function messageEndpoint(req: Request, serverName: string, sessionId: string): string {
  return `${req.baseUrl}/${encodeURIComponent(serverName)}/message?sessionId=${encodeURIComponent(sessionId)}`;
}

/** The session id of a legacy message POST (`?sessionId=`), or undefined. */
export function querySessionId(req: Request): string | undefined {
  const url = req.originalUrl ?? req.url;
  const q = url.indexOf('?');
  if (q === -1) return undefined;
  return new URLSearchParams(url.slice(q + 1)).get('sessionId') ?? undefined;
}
