// The client side of a bridged server: legacy HTTP+SSE sessions (`GET /sse` + `POST /message`)
// and Streamable HTTP sessions (`POST|GET|DELETE /mcp`), each over one channel to the server side
// (channel.ts): a stdio child, or a remote session of the *other* HTTP transport. This is what
// makes every server reachable on both routes (CONTRACT §4).
//
// The front is a relay, not an MCP implementation: the client's own `initialize` reaches the
// server and every message passes verbatim, so no state, JSON-RPC id or notification can cross
// between clients. It parses server messages only to route them.
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Request, Response } from 'express';
import { isRequest, parseJsonRpc, readBody, type JsonRpcMessage } from './body';
import { SESSION_GONE, bodyOf, firstByte, type Channel } from './channel';
import { HttpError, JsonRpcCode, jsonRpcErrorBody, sendHttpError, sendJsonRpcError } from './errors';
import { debug, logFault } from './logger';
import { classifyPost, LEGACY_VERSIONS, UNSUPPORTED_VERSION, type StatelessStdio } from './stateless-stdio';
import type { Session } from './sessions';
import { openSseStream, sendSseBody, type SseStream } from './sse';
import { messageEndpoint, querySessionId, type ProxySettings, type RequestContext, type TransportDeps } from './transport';

const log = debug.extend('front');

/** Sent with `503` when a server is at `maxSessions`: a slot frees when some session ends. */
const RETRY_AFTER_SECONDS = '5';

/**
 * Server-initiated messages kept for a Streamable session until a `GET` stream opens (the SDK
 * client opens it only after `notifications/initialized`). Oldest dropped beyond this.
 */
const MAX_QUEUED_MESSAGES = 1000;

type JsonRpcId = string | number;

/** Orders sessions by last use without clock ties (least recently used = smallest). */
let useClock = 0;

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
  noun: 'stdio server' | 'upstream';
  /** Prefix of the session log events: `stdio` → `stdio session started`. */
  logPrefix: string;
  /** A new, unopened channel for a session of `token`, under the proxy settings of its first request. */
  newChannel(token: string, proxy: ProxySettings): Channel;
  /** Serves stateless 2026-07-28 requests; without it they get `-32022` naming `legacyVersions`. */
  stateless?: StatelessStdio;
  /** The protocol versions the server side speaks, for that `-32022`. Default: the 2025 era's. */
  legacyVersions?: string[];
}

/** Both client transports over channels, for one server. */
export class FrontSessions {
  /** Sessions whose server side may still run: `maxSessions` counts those, not registry entries. */
  private readonly live = new Set<FrontSession>();
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
    await Promise.all([...this.live].map((s) => s.close('server closed')));
  }

  forget(session: FrontSession): void {
    this.live.delete(session);
  }

  // --- legacy HTTP+SSE (MCP 2024-11-05 §Transports) -------------------------------------------

  private async openSse(req: Request, res: Response, ctx: RequestContext): Promise<void> {
    const session = new SseSession(this, ctx);
    await this.start(session, res, undefined, () => session.attach(req, res, ctx));
  }

  private async postMessage(req: Request, res: Response, ctx: RequestContext): Promise<void> {
    const id = querySessionId(req);
    if (id === undefined) throw new HttpError(400, JsonRpcCode.InvalidRequest, 'Bad Request: sessionId query parameter is required');
    const found = this.deps.sessions.find(this.options.server, 'sse', id, ctx.token);
    if (!(found instanceof SseSession) || !this.live.has(found) || found.ending) throw sessionNotFound(req);
    const body = await readBody(req, ctx.proxy.maxBodyBytes);
    const messages = parseJsonRpc(body);
    if (found.ending) throw sessionNotFound(req);
    try {
      await found.post(body, messages);
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
      const body = await readBody(req, ctx.proxy.maxBodyBytes);
      const messages = parseJsonRpc(body);
      // A POST without a session may be a stateless 2026-07-28 request (issue 7).
      let classified;
      try {
        classified = classifyPost(req, messages, firstByte(body) === 0x5b /* [ */);
      } catch (err) {
        return replyWithError(res, err, messages.length === 1 ? messages[0].id : undefined);
      }
      if (classified.kind === 'modern') {
        if (this.options.stateless) return this.options.stateless.handle(res, ctx, classified);
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
      const session = new StreamableSession(this, ctx);
      await this.start(session, res, messages[0].id, () => {
        res.setHeader('Mcp-Session-Id', session.id);
        session.post(req, res, ctx, body, messages, true);
      });
      return;
    }

    const found = this.deps.sessions.find(this.options.server, 'streamable', id, ctx.token);
    if (!(found instanceof StreamableSession) || !this.live.has(found) || found.ending) throw sessionNotFound(req);
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
    const body = await readBody(req, ctx.proxy.maxBodyBytes);
    const messages = parseJsonRpc(body);
    // The server side may have ended while the body was arriving.
    if (found.ending) throw sessionNotFound(req);
    found.post(req, res, ctx, body, messages, false);
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
    if (this.closed) {
      sendJsonRpcError(res, 503, JsonRpcCode.ServerError, 'Service Unavailable: server is shutting down', {
        id: requestId,
        headers: { 'Retry-After': RETRY_AFTER_SECONDS },
      });
      return;
    }
    let evicted: FrontSession | undefined;
    if (this.live.size >= options.maxSessions) {
      evicted = this.evictionFor(session.token);
      if (!evicted) {
        this.deps.logger.warn(`${options.logPrefix} sessions exhausted`, { server: options.server, token: session.token, max_sessions: options.maxSessions });
        sendJsonRpcError(res, 503, JsonRpcCode.ServerError, `Service Unavailable: server "${options.server}" has reached its maximum of ${options.maxSessions} sessions`, {
          id: requestId,
          headers: { 'Retry-After': RETRY_AFTER_SECONDS },
        });
        return;
      }
      this.deps.logger.warn(`${options.logPrefix} session evicted`, {
        server: options.server,
        token: evicted.token,
        for_token: session.token,
        max_sessions: options.maxSessions,
      });
    }
    this.live.add(session);
    // The session carries its token from the first byte: a revocation while its server side is
    // starting ends it and answers the client, instead of letting it start a moment later.
    const untrack = this.deps.sessions.track({
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
      if (!res.writableEnded) sendJsonRpcError(res, 503, JsonRpcCode.ServerError, 'Service Unavailable: server is shutting down', { id: requestId });
      return;
    }
    session.started = true;
    this.deps.sessions.add(session);
    this.deps.logger.info(`${options.logPrefix} session started`, {
      server: options.server,
      token: session.token,
      transport: session.kind,
      ...session.channel.logFields,
    });
    begin();
  }

  /**
   * Fair use of a full server (README, `maxSessions`): a new session from a token that holds
   * at least two sessions fewer than the token holding the most ends that token's least recently
   * used session, so that no token can lock the others out by holding every slot. The margin of
   * two makes it settle instead of swapping a slot back and forth: shares converge to within one
   * session of each other, and a token alone on a server may still use every slot.
   */
  private evictionFor(token: string): FrontSession | undefined {
    const held = new Map<string, FrontSession[]>();
    for (const s of this.live) {
      if (s.ending) continue;
      const list = held.get(s.token);
      if (list) list.push(s);
      else held.set(s.token, [s]);
    }
    const mine = held.get(token)?.length ?? 0;
    let victim: FrontSession | undefined;
    let most = 0;
    for (const [holder, sessions] of held) {
      if (holder === token) continue;
      const lru = sessions.reduce((a, b) => (b.lastUsed < a.lastUsed ? b : a));
      if (sessions.length > most || (sessions.length === most && lru.lastUsed < victim!.lastUsed)) {
        most = sessions.length;
        victim = lru;
      }
    }
    return victim !== undefined && mine + 2 <= most ? victim : undefined;
  }
}

/**
 * One MCP session over one channel. Hands each server message to the transport-specific
 * `deliver`; ends on any path (client, idle, revocation, server side gone) through `close`, which
 * ends the server side too.
 */
abstract class FrontSession implements Session {
  abstract readonly kind: 'sse' | 'streamable';
  readonly id = randomBytes(32).toString('base64url');
  readonly server: string;
  readonly token: string;
  readonly channel: Channel;
  /** Set when the session starts ending; no new messages are accepted from then on. */
  ending = false;
  /** The server side is ready and the client was told so (endpoint event, or the initialize POST). */
  started = false;
  /**
   * When its client last sent something (a `useClock` tick): picks whom to evict. Streams do not
   * count: SDK clients keep one open on every session, used or not.
   */
  lastUsed = ++useClock;
  protected keepAliveMs: number;
  private closing: Promise<void> | undefined;
  /** Responses whose socket is full: the channel stays paused until all of them drained or closed. */
  private readonly blockedBy = new Set<ServerResponse>();

  constructor(
    protected readonly owner: FrontSessions,
    ctx: RequestContext,
  ) {
    this.server = owner.options.server;
    this.token = ctx.token;
    this.keepAliveMs = ctx.proxy.keepAliveMs;
    this.channel = owner.options.newChannel(ctx.token, ctx.proxy);
  }

  open(): Promise<void> {
    return this.channel.open({
      message: (line, message) => {
        if (!this.ending) this.guard('server message', () => this.deliver(line, message));
      },
      closed: (reason, clientMessage) => {
        this.closing ??= this.shutdown(reason, clientMessage);
      },
    });
  }

  /**
   * The boundary of every callback, timer and event handler that answers, times out or ends this
   * session: a fault there ends this session, logged at `error`, and never reaches the event loop,
   * where it would end the process and every session of every token with it.
   */
  protected guard(where: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.fault(where, err);
    }
  }

  private fault(where: string, err: unknown): void {
    this.logFault(where, err);
    void this.close(`internal error (${where})`);
  }

  private logFault(where: string, err: unknown): void {
    logFault(this.owner.deps.logger, `${this.owner.options.logPrefix} session failed`, { server: this.server, token: this.token, transport: this.kind, where }, err);
  }

  /** Ends the session; idempotent; resolves when the server side is gone. */
  close(reason: string): Promise<void> {
    this.closing ??= this.shutdown(reason, `session closed: ${reason}`);
    return this.closing;
  }

  /** Answers everything pending with a JSON-RPC error and ends every stream. */
  protected abstract endStreams(code: number, message: string): void;

  /** Destroys every response still open: the last resort when `endStreams` failed half-way. */
  protected abstract abortStreams(): void;

  /** One message from the server: `line` is its one-line text, `message` its parse. */
  protected abstract deliver(line: string, message: JsonRpcMessage): void;

  /** The server side's name in client-facing messages: `stdio server "x"`, `upstream "x"`. */
  protected get serverSide(): string {
    return `${this.owner.options.noun} "${this.server}"`;
  }

  /** Sends `line` as an SSE `message` event; pauses the channel while the socket is full. */
  protected sendEvent(stream: SseStream, res: ServerResponse, line: string): void {
    stream.writeRaw('event: message\ndata: ' + line + '\n\n');
    if (res.writableNeedDrain) this.hold(res);
  }

  /**
   * Backpressure: a slow client pauses the server side (the child's stdout, and so once the pipe
   * is full the child; an upstream's response) instead of the proxy buffering without bound.
   */
  private hold(res: ServerResponse): void {
    if (this.blockedBy.has(res)) return;
    if (this.blockedBy.size === 0) this.channel.pause();
    this.blockedBy.add(res);
    const release = () => {
      res.off('drain', release);
      res.off('close', release);
      this.blockedBy.delete(res);
      if (this.blockedBy.size === 0) this.channel.resume();
    };
    res.on('drain', release);
    res.on('close', release);
  }

  /**
   * `clientMessage` answers every request still pending. Never rejects: callers do not wait for
   * it (`void close()` from timers and `close` events), so a rejection would be unhandled.
   */
  private async shutdown(reason: string, clientMessage: string): Promise<void> {
    this.ending = true;
    this.owner.deps.sessions.remove(this);
    this.stopIdleTimer();
    try {
      this.endStreams(JsonRpcCode.ServerError, clientMessage);
    } catch (err) {
      this.logFault('close', err);
      this.abortStreams();
    }
    try {
      await this.channel.close();
    } catch (err) {
      this.logFault('close', err);
    }
    this.owner.forget(this);
    if (this.started) {
      this.owner.deps.logger.info(`${this.owner.options.logPrefix} session ended`, { server: this.server, token: this.token, transport: this.kind, reason });
    }
    log('%s: %s session ended (%s)', this.server, this.kind, reason);
  }

  // --- idle timeout: only Streamable sessions can be idle, an SSE session always has its stream ---

  private idleTimer: NodeJS.Timeout | undefined;
  private busy = 0;

  /** Counts `res` as activity until it ends; the idle clock runs only while nothing is open. */
  touch(res: ServerResponse): void {
    this.busy++;
    this.stopIdleTimer();
    res.once('close', () => {
      if (--this.busy === 0 && !this.ending) this.startIdleTimer();
    });
  }

  private startIdleTimer(): void {
    this.stopIdleTimer();
    this.idleTimer = setTimeout(() => void this.close('idle timeout'), this.owner.options.idleTimeoutMs);
    this.idleTimer.unref();
  }

  private stopIdleTimer(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }
}

// --- legacy HTTP+SSE ---------------------------------------------------------------------------

/**
 * A legacy session: one `GET /sse` stream carries every server message verbatim; `POST /message`
 * hands the body to the channel and answers `202` once the server side accepted it. Request ids
 * are remembered only so that a server side that ends can be answered for (the client would
 * otherwise wait for its own timeout).
 */
class SseSession extends FrontSession {
  readonly kind = 'sse' as const;
  private stream: SseStream | undefined;
  private res: ServerResponse | undefined;
  private readonly pending = new Set<JsonRpcId>();
  private initTimer: NodeJS.Timeout | undefined;
  private initId: JsonRpcId | undefined;

  attach(req: Request, res: Response, ctx: RequestContext): void {
    this.res = res;
    this.stream = openSseStream(res, ctx.proxy.keepAliveMs);
    this.stream.send('endpoint', messageEndpoint(req, this.server, this.id));
    this.touch(res);
    res.once('close', () => void this.close('client disconnected'));
  }

  async post(body: Buffer, messages: JsonRpcMessage[]): Promise<void> {
    this.lastUsed = ++useClock;
    const ids: JsonRpcId[] = [];
    let initialize: JsonRpcId | undefined;
    for (const m of messages) {
      if (!isRequest(m)) continue;
      // Before sending: an upstream may answer on its stream before it answers the POST.
      ids.push(m.id as JsonRpcId);
      this.pending.add(m.id as JsonRpcId);
      if (m.method === 'initialize') initialize = m.id as JsonRpcId;
    }
    try {
      await this.channel.send(body, messages);
    } catch (err) {
      // The POST's own status reports it: no second answer on the stream.
      for (const id of ids) this.pending.delete(id);
      throw err;
    }
    // From acceptance on: an upstream's time to accept the POST is bounded by the channel.
    if (initialize !== undefined && this.pending.has(initialize) && !this.ending) this.watchInitialize(initialize);
  }

  protected deliver(line: string, message: JsonRpcMessage): void {
    if (message.method === undefined && message.id !== undefined && message.id !== null) {
      this.pending.delete(message.id);
      if (message.id === this.initId) this.clearInitTimer();
    }
    if (this.stream) this.sendEvent(this.stream, this.res!, line);
  }

  /**
   * A server that never answers `initialize` would leave the client waiting on an open stream:
   * `timeout` bounds the handshake. Later requests are bounded by the client's own timeout.
   */
  private watchInitialize(id: JsonRpcId): void {
    this.clearInitTimer();
    this.initId = id;
    const { timeoutMs, noun } = this.owner.options;
    this.initTimer = setTimeout(() => {
      this.owner.deps.logger.warn(`${noun} did not answer initialize`, { server: this.server, timeout_ms: timeoutMs });
      void this.close(`no answer to initialize within ${timeoutMs} ms`);
    }, timeoutMs);
    this.initTimer.unref();
  }

  private clearInitTimer(): void {
    if (this.initTimer) clearTimeout(this.initTimer);
    this.initTimer = undefined;
    this.initId = undefined;
  }

  protected endStreams(code: number, message: string): void {
    this.clearInitTimer();
    const stream = this.stream;
    if (!stream) return;
    for (const id of this.pending) stream.writeRaw('event: message\ndata: ' + jsonRpcErrorBody(code, message, id) + '\n\n');
    this.pending.clear();
    stream.end();
  }

  protected abortStreams(): void {
    this.pending.clear();
    this.res?.destroy();
  }
}

// --- Streamable HTTP -----------------------------------------------------------------------------

/** One POST that carries requests: its response (an SSE stream, or JSON) holds their answers. */
class PostExchange {
  /** Ids of this POST's requests not answered yet; the response ends when it is empty. */
  readonly pending: Set<JsonRpcId>;
  readonly progressTokens: JsonRpcId[] = [];
  /** JSON mode: the answers so far. */
  readonly collected: string[] = [];
  stream: SseStream | undefined;
  timer: NodeJS.Timeout | undefined;
  done = false;

  constructor(
    readonly res: ServerResponse,
    /** The client accepts `text/event-stream`: answers stream; otherwise one JSON body at the end. */
    readonly sse: boolean,
    /** The body was a JSON array: a JSON-mode answer is an array too (JSON-RPC 2.0 §6). */
    readonly batch: boolean,
    readonly initialize: boolean,
    ids: JsonRpcId[],
  ) {
    this.pending = new Set(ids);
  }
}

/**
 * A Streamable HTTP session. Server messages are routed (2025-06-18 §Sending Messages to the
 * Server, §Listening for Messages from the Server):
 * - a response → the POST stream that carried its request;
 * - `notifications/progress` → the POST stream of the request whose `_meta.progressToken` it
 *   names (neither a stdio child nor a legacy SSE upstream says which request a message relates
 *   to, FIELD-NOTES);
 * - anything else the server initiates (logging, list_changed, sampling/elicitation/roots
 *   requests) → the open GET stream, else the most recent open POST stream, else a bounded queue
 *   flushed when a GET stream opens.
 */
class StreamableSession extends FrontSession {
  readonly kind = 'streamable' as const;
  private readonly byRequestId = new Map<JsonRpcId, PostExchange>();
  private readonly byProgressToken = new Map<JsonRpcId, PostExchange>();
  private readonly exchanges = new Set<PostExchange>();
  private getStream: { stream: SseStream; res: ServerResponse } | undefined;
  private queue: string[] = [];

  post(req: Request, res: Response, ctx: RequestContext, body: Buffer, messages: JsonRpcMessage[], initialize: boolean): void {
    this.lastUsed = ++useClock;
    if (initialize) this.touch(res);
    this.keepAliveMs = ctx.proxy.keepAliveMs;
    const ids: JsonRpcId[] = [];
    for (const m of messages) if (isRequest(m)) ids.push(m.id as JsonRpcId);

    if (ids.length === 0) {
      // Only notifications and responses (e.g. a sampling answer): accepted, nothing to wait for.
      this.sendToChannel(body, messages).then(
        () => {
          if (!res.headersSent) res.writeHead(202).end();
        },
        (err: unknown) => replyWithError(res, err),
      );
      return;
    }
    for (const id of ids) {
      if (this.byRequestId.has(id)) {
        sendJsonRpcError(res, 409, JsonRpcCode.InvalidRequest, `Conflict: request id ${JSON.stringify(id)} is already in flight in this session`, { id });
        return;
      }
    }

    const ex = new PostExchange(res, acceptsEventStream(req), firstByte(body) === 0x5b /* [ */, initialize, ids);
    this.exchanges.add(ex);
    for (const id of ids) this.byRequestId.set(id, ex);
    for (const m of messages) {
      const token = m.params?._meta?.progressToken;
      if (isRequest(m) && (typeof token === 'string' || typeof token === 'number')) {
        this.byProgressToken.set(token, ex);
        ex.progressTokens.push(token);
      }
    }
    // Per 2025-06-18 §Sending Messages, a disconnect is not a cancellation: the server goes on,
    // and its late answers are dropped since nobody can receive them.
    res.once('close', () => this.forgetExchange(ex));
    ex.timer = setTimeout(() => this.guard('timeout', () => this.timeOut(ex)), this.owner.options.timeoutMs);
    ex.timer.unref();
    this.sendToChannel(body, messages).catch((err: unknown) => this.guard('send', () => this.refused(ex, err)));
  }

  /** `channel.send`, with a synchronous throw turned into the rejection its callers handle. */
  private sendToChannel(body: Buffer, messages: JsonRpcMessage[]): Promise<void> {
    try {
      return this.channel.send(body, messages);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  openGetStream(req: Request, res: Response, ctx: RequestContext): void {
    if (this.getStream) {
      // One standalone stream per session, so that each server message is delivered once.
      sendJsonRpcError(res, 409, JsonRpcCode.ServerError, 'Conflict: this session already has an open GET stream');
      return;
    }
    this.touch(res);
    const stream = openSseStream(res, ctx.proxy.keepAliveMs);
    const entry = { stream, res };
    this.getStream = entry;
    res.once('close', () => {
      if (this.getStream === entry) this.getStream = undefined;
    });
    const queued = this.queue;
    this.queue = [];
    for (const line of queued) this.sendEvent(stream, res, line);
  }

  protected deliver(line: string, message: JsonRpcMessage): void {
    if (message.method === undefined) {
      const id = message.id;
      const ex = id === undefined || id === null ? undefined : this.byRequestId.get(id);
      if (!ex) {
        log('%s: dropping a response nobody waits for (id %j)', this.server, id);
        return;
      }
      this.byRequestId.delete(id!);
      ex.pending.delete(id!);
      if (ex.pending.size === 0 && ex.sse && !ex.stream) {
        // The only message of this answer (the common case: one request, no progress): one write
        // with Content-Length instead of headers, event and terminating chunk, and no timer.
        this.forgetExchange(ex);
        sendSseBody(ex.res, 'event: message\ndata: ' + line + '\n\n');
        return;
      }
      this.send(ex, line);
      if (ex.pending.size === 0) this.finish(ex);
      return;
    }
    if (message.method === 'notifications/progress') {
      const token = message.params?.progressToken as JsonRpcId | undefined;
      const ex = token === undefined ? undefined : this.byProgressToken.get(token);
      if (ex && ex.sse) {
        this.send(ex, line);
        return;
      }
    }
    this.sendServerInitiated(line);
  }

  private sendServerInitiated(line: string): void {
    if (this.getStream) {
      this.sendEvent(this.getStream.stream, this.getStream.res, line);
      return;
    }
    let latest: PostExchange | undefined;
    for (const ex of this.exchanges) if (ex.sse) latest = ex;
    if (latest) {
      this.send(latest, line);
      return;
    }
    if (this.queue.length >= MAX_QUEUED_MESSAGES) {
      this.queue.shift();
      log('%s: no stream for server messages, dropped the oldest queued one', this.server);
    }
    this.queue.push(line);
  }

  private send(ex: PostExchange, line: string): void {
    if (ex.timer) {
      clearTimeout(ex.timer);
      ex.timer = undefined;
    }
    if (!ex.sse) {
      ex.collected.push(line);
      return;
    }
    // Headers go out with the first message, not before: until then a failure can still be
    // answered with a real status (502/504, CONTRACT §7).
    ex.stream ??= openSseStream(ex.res, this.keepAliveMs);
    this.sendEvent(ex.stream, ex.res, line);
  }

  private finish(ex: PostExchange): void {
    this.forgetExchange(ex);
    this.complete(ex);
  }

  /** Ends the response: the SSE stream, or the JSON body with every answer collected. */
  private complete(ex: PostExchange): void {
    if (ex.sse) {
      ex.stream?.end();
      return;
    }
    const body = ex.batch ? `[${ex.collected.join(',')}]` : ex.collected[0];
    if (!ex.res.writableEnded) {
      ex.res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }).end(body);
    }
  }

  private forgetExchange(ex: PostExchange): void {
    if (ex.done) return;
    ex.done = true;
    if (ex.timer) clearTimeout(ex.timer);
    this.exchanges.delete(ex);
    for (const id of ex.pending) if (this.byRequestId.get(id) === ex) this.byRequestId.delete(id);
    for (const token of ex.progressTokens) if (this.byProgressToken.get(token) === ex) this.byProgressToken.delete(token);
  }

  /** `timeout` (CONTRACT §3): the server side has not started answering this POST. */
  private timeOut(ex: PostExchange): void {
    const { timeoutMs, noun } = this.owner.options;
    this.owner.deps.logger.warn(`${noun} timed out`, { server: this.server, token: this.token, timeout_ms: timeoutMs });
    const ids = [...ex.pending];
    this.fail(ex, 504, JsonRpcCode.ServerError, `Gateway Timeout: ${this.serverSide} did not answer within ${timeoutMs / 1000} s`);
    if (ex.initialize) {
      void this.close('no answer to initialize');
      return;
    }
    // The server may still be working on them: tell it to stop (2025-06-18 §Cancellation).
    const cancellations: JsonRpcMessage[] = ids.map((id) => ({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason: 'timeout' } }));
    if (cancellations.length > 0 && !this.ending) this.sendToChannel(bodyOf(cancellations), cancellations).catch(() => undefined);
  }

  /** The server side did not take the POST's messages (upstream refused, unreachable, too slow). */
  private refused(ex: PostExchange, err: unknown): void {
    const failure = err instanceof HttpError ? err : new HttpError(502, JsonRpcCode.ServerError, `Bad Gateway: ${this.serverSide} failed`);
    this.fail(ex, failure.status, failure.code, failure.message);
    if (ex.initialize) void this.close('initialize refused');
  }

  /** Answers every pending request of `ex` with an error: as a status while nothing was sent yet. */
  private fail(ex: PostExchange, status: number, code: number, message: string): void {
    if (ex.done) return;
    const ids = [...ex.pending];
    this.forgetExchange(ex);
    if (!ex.stream && ex.collected.length === 0 && !ex.res.headersSent) {
      if (ex.initialize) ex.res.removeHeader('Mcp-Session-Id');
      if (!ex.batch) {
        sendJsonRpcError(ex.res, status, code, message, { id: ids[0] });
      } else {
        const body = `[${ids.map((id) => jsonRpcErrorBody(code, message, id)).join(',')}]`;
        ex.res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }).end(body);
      }
      return;
    }
    for (const id of ids) this.send(ex, jsonRpcErrorBody(code, message, id));
    this.complete(ex);
  }

  protected endStreams(code: number, message: string): void {
    for (const ex of [...this.exchanges]) this.fail(ex, 502, code, message);
    this.getStream?.stream.end();
    this.getStream = undefined;
    this.queue = [];
  }

  protected abortStreams(): void {
    for (const ex of [...this.exchanges]) {
      this.forgetExchange(ex);
      ex.res.destroy();
    }
    this.getStream?.res.destroy();
    this.getStream = undefined;
    this.queue = [];
  }
}

// --- helpers ---------------------------------------------------------------------------------------

function gone(res: ServerResponse): boolean {
  return res.writableEnded || res.destroyed || res.socket === null || res.socket.destroyed;
}

/** 2025-06-18 §Sending Messages: the client lists both types; one that cannot take a stream gets JSON. */
function acceptsEventStream(req: Request): boolean {
  const accept = req.headers.accept;
  return accept !== undefined && accept.includes('text/event-stream');
}

function sessionNotFound(req: Request): HttpError {
  // Drain what the client sent: the 404 must not wait on, or be cut by, an unread body.
  req.resume();
  return new HttpError(404, JsonRpcCode.ServerError, SESSION_GONE);
}

/** The last step of a request's promise chain: must not throw, or the rejection is unhandled. */
function replyWithError(res: ServerResponse, err: unknown, id?: unknown): void {
  try {
    if (err instanceof HttpError) {
      sendHttpError(res, err, id);
      return;
    }
    log('request failed: %s', (err as Error)?.message);
    sendJsonRpcError(res, 500, JsonRpcCode.InternalError, 'Internal error', { id });
  } catch (failure) {
    log('could not answer a failed request: %s', (failure as Error)?.name);
    res.destroy();
  }
}
