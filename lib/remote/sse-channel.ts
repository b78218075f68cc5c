// A remote legacy HTTP+SSE session (MCP 2024-11-05 transport) as a channel, so that a Streamable
// HTTP client can use a legacy server: the upstream event stream carries the server's messages,
// each client message is POSTed to the upstream's message URL (its `endpoint` event).
import type { ClientRequest } from 'node:http';
import { serializeMessage, type JsonRpcMessage } from '../wire/body';
import { emitServerText, readStart, type Channel, type ChannelEvents } from '../bridge/channel';
import { firstByte } from '../wire/body';
import type { RemoteServer } from '../config';
import { HttpError, JsonRpcCode, sessionGone, shuttingDown } from '../wire/errors';
import { debug, logFault } from '../logger';
import type { UpstreamErrorInfo } from '../pipeline/hooks';
import { SseParser, type SseEvent } from '../wire/sse';
import type { Logger, LogFields } from '../types';
import { isEventStream, upstreamRequest } from './upstream-agent';
import { EventStreamRequest, type EventStreamHandlers } from './event-stream-request';
import {
  CREDENTIALS_REJECTED,
  UpstreamTimeoutError,
  badUpstreamAnswer,
  refusedMessageError,
  rejectsProxyCredentials,
  upstreamHttpError,
} from './upstream-errors';

const log = debug.extend('remote');

/** How much of a refused message POST's answer is read, for its JSON-RPC error. */
const MAX_ERROR_BODY = 64 * 1024;

/**
 * The upstream's endpoint may be relative (`/message?sessionId=…`, `/messages/?session_id=…`) or
 * absolute. Another origin is refused, as SDK clients do: the proxy would otherwise send the
 * server's configured headers (API keys) wherever an upstream points it.
 */
export function resolveUpstreamEndpoint(data: string, serverUrl: URL): URL | undefined {
  try {
    const url = new URL(data.trim(), serverUrl);
    return url.origin === serverUrl.origin ? url : undefined;
  } catch {
    return undefined;
  }
}

export class SseUpstreamChannel implements Channel {
  private events: ChannelEvents | undefined;
  private stream: EventStreamRequest | undefined;
  /** The upstream answered with an event stream: its body is being read. */
  private streaming = false;
  /** From the upstream's `endpoint` event; never shown to the client. */
  private messageUrl: URL | undefined;
  private readonly posts = new Set<ClientRequest>();
  /** While `open()` waits for the endpoint: how to make it fail. */
  private failOpen: ((err: HttpError) => void) | undefined;
  private over = false;
  private paused = false;

  constructor(
    private readonly server: RemoteServer,
    private readonly logger: Logger,
    /** Largest event of the upstream's stream, in bytes. */
    private readonly maxEventBytes: number,
    /** Upstream failures go to the pipeline, which logs them. */
    private readonly report: (info: UpstreamErrorInfo) => void,
  ) {}

  get logFields(): LogFields {
    return { upstream: 'sse' };
  }

  private get ctx() {
    return { server: this.server.name, report: this.report };
  }

  /** Opens the upstream stream; resolves at its `endpoint` event, within `timeout`. */
  open(events: ChannelEvents): Promise<void> {
    this.events = events;
    const { server } = this;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const settle = (err?: HttpError) => {
        if (settled) return;
        settled = true;
        this.failOpen = undefined;
        clearTimeout(timer);
        if (!err) return resolve();
        this.over = true;
        this.destroyStream();
        reject(err);
      };
      this.failOpen = settle;
      let parser: SseParser | undefined;
      const ended = (reason: string) => {
        if (settled) return this.endOnItsOwn(reason);
        this.report({ server: server.name, code: 'STREAM_ENDED', status: 502 });
        settle(new HttpError(502, JsonRpcCode.ServerError, `Bad Gateway: upstream "${server.name}" ended its stream before naming its message endpoint`));
      };
      // The stream on a socket of its own (event-stream-request.ts): it lives as long as the session.
      const handlers: EventStreamHandlers = {
        head: ({ status, headers }) => {
          if (this.over) return this.destroyStream();
          if (status < 200 || status >= 300 || !isEventStream(headers)) {
            const what = status < 300 ? 'without an event stream' : rejectsProxyCredentials(status) ? CREDENTIALS_REJECTED : 'to the SSE request';
            return settle(badUpstreamAnswer(status, what, this.ctx));
          }
          this.streaming = true;
          if (this.paused) this.stream?.pause();
          parser = new SseParser((event) => this.onEvent(event, settle), {
            maxEventBytes: this.maxEventBytes,
            onTooLarge: (limit) => {
              this.logger.error('upstream event too large', { server: server.name, limit });
              // Before the endpoint the client's initialize fails with this; after, pending requests do.
              settle(new HttpError(502, JsonRpcCode.ServerError, `Bad Gateway: upstream "${server.name}" sent an event over the ${limit}-byte limit`));
              this.endOnItsOwn(`upstream sent an event over the ${limit}-byte limit`);
            },
          });
        },
        data: (chunk) => {
          // An event handler: a throw here would reach the event loop and end the process.
          try {
            parser?.push(chunk);
          } catch (err) {
            this.fault(err);
          }
        },
        end: () => ended('upstream ended the stream'),
        error: (err) => {
          if (parser) return ended((err as NodeJS.ErrnoException).code === 'ECONNRESET' ? 'upstream closed the stream' : 'upstream stream failed');
          if (!settled) settle(upstreamHttpError(err, this.ctx));
          else this.endOnItsOwn('upstream stream failed');
        },
      };
      try {
        this.stream = new EventStreamRequest({ url: server.url, headers: { accept: 'text/event-stream', 'cache-control': 'no-cache', ...server.headers } }, handlers);
      } catch (err) {
        // An invalid header value throws synchronously.
        return settle(upstreamHttpError(err, this.ctx));
      }
      timer = setTimeout(() => settle(upstreamHttpError(new UpstreamTimeoutError(server.timeoutMs), this.ctx)), server.timeoutMs);
      timer.unref();
    });
  }

  private onEvent(event: SseEvent, settle: (err?: HttpError) => void): void {
    if (this.over) return;
    if (event.event === 'endpoint') {
      const target = resolveUpstreamEndpoint(event.data, this.server.url);
      if (!target) {
        this.logger.warn('upstream sent an unusable endpoint', { server: this.server.name });
        settle(new HttpError(502, JsonRpcCode.ServerError, `Bad Gateway: upstream "${this.server.name}" sent an unusable endpoint`));
        this.endOnItsOwn('unusable endpoint');
        return;
      }
      this.messageUrl = target;
      settle();
      return;
    }
    if (event.event !== 'message' || !this.messageUrl) return;
    if (!emitServerText(event.data, this.events!)) log('%s: ignoring an upstream event that is not JSON-RPC (%d chars)', this.server.name, event.data.length);
  }

  /**
   * POSTs each message to the upstream's message URL; resolves when the upstream accepted them
   * (`202`). The answers come on the stream. A batch goes one message per POST: the SDK's
   * `SSEServerTransport` parses a POST as a single message.
   */
  async send(body: Buffer, messages: JsonRpcMessage[]): Promise<void> {
    if (messages.length === 1 && firstByte(body) !== 0x5b /* [ */) return this.post(body);
    for (const m of messages) await this.post(Buffer.from(serializeMessage(m)));
  }

  private post(body: Buffer): Promise<void> {
    const url = this.messageUrl;
    if (this.over || !url) return Promise.reject(sessionGone());
    const { server } = this;
    return new Promise<void>((resolve, reject) => {
      let req: ClientRequest;
      try {
        req = upstreamRequest(url, {
          method: 'POST',
          headers: { ...server.headers, 'content-type': 'application/json', 'content-length': String(body.length) },
        });
      } catch (err) {
        return reject(upstreamHttpError(err, this.ctx));
      }
      this.posts.add(req);
      // The reference server never answers a POST for a session it does not know (seen with @modelcontextprotocol/server-everything in SSE mode).
      const timer = setTimeout(() => req.destroy(new UpstreamTimeoutError(server.timeoutMs)), server.timeoutMs);
      timer.unref();
      const done = () => {
        clearTimeout(timer);
        this.posts.delete(req);
      };
      req.on('error', (err) => {
        done();
        reject(this.over ? sessionGone() : upstreamHttpError(err, this.ctx));
      });
      req.on('response', (answer) => {
        done();
        const status = answer.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          answer.resume();
          return resolve();
        }
        readStart(answer, MAX_ERROR_BODY).then((text) => {
          if (status === 404) {
            // The upstream forgot the session: so must the client (a 404 makes it re-initialize).
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

  pause(): void {
    this.paused = true;
    if (this.streaming) this.stream?.pause();
  }

  resume(): void {
    this.paused = false;
    if (this.streaming) this.stream?.resume();
  }

  /** Closing the stream ends a legacy session upstream; messages in flight are dropped. */
  close(): Promise<void> {
    if (this.failOpen) {
      this.failOpen(shuttingDown(this.server.name));
    }
    this.over = true;
    this.destroyStream();
    for (const req of this.posts) req.destroy();
    this.posts.clear();
    return Promise.resolve();
  }

  private destroyStream(): void {
    this.stream?.destroy();
  }

  /** A fault while relaying the upstream's stream ends this session only. */
  private fault(err: unknown): void {
    logFault(this.logger, 'bridged session failed', { server: this.server.name, upstream: 'sse', where: 'server message' }, err);
    if (this.failOpen) this.failOpen(new HttpError(502, JsonRpcCode.ServerError, `Bad Gateway: mcp-front could not relay upstream "${this.server.name}"`));
    this.endOnItsOwn('internal error (server message)');
  }

  private endOnItsOwn(reason: string): void {
    if (this.over) return;
    this.over = true;
    this.destroyStream();
    log('%s: bridged legacy SSE session ended upstream (%s)', this.server.name, reason);
    this.events?.closed(reason, `upstream "${this.server.name}" ended the session (${reason})`);
  }
}
