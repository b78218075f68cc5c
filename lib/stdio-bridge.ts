// Local stdio servers, reachable over legacy HTTP+SSE and Streamable HTTP (CONTRACT §4).
//
// Isolation model: every MCP session — one legacy SSE connection, or one Streamable HTTP
// `initialize` — gets its own child process. The bridge is a relay, not an MCP implementation:
// the client's own `initialize` reaches the child and every message passes verbatim, so no state,
// JSON-RPC id or notification can cross between clients. It parses child output only to route it.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import type { Request, Response } from 'express';
import { isRequest, parseJsonRpc, readBody, type JsonRpcMessage } from './body';
import { DEFAULT_GRACE_MS, spawnStdioChild, type ExitInfo, type StdioChild } from './child-process';
import type { StdioServer } from './config';
import { HttpError, JsonRpcCode, jsonRpcErrorBody, sendHttpError, sendJsonRpcError } from './errors';
import { debug } from './logger';
import type { Session } from './sessions';
import { openSseStream, type SseStream } from './sse';
import { messageEndpoint, querySessionId, type RequestContext, type ServerTransport, type TransportDeps } from './transport';

const log = debug.extend('stdio');

/** Sent with `503` when a server is at `maxSessions`: a slot frees when some session ends. */
const RETRY_AFTER_SECONDS = '5';

/**
 * Server-initiated messages kept for a Streamable session until a `GET` stream opens (the SDK
 * client opens it only after `notifications/initialized`). Oldest dropped beyond this.
 */
const MAX_QUEUED_MESSAGES = 1000;

/**
 * A stdout line longer than this ends the session: V8 cannot make a string much beyond 512 MiB,
 * and a child that never writes a newline would otherwise grow the buffer without end.
 */
const MAX_LINE_BYTES = 128 * 1024 * 1024;

const NEWLINE = 0x0a;

type JsonRpcId = string | number;

/** A stdio server's transport: spawns one child per session (see the file comment). */
export function createStdioTransport(server: StdioServer, deps: TransportDeps): ServerTransport {
  return new StdioTransport(server, deps);
}

class StdioTransport implements ServerTransport {
  /** Sessions whose child may still be running: `maxSessions` counts processes, not registry entries. */
  private readonly live = new Set<StdioSession>();
  private closed = false;

  constructor(
    readonly server: StdioServer,
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

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.live].map((s) => s.close('server closed')));
  }

  forget(session: StdioSession): void {
    this.live.delete(session);
  }

  // --- legacy HTTP+SSE (MCP 2024-11-05 §Transports) -------------------------------------------

  private async openSse(req: Request, res: Response, ctx: RequestContext): Promise<void> {
    const session = new SseSession(this, ctx);
    if (!(await this.start(session, res))) return;
    session.attach(req, res, ctx);
  }

  private async postMessage(req: Request, res: Response, ctx: RequestContext): Promise<void> {
    const id = querySessionId(req);
    if (id === undefined) throw new HttpError(400, JsonRpcCode.InvalidRequest, 'Bad Request: sessionId query parameter is required');
    const found = this.deps.sessions.find(this.server.name, 'sse', id, ctx.token);
    if (!(found instanceof SseSession) || !this.live.has(found) || found.ending) throw sessionNotFound(req);
    const body = await readBody(req, ctx.proxy.maxBodyBytes);
    const messages = parseJsonRpc(body);
    if (found.ending) throw sessionNotFound(req);
    await found.post(body, messages);
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
      if (!messages.some((m) => m.method === 'initialize')) {
        throw new HttpError(400, JsonRpcCode.InvalidRequest, 'Bad Request: Mcp-Session-Id header is required');
      }
      // The spec's initialization request stands alone (2025-06-18 §Lifecycle); a batch mixing it
      // with other messages would reach a child that is not initialized yet.
      if (messages.length !== 1 || !isRequest(messages[0])) {
        throw new HttpError(400, JsonRpcCode.InvalidRequest, 'Bad Request: initialize must be sent alone');
      }
      const session = new StreamableSession(this, ctx);
      if (!(await this.start(session, res))) return;
      this.deps.sessions.add(session);
      res.setHeader('Mcp-Session-Id', session.id);
      session.post(req, res, ctx, body, messages, true);
      return;
    }

    const found = this.deps.sessions.find(this.server.name, 'streamable', id, ctx.token);
    if (!(found instanceof StreamableSession) || !this.live.has(found) || found.ending) throw sessionNotFound(req);
    if (req.method === 'GET') return found.openGetStream(req, res, ctx);
    if (req.method === 'DELETE') {
      // The session is unusable from here on; the child's stop (grace periods) is not waited for.
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
    // The child may have died while the body was arriving.
    if (found.ending) throw sessionNotFound(req);
    found.post(req, res, ctx, body, messages, false);
  }

  // --- common -----------------------------------------------------------------------------------

  /**
   * Spawns the session's child and waits until it runs. `false` when the answer is already sent:
   * at the limit (`503`), closed, or the command could not start (`502`, at once — never a hang).
   */
  private async start(session: StdioSession, res: ServerResponse): Promise<boolean> {
    if (this.closed) {
      sendJsonRpcError(res, 503, JsonRpcCode.ServerError, 'Service Unavailable: server is shutting down', {
        headers: { 'Retry-After': RETRY_AFTER_SECONDS },
      });
      return false;
    }
    if (this.live.size >= this.server.maxSessions) {
      this.deps.logger.warn('stdio sessions exhausted', { server: this.server.name, token: session.token, max_sessions: this.server.maxSessions });
      sendJsonRpcError(res, 503, JsonRpcCode.ServerError, `Service Unavailable: server "${this.server.name}" has reached its maximum of ${this.server.maxSessions} sessions`, {
        headers: { 'Retry-After': RETRY_AFTER_SECONDS },
      });
      return false;
    }
    this.live.add(session);
    try {
      await session.spawn().started;
    } catch (err) {
      // Node reports a missing working directory as the command's ENOENT: say which it is.
      const cwdMissing = this.server.cwd !== undefined && !existsSync(this.server.cwd);
      const code = cwdMissing ? 'ENOENT: cwd does not exist' : ((err as NodeJS.ErrnoException).code ?? 'unknown');
      this.deps.logger.error('stdio server failed to start', { server: this.server.name, error: code });
      void session.close(`stdio server failed to start (${code})`);
      sendJsonRpcError(res, 502, JsonRpcCode.ServerError, `Bad Gateway: stdio server "${this.server.name}" failed to start (${code})`);
      return false;
    }
    if (session.ending || gone(res)) {
      void session.close('client went away before the server started');
      if (!res.writableEnded) sendJsonRpcError(res, 503, JsonRpcCode.ServerError, 'Service Unavailable: server is shutting down');
      return false;
    }
    session.started = true;
    this.deps.logger.info('stdio session started', {
      server: this.server.name,
      token: session.token,
      transport: session.kind,
      pid: session.child.pid,
    });
    return true;
  }
}

/**
 * One MCP session = one child process. Splits the child's stdout into messages and hands each
 * to the transport-specific `deliver`; ends on any path (client, idle, revocation, child death)
 * through `close`, which stops the process tree.
 */
abstract class StdioSession implements Session {
  abstract readonly kind: 'sse' | 'streamable';
  readonly id = randomBytes(32).toString('base64url');
  readonly server: string;
  readonly token: string;
  /** Set by `spawn()`, which the transport calls only once the session is within its limits. */
  child!: StdioChild;
  /** Set when the session starts ending; no new messages are accepted from then on. */
  ending = false;
  /** The child runs and the client was told so (endpoint event, or the initialize POST). */
  started = false;
  protected keepAliveMs: number;
  private closing: Promise<void> | undefined;
  private partial: Buffer[] = [];
  private partialBytes = 0;
  /** Responses whose socket is full: stdout stays paused until all of them drained or closed. */
  private readonly blockedBy = new Set<ServerResponse>();

  constructor(
    protected readonly owner: StdioTransport,
    ctx: RequestContext,
  ) {
    this.server = owner.server.name;
    this.token = ctx.token;
    this.keepAliveMs = ctx.proxy.keepAliveMs;
  }

  spawn(): StdioChild {
    const { server } = this.owner;
    this.child = spawnStdioChild({ name: server.name, command: server.command, args: server.args, env: server.env, cwd: server.cwd });
    this.child.process.stdout!.on('data', (chunk: Buffer) => this.onStdout(chunk));
    void this.child.finished.then((info) => this.onChildFinished(info));
    return this.child;
  }

  /** Ends the session; idempotent; resolves when the process tree is gone. */
  close(reason: string): Promise<void> {
    this.closing ??= this.shutdown(reason, `session closed: ${reason}`);
    return this.closing;
  }

  /** Answers everything pending with a JSON-RPC error and ends every stream. */
  protected abstract endStreams(code: number, message: string): void;

  /** One message from the child: `line` is its exact text, `message` its parse. */
  protected abstract deliver(line: string, message: JsonRpcMessage): void;

  /**
   * Writes client messages to the child, one line each (the stdio transport's framing, MCP
   * 2025-06-18 §stdio: newline-delimited, no embedded newlines). A single message whose body has
   * no newline goes as received; anything else is re-serialized, a batch split into its messages
   * (SDK stdio servers do not accept JSON-RPC batches). Resolves when stdin accepted it, so a fast
   * client is slowed to the child's pace instead of buffering in the proxy.
   */
  protected write(body: Buffer, messages: JsonRpcMessage[]): Promise<void> {
    const stdin = this.child.process.stdin!;
    if (this.ending || !stdin.writable) return Promise.resolve();
    let flushed: boolean;
    if (messages.length === 1 && body.indexOf(NEWLINE) === -1 && firstByte(body) === 0x7b /* { */) {
      stdin.cork();
      stdin.write(body);
      flushed = stdin.write('\n');
      stdin.uncork();
    } else {
      let text = '';
      for (const m of messages) text += JSON.stringify(m) + '\n';
      flushed = stdin.write(text);
    }
    if (flushed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        stdin.off('drain', done);
        stdin.off('close', done);
        resolve();
      };
      stdin.once('drain', done);
      stdin.once('close', done);
    });
  }

  /** Sends `line` as an SSE `message` event; pauses the child's stdout while the socket is full. */
  protected sendEvent(stream: SseStream, res: ServerResponse, line: string): void {
    stream.writeRaw('event: message\ndata: ' + line + '\n\n');
    if (res.writableNeedDrain) this.holdStdout(res);
  }

  /**
   * Backpressure: a slow client pauses the child's stdout (and so, once the pipe is full, the
   * child) instead of the proxy buffering without bound.
   */
  private holdStdout(res: ServerResponse): void {
    if (this.blockedBy.has(res)) return;
    const stdout = this.child.process.stdout!;
    if (this.blockedBy.size === 0) stdout.pause();
    this.blockedBy.add(res);
    const release = () => {
      res.off('drain', release);
      res.off('close', release);
      this.blockedBy.delete(res);
      if (this.blockedBy.size === 0) stdout.resume();
    };
    res.on('drain', release);
    res.on('close', release);
  }

  /**
   * Newline framing of stdout. Chunks are scanned with `indexOf` and a line is decoded once, when
   * complete; pieces of a line that spans chunks are kept as Buffers and joined once, so a
   * multi-megabyte result costs one copy, not one per chunk.
   */
  private onStdout(chunk: Buffer): void {
    let start = 0;
    let nl = chunk.indexOf(NEWLINE);
    while (nl !== -1) {
      let line: string;
      if (this.partial.length > 0) {
        this.partial.push(chunk.subarray(start, nl));
        line = Buffer.concat(this.partial, this.partialBytes + nl - start).toString('utf8');
        this.partial = [];
        this.partialBytes = 0;
      } else {
        line = chunk.toString('utf8', start, nl);
      }
      this.onLine(line);
      start = nl + 1;
      nl = chunk.indexOf(NEWLINE, start);
    }
    if (start < chunk.length) {
      this.partial.push(start === 0 ? chunk : chunk.subarray(start));
      this.partialBytes += chunk.length - start;
      if (this.partialBytes > MAX_LINE_BYTES) {
        this.partial = [];
        this.partialBytes = 0;
        this.owner.deps.logger.error('stdio server output line too long', { server: this.server, limit: MAX_LINE_BYTES });
        void this.close('stdio server wrote a line over the size limit');
      }
    }
  }

  private onLine(raw: string): void {
    if (this.ending) return;
    let line = raw.charCodeAt(raw.length - 1) === 13 /* \r */ ? raw.slice(0, -1) : raw;
    let first = line.charCodeAt(0);
    if (first !== 0x7b /* { */ && first !== 0x5b /* [ */) {
      line = line.trim();
      first = line.charCodeAt(0);
      if (first !== 0x7b && first !== 0x5b) {
        // Servers that print banners or logs on stdout: not protocol, not for the client.
        if (line) log('%s: ignoring non-JSON stdout line (%d chars)', this.server, line.length);
        return;
      }
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      log('%s: ignoring malformed JSON on stdout (%d chars)', this.server, line.length);
      return;
    }
    if (Array.isArray(parsed)) {
      for (const m of parsed) if (isMessage(m)) this.deliver(JSON.stringify(m), m);
    } else if (isMessage(parsed)) {
      this.deliver(line, parsed);
    }
  }

  private onChildFinished(info: ExitInfo): void {
    // A command that never ran is reported by StdioTransport.start, once.
    if (this.closing || this.child.pid === undefined) return;
    // Not asked to stop: the server crashed or quit. Operators see it; clients get errors below.
    this.owner.deps.logger.error('stdio server exited', {
      server: this.server,
      code: info.code,
      signal: info.signal,
      token: this.token,
      pid: this.child.pid,
    });
    const how = info.signal ? `signal ${info.signal}` : `code ${info.code}`;
    this.closing = this.shutdown(`stdio server exited (${how})`, `stdio server "${this.server}" exited (${how})`);
  }

  /** `clientMessage` answers every request still pending. */
  private async shutdown(reason: string, clientMessage: string): Promise<void> {
    this.ending = true;
    this.owner.deps.sessions.remove(this);
    this.stopIdleTimer();
    this.endStreams(JsonRpcCode.ServerError, clientMessage);
    await this.child.stop(DEFAULT_GRACE_MS);
    this.owner.forget(this);
    if (this.started) {
      this.owner.deps.logger.info('stdio session ended', { server: this.server, token: this.token, transport: this.kind, reason });
    }
    log('%s: session ended (%s), pid %d gone', this.server, reason, this.child.pid);
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
    this.idleTimer = setTimeout(() => void this.close('idle timeout'), this.owner.server.idleTimeoutMs);
    this.idleTimer.unref();
  }

  private stopIdleTimer(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }
}

// --- legacy HTTP+SSE ---------------------------------------------------------------------------

/**
 * A legacy session: one `GET /sse` stream carries every child message verbatim; `POST /message`
 * writes to stdin and answers `202`. Request ids are remembered only so that a child that dies
 * can be answered for (the client would otherwise wait for its own timeout).
 */
class SseSession extends StdioSession {
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
    this.owner.deps.sessions.add(this);
    this.touch(res);
    res.once('close', () => void this.close('client disconnected'));
  }

  async post(body: Buffer, messages: JsonRpcMessage[]): Promise<void> {
    for (const m of messages) {
      if (!isRequest(m)) continue;
      this.pending.add(m.id as JsonRpcId);
      if (m.method === 'initialize') this.watchInitialize(m.id as JsonRpcId);
    }
    await this.write(body, messages);
  }

  protected deliver(line: string, message: JsonRpcMessage): void {
    if (message.method === undefined && message.id !== undefined && message.id !== null) {
      this.pending.delete(message.id);
      if (message.id === this.initId) this.clearInitTimer();
    }
    if (this.stream) this.sendEvent(this.stream, this.res!, line);
  }

  /**
   * A child that never answers `initialize` would leave the client waiting on an open stream:
   * `timeout` bounds the handshake. Later requests are bounded by the client's own timeout.
   */
  private watchInitialize(id: JsonRpcId): void {
    this.clearInitTimer();
    this.initId = id;
    this.initTimer = setTimeout(() => {
      this.owner.deps.logger.warn('stdio server did not answer initialize', { server: this.server, timeout_ms: this.owner.server.timeoutMs });
      void this.close(`no answer to initialize within ${this.owner.server.timeoutMs} ms`);
    }, this.owner.server.timeoutMs);
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
 * A Streamable HTTP session. Child messages are routed (2025-06-18 §Sending Messages to the
 * Server, §Listening for Messages from the Server):
 * - a response → the POST stream that carried its request;
 * - `notifications/progress` → the POST stream of the request whose `_meta.progressToken` it
 *   names (the child's stdio transport drops `relatedRequestId`, FIELD-NOTES);
 * - anything else the server initiates (logging, list_changed, sampling/elicitation/roots
 *   requests) → the open GET stream, else the most recent open POST stream, else a bounded queue
 *   flushed when a GET stream opens.
 */
class StreamableSession extends StdioSession {
  readonly kind = 'streamable' as const;
  private readonly byRequestId = new Map<JsonRpcId, PostExchange>();
  private readonly byProgressToken = new Map<JsonRpcId, PostExchange>();
  private readonly exchanges = new Set<PostExchange>();
  private getStream: { stream: SseStream; res: ServerResponse } | undefined;
  private queue: string[] = [];

  post(req: Request, res: Response, ctx: RequestContext, body: Buffer, messages: JsonRpcMessage[], initialize: boolean): void {
    if (initialize) this.touch(res);
    this.keepAliveMs = ctx.proxy.keepAliveMs;
    const ids: JsonRpcId[] = [];
    for (const m of messages) if (isRequest(m)) ids.push(m.id as JsonRpcId);

    if (ids.length === 0) {
      // Only notifications and responses (e.g. a sampling answer): accepted, nothing to wait for.
      void this.write(body, messages).then(() => {
        if (!res.writableEnded) res.writeHead(202).end();
      });
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
    // Per 2025-06-18 §Sending Messages, a disconnect is not a cancellation: the child goes on,
    // and its late answers are dropped since nobody can receive them.
    res.once('close', () => this.forgetExchange(ex));
    ex.timer = setTimeout(() => this.timeOut(ex), this.owner.server.timeoutMs);
    ex.timer.unref();
    void this.write(body, messages);
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

  /** `timeout` (CONTRACT §3): the child has not started answering this POST. */
  private timeOut(ex: PostExchange): void {
    const seconds = this.owner.server.timeoutMs / 1000;
    this.owner.deps.logger.warn('stdio server timed out', { server: this.server, token: this.token, timeout_ms: this.owner.server.timeoutMs });
    const ids = [...ex.pending];
    this.fail(ex, 504, JsonRpcCode.ServerError, `Gateway Timeout: stdio server "${this.server}" did not answer within ${seconds} s`);
    if (ex.initialize) {
      void this.close('no answer to initialize');
      return;
    }
    // The child may still be working on them: tell it to stop (2025-06-18 §Cancellation).
    let text = '';
    for (const id of ids) text += JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason: 'timeout' } }) + '\n';
    const stdin = this.child.process.stdin!;
    if (stdin.writable) stdin.write(text);
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
}

// --- helpers ---------------------------------------------------------------------------------------

function gone(res: ServerResponse): boolean {
  return res.writableEnded || res.destroyed || res.socket === null || res.socket.destroyed;
}

function isMessage(value: unknown): value is JsonRpcMessage {
  return typeof value === 'object' && value !== null;
}

function firstByte(body: Buffer): number {
  for (let i = 0; i < body.length; i++) {
    const b = body[i];
    if (b !== 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) return b;
  }
  return -1;
}

/** 2025-06-18 §Sending Messages: the client lists both types; one that cannot take a stream gets JSON. */
function acceptsEventStream(req: Request): boolean {
  const accept = req.headers.accept;
  return accept !== undefined && accept.includes('text/event-stream');
}

function sessionNotFound(req: Request): HttpError {
  // Drain what the client sent: the 404 must not wait on, or be cut by, an unread body.
  req.resume();
  return new HttpError(404, JsonRpcCode.ServerError, 'Not Found: unknown or ended session; initialize a new one');
}

function replyWithError(res: ServerResponse, err: unknown): void {
  if (err instanceof HttpError) {
    sendHttpError(res, err);
    return;
  }
  log('request failed: %s', (err as Error)?.message);
  sendJsonRpcError(res, 500, JsonRpcCode.InternalError, 'Internal error');
}
