// Server-sent events, both ways: writing our own streams to clients, and reading upstream ones.
import type { ServerResponse } from 'node:http';
import { StringDecoder } from 'node:string_decoder';

export interface SseStream {
  /**
   * Writes one event. `data` may hold line breaks (CRLF, LF or CR): each line becomes its own
   * `data:` line, as WHATWG HTML §9.2.6 reads them back. `event` and `id` must hold none.
   */
  send(event: string | undefined, data: string, id?: string): void;
  /** Writes already-framed SSE bytes built by the proxy itself (never an upstream's bytes). */
  writeRaw(chunk: string | Buffer): void;
  /** Stops the keep-alive timer and ends the response. Idempotent. */
  end(): void;
  readonly closed: boolean;
}

/**
 * Starts an SSE response: unbuffered (`X-Accel-Buffering: no` for nginx), and a comment every
 * `keepAliveMs` so idle streams survive intermediaries (README: Routes). The headers leave with the
 * first event when the caller writes one in the same turn (one write instead of two); a stream
 * that stays silent (a GET stream, an upstream that has not spoken yet) gets them at once anyway.
 */
export function openSseStream(res: ServerResponse, keepAliveMs: number, headers?: Record<string, string>): SseStream {
  res.writeHead(200, headers === undefined ? SSE_HEADERS : { ...headers, ...SSE_HEADERS });
  // Small writes must leave at once, not wait for Nagle.
  res.socket?.setNoDelay(true);
  const stream = new SseWriter(res);
  queueMicrotask(() => stream.flushUnlessWritten());
  if (keepAliveMs > 0) keepAlives(keepAliveMs).add(stream);
  return stream;
}

const SSE_HEADERS: Readonly<Record<string, string>> = {
  'Content-Type': 'text/event-stream',
  'Cache-Control': 'no-cache, no-transform',
  Connection: 'keep-alive',
  'X-Accel-Buffering': 'no',
};

/**
 * One open SSE response. A class, not a closure per method: thousands of idle streams may be
 * open at once (each costs only its fields here), so is every keep-alive timer (see `KeepAlive`).
 */
class SseWriter implements SseStream {
  /** Stopped by `end()` or the response's close. */
  private stopped = false;
  private wrote = false;
  /** The keep-alive ticker this stream belongs to, if any. */
  ticker: KeepAlive | undefined;

  constructor(readonly res: ServerResponse) {}

  send(event: string | undefined, data: string, id?: string): void {
    let frame = '';
    if (event) frame += 'event: ' + event + '\n';
    if (id !== undefined) frame += 'id: ' + id + '\n';
    if (hasLineBreak(data)) {
      frame += data.split(/\r\n|\r|\n/).map((l) => 'data: ' + l + '\n').join('');
    } else if (data.length >= LONG_DATA_CHARS) {
      // Three writes in one syscall rather than one string: joining would copy the whole text
      // into a new string before it is encoded.
      const { res } = this;
      res.cork();
      this.write(frame + 'data: ');
      this.write(data);
      this.write('\n\n');
      res.uncork();
      return;
    } else {
      frame += 'data: ' + data + '\n';
    }
    this.write(frame + '\n');
  }

  writeRaw(chunk: string | Buffer): void {
    this.write(chunk);
  }

  write(chunk: string | Buffer): void {
    const { res } = this;
    if (this.stopped || res.writableEnded || res.destroyed) return;
    if (this.wrote) return void res.write(chunk);
    this.wrote = true;
    res.write(chunk);
    compactHeader(res);
  }

  flushUnlessWritten(): void {
    const { res } = this;
    if (this.wrote || res.writableEnded || res.destroyed) return;
    res.flushHeaders();
    compactHeader(res);
  }

  end(): void {
    const { res } = this;
    if (this.stopped && res.writableEnded) return;
    this.stop();
    this.wrote = true;
    if (!res.writableEnded) res.end();
  }

  stop(): void {
    this.stopped = true;
    this.ticker?.delete(this);
  }

  get closed(): boolean {
    const { res } = this;
    return this.stopped || res.writableEnded || res.destroyed;
  }

  /** For the keep-alive ticker: this stream's response is over (closed by its client, or ended). */
  get over(): boolean {
    return this.res.writableEnded || this.res.destroyed;
  }
}

/**
 * Node builds a response's header block by concatenation and keeps it (`_header`) for the life of
 * the response: a rope of some thirty strings, ~0.9 KB, on every open stream. Reading a character
 * flattens it into one string of ~0.25 KB (V8 flattens a rope in place the first time it is
 * indexed). Nothing is written to the response: only a read, and only when it is a string.
 */
function compactHeader(res: ServerResponse): void {
  const header = (res as unknown as { _header?: unknown })._header;
  if (typeof header === 'string') header.charCodeAt(0);
}

/** Data at least this long goes out as it is, not copied into a frame first. */
const LONG_DATA_CHARS = 64 * 1024;

/** `/[\r\n]/.test(data)` without a regular expression: two `indexOf`, the common case in a relay. */
function hasLineBreak(data: string): boolean {
  return data.indexOf('\n') !== -1 || data.indexOf('\r') !== -1;
}

/**
 * One interval timer per keep-alive period for all the streams that use it, instead of one per
 * stream: an idle stream then costs an entry in a `Set`, not a `Timeout` and its closure. A
 * stream's first comment comes within one period of its opening, the next ones every period.
 * A stream leaves its ticker when it ends or its response closes; the timer stops with the last one.
 */
class KeepAlive {
  private readonly streams = new Set<SseWriter>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly periodMs: number) {}

  add(stream: SseWriter): void {
    stream.ticker = this;
    this.streams.add(stream);
    stream.res.on('close', () => stream.stop());
    if (!this.timer) {
      this.timer = setInterval(() => this.tick(), this.periodMs);
      this.timer.unref();
    }
  }

  delete(stream: SseWriter): void {
    stream.ticker = undefined;
    this.streams.delete(stream);
    if (this.streams.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
      tickers.delete(this.periodMs);
    }
  }

  private tick(): void {
    for (const stream of this.streams) {
      if (stream.over) this.delete(stream);
      else stream.write(': keepalive\n\n');
    }
  }
}

const tickers = new Map<number, KeepAlive>();

function keepAlives(periodMs: number): KeepAlive {
  let ticker = tickers.get(periodMs);
  if (!ticker) tickers.set(periodMs, (ticker = new KeepAlive(periodMs)));
  return ticker;
}

/**
 * A whole SSE answer known at once (e.g. the one response that completes a POST): one write, with
 * `Content-Length`, and no keep-alive timer since nothing stays open.
 */
export function sendSseBody(res: ServerResponse, body: string): void {
  if (res.writableEnded || res.destroyed) return;
  res.writeHead(200, {
    'Content-Type': 'text/event-stream',
    'Cache-Control': 'no-cache, no-transform',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

export interface SseEvent {
  /** The event type: `message` when the stream names none (WHATWG HTML §9.2.6). */
  event: string;
  /** The `data` lines joined by `\n`; never ends with the newline of its last line. */
  data: string;
  /** The `id` field of this event, when it had one without U+0000. */
  id?: string;
}

export interface SseParserOptions {
  /** A comment line, without its colon and one leading space (keep-alives). Default: ignored. */
  onComment?(text: string): void;
  /** A `retry` field made only of ASCII digits: the reconnection time in ms. Default: ignored. */
  onRetry?(ms: number): void;
  /**
   * Bytes an event may hold before the blank line that ends it (its `data` lines and the line
   * being received). Default: no limit.
   */
  maxEventBytes?: number;
  /** Called once when an event goes over `maxEventBytes`; the parser ignores all input after that. */
  onTooLarge?(limit: number): void;
}

const LF = 0x0a;
const CR = 0x0d;
/** A line at least this long, received in pieces, is decoded piece by piece (see `longDataLine`). */
const LONG_LINE_BYTES = 256 * 1024;
const COLON = 0x3a;
const SPACE = 0x20;

/**
 * Incremental parser of an SSE byte stream, by the rules of WHATWG HTML §9.2.6 "Interpreting an
 * event stream" (which the SDK's client follows through `eventsource-parser`): a line ends at
 * CRLF, LF or CR, in any mix and across chunk boundaries; a blank line dispatches the event.
 * Relays must re-serialize what this gives, never pass bytes on: a client frames by these rules,
 * so anything else lets an upstream hide one event inside another.
 *
 * Linear in the input: each byte is scanned once (CR and LF are found with cached `indexOf`
 * positions), an unfinished line is kept as a list of chunks and joined once when it ends, and
 * UTF-8 is decoded per whole line. CR and LF never occur inside a multi-byte UTF-8 sequence, so
 * decoding line by line gives the same text as decoding the whole stream.
 */
export class SseParser {
  /** The line being received, as its chunks. */
  private partial: Buffer[] = [];
  private partialBytes = 0;
  /** The previous chunk ended with CR: an LF that starts the next one is part of that CRLF. */
  private afterCr = false;
  /** The stream's first bytes until there are three: a UTF-8 BOM there is dropped (WHATWG Encoding, "UTF-8 decode"). */
  private head: Buffer | undefined = Buffer.alloc(0);
  private data: string[] = [];
  /** Bytes of the current event's `data` lines. */
  private dataBytes = 0;
  private event = '';
  private id: string | undefined;
  private failed = false;

  constructor(
    private readonly onEvent: (event: SseEvent) => void,
    private readonly options: SseParserOptions = {},
  ) {}

  push(chunk: Buffer | string): void {
    if (this.failed) return;
    let buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    if (this.head !== undefined) {
      const head = this.head.length === 0 ? buf : Buffer.concat([this.head, buf]);
      if (head.length < 3 && UTF8_BOM.subarray(0, head.length).equals(head)) {
        this.head = head;
        return;
      }
      this.head = undefined;
      buf = head.subarray(0, 3).equals(UTF8_BOM) ? head.subarray(3) : head;
    }
    if (buf.length === 0) return;
    let start = 0;
    if (this.afterCr) {
      this.afterCr = false;
      if (buf[0] === LF) start = 1;
    }
    let nextLf = buf.indexOf(LF, start);
    let nextCr = buf.indexOf(CR, start);
    for (;;) {
      // Search again only past a terminator already used: every byte is scanned once per kind.
      if (nextLf !== -1 && nextLf < start) nextLf = buf.indexOf(LF, start);
      if (nextCr !== -1 && nextCr < start) nextCr = buf.indexOf(CR, start);
      const end = nextLf === -1 ? nextCr : nextCr === -1 ? nextLf : Math.min(nextLf, nextCr);
      if (end === -1) break;
      this.line(buf, start, end);
      if (this.failed) return;
      start = end + 1;
      if (buf[end] === CR) {
        if (start === buf.length) this.afterCr = true;
        else if (buf[start] === LF) start++;
      }
    }
    if (start < buf.length) {
      this.partial.push(start === 0 ? buf : buf.subarray(start));
      this.partialBytes += buf.length - start;
      this.checkSize();
    }
  }

  private line(buf: Buffer, start: number, end: number): void {
    let line: Buffer;
    if (this.partialBytes > 0) {
      this.partial.push(buf.subarray(start, end));
      if (this.partialBytes + end - start >= LONG_LINE_BYTES && this.longDataLine()) return;
      line = Buffer.concat(this.partial, this.partialBytes + end - start);
      this.partial = [];
      this.partialBytes = 0;
    } else {
      line = buf.subarray(start, end);
    }
    if (line.length === 0) return this.dispatch();
    if (line[0] === COLON) {
      this.options.onComment?.(line.toString('utf8', line[1] === SPACE ? 2 : 1));
      return;
    }
    const colon = line.indexOf(COLON);
    const nameEnd = colon === -1 ? line.length : colon;
    // A line without a colon is a field with an empty value; one space after the colon is not part of the value.
    let valueStart = colon === -1 ? line.length : colon + 1;
    if (line[valueStart] === SPACE) valueStart++;
    // Field names are compared literally; the known ones are at most 5 ASCII bytes.
    const name = nameEnd <= 5 ? line.toString('latin1', 0, nameEnd) : '';
    if (name === 'data') {
      this.data.push(line.toString('utf8', valueStart));
      this.dataBytes += line.length;
      this.checkSize();
    } else if (name === 'event') {
      this.event = line.toString('utf8', valueStart);
    } else if (name === 'id') {
      const id = line.toString('utf8', valueStart);
      if (!id.includes('\0')) this.id = id;
    } else if (name === 'retry') {
      const value = line.toString('latin1', valueStart);
      if (/^[0-9]+$/.test(value)) this.options.onRetry?.(Number(value));
    }
  }

  /**
   * A long `data` line received in pieces (an 8 MB answer comes in ~130 reads): each piece is
   * decoded on its own (a StringDecoder keeps a character split between two pieces whole) and
   * the text joined once, instead of copying the bytes into one buffer and decoding that. Only
   * when the first piece holds the field name and its colon; otherwise the caller joins the bytes.
   */
  private longDataLine(): boolean {
    const pieces = this.partial;
    const first = pieces[0];
    const colon = first.indexOf(COLON);
    if (colon !== 4 || first.toString('latin1', 0, 4) !== 'data') return false;
    let valueStart = colon + 1;
    if (first[valueStart] === SPACE) valueStart++;
    if (valueStart >= first.length) return false;
    const decoder = new StringDecoder('utf8');
    const text: string[] = [decoder.write(first.subarray(valueStart))];
    for (let i = 1; i < pieces.length; i++) text.push(decoder.write(pieces[i]));
    text.push(decoder.end());
    const bytes = this.partialBytes + pieces[pieces.length - 1].length;
    this.partial = [];
    this.partialBytes = 0;
    this.data.push(text.join(''));
    this.dataBytes += bytes;
    this.checkSize();
    return true;
  }

  private dispatch(): void {
    const { data, id } = this;
    const event = this.event || 'message';
    this.data = [];
    this.dataBytes = 0;
    this.event = '';
    this.id = undefined;
    // An event without data lines is not dispatched (WHATWG HTML §9.2.6, "dispatch the event").
    if (data.length === 0) return;
    this.onEvent({ event, data: data.join('\n'), id });
  }

  private checkSize(): void {
    const limit = this.options.maxEventBytes;
    if (limit === undefined || this.dataBytes + this.partialBytes <= limit) return;
    this.failed = true;
    this.partial = [];
    this.partialBytes = 0;
    this.data = [];
    this.dataBytes = 0;
    this.options.onTooLarge?.(limit);
  }
}

const UTF8_BOM = Buffer.from([0xef, 0xbb, 0xbf]);
