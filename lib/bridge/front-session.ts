// One bridged MCP session over one channel, whatever the client's transport: backpressure, faults,
// and the one way every session ends. Its id, token, idle clock and counts are its registry handle's.
import type { ServerResponse } from 'node:http';
import type { Request } from 'express';
import type { JsonRpcMessage } from '../wire/body';
import type { Channel } from './channel';
import { HttpError, JsonRpcCode, internalError, sendHttpError, sessionGone } from '../wire/errors';
import { debug, logFault } from '../logger';
import type { SessionHandle } from '../sessions/registry';
import type { SseStream } from '../wire/sse';
import type { RequestContext } from '../transport';
import type { FrontOptions } from './front-options';
import type { TransportDeps } from '../transport';
import { InFlight } from '../pipeline/pipeline';

const log = debug.extend('front');

/** What a session needs of the sessions of its server (front-sessions.ts): their options and dependencies. */
export interface SessionOwner {
  readonly options: FrontOptions;
  readonly deps: TransportDeps;
}

/**
 * One MCP session over one channel. Hands each server message to the transport-specific
 * `deliver`; ends on any path (client, idle, revocation, server side gone) through `close`, which
 * ends the server side too.
 */
export abstract class FrontSession {
  abstract readonly kind: 'sse' | 'streamable';
  readonly server: string;
  readonly token: string;
  /** Whose session it is (`RequestContext.identity`): only requests of the same identity find it. */
  readonly identity: string;
  readonly channel: Channel;
  /** Its entry in the session registry, from the moment it counts towards `maxSessions`. */
  handle: SessionHandle | undefined;
  /** What pending requests are answered with when the session ends. */
  private endMessage: string | undefined;

  get id(): string {
    return this.handle!.id;
  }

  /** Set when the session starts ending; no new messages are accepted from then on. */
  get ending(): boolean {
    return this.handle?.ending ?? false;
  }

  /**
   * The client sent something: this session is now the most recently used (which picks whom to
   * evict). Streams do not count: SDK clients keep one open on every session, used or not.
   */
  protected markUsed(): void {
    this.handle?.touch();
  }
  protected keepAliveMs: number;
  /**
   * The session's requests waiting for the server's answer: the pipeline reserves their ids here
   * when it admits them, and its answer point matches the server's responses against them.
   */
  readonly inFlight: InFlight;
  /** Responses whose socket is full: the channel stays paused until all of them drained or closed. */
  private readonly blockedBy = new Set<ServerResponse>();

  /** `inFlight`: where the request that opens the session was admitted, if one did. */
  constructor(
    protected readonly owner: SessionOwner,
    ctx: RequestContext,
    inFlight?: InFlight,
  ) {
    this.server = owner.options.server;
    this.token = ctx.token;
    this.identity = ctx.identity;
    this.keepAliveMs = ctx.proxy.keepAliveMs;
    this.channel = owner.options.newChannel(ctx.token, ctx.proxy, ctx);
    this.inFlight = inFlight ?? new InFlight(owner.deps.pipeline, { server: this.server, token: this.token });
  }

  open(): Promise<void> {
    return this.channel.open({
      message: (line, message) => {
        // Every server message passes the pipeline's answer point, which may replace a response
        // or drop one that answers no request of this session.
        if (this.ending) return;
        this.guard('server message', () => {
          const out = this.inFlight.answer(message, line);
          if (out !== undefined) this.deliver(out, message);
        });
      },
      closed: (reason, clientMessage) => {
        this.endMessage ??= clientMessage;
        void this.close(reason);
      },
      session: { id: this.id, route: this.kind },
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
    return this.handle?.end(reason) ?? Promise.resolve();
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
   * The handle's teardown: every request still pending is answered, every stream ended, the
   * server side closed. Never rejects: callers do not wait for it (`void close()` from timers and
   * `close` events), so a rejection would be unhandled.
   */
  async teardown(reason: string): Promise<void> {
    this.inFlight.failAll('session_closed');
    try {
      this.endStreams(JsonRpcCode.ServerError, this.endMessage ?? `session closed: ${reason}`);
    } catch (err) {
      this.logFault('close', err);
      this.abortStreams();
    }
    try {
      await this.channel.close();
    } catch (err) {
      this.logFault('close', err);
    }
    log('%s: %s session ended (%s)', this.server, this.kind, reason);
  }

  /**
   * Counts `res` as activity until it ends; the registry runs the idle clock only while nothing
   * is open (only Streamable sessions can be idle, an SSE session always has its stream).
   */
  touch(res: ServerResponse): void {
    this.handle?.busyUntilClosed(res);
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
  return sessionGone();
}

/** The last step of a request's promise chain: must not throw, or the rejection is unhandled. */
export function replyWithError(res: ServerResponse, err: unknown, id?: unknown): void {
  try {
    if (err instanceof HttpError) {
      sendHttpError(res, err, id);
      return;
    }
    log('request failed: %s', (err as Error)?.message);
    sendHttpError(res, internalError(), id);
  } catch (failure) {
    log('could not answer a failed request: %s', (failure as Error)?.name);
    res.destroy();
  }
}
