// A remote Streamable HTTP session (MCP 2025-06-18 / 2025-11-25 transport) as a channel, so that a
// legacy SSE client can use a Streamable HTTP server: each client message is POSTed upstream,
// every message of every answer (JSON or an event stream) comes out of the channel in order, and
// the upstream's standalone GET stream is read for what the server initiates on its own.
import type http from 'node:http';
import type { ClientRequest, IncomingMessage } from 'node:http';
import type { JsonRpcMessage } from '../wire/body';
import { emitServerText, readStart, type Channel, type ChannelEvents } from '../bridge/channel';
import type { RemoteServer } from '../config';
import { sessionGone, type HttpError } from '../wire/errors';
import { debug, logFault } from '../logger';
import type { UpstreamErrorInfo } from '../pipeline/hooks';
import { SseParser } from '../wire/sse';
import type { Logger, LogFields } from '../types';
import { headerOf, isEventStream, upstreamRequest } from './upstream-agent';
import { UpstreamTimeoutError, refusedMessageError, upstreamHttpError } from './upstream-errors';

const log = debug.extend('remote');

/** Closing a session tells the upstream with a DELETE; it must not hold up reload() or close(). */
const DELETE_TIMEOUT_MS = 5_000;
/** How much of a refused POST's answer is read, for its JSON-RPC error. */
const MAX_ERROR_BODY = 64 * 1024;
/** A JSON answer larger than this is dropped (as a stdio line over the limit would be). */
const MAX_JSON_BODY = 128 * 1024 * 1024;
/** A standalone GET stream that the upstream ended is opened again after this long. */
const GET_REOPEN_MS = 1_000;

type JsonRpcId = string | number;

export class StreamableUpstreamChannel implements Channel {
  private events: ChannelEvents | undefined;
  /** The upstream's `Mcp-Session-Id`, from its answer to `initialize`. */
  private sessionId: string | undefined;
  /** Negotiated in the `initialize` result; sent on every later request (2025-06-18 §Transports). */
  private protocolVersion: string | undefined;
  private initializeId: JsonRpcId | undefined;
  private readonly requests = new Set<ClientRequest>();
  private readonly responses = new Set<IncomingMessage>();
  private getOpen = false;
  private reopenTimer: NodeJS.Timeout | undefined;
  private paused = false;
  private over = false;
  /** The upstream already forgot the session: no DELETE. */
  private forgotten = false;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly server: RemoteServer,
    private readonly logger: Logger,
    /** Largest event of an upstream event stream, in bytes. */
    private readonly maxEventBytes: number,
    /** Upstream failures go to the pipeline, which logs them. */
    private readonly report: (info: UpstreamErrorInfo) => void,
  ) {}

  get logFields(): LogFields {
    return { upstream: 'streamable-http' };
  }

  private get ctx() {
    return { server: this.server.name, report: this.report };
  }

  /** Nothing to connect to yet: the upstream session starts with the client's `initialize`. */
  open(events: ChannelEvents): Promise<void> {
    this.events = events;
    return Promise.resolve();
  }

  async send(body: Buffer, messages: JsonRpcMessage[]): Promise<void> {
    if (this.over) throw sessionGone();
    for (const m of messages) {
      if (m.method === 'initialize' && (typeof m.id === 'string' || typeof m.id === 'number')) this.initializeId = m.id;
    }
    await this.post(body);
    // Server-initiated messages sent while no GET stream is open are dropped by SDK servers (the
    // SDK's StreamableHTTPServerTransport): the client hears "accepted" for `initialized` only
    // once the stream is there.
    if (messages.some((m) => m.method === 'notifications/initialized')) await this.openGetStream();
  }

  /** Resolves when the upstream accepted the POST (2xx); its answer is then read in the background. */
  private post(body: Buffer): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const req = this.request('POST', { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'content-length': String(body.length) }, reject);
      if (!req) return;
      const timer = setTimeout(() => req.destroy(new UpstreamTimeoutError(this.server.timeoutMs)), this.server.timeoutMs);
      timer.unref();
      req.on('error', (err) => {
        clearTimeout(timer);
        reject(this.over ? sessionGone() : upstreamHttpError(err, this.ctx));
      });
      req.on('response', (res) => {
        clearTimeout(timer);
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          this.sessionId ??= headerOf(res.headers, 'mcp-session-id');
          resolve();
          this.readAnswer(res);
          return;
        }
        void readStart(res, MAX_ERROR_BODY).then((text) => {
          if (status === 404 && this.sessionId !== undefined) {
            // The upstream forgot the session (Streamable HTTP §Session Management): the client
            // gets 404 for this POST, then its stream ends so that it starts over.
            this.forgotten = true;
            reject(sessionGone());
            setImmediate(() => this.endOnItsOwn('upstream answered 404 for the session'));
            return;
          }
          reject(refusedMessageError(status, text, this.ctx));
        });
      });
      req.end(body);
    });
  }

  /**
   * The standalone stream for server-initiated messages (2025-06-18 §Listening for Messages from
   * the Server). Resolves once the upstream answered (or failed to); `405` means it has none.
   */
  private openGetStream(): Promise<void> {
    if (this.over || this.getOpen) return Promise.resolve();
    this.getOpen = true;
    return new Promise<void>((resolve) => {
      const req = this.request('GET', { accept: 'text/event-stream' }, () => resolve());
      if (!req) {
        this.getOpen = false;
        return;
      }
      const timer = setTimeout(() => req.destroy(new UpstreamTimeoutError(this.server.timeoutMs)), this.server.timeoutMs);
      timer.unref();
      req.on('error', (err) => {
        clearTimeout(timer);
        this.getOpen = false;
        if (!this.over) log('%s: standalone GET stream failed: %s', this.server.name, (err as { code?: string }).code ?? err.message);
        resolve();
      });
      req.on('response', (res) => {
        clearTimeout(timer);
        const status = res.statusCode ?? 0;
        resolve();
        if (status >= 200 && status < 300 && isEventStream(res.headers)) {
          this.readAnswer(res, () => {
            this.getOpen = false;
            // Upstreams may end the stream at any time (the client reconnects, §Resumability).
            if (this.over) return;
            this.reopenTimer = setTimeout(() => void this.openGetStream(), GET_REOPEN_MS);
            this.reopenTimer.unref();
          });
          return;
        }
        res.resume();
        this.getOpen = false;
        if (status === 404 && this.sessionId !== undefined) {
          this.forgotten = true;
          this.endOnItsOwn('upstream answered 404 for the session');
        } else if (status !== 405) {
          this.report({ server: this.server.name, code: `HTTP_${status}`, status: undefined });
        }
        log('%s: no standalone GET stream (HTTP %d)', this.server.name, status);
      });
      req.end();
    });
  }

  /** Every message of an answer, JSON or an event stream, out of the channel in order. */
  private readAnswer(res: IncomingMessage, onEnd?: () => void): void {
    this.responses.add(res);
    if (this.paused) res.pause();
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      this.responses.delete(res);
      onEnd?.();
    };
    res.once('close', finish);
    res.once('error', finish);
    const events: ChannelEvents = { message: (line, m) => this.emit(line, m), closed: () => undefined };
    if (isEventStream(res.headers)) {
      const parser = new SseParser(
        (event) => {
          if (this.over || event.event !== 'message' || event.data === '') return;
          if (!emitServerText(event.data, events)) log('%s: ignoring an upstream event that is not JSON-RPC', this.server.name);
        },
        {
          maxEventBytes: this.maxEventBytes,
          onTooLarge: (limit) => {
            this.logger.error('upstream event too large', { server: this.server.name, limit });
            res.destroy();
            this.endOnItsOwn(`upstream sent an event over the ${limit}-byte limit`);
          },
        },
      );
      res.on('data', (chunk: Buffer) => this.guard(() => parser.push(chunk)));
      res.once('end', finish);
      return;
    }
    if (!/json/i.test(String(res.headers['content-type'] ?? ''))) {
      // `202 Accepted` for notifications and responses: nothing to read.
      res.resume();
      res.once('end', finish);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_JSON_BODY) {
        this.logger.error('upstream answer too large', { server: this.server.name, limit: MAX_JSON_BODY });
        res.destroy();
        return;
      }
      chunks.push(chunk);
    });
    res.once('end', () => {
      this.guard(() => {
        if (!this.over && size <= MAX_JSON_BODY && !emitServerText(Buffer.concat(chunks, size).toString('utf8'), events)) {
          log('%s: ignoring an upstream answer that is not JSON-RPC', this.server.name);
        }
      });
      finish();
    });
  }

  private emit(line: string, message: JsonRpcMessage): void {
    if (this.over) return;
    if (this.initializeId !== undefined && message.method === undefined && message.id === this.initializeId) {
      const version = (message.result as { protocolVersion?: unknown } | undefined)?.protocolVersion;
      if (typeof version === 'string') this.protocolVersion = version;
      this.initializeId = undefined;
    }
    this.events?.message(line, message);
  }

  /** A request to the upstream with the session's headers; undefined (and `fail` called) when it cannot be made. */
  private request(method: string, headers: http.OutgoingHttpHeaders, fail: (err: HttpError) => void): ClientRequest | undefined {
    const all: http.OutgoingHttpHeaders = { ...this.server.headers, ...headers };
    if (this.sessionId !== undefined) all['mcp-session-id'] = this.sessionId;
    if (this.protocolVersion !== undefined) all['mcp-protocol-version'] = this.protocolVersion;
    let req: ClientRequest;
    try {
      req = upstreamRequest(this.server.url, { method, headers: all });
    } catch (err) {
      // An invalid header value throws synchronously.
      fail(upstreamHttpError(err, this.ctx));
      return undefined;
    }
    this.requests.add(req);
    req.once('close', () => this.requests.delete(req));
    return req;
  }

  pause(): void {
    this.paused = true;
    for (const res of this.responses) res.pause();
  }

  resume(): void {
    this.paused = false;
    for (const res of this.responses) res.resume();
  }

  /** Aborts every upstream request and stream, then ends the upstream session (`DELETE`). */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.over = true;
    clearTimeout(this.reopenTimer);
    for (const req of this.requests) req.destroy();
    for (const res of this.responses) res.destroy();
    if (this.sessionId === undefined || this.forgotten) return;
    await deleteUpstreamSession(this.server, this.sessionId, this.protocolVersion);
  }

  /**
   * Runs a step of an event handler: a fault there ends this session only (logged), instead of
   * reaching the event loop and ending the process.
   */
  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      logFault(this.logger, 'bridged session failed', { server: this.server.name, upstream: 'streamable-http', where: 'server message' }, err);
      this.endOnItsOwn('internal error (server message)');
    }
  }

  private endOnItsOwn(reason: string): void {
    if (this.over) return;
    this.over = true;
    log('%s: bridged Streamable HTTP session ended upstream (%s)', this.server.name, reason);
    this.events?.closed(reason, `upstream "${this.server.name}" ended the session (${reason})`);
  }
}

/**
 * Ends a session upstream: `DELETE` with its id and the configured headers (2025-06-18 §Session
 * Management). Best effort and bounded: resolves, never rejects, within 5 s (or `timeout`).
 */
export function deleteUpstreamSession(server: RemoteServer, sessionId: string, protocolVersion: string | undefined): Promise<void> {
  const headers: Record<string, string> = { ...server.headers, 'Mcp-Session-Id': sessionId };
  if (protocolVersion) headers['MCP-Protocol-Version'] = protocolVersion;
  const timeoutMs = Math.min(DELETE_TIMEOUT_MS, server.timeoutMs);
  return new Promise<void>((resolve) => {
    let request: ClientRequest;
    try {
      request = upstreamRequest(server.url, { method: 'DELETE', headers });
    } catch (err) {
      log('%s: DELETE not sent: %s', server.name, (err as Error).message);
      return resolve();
    }
    const timer = setTimeout(() => request.destroy(new UpstreamTimeoutError(timeoutMs)), timeoutMs);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    request.on('response', (answer) => {
      log('%s: upstream answered DELETE with %d', server.name, answer.statusCode);
      answer.resume();
      answer.on('end', done);
      answer.on('close', done);
    });
    request.on('error', (err) => {
      log('%s: DELETE failed: %s', server.name, (err as { code?: string }).code ?? err.message);
      done();
    });
    request.end();
  });
}
