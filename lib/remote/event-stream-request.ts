// The GET that opens a remote legacy upstream's event stream (MCP 2024-11-05 transport), on a
// socket of its own: an HTTP/1.1 request written in one go and a small reader of its response
// (RFC 9112), instead of `http.request`. Such a stream lives as long as its client's session and
// never goes back to a keep-alive pool, so the agent bought nothing, while an idle stream held a
// `ClientRequest`, an `IncomingMessage`, an HTTP parser (and its native buffers) and the agent's
// per-socket listeners and options: about 6 KB of the ~25 KB an idle legacy session cost.
// Message POSTs still go through the shared agent (upstream-agent.ts).
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { CONNECT_TIMEOUT_MS } from './upstream-agent';

/** The status and headers of the response (after any `1xx`). Header names in lower case. */
export interface StreamHead {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
}

export interface EventStreamHandlers {
  /** The response's status line and headers. */
  head(head: StreamHead): void;
  /** Bytes of the body, without the chunked framing. */
  data(chunk: Buffer): void;
  /** The body ended as its framing says: last chunk, `Content-Length` reached, or end of a body delimited by the connection's close. */
  end(): void;
  /**
   * The connection failed, or closed before the body ended, or the response is not valid HTTP/1.1.
   * Called at most once, never after `end()` or `destroy()` without an error.
   */
  error(err: Error): void;
}

export interface EventStreamRequestOptions {
  url: URL;
  /** Request headers; `Host` (from the URL) and `Authorization` (from credentials in the URL) when absent. */
  headers: Record<string, string | string[]>;
  /** Default: the agents' own limit (CONNECT_TIMEOUT_MS in upstream-agent.ts). */
  connectTimeoutMs?: number;
}

/** Response head bytes accepted before the blank line: Node's default `maxHeaderSize`. */
const MAX_HEAD_BYTES = 16 * 1024;
/** A chunk-size line (hex digits and extensions) longer than this is refused. */
const MAX_CHUNK_LINE_BYTES = 1024;

const enum State {
  Head,
  ChunkSize,
  ChunkData,
  ChunkDataEnd,
  Trailers,
  LengthBody,
  CloseBody,
  Done,
}

const LF = 0x0a;
const CR = 0x0d;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const STATUS_LINE = /^HTTP\/1\.[01] (\d{3})(?: [^\r\n]*)?$/;
const CHUNK_SIZE = /^([0-9A-Fa-f]{1,12})[ \t]*(?:;[^\r\n]*)?$/;

/** An error of the upstream's HTTP framing: a 502, with a code for the log line. */
function framingError(message: string): Error {
  return Object.assign(new Error(`upstream sent an invalid HTTP response: ${message}`), { code: 'HPE_INVALID_RESPONSE' });
}

/**
 * Reads one HTTP/1.1 response from the bytes of a connection (RFC 9112): the status line and
 * headers, then the body as its framing says (chunked, `Content-Length`, or up to the end of the
 * connection), handing the body's bytes on as they come. Strict where a lenient reading would
 * let an upstream smuggle bytes: `Transfer-Encoding` with `Content-Length`, two different
 * `Content-Length`, obsolete line folding, a chunk not followed by CRLF are errors. A head is
 * at most 16 KiB. Line ends are CRLF or a bare LF. `1xx` answers (other than 101) are skipped.
 */
export class ResponseReader {
  private state = State.Head;
  /** Bytes of a line not ended yet (the head, a chunk-size line, trailers). */
  private pending: Buffer | undefined;
  /** Bytes left in the current chunk, or in a body of known length. */
  private remaining = 0;
  /** After a chunk's data: its CR was seen, its LF not yet. */
  private sawCr = false;

  constructor(private readonly handlers: EventStreamHandlers) {}

  /** Called once the response is over, before its handler hears of it. */
  protected done(): void {}

  /** Reads the next bytes of the connection. */
  push(chunk: Buffer): void {
    let buf = chunk;
    let at = 0;
    // Each state consumes what it can of buf[at..]; a handler may end the response meanwhile.
    while (at < buf.length && this.state !== State.Done) {
      switch (this.state) {
        case State.Head: {
          if (this.pending) {
            buf = Buffer.concat([this.pending, buf.subarray(at)]);
            at = 0;
            this.pending = undefined;
          }
          const end = headEnd(buf, at);
          if (end === undefined) {
            if (buf.length - at > MAX_HEAD_BYTES) return this.fail(framingError('head too large'));
            this.pending = Buffer.from(buf.subarray(at));
            return;
          }
          if (end.bodyStart - at > MAX_HEAD_BYTES) return this.fail(framingError('head too large'));
          const text = buf.toString('latin1', at, end.headEnd);
          at = end.bodyStart;
          this.onHead(text);
          break;
        }
        case State.ChunkSize:
        case State.Trailers: {
          const lf = buf.indexOf(LF, at);
          const pendingBytes = this.pending?.length ?? 0;
          if (lf === -1) {
            if (pendingBytes + buf.length - at > MAX_CHUNK_LINE_BYTES) return this.fail(framingError('chunk line too long'));
            this.pending = this.pending ? Buffer.concat([this.pending, buf.subarray(at)]) : Buffer.from(buf.subarray(at));
            return;
          }
          if (pendingBytes + lf - at > MAX_CHUNK_LINE_BYTES) return this.fail(framingError('chunk line too long'));
          let line = this.pending ? Buffer.concat([this.pending, buf.subarray(at, lf)]).toString('latin1') : buf.toString('latin1', at, lf);
          this.pending = undefined;
          at = lf + 1;
          if (line.endsWith('\r')) line = line.slice(0, -1);
          if (this.state === State.Trailers) {
            if (line === '') this.finish();
            break;
          }
          const size = CHUNK_SIZE.exec(line);
          if (!size) return this.fail(framingError('bad chunk size'));
          this.remaining = parseInt(size[1], 16);
          this.state = this.remaining === 0 ? State.Trailers : State.ChunkData;
          break;
        }
        case State.ChunkData:
        case State.LengthBody: {
          const take = Math.min(this.remaining, buf.length - at);
          const part = at === 0 && take === buf.length ? buf : buf.subarray(at, at + take);
          at += take;
          this.remaining -= take;
          const last = this.remaining === 0 && this.state === State.LengthBody;
          if (this.remaining === 0 && this.state === State.ChunkData) this.state = State.ChunkDataEnd;
          this.handlers.data(part);
          if (last) this.finish();
          break;
        }
        case State.ChunkDataEnd: {
          // CRLF (or a bare LF) after the chunk's data; its CR may end one read and its LF start the next.
          const byte = buf[at++];
          if (byte === CR && !this.sawCr) {
            this.sawCr = true;
          } else if (byte === LF) {
            this.sawCr = false;
            this.state = State.ChunkSize;
          } else {
            return this.fail(framingError('chunk not followed by CRLF'));
          }
          break;
        }
        case State.CloseBody: {
          const part = at === 0 ? buf : buf.subarray(at);
          at = buf.length;
          this.handlers.data(part);
          break;
        }
      }
    }
  }

  /** The connection ended: the end of a body delimited by it, else an error. */
  eof(): void {
    if (this.state === State.Done) return;
    if (this.state === State.CloseBody) return this.finish();
    this.fail(Object.assign(new Error('upstream closed the connection before the end of its response'), { code: 'ECONNRESET' }));
  }

  /** Ends the response with `err` (unless it already ended). */
  fail(err: Error): void {
    if (this.state === State.Done) return;
    this.stop();
    this.done();
    this.handlers.error(err);
  }

  /** Ends the response without a word: nothing more is reported. */
  stop(): void {
    this.state = State.Done;
    this.pending = undefined;
  }

  private finish(): void {
    if (this.state === State.Done) return;
    this.stop();
    this.done();
    this.handlers.end();
  }

  private onHead(text: string): void {
    const lines = text.split(/\r?\n/);
    const status = STATUS_LINE.exec(lines[0]);
    if (!status) return this.fail(framingError('bad status line'));
    const code = Number(status[1]);
    const headers: Record<string, string> = {};
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i];
      const colon = line.indexOf(':');
      // No colon, a name that is not a token, or an obsolete line folding (RFC 9112 §5.2): refused.
      const name = colon > 0 ? line.slice(0, colon) : '';
      if (!TOKEN.test(name)) return this.fail(framingError('bad header line'));
      const key = name.toLowerCase();
      const value = line.slice(colon + 1).trim();
      const seen = headers[key];
      if (key === 'content-length' && seen !== undefined && seen !== value) return this.fail(framingError('conflicting Content-Length'));
      // Repeated fields join with ", " (RFC 9110 §5.3), but Content-Type keeps its first value, as Node does.
      if (seen === undefined) headers[key] = value;
      else if (key !== 'content-type' && key !== 'content-length') headers[key] = seen + ', ' + value;
    }
    // Informational answers (100, 103) come before the real one and are skipped.
    if (code >= 100 && code < 200 && code !== 101) return;
    const te = headers['transfer-encoding'];
    const cl = headers['content-length'];
    if (te !== undefined && cl !== undefined) return this.fail(framingError('both Transfer-Encoding and Content-Length'));
    let bodyless = false;
    if (code === 204 || code === 304) bodyless = true;
    else if (te !== undefined) this.state = /(?:^|,)[ \t]*chunked[ \t]*$/i.test(te) ? State.ChunkSize : State.CloseBody;
    else if (cl !== undefined) {
      if (!/^\d{1,15}$/.test(cl)) return this.fail(framingError('bad Content-Length'));
      this.remaining = Number(cl);
      if (this.remaining === 0) bodyless = true;
      else this.state = State.LengthBody;
    } else this.state = State.CloseBody;
    this.handlers.head({ status: code, headers });
    if (bodyless) this.finish();
  }
}

/**
 * The request, its socket and the reader of its response (one object per stream). Throws
 * synchronously, like `http.request`, on an invalid header name or value
 * (`http.validateHeaderName/Value`).
 */
export class EventStreamRequest extends ResponseReader {
  /** Requests whose connection is still open (or opening): for leak tests and diagnostics. */
  static live = 0;
  private readonly socket: net.Socket;
  private connectTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(options: EventStreamRequestOptions, handlers: EventStreamHandlers) {
    super(handlers);
    const { url } = options;
    const request = requestHead(url, options.headers);
    const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const secure = url.protocol === 'https:';
    const port = url.port === '' ? (secure ? 443 : 80) : Number(url.port);
    // As the https agent does: SNI with the host name, never with an address (RFC 6066 §3).
    const socket = secure ? tls.connect({ host: hostname, port, servername: net.isIP(hostname) ? undefined : hostname }) : net.connect({ host: hostname, port });
    this.socket = socket;
    EventStreamRequest.live++;
    socket.setNoDelay(true);
    const timeoutMs = options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
    this.connectTimer = setTimeout(() => {
      socket.destroy(Object.assign(new Error(`connect timeout after ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    this.connectTimer.unref();
    socket.once(secure ? 'secureConnect' : 'connect', () => this.clearConnectTimer());
    socket.on('data', (chunk: Buffer) => this.push(chunk));
    socket.on('end', () => this.eof());
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.eof());
    socket.write(request, 'latin1');
  }

  /** Closes the connection; with `err`, reports it through `handlers.error` (a timeout). */
  destroy(err?: Error): void {
    if (err) this.fail(err);
    else this.stop();
    this.done();
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  isPaused(): boolean {
    return this.socket.isPaused();
  }

  /** Whatever ends the response (its end, an error, a framing fault) closes the connection. */
  protected override done(): void {
    this.clearConnectTimer();
    this.socket.destroy();
    if (this.closed) return;
    this.closed = true;
    EventStreamRequest.live--;
  }

  private clearConnectTimer(): void {
    if (this.connectTimer === undefined) return;
    clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
  }
}

/** Where the head ends (before its blank line) and the body starts; CRLF or bare LF line ends. */
function headEnd(buf: Buffer, from: number): { headEnd: number; bodyStart: number } | undefined {
  let lf = buf.indexOf(LF, from);
  while (lf !== -1) {
    // The line after this LF is empty: LF or CRLF follows.
    if (buf[lf + 1] === LF) return { headEnd: lf > from && buf[lf - 1] === CR ? lf - 1 : lf, bodyStart: lf + 2 };
    if (buf[lf + 1] === CR && buf[lf + 2] === LF) return { headEnd: lf > from && buf[lf - 1] === CR ? lf - 1 : lf, bodyStart: lf + 3 };
    lf = buf.indexOf(LF, lf + 1);
  }
  return undefined;
}

/** The request's bytes: `GET path HTTP/1.1`, `Host`, `Authorization` from the URL's credentials, the headers. */
function requestHead(url: URL, headers: Record<string, string | string[]>): string {
  let head = `GET ${url.pathname}${url.search} HTTP/1.1\r\n`;
  // Names are case-insensitive: the last of `Accept` and `accept` wins, as with setHeader().
  const byName = new Map<string, [string, string | string[]]>();
  for (const name in headers) {
    http.validateHeaderName(name);
    byName.set(name.toLowerCase(), [name, headers[name]]);
  }
  for (const [name, value] of byName.values()) {
    for (const v of Array.isArray(value) ? value : [value]) {
      http.validateHeaderValue(name, v);
      head += `${name}: ${v}\r\n`;
    }
  }
  const host = byName.has('host');
  const authorization = byName.has('authorization');
  if (!host) head = head.replace('\r\n', `\r\nHost: ${url.host}\r\n`);
  if (!authorization && (url.username !== '' || url.password !== '')) {
    const credentials = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
    head += `Authorization: Basic ${Buffer.from(credentials).toString('base64')}\r\n`;
  }
  return head + 'Connection: close\r\n\r\n';
}
