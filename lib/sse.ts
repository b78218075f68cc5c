// Server-sent events, both ways: writing our own streams to clients, and reading upstream ones.
import type { ServerResponse } from 'node:http';
import { StringDecoder } from 'node:string_decoder';

export interface SseStream {
  /** Writes one event; `data` may hold newlines (each becomes its own `data:` line). */
  send(event: string | undefined, data: string, id?: string): void;
  /** Writes raw, already-framed SSE bytes (a relayed upstream event). */
  writeRaw(chunk: string | Buffer): void;
  /** Stops the keep-alive timer and ends the response. Idempotent. */
  end(): void;
  readonly closed: boolean;
}

/**
 * Starts an SSE response: unbuffered (`X-Accel-Buffering: no` for nginx), and a comment every
 * `keepAliveMs` so idle streams survive intermediaries (CONTRACT §4). The headers leave with the
 * first event when the caller writes one in the same turn (one write instead of two); a stream
 * that stays silent (a GET stream, an upstream that has not spoken yet) gets them at once anyway.
 */
export function openSseStream(res: ServerResponse, keepAliveMs: number, headers: Record<string, string> = {}): SseStream {
  res.writeHead(200, {
    ...headers,
    'Content-Type': 'text/event-stream',
    'Cache-Control': 'no-cache, no-transform',
    Connection: 'keep-alive',
    'X-Accel-Buffering': 'no',
  });
  // Small writes must leave at once, not wait for Nagle.
  res.socket?.setNoDelay(true);
  let wrote = false;
  queueMicrotask(() => {
    if (!wrote && !res.writableEnded && !res.destroyed) res.flushHeaders();
  });

  let closed = false;
  const timer = keepAliveMs > 0 ? setInterval(() => write(': keepalive\n\n'), keepAliveMs) : undefined;
  timer?.unref();
  const stop = () => {
    closed = true;
    if (timer) clearInterval(timer);
  };
  res.once('close', stop);

  function write(chunk: string | Buffer) {
    if (closed || res.writableEnded) return;
    wrote = true;
    res.write(chunk);
  }

  return {
    send(event, data, id) {
      let frame = '';
      if (event) frame += `event: ${event}\n`;
      if (id !== undefined) frame += `id: ${id}\n`;
      frame += data.includes('\n') ? data.split(/\r\n|\r|\n/).map((l) => `data: ${l}\n`).join('') : `data: ${data}\n`;
      write(frame + '\n');
    },
    writeRaw: write,
    end() {
      if (closed && res.writableEnded) return;
      stop();
      wrote = true;
      if (!res.writableEnded) res.end();
    },
    get closed() {
      return closed || res.writableEnded;
    },
  };
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
  event: string;
  data: string;
  id?: string;
  /** The event exactly as received, framing included, for verbatim relaying. */
  raw: string;
}

/**
 * Incremental parser of an SSE byte stream (WHATWG HTML §9.2.6): feed chunks, get whole events.
 * Comments are reported as events named `''` with their raw text so a relay can pass them on.
 */
export class SseParser {
  private buffer = '';
  // One decoder for the whole stream: a multi-byte character may be split across two chunks.
  private readonly decoder = new StringDecoder('utf8');

  constructor(private readonly onEvent: (event: SseEvent) => void) {}

  push(chunk: Buffer | string): void {
    this.buffer += typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    for (;;) {
      const match = /\r\n\r\n|\n\n|\r\r/.exec(this.buffer);
      if (!match) return;
      const block = this.buffer.slice(0, match.index);
      const raw = this.buffer.slice(0, match.index + match[0].length);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      this.parseBlock(block, raw);
    }
  }

  private parseBlock(block: string, raw: string): void {
    let event = 'message';
    let id: string | undefined;
    const data: string[] = [];
    let sawField = false;
    for (const line of block.split(/\r\n|\r|\n/)) {
      if (line === '' || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      sawField = true;
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
      else if (field === 'id') id = value;
    }
    if (!sawField) {
      this.onEvent({ event: '', data: '', raw });
      return;
    }
    this.onEvent({ event, data: data.join('\n'), id, raw });
  }
}
