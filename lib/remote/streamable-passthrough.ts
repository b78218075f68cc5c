// Remote Streamable HTTP upstreams: `POST|GET|DELETE /:server/mcp` passed through one
// `node:http` request per exchange on a keep-alive agent, with each upstream session bound to the
// token that opened it (README: Routes; Security model). Legacy SSE clients (`/:server/sse`, `/:server/message`) are bridged:
// front-sessions.ts over channel-streamable.ts. Legacy SSE upstreams are handled by remote-sse.ts.
import type { ClientRequest, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { remoteBridge } from './remote-bridge';
import type { Request, Response } from 'express';
import { readBodyOrReply } from '../wire/body';
import { readInboundOrReply } from '../pipeline/inbound';
import type { FailureOutcome, JsonRpcId, UpstreamErrorInfo } from '../pipeline/hooks';
import { InFlight, protocolVersionHeader, type Refusal } from '../pipeline/pipeline';
import { answeredLocally, answeredWhole, corkPerTurn, flushUnlessData, relayJsonAnswer, relaySseAnswer } from '../pipeline/answers';
import type { JsonRpcMessage } from '../wire/body';
import { deleteUpstreamSession, StreamableUpstreamChannel } from './streamable-channel';
import type { RemoteServer } from '../config';
import { HttpError, internalError, JsonRpcCode, sendHttpError, sendHttpErrorDraining, sendJsonRpcError, sessionGone, shuttingDown } from '../wire/errors';
import type { FrontSessions } from '../bridge/front-sessions';
import { debug, logFault } from '../logger';
import { createRemoteSseTransport } from './sse-passthrough';
import { PassthroughSession, type Exchange } from './passthrough-session';
import type { RequestContext, ServerTransport, TransportDeps } from '../transport';
import { clientResponseHeaders, headerOf, isEventStream, isForwardedRequestHeader, upstreamRequester, type UpstreamRequestOptions } from './upstream-agent';
import {
  CREDENTIALS_REJECTED,
  UpstreamTimeoutError,
  rejectsProxyCredentials,
  sendBadUpstreamAnswer,
  sendUpstreamError,
} from './upstream-errors';

const log = debug.extend('remote');

/** A remote server's transport: Streamable HTTP passthrough, or the legacy SSE relay. */
export function createRemoteTransport(server: RemoteServer, deps: TransportDeps): ServerTransport {
  return server.transport === 'sse' ? createRemoteSseTransport(server, deps) : new StreamableProxy(server, deps);
}

class StreamableProxy implements ServerTransport {
  /** Every exchange in flight, with or without a session, so close() can end them. */
  private readonly live = new Set<Exchange>();
  private closed = false;
  /** Live passthrough sessions by the upstream's id: one upstream session, one session of ours. */
  private readonly byUpstreamId = new Map<string, PassthroughSession>();
  /** Legacy SSE clients, each with its own upstream Streamable HTTP session. */
  private readonly bridge: FrontSessions;
  /** Where every exchange goes: the configured URL itself, path and query included. */
  private readonly request: (options: UpstreamRequestOptions) => ClientRequest;
  /** The server's configured `headers`, lower-cased so that they replace a client's header of the same name. */
  private readonly serverHeaders: [string, string][];

  /** Upstream failures go to the pipeline, which logs them. */
  private readonly report = (info: UpstreamErrorInfo) => this.deps.pipeline.upstreamError(info);

  constructor(
    readonly server: RemoteServer,
    private readonly deps: TransportDeps,
  ) {
    this.bridge = remoteBridge(server, deps, 'streamable-http', (maxEventBytes, report) => new StreamableUpstreamChannel(server, deps.logger, maxEventBytes, report));
    // Built once per server (helmet style: precompute in the factory, not per request). A plain
    // `node:http` request rather than a proxy library: the headers are chosen by allowlist, the
    // body is already read, and the answer is relayed by hand, so a library's per-request option
    // merging and URL parsing bought nothing (bench/README.md).
    this.request = upstreamRequester(server.url);
    this.serverHeaders = Object.entries(server.headers).map(([name, value]) => [name.toLowerCase(), value]);
    log('%s: streamable-http proxy to %s', server.name, server.url.origin);
  }

  handleSse(req: Request, res: Response, ctx: RequestContext): void {
    if (this.closed) return this.shuttingDown(res);
    this.bridge.handleSse(req, res, ctx);
  }

  handleMessage(req: Request, res: Response, ctx: RequestContext): void {
    if (this.closed) return this.shuttingDown(res);
    this.bridge.handleMessage(req, res, ctx);
  }

  handleMcp(req: Request, res: Response, ctx: RequestContext): void {
    this.forward(req, res, ctx).catch((err: unknown) => {
      this.deps.logger.error('proxy failure', { server: this.server.name, error: err instanceof Error ? err.message : String(err) });
      sendHttpError(res, internalError());
    });
  }

  private async forward(req: Request, res: Response, ctx: RequestContext): Promise<void> {
    if (this.closed) return this.shuttingDown(res);
    const sessionId = headerOf(req.headers, 'mcp-session-id');
    let session: PassthroughSession | undefined;
    if (sessionId !== undefined) {
      session = this.findSession(sessionId, ctx.identity);
      if (!session) return sendHttpErrorDraining(res, sessionGone(), req);
    }

    // Whole body first: an oversized one is refused before anything reaches the upstream, and
    // the buffer is what gets sent, whether or not express.json() consumed the stream.
    let body: Buffer;
    let id: unknown;
    // A GET stream of a session may resume a POST's: it reads through the session's requests.
    let inFlight: InFlight | undefined = req.method === 'GET' ? session?.inFlight : undefined;
    let ids: JsonRpcId[] = [];
    let refusals: Refusal[] = [];
    let opens = false;
    const base = { server: this.server.name, token: ctx.token, subject: ctx.subject, sessionId, route: 'streamable', upstream: 'streamable-http', protocolVersion: protocolVersionHeader(req.headers) } as const;
    if (req.method === 'POST') {
      // The bytes go upstream as they are, but only once they are JSON-RPC (see parseJsonRpc).
      const inbound = await readInboundOrReply(req, res, ctx.proxy);
      if (inbound === undefined) return;
      inFlight = session?.inFlight ?? new InFlight(this.deps.pipeline, { server: this.server.name, token: ctx.token });
      const admission = await this.deps.pipeline.admit(base, inbound, inFlight);
      if (answeredWhole(res, admission) || answeredLocally(res, admission)) return;
      body = admission.forward!.body;
      const only = inbound.isBatch ? undefined : inbound.messages[0].id;
      id = typeof only === 'string' || typeof only === 'number' ? only : undefined;
      ids = admission.exchanges.map((e) => e.id);
      refusals = admission.refusals;
      opens = sessionId === undefined && admission.exchanges.some((e) => e.method === 'initialize');
      // An `initialize` opens a session upstream: the token's session limit is checked before it is sent.
      const refused = opens ? this.deps.sessions.refusal(ctx.token, this.server.name) : undefined;
      if (refused) return sendHttpError(res, refused, id);
    } else {
      const read = await readBodyOrReply(req, res, ctx.proxy.maxBodyBytes);
      if (read === undefined) return;
      body = read;
    }
    if (this.closed || session?.ended || res.destroyed) {
      // Not forwarded after all: its ids are free again.
      for (const forwarded of ids) inFlight?.release(forwarded);
      if (this.closed) return this.shuttingDown(res);
      if (session?.ended) return sendHttpError(res, sessionGone());
      return;
    }

    const ex: Exchange = { req, res, body, id, inFlight, ids, base, refusals, maxEventBytes: ctx.proxy.maxEventBytes, token: ctx.token, identity: ctx.identity, sessionId, session, done: false };
    if (session) {
      session.exchanges.add(ex);
      session.handle.busy();
      session.handle.touch();
      session.protocolVersion = headerOf(req.headers, 'mcp-protocol-version') ?? session.protocolVersion;
    }
    this.live.add(ex);
    if (!session) {
      // An `initialize` (or a stateless request) carries its token before any session exists: a
      // revocation while it is in flight must reach it too.
      ex.untrack = this.deps.sessions.track({ server: this.server.name, token: ctx.token, opening: opens, abort: (_reason, error) => this.revoke(ex, error) });
    }
    res.once('close', () => this.onClientClose(ex));
    ex.timer = setTimeout(() => this.fail(ex, new UpstreamTimeoutError(this.server.timeoutMs)), this.server.timeoutMs);
    ex.timer.unref();
    this.send(ex);
  }

  private findSession(id: string, identity: string): PassthroughSession | undefined {
    const found = this.deps.sessions.find(this.server.name, 'streamable', id, identity);
    return found?.owner === this ? (found.subject as PassthroughSession) : undefined;
  }

  /**
   * The exchange's request upstream: the client's allowlisted headers (upstream-agent.ts), the
   * upstream's session id for ours (MCP Streamable HTTP §Session Management), the server's
   * configured headers, and the body already read (whether or not `express.json()` consumed the
   * client's stream). The `Host` is the upstream's own.
   */
  private send(ex: Exchange): void {
    const headers: OutgoingHttpHeaders = {};
    const given = ex.req.headers;
    for (const name in given) {
      if (name !== 'mcp-session-id' && isForwardedRequestHeader(name)) headers[name] = given[name];
    }
    if (ex.session) headers['mcp-session-id'] = ex.session.upstreamId;
    for (const [name, value] of this.serverHeaders) headers[name] = value;
    const method = ex.req.method ?? 'GET';
    if (ex.body.length > 0 || method === 'POST') headers['content-length'] = ex.body.length;
    let proxyReq: ClientRequest;
    try {
      proxyReq = this.request({ method, headers });
    } catch (err) {
      // An invalid header value (a client's or a configured one) throws synchronously.
      return this.fail(ex, err);
    }
    ex.proxyReq = proxyReq;
    proxyReq.on('response', (proxyRes: IncomingMessage) => {
      // A socket event: a throw here would reach the event loop and end the process.
      try {
        this.onProxyRes(proxyRes, ex);
      } catch (err) {
        this.onFault(err, proxyRes, ex);
      }
    });
    proxyReq.on('error', (err) => this.fail(ex, err));
    proxyReq.end(ex.body);
  }

  private onProxyRes(proxyRes: IncomingMessage, ex: Exchange): void {
    const res = ex.res;
    if (ex.revoked) return this.discardRevoked(ex, proxyRes);
    if (ex.done) {
      proxyRes.destroy();
      return;
    }
    clearTimeout(ex.timer);
    ex.proxyRes = proxyRes;
    const status = proxyRes.statusCode ?? 502;
    if (rejectsProxyCredentials(status)) {
      ex.done = true;
      proxyRes.resume();
      return sendBadUpstreamAnswer(res, status, CREDENTIALS_REJECTED, { server: this.server.name, report: this.report, id: ex.id });
    }
    const clientId = this.trackSession(ex, status, headerOf(proxyRes.headers, 'mcp-session-id'));

    const stream = isEventStream(proxyRes.headers);
    const headers = clientResponseHeaders(proxyRes.headers);
    // Never the upstream's id: ours for the session this answer belongs to, or none.
    delete headers['mcp-session-id'];
    if (clientId !== undefined) headers['mcp-session-id'] = clientId;
    proxyRes.on('close', () => {
      // An upstream that dies mid-response must not look like a complete answer to the client.
      if (!proxyRes.complete && !ex.done && !res.writableEnded) res.destroy();
    });
    // The answer point: every message of a POST's answer or a session's GET stream (replays
    // included) is read when a hook looks at answers or refusals must be merged in: each response
    // is matched to its request in flight and passes the hooks, or is dropped when it answers
    // none. Otherwise no hook could change a byte, and the answer streams through as it is.
    const inFlight = ex.inFlight;
    if (inFlight !== undefined && (ex.refusals.length > 0 || this.deps.pipeline.observes(ex.base))) {
      // An error status's own JSON-RPC error (`404` for a forgotten session, with a null id)
      // answers the HTTP request, not one of its messages: it goes on as it is.
      const answer =
        status < 300
          ? (message: JsonRpcMessage, line: string) => inFlight.answer(message, line)
          : (message: JsonRpcMessage, line: string) => (isHttpErrorBody(message, inFlight) ? line : inFlight.answer(message, line));
      const tooLarge = () => this.answerTooLarge(ex);
      if (stream) {
        headers['x-accel-buffering'] = 'no';
        res.socket?.setNoDelay(true);
        relaySseAnswer(proxyRes, res, status, proxyRes.statusMessage, headers, answer, ex.refusals, ex.maxEventBytes, tooLarge, ex.req.method === 'GET');
        return;
      }
      if (isJson(proxyRes.headers) || ex.refusals.length > 0) {
        relayJsonAnswer(proxyRes, res, status, proxyRes.statusMessage, headers, answer, ex.refusals, ex.maxEventBytes, tooLarge, () => this.noAnswer(ex));
        return;
      }
    }
    ex.piped = true;
    if (stream) headers['x-accel-buffering'] = 'no';
    res.writeHead(status, proxyRes.statusMessage, headers);
    if (stream) {
      // Small events out at once, not after Nagle.
      res.socket?.setNoDelay(true);
      // A GET stream may stay silent for minutes: headers out now. A POST's stream usually brings
      // its answer right away and the headers go with it (one write less); one that does not (a
      // long tool call without progress) gets them after HEADERS_FALLBACK_MS.
      if (ex.req.method === 'GET') res.flushHeaders();
      else flushUnlessData(proxyRes, res);
      corkPerTurn(proxyRes, res);
    }
    proxyRes.pipe(res);
  }

  /** An upstream answer over `maxEventBytes`: that exchange ends, the session lives on. */
  private answerTooLarge(ex: Exchange): void {
    this.deps.logger.error('upstream event too large', { server: this.server.name, limit: ex.maxEventBytes });
    this.endExchange(ex, new HttpError(502, JsonRpcCode.ServerError, `Bad Gateway: upstream "${this.server.name}" sent an answer over the ${ex.maxEventBytes}-byte limit`));
    ex.proxyRes?.destroy();
  }

  /** A JSON answer of which nothing was left: every response in it answered no request of this POST. */
  private noAnswer(ex: Exchange): void {
    this.report({ server: this.server.name, code: 'NO_ANSWER', status: 502 });
    this.endExchange(ex, new HttpError(502, JsonRpcCode.ServerError, `Bad Gateway: upstream "${this.server.name}" answered none of the requests it was sent`), 'upstream_error');
  }

  /** A fault while relaying an answer ends that one exchange (logged at `error`). */
  private onFault(err: unknown, proxyRes: IncomingMessage, ex: Exchange): void {
    logFault(this.deps.logger, 'proxy failure', { server: this.server.name, where: 'upstream answer' }, err);
    const res = ex.res;
    ex.done = true;
    clearTimeout(ex.timer);
    proxyRes.unpipe(res);
    proxyRes.destroy();
    if (res.headersSent) res.destroy();
    else sendJsonRpcError(res, 502, JsonRpcCode.ServerError, `Bad Gateway: mcp-front could not relay the answer of upstream "${this.server.name}"`);
  }

  /**
   * Session bookkeeping, decided from the upstream's answer (MCP Streamable HTTP §Session
   * Management). Returns the `Mcp-Session-Id` for the client's answer: ours, or none.
   */
  private trackSession(ex: Exchange, status: number, upstreamId: string | undefined): string | undefined {
    const session = ex.session;
    if (session) {
      // DELETE ends the session at the proxy whatever the upstream says (SDK clients forget it
      // too, even on 405); a 404 means the upstream already forgot it.
      if (ex.req.method === 'DELETE' || status === 404) this.forgetSession(session, ex, ex.req.method === 'DELETE' ? 'deleted' : 'upstream 404');
      return upstreamId === undefined ? undefined : session.id;
    }
    if (ex.sessionId !== undefined || upstreamId === undefined || status >= 300) return undefined;
    const existing = this.byUpstreamId.get(upstreamId);
    if (existing && !existing.ended) {
      if (existing.identity === ex.identity) return existing.id;
      // An upstream that hands out an id already bound to another token: never rebind it, and
      // this client gets no session.
      this.deps.logger.warn('upstream reused a session id', { server: this.server.name });
      return undefined;
    }
    const created = new PassthroughSession(upstreamId, ex.token, ex.identity, this, this.deps);
    this.byUpstreamId.set(upstreamId, created);
    created.protocolVersion = headerOf(ex.req.headers, 'mcp-protocol-version');
    ex.untrack?.();
    created.exchanges.add(ex);
    created.handle.busy();
    ex.session = created;
    created.handle.start();
    return created.id;
  }

  /** Answers an exchange with an upstream error (once) and drops its upstream request. */
  private fail(ex: Exchange, err: unknown): void {
    if (ex.done) return;
    ex.done = true;
    failRequests(ex, err instanceof UpstreamTimeoutError ? 'timeout' : 'upstream_error');
    clearTimeout(ex.timer);
    ex.proxyReq?.destroy();
    ex.proxyRes?.unpipe(ex.res);
    if (ex.res.destroyed) return;
    sendUpstreamError(ex.res, err, { server: this.server.name, report: this.report, id: ex.id });
  }

  private onClientClose(ex: Exchange): void {
    ex.untrack?.();
    if (!ex.revoked) clearTimeout(ex.timer);
    this.live.delete(ex);
    if (ex.session) {
      ex.session.exchanges.delete(ex);
      ex.session.handle.idle();
    }
    // Answers that passed unread: nothing will match them any more.
    if (ex.piped) for (const id of ex.ids) ex.inFlight?.release(id);
    if (ex.res.writableFinished) return;
    // The client went away mid-request or mid-stream: release the upstream request and socket.
    ex.done = true;
    // A session's answers may still come on a resumed stream (MCP Streamable HTTP §Resumability
    // and Redelivery); a request without a session has no stream to resume.
    if (ex.session !== undefined && ex.inFlight === ex.session.inFlight) ex.inFlight.abandon(ex.ids);
    else failRequests(ex, 'client_gone');
    ex.proxyReq?.destroy();
    ex.proxyRes?.destroy();
  }

  /**
   * Its token was revoked before the exchange had a session: the client is answered now. An
   * upstream that has not answered yet keeps its request (bounded by `timeout`), so that a
   * session it opens for it can be deleted (Streamable HTTP §Session Management) instead of
   * living on upstream.
   */
  private revoke(ex: Exchange, error: HttpError): void {
    if (ex.session) return;
    const waiting = !ex.done && ex.proxyRes === undefined;
    if (!waiting) {
      this.endExchange(ex, error);
      return;
    }
    ex.done = true;
    ex.revoked = true;
    clearTimeout(ex.timer);
    ex.timer = setTimeout(() => ex.proxyReq?.destroy(), this.server.timeoutMs);
    ex.timer.unref();
    if (!ex.res.destroyed) sendHttpError(ex.res, error, ex.id);
  }

  /** The upstream's late answer to a revoked exchange: dropped, and its session deleted. */
  private discardRevoked(ex: Exchange, proxyRes: IncomingMessage): void {
    clearTimeout(ex.timer);
    const status = proxyRes.statusCode ?? 0;
    const upstreamId = status < 300 ? headerOf(proxyRes.headers, 'mcp-session-id') : undefined;
    proxyRes.destroy();
    if (upstreamId === undefined || this.byUpstreamId.has(upstreamId)) return;
    log('%s: deleting the upstream session of a revoked initialize', this.server.name);
    void deleteUpstreamSession(this.server, upstreamId, headerOf(ex.req.headers, 'mcp-protocol-version'));
  }

  /** Ends an exchange from the proxy's side: stream ended, or an error if nothing was sent yet. */
  private endExchange(ex: Exchange, error: HttpError, outcome: 'session_closed' | 'upstream_error' = 'session_closed'): void {
    if (ex.done && ex.res.writableEnded) return;
    ex.done = true;
    failRequests(ex, outcome);
    clearTimeout(ex.timer);
    ex.proxyRes?.unpipe(ex.res);
    ex.proxyReq?.destroy();
    if (ex.res.headersSent) ex.res.end();
    else sendHttpError(ex.res, error, ex.id);
  }

  /** The session is over (DELETE, upstream 404): no upstream call, its other streams end. */
  private forgetSession(session: PassthroughSession, except: Exchange, reason: string): void {
    if (session.ended) return;
    session.forgotten = true;
    // The exchange that brought the news still relays the upstream's answer.
    session.exchanges.delete(except);
    void session.close(reason);
  }

  /** The session's teardown: streams ended now, then the upstream told (best effort, bounded). */
  async closeSession(session: PassthroughSession, reason: string): Promise<void> {
    if (this.byUpstreamId.get(session.upstreamId) === session) this.byUpstreamId.delete(session.upstreamId);
    for (const ex of session.exchanges) this.endExchange(ex, sessionGone());
    session.exchanges.clear();
    // Answers still awaited on a stream that may never resume.
    session.inFlight.failAll('session_closed');
    if (session.forgotten) return;
    log('%s: closing session of token %s (%s)', this.server.name, session.token, reason);
    await deleteUpstreamSession(this.server, session.upstreamId, session.protocolVersion);
  }

  private shuttingDown(res: ServerResponse): void {
    sendHttpError(res, shuttingDown(this.server.name));
  }

  async close(): Promise<void> {
    this.closed = true;
    const closing = this.deps.sessions.closeOwned(this, 'server closed');
    // Requests outside any session end now, not after the sessions' DELETEs.
    for (const ex of [...this.live]) this.endExchange(ex, shuttingDown(this.server.name));
    await Promise.all([closing, this.bridge.close()]);
  }
}

/** An error response that answers no request in flight: the body of an upstream's error status. */
function isHttpErrorBody(message: JsonRpcMessage, inFlight: InFlight): boolean {
  return message.method === undefined && message.result === undefined && (message.id === undefined || message.id === null || !inFlight.has(message.id));
}

/** The requests of one POST end without their answers. */
function failRequests(ex: Exchange, outcome: FailureOutcome): void {
  for (const id of ex.ids) ex.inFlight?.fail(id, outcome);
}

function isJson(headers: IncomingMessage['headers']): boolean {
  return /^\s*application\/json\s*(;|$)/i.test(String(headers['content-type'] ?? ''));
}
