// The client side of a bridged server: legacy HTTP+SSE sessions (`GET /sse` + `POST /message`)
// and Streamable HTTP sessions (`POST|GET|DELETE /mcp`), each over one channel to the server side
// (channel.ts): a stdio child, or a remote session of the *other* HTTP transport. This is what
// makes every server reachable on both routes (README: Routes).
//
// The front is a relay, not an MCP implementation: the client's own `initialize` reaches the
// server and every message passes verbatim, so no state, JSON-RPC id or notification can cross
// between clients. It parses server messages only to route them.
import type { ServerResponse } from 'node:http';
import type { Request, Response } from 'express';
import { isRequest } from '../wire/body';
import { HttpError, JsonRpcCode, sendHttpError, sendJsonRpcError, sessionsExhausted, shuttingDown } from '../wire/errors';
import { classifyPost, LEGACY_VERSIONS, UNSUPPORTED_VERSION } from '../wire/revisions';
import { readInbound } from '../pipeline/inbound';
import { InFlight, protocolVersionHeader } from '../pipeline/pipeline';
import { answeredLocally, answeredWhole } from '../pipeline/answers';
import type { ExchangeBase } from '../pipeline/hooks';
import { querySessionId, type RequestContext, type TransportDeps } from '../transport';
import type { SessionKind } from '../sessions/registry';
import { FrontSession, gone, replyWithError, sessionNotFound } from './front-session';
import type { FrontOptions } from './front-options';
import { SseFrontSession } from './sse-front-session';
import { StreamableFrontSession } from './streamable-front-session';

export type { FrontOptions, StatelessRequests } from './front-options';

/** Both client transports over channels, for one server. */
export class FrontSessions {
  private closed = false;

  constructor(
    readonly options: FrontOptions,
    readonly deps: TransportDeps,
  ) {}

  handleSse(req: Request, res: Response, ctx: RequestContext): void {
    this.openSse(req, res, ctx).catch((err) => replyWithError(res, err));
  }

  handleMessage(req: Request, res: Response, ctx: RequestContext): void {
    this.postMessage(req, res, ctx).catch((err) => replyWithError(res, err));
  }

  handleMcp(req: Request, res: Response, ctx: RequestContext): void {
    this.mcp(req, res, ctx).catch((err) => replyWithError(res, err));
  }

  /** Ends every session; resolves when every server side is gone. */
  async close(): Promise<void> {
    this.closed = true;
    await this.deps.sessions.closeOwned(this, 'server closed');
  }

  /** This token's started session `id` of this transport, or `undefined` (a `404`). */
  private find(kind: SessionKind, id: string, identity: string): FrontSession | undefined {
    const handle = this.deps.sessions.find(this.options.server, kind, id, identity);
    return handle?.owner === this ? (handle.subject as FrontSession) : undefined;
  }

  // --- legacy HTTP+SSE (MCP 2024-11-05 §Transports) -------------------------------------------

  private async openSse(req: Request, res: Response, ctx: RequestContext): Promise<void> {
    const session = new SseFrontSession(this, ctx);
    await this.start(session, res, undefined, () => session.attach(req, res, ctx));
  }

  private async postMessage(req: Request, res: Response, ctx: RequestContext): Promise<void> {
    const id = querySessionId(req);
    if (id === undefined) throw new HttpError(400, JsonRpcCode.InvalidRequest, 'Bad Request: sessionId query parameter is required');
    const found = this.find('sse', id, ctx.identity);
    if (!(found instanceof SseFrontSession) || found.ending) throw sessionNotFound(req);
    const inbound = await readInbound(req, ctx.proxy);
    const { messages } = inbound;
    if (found.ending) throw sessionNotFound(req);
    const admission = await this.deps.pipeline.admit(this.exchangeBase(ctx, found.id, 'sse', undefined), inbound, found.inFlight);
    if (answeredWhole(res, admission)) return;
    if (found.ending) throw sessionNotFound(req);
    try {
      await found.post(admission);
    } catch (err) {
      return replyWithError(res, err, messages.length === 1 ? messages[0].id : undefined);
    }
    res.writeHead(202, { 'Content-Type': 'text/plain; charset=utf-8' }).end('Accepted');
  }

  // --- Streamable HTTP (MCP 2025-06-18 / 2025-11-25 §Transports) ------------------------------

  private async mcp(req: Request, res: Response, ctx: RequestContext): Promise<void> {
    const header = req.headers['mcp-session-id'];
    const id = typeof header === 'string' && header !== '' ? header : undefined;

    if (id === undefined) {
      if (req.method !== 'POST') {
        throw new HttpError(400, JsonRpcCode.InvalidRequest, 'Bad Request: Mcp-Session-Id header is required');
      }
      const inbound = await readInbound(req, ctx.proxy);
      const { messages } = inbound;
      // A POST without a session may be a stateless 2026-07-28 request (MCP 2026-07-28, docs/protocol-2026-07-28.md).
      let classified;
      try {
        classified = classifyPost(req, messages, inbound.isBatch);
      } catch (err) {
        return replyWithError(res, err, messages.length === 1 ? messages[0].id : undefined);
      }
      if (classified.kind === 'modern') {
        if (this.options.stateless) {
          const admission = await this.deps.pipeline.admit(this.exchangeBase(ctx, undefined, 'stateless', classified.version), inbound, this.requestFlight(ctx));
          if (answeredWhole(res, admission) || answeredLocally(res, admission)) return;
          return this.options.stateless.handle(res, ctx, classified, admission.exchanges[0]);
        }
        const { id } = classified.message;
        return sendJsonRpcError(res, 400, UNSUPPORTED_VERSION, `Unsupported protocol version: ${classified.version} (${this.options.noun} of "${this.options.server}" speaks 2025-era MCP only: initialize a session)`, {
          id,
          data: { supported: this.options.legacyVersions ?? LEGACY_VERSIONS, requested: classified.version },
        });
      }
      if (!messages.some((m) => m.method === 'initialize')) {
        throw new HttpError(400, JsonRpcCode.InvalidRequest, 'Bad Request: Mcp-Session-Id header is required');
      }
      // The spec's initialization request stands alone (2025-06-18 §Lifecycle); a batch mixing it
      // with other messages would reach a server that is not initialized yet.
      if (messages.length !== 1 || !isRequest(messages[0])) {
        throw new HttpError(400, JsonRpcCode.InvalidRequest, 'Bad Request: initialize must be sent alone');
      }
      // Decided before a server side is started for it: a refused initialize starts nothing.
      const flight = this.requestFlight(ctx);
      const admission = await this.deps.pipeline.admit(this.exchangeBase(ctx, undefined, 'streamable', protocolVersionHeader(req.headers)), inbound, flight);
      if (answeredWhole(res, admission) || answeredLocally(res, admission)) return;
      const session = new StreamableFrontSession(this, ctx, flight);
      await this.start(session, res, messages[0].id, () => {
        res.setHeader('Mcp-Session-Id', session.id);
        session.post(req, res, ctx, inbound, admission, true);
      });
      return;
    }

    const found = this.find('streamable', id, ctx.identity);
    if (!(found instanceof StreamableFrontSession) || found.ending) throw sessionNotFound(req);
    if (req.method === 'GET') return found.openGetStream(req, res, ctx);
    if (req.method === 'DELETE') {
      // The session is unusable from here on; the server side's end (grace periods, the upstream's
      // DELETE) is not waited for.
      void found.close('client ended the session (DELETE)');
      res.writeHead(204).end();
      return;
    }
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST, GET, DELETE');
      throw new HttpError(405, JsonRpcCode.ServerError, 'Method Not Allowed');
    }
    found.touch(res);
    const inbound = await readInbound(req, ctx.proxy);
    // The server side may have ended while the body was arriving.
    if (found.ending) throw sessionNotFound(req);
    const admission = await this.deps.pipeline.admit(this.exchangeBase(ctx, found.id, 'streamable', protocolVersionHeader(req.headers)), inbound, found.inFlight);
    if (answeredWhole(res, admission)) return;
    if (found.ending) throw sessionNotFound(req);
    found.post(req, res, ctx, inbound, admission, false);
  }

  /** The requests of one HTTP request without a session: where its ids are reserved. */
  private requestFlight(ctx: RequestContext): InFlight {
    return new InFlight(this.deps.pipeline, { server: this.options.server, token: ctx.token });
  }

  private exchangeBase(ctx: RequestContext, sessionId: string | undefined, route: ExchangeBase['route'], protocolVersion: string | undefined): ExchangeBase {
    return { server: this.options.server, token: ctx.token, subject: ctx.subject, sessionId, route, upstream: this.options.upstream, protocolVersion };
  }

  // --- common -----------------------------------------------------------------------------------

  /**
   * Opens the session's channel, waits until it is ready, registers the session and calls
   * `begin` (which tells the client) in the same tick. Otherwise the answer is sent here: at the
   * limit (`503`), closed, token revoked meanwhile, or the server side could not be reached
   * (`502`/`504`, at once — never a hang). `requestId` is the id of the `initialize` that opens
   * it, if any.
   */
  private async start(session: FrontSession, res: ServerResponse, requestId: unknown, begin: () => void): Promise<void> {
    const { options } = this;
    const { sessions } = this.deps;
    if (this.closed) {
      sendHttpError(res, shuttingDown(options.server), requestId);
      return;
    }
    // The token's own limit across servers first: it must not evict another token's session.
    const refused = sessions.refusal(session.token, options.server);
    if (refused) {
      sendHttpError(res, refused, requestId);
      return;
    }
    let evicted: FrontSession | undefined;
    if (sessions.countOf(this) >= options.maxSessions) {
      evicted = sessions.evictionFor(this, session.token)?.subject as FrontSession | undefined;
      if (!evicted) {
        this.deps.logger.warn('sessions exhausted', { server: options.server, token: session.token, max_sessions: options.maxSessions });
        sendHttpError(res, sessionsExhausted(options.server, options.maxSessions), requestId);
        return;
      }
      this.deps.logger.warn('session evicted', {
        server: options.server,
        token: evicted.token,
        for_token: session.token,
        max_sessions: options.maxSessions,
      });
    }
    session.handle = sessions.open({
      server: options.server,
      kind: session.kind,
      upstream: options.upstream,
      token: session.token,
      identity: session.identity,
      owner: this,
      subject: session,
      idleTimeoutMs: options.idleTimeoutMs,
      fields: () => session.channel.logFields,
      teardown: (reason) => session.teardown(reason),
    });
    // The session carries its token from the first byte: a revocation while its server side is
    // starting ends it and answers the client, instead of letting it start a moment later.
    const untrack = sessions.track({
      server: options.server,
      token: session.token,
      abort: (reason, error) => {
        if (!res.headersSent) sendHttpError(res, error, requestId);
        void session.close(reason);
      },
    });
    try {
      // The evicted session's server side is gone before this one starts: `maxSessions` bounds processes.
      if (evicted) await evicted.close(`evicted: server at its maximum of ${options.maxSessions} sessions`);
      await session.open();
    } catch (err) {
      untrack();
      void session.close(`server side unavailable (${(err as Error).message})`);
      replyWithError(res, err, requestId);
      return;
    }
    untrack();
    if (session.ending || gone(res)) {
      void session.close('client went away before the server started');
      if (!res.writableEnded) sendHttpError(res, shuttingDown(options.server), requestId);
      return;
    }
    session.handle.start();
    begin();
  }
}

