// A Streamable HTTP client's session over a channel (MCP 2025-06-18 §Transports).
import type { ServerResponse } from 'node:http';
import type { Request, Response } from 'express';
import { isRequest, type JsonRpcMessage } from '../wire/body';
import { bodyOf } from './channel';
import type { Inbound } from '../pipeline/inbound';
import type { Admission, Refusal } from '../pipeline/pipeline';
import { HttpError, JsonRpcCode, jsonRpcErrorBody, sendJsonRpcError } from '../wire/errors';
import { debug } from '../logger';
import { openSseStream, sendSseBody, type SseStream } from '../wire/sse';
import type { RequestContext } from '../transport';
import { FrontSession, acceptsEventStream, replyWithError } from './front-session';

const log = debug.extend('front');

/**
 * Server-initiated messages kept for a Streamable session until a `GET` stream opens (the SDK
 * client opens it only after `notifications/initialized`). Oldest dropped beyond this.
 */
const MAX_QUEUED_MESSAGES = 1000;

type JsonRpcId = string | number;

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
 *   to, so the SDK's own routing cannot be relied on);
 * - anything else the server initiates (logging, list_changed, sampling/elicitation/roots
 *   requests) → the open GET stream, else the most recent open POST stream, else a bounded queue
 *   flushed when a GET stream opens.
 */
export class StreamableFrontSession extends FrontSession {
  readonly kind = 'streamable' as const;
  private readonly byRequestId = new Map<JsonRpcId, PostExchange>();
  private readonly byProgressToken = new Map<JsonRpcId, PostExchange>();
  private readonly exchanges = new Set<PostExchange>();
  private getStream: { stream: SseStream; res: ServerResponse } | undefined;
  private queue: string[] = [];

  /**
   * `admission` is the pipeline's decision on `inbound`: refused requests are answered in this
   * POST's response like any other (MCP 2025-06-18 §Sending Messages to the Server), merged with
   * the server's answers to the rest.
   */
  post(req: Request, res: Response, ctx: RequestContext, inbound: Inbound, admission: Admission, initialize: boolean): void {
    this.markUsed();
    if (initialize) this.touch(res);
    this.keepAliveMs = ctx.proxy.keepAliveMs;
    // The forwarded requests: their ids are unique in this session, the pipeline reserved them.
    const ids: JsonRpcId[] = admission.exchanges.map((e) => e.id);
    const forward = admission.forward;

    if (ids.length === 0 && admission.refusals.length === 0 && forward !== undefined) {
      // Only notifications and responses (e.g. a sampling answer): accepted, nothing to wait for.
      this.sendToChannel(forward.body, forward.messages).then(
        () => {
          if (!res.headersSent) res.writeHead(202).end();
        },
        (err: unknown) => replyWithError(res, err),
      );
      return;
    }

    const ex = new PostExchange(res, acceptsEventStream(req), inbound.isBatch, initialize, ids);
    this.exchanges.add(ex);
    for (const id of ids) this.byRequestId.set(id, ex);
    for (const m of forward?.messages ?? []) {
      const token = m.params?._meta?.progressToken;
      if (isRequest(m) && (typeof token === 'string' || typeof token === 'number')) {
        this.byProgressToken.set(token, ex);
        ex.progressTokens.push(token);
      }
    }
    // Per 2025-06-18 §Sending Messages, a disconnect is not a cancellation: the server goes on,
    // and its late answers are dropped since nobody can receive them.
    res.once('close', () => {
      if (!ex.done) for (const id of ex.pending) this.inFlight.fail(id, 'client_gone');
      this.forgetExchange(ex);
    });
    ex.timer = setTimeout(() => this.guard('timeout', () => this.timeOut(ex)), this.owner.options.timeoutMs);
    ex.timer.unref();
    this.inject(ex, admission.refusals);
    if (forward === undefined) return;
    this.sendToChannel(forward.body, forward.messages).catch((err: unknown) => this.guard('send', () => this.refused(ex, err)));
  }

  /**
   * Requests the pipeline refused: answered in their POST's response, the server never sees them.
   * They hold no place among the POST's pending ids (a refused id may equal a forwarded one).
   */
  private inject(ex: PostExchange, refusals: readonly Refusal[]): void {
    if (refusals.length === 0 || ex.done) return;
    if (ex.pending.size === 0) {
      // Nothing else to wait for: the whole answer at once.
      this.forgetExchange(ex);
      if (ex.sse && refusals.length === 1) return sendSseBody(ex.res, 'event: message\ndata: ' + refusals[0].line + '\n\n');
      for (const refusal of refusals) this.send(ex, refusal.line, true);
      this.complete(ex);
      return;
    }
    for (const refusal of refusals) this.send(ex, refusal.line, true);
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
      this.respond(ex, id!, line);
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

  /** The server's answer to request `id` of `ex`. */
  private respond(ex: PostExchange, id: JsonRpcId, line: string): void {
    this.byRequestId.delete(id);
    ex.pending.delete(id);
    if (ex.pending.size === 0 && ex.sse && !ex.stream) {
      // The only message of this answer (the common case: one request, no progress): one write
      // with Content-Length instead of headers, event and terminating chunk, and no timer.
      this.forgetExchange(ex);
      sendSseBody(ex.res, 'event: message\ndata: ' + line + '\n\n');
      return;
    }
    this.send(ex, line);
    if (ex.pending.size === 0) this.finish(ex);
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

  private send(ex: PostExchange, line: string, local = false): void {
    if (ex.timer && !local) {
      clearTimeout(ex.timer);
      ex.timer = undefined;
    }
    if (!ex.sse) {
      ex.collected.push(line);
      return;
    }
    // Headers go out with the first message, not before: until then a failure can still be
    // answered with a real status (502/504, README: Authentication and status codes).
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

  /** `timeout` (README: Configuration): the server side has not started answering this POST. */
  private timeOut(ex: PostExchange): void {
    const { timeoutMs, noun } = this.owner.options;
    const ids = [...ex.pending];
    // One log line per POST, however many requests it carried: the first failure carries it.
    ids.forEach((id, i) => this.inFlight.fail(id, 'timeout', i === 0 ? { event: `${noun} timed out`, server: this.server, token: this.token, timeout_ms: timeoutMs } : undefined));
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
    for (const id of ex.pending) this.inFlight.fail(id, 'upstream_error');
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
