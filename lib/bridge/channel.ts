// The server side of a bridged session, whatever it is: a stdio child (channel-stdio.ts), a
// remote legacy SSE session (channel-sse.ts) or a remote Streamable HTTP session
// (channel-streamable.ts). The client side (front-sessions.ts) speaks either HTTP transport over
// any of them, so every server is reachable on both routes (README: Routes).
//
// A channel carries JSON-RPC messages both ways and nothing else: no routing, no ids rewritten.
// The server's own messages come out one at a time, each with a one-line JSON text that the
// front writes into SSE frames verbatim (a stdio child's lines go out as the child wrote them,
// never re-serialized: that is where the stdio bridge's throughput comes from).
import type { IncomingMessage } from 'node:http';
import { serializeMessage, type JsonRpcMessage } from '../wire/body';
import type { LogFields } from '../types';

export interface ChannelEvents {
  /** A message from the server. `line` is its JSON text, without any newline. */
  message(line: string, message: JsonRpcMessage): void;
  /**
   * The server side ended on its own (the child exited, the upstream stream ended, the upstream
   * forgot the session). `reason` is for logs; `clientMessage` answers every pending request.
   * Not called after `close()`.
   */
  closed(reason: string, clientMessage: string): void;
  /** The client session the channel serves, for channels that report its requests (aggregates). */
  readonly session?: { readonly id: string; readonly route: 'sse' | 'streamable' | 'stateless' };
}

export interface Channel {
  /**
   * Connects: spawns the child, or opens the upstream stream and waits for what it needs. Rejects
   * with an `HttpError` (`502`, `504`) that the client receives as it is, already logged.
   */
  open(events: ChannelEvents): Promise<void>;
  /**
   * Sends client messages parsed from `body` (its exact bytes). Resolves once the server side
   * accepted them (stdin took them, the upstream answered the POST), so a fast client is slowed to
   * the server's pace. Rejects with an `HttpError` when the upstream refused them or was too slow.
   */
  send(body: Buffer, messages: JsonRpcMessage[]): Promise<void>;
  /** Stops reading from the server (a client socket is full), until `resume()`. */
  pause(): void;
  resume(): void;
  /** Ends the server side (child stopped, upstream told); idempotent; resolves when it is gone. */
  close(): Promise<void>;
  /** Fields for the session's log lines (`pid`, `upstream`). */
  readonly logFields: LogFields;
}

/** The messages a client sends as one body, for `Channel.send` from code (cancellations). */
export function bodyOf(messages: JsonRpcMessage[]): Buffer {
  return Buffer.from(serializeMessage(messages.length === 1 ? messages[0] : messages));
}

/**
 * Hands every message of a server's JSON text (a message or a batch) to `events`. `text` is
 * reused as the line when it already is one message on one line. Returns false when it is not
 * JSON-RPC at all. Throws when a message cannot be written out again (nested too deeply):
 * callers run it inside their fault boundary.
 */
export function emitServerText(text: string, events: ChannelEvents): boolean {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return false;
  }
  if (Array.isArray(parsed)) {
    for (const m of parsed) if (isMessage(m)) events.message(JSON.stringify(m), m);
    return true;
  }
  if (!isMessage(parsed)) return false;
  // A line break inside the text would end the SSE `data:` field early on the way out.
  const oneLine = text.includes('\n') || text.includes('\r') ? JSON.stringify(parsed) : text;
  events.message(oneLine, parsed);
  return true;
}

function isMessage(value: unknown): value is JsonRpcMessage {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The first `limit` bytes of an upstream answer, as text (for its error); the rest is discarded. */
export function readStart(res: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      if (size < limit) chunks.push(chunk);
      size += chunk.length;
    });
    const done = () => resolve(Buffer.concat(chunks).subarray(0, limit).toString('utf8'));
    res.once('end', done);
    res.once('close', done);
    res.once('error', done);
  });
}
