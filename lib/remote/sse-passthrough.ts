// Remote legacy HTTP+SSE upstreams (MCP 2024-11-05 transport): `GET /:server/sse` relays the
// upstream's event stream, `POST /:server/message?sessionId=` forwards to the upstream's message
// URL. The client only ever sees our own session id and message route (README: Routes; Security model).
// Streamable HTTP clients (`/:server/mcp`) are bridged: front-sessions.ts over channel-sse.ts.
import type { ClientRequest, IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { remoteBridge } from './remote-bridge';
import type { Request, Response } from 'express';
import { readInboundOrReply } from '../pipeline/inbound';
import type { JsonRpcMessage } from '../wire/body';
import type { ExchangeBase, UpstreamErrorInfo } from '../pipeline/hooks';
import { InFlight } from '../pipeline/pipeline';
import { answeredWhole, answerText } from '../pipeline/answers';
import { resolveUpstreamEndpoint, SseUpstreamChannel } from './sse-channel';
import type { RemoteServer } from '../config';
import { HttpError, internalError, JsonRpcCode, sendHttpError, sendHttpErrorDraining, sendJsonRpcError, sessionGone, shuttingDown } from '../wire/errors';
import type { FrontSessions } from '../bridge/front-sessions';
import { debug, logFault } from '../logger';
import type { SessionHandle } from '../sessions/registry';
import { openSseStream, SseParser, type SseEvent, type SseStream } from '../wire/sse';
import { messageEndpoint, querySessionId, type RequestContext, type ServerTransport, type TransportDeps } from '../transport';
import { clientResponseHeaders, isEventStream, isForwardedRequestHeader, upstreamRequester, type UpstreamRequestOptions } from './upstream-agent';
import { EventStreamRequest, type EventStreamHandlers, type StreamHead } from './event-stream-request';
import {
  CREDENTIALS_REJECTED,
  UpstreamTimeoutError,
  rejectsProxyCredentials,
  sendBadUpstreamAnswer,
  sendUpstreamError,
} from './upstream-errors';

const log = debug.extend('remote');

export function createRemoteSseTransport(server: RemoteServer, deps: TransportDeps): ServerTransport {
  return new SseRelayTransport(server, deps);
}

/**
 * One `GET /:server/sse` and its upstream stream; becomes a session at the `endpoint` event. It
 * is the handler of its upstream request itself (methods, not closures: thousands may sit idle).
 */
class Relay implements EventStreamHandlers {
  upstream: EventStreamRequest | undefined;
  /** Ends its tracking as a stream in flight: at the `endpoint` event, or when it ends first. */
  untrack?: () => void;
  stream?: SseStream;
  parser?: SseParser;
  session?: SseRelaySession;
  handle?: SessionHandle;
  timer?: NodeJS.Timeout;
  ended = false;

  constructor(
    private readonly transport: SseRelayTransport,
    readonly token: string,
    readonly req: Request,
    readonly res: ServerResponse,
    readonly ctx: RequestContext,
  ) {}

  head(head: StreamHead): void {
    this.transport.onStreamHead(this, head);
  }

  data(chunk: Buffer): void {
    this.transport.onStreamData(this, chunk);
  }

  end(): void {
    this.transport.endRelay(this, 'upstream ended the stream');
  }

  error(err: Error): void {
    this.transport.onStreamError(this, err);
  }
}

/** A message POST in flight to the upstream. */
interface Post {
  readonly upstreamReq: ClientRequest;
  readonly res: ServerResponse;
  answer?: IncomingMessage;
  /** Ended by the proxy (session closed, client gone): no upstream error to report. */
  aborted: boolean;
}

/**
 * What a relay's registry session holds: the upstream's message path and the POSTs in flight.
 * Thousands may sit idle: the set and the table of requests exist only once there are POSTs.
 */
class SseRelaySession {
  posts: Set<Post> | undefined;
  /** The session's requests waiting for their answers on the stream. */
  inFlight: InFlight | undefined;

  constructor(
    private readonly relay: Relay,
    /**
     * Path and query of the upstream's message URL, from its `endpoint` event (on the server's
     * origin: see resolveUpstreamEndpoint); never shown to the client.
     */
    public messagePath: string,
  ) {}

  /** Writes a message the proxy answers itself onto the session's stream. */
  inject(line: string): void {
    this.relay.stream?.send('message', line);
  }
}

class SseRelayTransport implements ServerTransport {
  private readonly relays = new Set<Relay>();
  /** Streamable HTTP clients, each with its own upstream legacy session. */
  private readonly bridge: FrontSessions;
  private closed = false;
  /** Requests to the server's origin (credentials in its URL included), options computed once. */
  private readonly requestFn: (options: UpstreamRequestOptions) => ClientRequest;

  /** Upstream failures go to the pipeline, which logs them. */
  private readonly report = (info: UpstreamErrorInfo) => this.deps.pipeline.upstreamError(info);

  constructor(
    readonly server: RemoteServer,
    private readonly deps: TransportDeps,
  ) {
    this.requestFn = upstreamRequester(server.url);
    this.bridge = remoteBridge(server, deps, 'sse', (maxEventBytes, report) => new SseUpstreamChannel(server, deps.logger, maxEventBytes, report));
    log('%s: legacy SSE relay to %s', server.name, server.url.origin);
  }

  handleMcp(req: Request, res: Response, ctx: RequestContext): void {
    if (this.closed) return this.shuttingDown(res);
    this.bridge.handleMcp(req, res, ctx);
  }

  handleSse(req: Request, res: Response, ctx: RequestContext): void {
    if (this.closed) return this.shuttingDown(res);
    // The stream is a session of its token from its first byte (README: Limits per token).
    const refused = this.deps.sessions.refusal(ctx.token, this.server.name);
    if (refused) return sendHttpError(res, refused);
    // Built in one go: a `delete` would turn the object into a dictionary.
    const headers: Record<string, string | string[]> = {};
    copyForwardedHeaders(req.headers, headers, 'content-type');
    headers.accept = 'text/event-stream';
    headers['cache-control'] = 'no-cache';
    Object.assign(headers, this.server.headers);
    const relay = new Relay(this, ctx.token, req, res, ctx);
    try {
      relay.upstream = new EventStreamRequest({ url: this.server.url, headers }, relay);
    } catch (err) {
      // An invalid header value throws synchronously, as with http.request.
      return sendUpstreamError(res, err, { server: this.server.name, report: this.report });
    }
    const { upstream } = relay;
    this.relays.add(relay);
    // Tracked from the first byte: a token revoked before the upstream's `endpoint` event must
    // not get a session when it arrives.
    relay.untrack = this.deps.sessions.track({
      server: this.server.name,
      token: ctx.token,
      opening: true,
      abort: (reason, error) => this.endRelay(relay, reason, error),
    });

    relay.timer = setTimeout(() => upstream.destroy(new UpstreamTimeoutError(this.server.timeoutMs)), this.server.timeoutMs);
    relay.timer.unref();
    res.on('close', () => this.endRelay(relay, 'client disconnected'));
  }

  /** The upstream request failed, or its stream broke off. */
  onStreamError(relay: Relay, err: Error): void {
    if (relay.ended) return;
    if (relay.stream) return this.endRelay(relay, (err as NodeJS.ErrnoException).code === 'ECONNRESET' ? 'upstream closed the stream' : 'upstream stream failed');
    this.endRelay(relay, 'upstream unavailable');
    sendUpstreamError(relay.res, err, { server: this.server.name, report: this.report });
  }

  onStreamHead(relay: Relay, head: StreamHead): void {
    clearTimeout(relay.timer);
    relay.timer = undefined;
    if (relay.ended) return;
    const { status } = head;
    const { res, ctx } = relay;
    if (status < 200 || status >= 300 || !isEventStream(head.headers)) {
      this.endRelay(relay, 'upstream refused the stream');
      const what = status < 300 ? 'without an event stream' : rejectsProxyCredentials(status) ? CREDENTIALS_REJECTED : 'to the SSE request';
      sendBadUpstreamAnswer(res, status, what, {
        server: this.server.name,
        report: this.report,
      });
      return;
    }

    relay.stream = openSseStream(res, ctx.proxy.keepAliveMs);
    relay.parser = new SseParser((event) => this.onUpstreamEvent(relay, event), {
      maxEventBytes: ctx.proxy.maxEventBytes,
      onTooLarge: (limit) => this.eventTooLarge(relay, limit),
    });
  }

  onStreamData(relay: Relay, chunk: Buffer): void {
    if (relay.ended || !relay.parser) return;
    // An event handler: a throw here would reach the event loop and end the process.
    try {
      relay.parser.push(chunk);
    } catch (err) {
      logFault(this.deps.logger, 'sse session failed', { server: this.server.name, token: relay.token, where: 'server message' }, err);
      this.endRelay(relay, 'internal error (server message)');
      return;
    }
    // A slow client must slow the upstream down, not fill the proxy's memory.
    const { res, upstream } = relay;
    if (res.writableNeedDrain && upstream && !upstream.isPaused()) {
      upstream.pause();
      res.once('drain', () => upstream.resume());
    }
  }

  private onUpstreamEvent(relay: Relay, event: SseEvent): void {
    if (relay.ended || !relay.stream) return;
    if (event.event !== 'endpoint') {
      // Re-serialized, never the upstream's bytes: the client must frame exactly the events we read.
      const data = event.event === 'message' && relay.session ? this.answerPoint(relay, relay.session, event.data) : event.data;
      if (data !== undefined) relay.stream.send(event.event, data, event.id);
      return;
    }
    const target = resolveUpstreamEndpoint(event.data, this.server.url);
    if (!target) {
      this.deps.logger.warn('upstream sent an unusable endpoint', { server: this.server.name });
      this.endRelay(relay, 'unusable endpoint');
      return;
    }
    if (relay.session) {
      relay.session.messagePath = upstreamPath(target);
      return;
    }
    // Our own id, not the upstream's: unguessable whatever the upstream uses, and the upstream
    // URL never reaches the client.
    const session = new SseRelaySession(relay, upstreamPath(target));
    relay.session = session;
    relay.handle = this.deps.sessions.open({
      server: this.server.name,
      kind: 'sse',
      upstream: 'sse',
      token: relay.token,
      identity: relay.ctx.identity,
      owner: this,
      subject: session,
      teardown: async (reason) => this.endRelay(relay, reason),
    });
    relay.untrack?.();
    relay.untrack = undefined;
    relay.handle.start();
    relay.stream.send('endpoint', messageEndpoint(relay.req, this.server.name, relay.handle.id));
  }

  /**
   * The answer point of the relay: a `message` event's JSON-RPC text through the session's
   * requests in flight, each response (a batch's too) matched to its request, or dropped when it
   * answers none. Read only while a request waits or a hook looks at answers: otherwise nothing
   * could change a byte.
   */
  private answerPoint(relay: Relay, session: SseRelaySession, data: string): string | undefined {
    if ((session.inFlight === undefined || session.inFlight.size === 0) && !this.deps.pipeline.observes(relayBase(relay, this.server.name))) return data;
    let message: unknown;
    try {
      message = JSON.parse(data);
    } catch {
      return data;
    }
    const inFlight = (session.inFlight ??= new InFlight(this.deps.pipeline, { server: this.server.name, token: relay.token }));
    return answerText((m, line) => inFlight.answer(m, line), message, data);
  }

  /**
   * The relay does not track which requests are pending, so the client gets one error response
   * without an id (the MCP 2025-11-25 schema allows one when the request it answers is unknown),
   * then the end of its stream.
   */
  private eventTooLarge(relay: Relay, limit: number): void {
    this.deps.logger.error('upstream event too large', { server: this.server.name, limit });
    const message = `upstream "${this.server.name}" sent an event over the ${limit}-byte limit; session ended`;
    relay.stream?.send('message', JSON.stringify({ jsonrpc: '2.0', error: { code: JsonRpcCode.ServerError, message } }));
    this.endRelay(relay, 'upstream event over the size limit');
  }

  /**
   * Ends both sides of a relay and its session; every path out of a relay goes through here.
   * `error` answers a client whose stream has not started yet (otherwise its stream just ends).
   */
  endRelay(relay: Relay, reason: string, error?: HttpError): void {
    if (relay.ended) return;
    relay.ended = true;
    // Every path out ends its session too (a no-op when that is what brought us here).
    void relay.handle?.end(reason);
    relay.untrack?.();
    clearTimeout(relay.timer);
    this.relays.delete(relay);
    relay.upstream?.destroy();
    relay.stream?.end();
    if (error && !relay.res.headersSent) sendHttpError(relay.res, error);
    relay.session?.inFlight?.failAll('session_closed');
    for (const post of relay.session?.posts ?? []) this.abortPost(post);
  }

  handleMessage(req: Request, res: Response, ctx: RequestContext): void {
    this.forwardMessage(req, res, ctx).catch((err: unknown) => {
      this.deps.logger.error('proxy failure', { server: this.server.name, error: err instanceof Error ? err.message : String(err) });
      sendHttpError(res, internalError());
    });
  }

  private async forwardMessage(req: Request, res: Response, ctx: RequestContext): Promise<void> {
    if (this.closed) return this.shuttingDown(res);
    const id = querySessionId(req);
    if (id === undefined) return sendJsonRpcError(res, 400, JsonRpcCode.InvalidRequest, 'Bad Request: missing sessionId');
    let session = this.findSession(id, ctx.identity);
    if (!session) return sendHttpErrorDraining(res, sessionGone(), req);

    // The bytes go upstream as they are, but only once they are JSON-RPC (see parseJsonRpc).
    const inbound = await readInboundOrReply(req, res, ctx.proxy);
    if (inbound === undefined) return;
    const base = { server: this.server.name, token: ctx.token, subject: ctx.subject, sessionId: id, route: 'sse', upstream: 'sse', protocolVersion: undefined } as const;
    const inFlight = (session.inFlight ??= new InFlight(this.deps.pipeline, { server: this.server.name, token: ctx.token }));
    const admission = await this.deps.pipeline.admit(base, inbound, inFlight);
    if (answeredWhole(res, admission)) return;
    session = this.findSession(id, ctx.identity);
    if (!session) return sendHttpError(res, sessionGone());
    if (res.destroyed) return;
    // Refused requests are answered on the session's stream, like the upstream's answers.
    for (const refusal of admission.refusals) session.inject(refusal.line);
    if (admission.forward === undefined) {
      res.writeHead(202, { 'Content-Type': 'text/plain; charset=utf-8' }).end('Accepted');
      return;
    }
    const body = admission.forward.body;
    const only = inbound.isBatch ? undefined : inbound.messages[0].id;
    const requestId = typeof only === 'string' || typeof only === 'number' ? only : undefined;
    const failed = (outcome: 'timeout' | 'upstream_error') => {
      for (const ex of admission.exchanges) inFlight.fail(ex.id, outcome);
    };

    const headers: Record<string, string | string[]> = {};
    copyForwardedHeaders(req.headers, headers, undefined);
    headers['content-type'] = req.headers['content-type'] ?? 'application/json';
    headers['content-length'] = String(body.length);
    Object.assign(headers, this.server.headers);
    const upstreamReq = this.request(session.messagePath, 'POST', headers, res, requestId);
    if (!upstreamReq) return failed('upstream_error');
    const post: Post = { upstreamReq, res, aborted: false };
    const posts = (session.posts ??= new Set());
    posts.add(post);
    const timer = setTimeout(() => upstreamReq.destroy(new UpstreamTimeoutError(this.server.timeoutMs)), this.server.timeoutMs);
    timer.unref();
    res.once('close', () => {
      clearTimeout(timer);
      posts.delete(post);
      if (!res.writableFinished) {
        post.aborted = true;
        upstreamReq.destroy();
      }
    });
    upstreamReq.on('error', (err) => {
      clearTimeout(timer);
      if (post.aborted) return;
      post.aborted = true;
      failed(err instanceof UpstreamTimeoutError ? 'timeout' : 'upstream_error');
      sendUpstreamError(res, err, { server: this.server.name, report: this.report, id: requestId });
    });
    upstreamReq.on('response', (answer) => {
      clearTimeout(timer);
      if (post.aborted) {
        answer.destroy();
        return;
      }
      if (rejectsProxyCredentials(answer.statusCode ?? 0)) {
        post.aborted = true;
        answer.resume();
        failed('upstream_error');
        const ctx = { server: this.server.name, report: this.report, id: requestId };
        return sendBadUpstreamAnswer(res, answer.statusCode ?? 0, CREDENTIALS_REJECTED, ctx);
      }
      post.answer = answer;
      // Status and headers pass back as they are (the reference server answers 202 Accepted).
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, clientResponseHeaders(answer.headers));
      answer.on('close', () => {
        if (!answer.complete && !res.writableEnded) res.destroy();
      });
      answer.pipe(res);
    });
    upstreamReq.end(body);
  }

  /**
   * A request for `path` on the server's origin, through the shared agent (upstream-agent.ts). An
   * invalid header value, which throws synchronously, is answered instead.
   */
  private request(path: string, method: string, headers: OutgoingHttpHeaders, res: ServerResponse, id?: unknown): ClientRequest | undefined {
    try {
      return this.requestFn({ path, method, headers });
    } catch (err) {
      sendUpstreamError(res, err, { server: this.server.name, report: this.report, id });
      return undefined;
    }
  }

  private findSession(id: string, identity: string): SseRelaySession | undefined {
    const found = this.deps.sessions.find(this.server.name, 'sse', id, identity);
    return found?.owner === this ? (found.subject as SseRelaySession) : undefined;
  }

  private abortPost(post: Post): void {
    if (post.aborted) return;
    post.aborted = true;
    post.answer?.unpipe(post.res);
    post.upstreamReq.destroy();
    if (post.res.headersSent) post.res.end();
    else sendHttpError(post.res, sessionGone());
  }

  private shuttingDown(res: ServerResponse): void {
    sendHttpError(res, shuttingDown(this.server.name));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const relay of [...this.relays]) this.endRelay(relay, 'server closed', shuttingDown(this.server.name));
    await this.bridge.close();
  }
}

/** Path and query of an upstream URL, as `http.request` takes them. */
function upstreamPath(url: URL): string {
  return url.pathname + url.search;
}

/** The forwardable client headers (upstream-agent.ts decides which), but `except`. */
function copyForwardedHeaders(from: IncomingHttpHeaders, to: Record<string, string | string[]>, except: string | undefined): void {
  for (const name in from) {
    const value = from[name];
    if (value !== undefined && name !== except && isForwardedRequestHeader(name)) to[name] = value;
  }
}

/** What the hooks know of a relay's requests before any is read: the base of its exchanges. */
function relayBase(relay: Relay, server: string): ExchangeBase {
  return { server, token: relay.token, subject: relay.ctx.subject, sessionId: relay.handle?.id, route: 'sse', upstream: 'sse', protocolVersion: undefined };
}
