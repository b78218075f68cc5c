// One bridged MCP session over one channel, whatever the client's transport: ids, token,
// backpressure, idle timer, and the one way every session ends.
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Request } from 'express';
import type { JsonRpcMessage } from '../wire/body';
import { SESSION_GONE, type Channel } from './channel';
import { HttpError, JsonRpcCode, sendHttpError, sendJsonRpcError } from '../wire/errors';
import { debug, logFault } from '../logger';
import type { Session } from '../sessions/registry';
import type { SseStream } from '../wire/sse';
import type { RequestContext } from '../transport';
import type { FrontSessions } from './front-sessions';
import { InFlight } from '../pipeline/pipeline';

const log = debug.extend('front');

/** Orders sessions by last use without clock ties (least recently used = smallest). */
let useClock = 0;

/**
 * One MCP session over one channel. Hands each server message to the transport-specific
 * `deliver`; ends on any path (client, idle, revocation, server side gone) through `close`, which
 * ends the server side too.
 */
export abstract class FrontSession implements Session {
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

  /** The client sent something: this session is now the most recently used. */
  protected markUsed(): void {
    this.lastUsed = ++useClock;
  }
  protected keepAliveMs: number;
  private closing: Promise<void> | undefined;
  /** The session's requests waiting for the server's answer: the pipeline's answer point matches them. */
  protected readonly inFlight: InFlight;
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
    this.inFlight = new InFlight(owner.deps.pipeline);
  }

  open(): Promise<void> {
    return this.channel.open({
      message: (line, message) => {
        // Every server message passes the pipeline's answer point, which may replace a response.
        if (!this.ending) this.guard('server message', () => this.deliver(this.inFlight.answer(message, line), message));
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
    this.inFlight.failAll('session_closed');
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

// --- helpers ---------------------------------------------------------------------------------------

export function gone(res: ServerResponse): boolean {
  return res.writableEnded || res.destroyed || res.socket === null || res.socket.destroyed;
}

/** 2025-06-18 §Sending Messages: the client lists both types; one that cannot take a stream gets JSON. */
export function acceptsEventStream(req: Request): boolean {
  const accept = req.headers.accept;
  return accept !== undefined && accept.includes('text/event-stream');
}

export function sessionNotFound(req: Request): HttpError {
  // Drain what the client sent: the 404 must not wait on, or be cut by, an unread body.
  req.resume();
  return new HttpError(404, JsonRpcCode.ServerError, SESSION_GONE);
}

/** The last step of a request's promise chain: must not throw, or the rejection is unhandled. */
export function replyWithError(res: ServerResponse, err: unknown, id?: unknown): void {
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
