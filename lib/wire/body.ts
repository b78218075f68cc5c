// Request bodies: read once, bounded, whether or not the host app parsed them already.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError, JsonRpcCode, sendHttpError } from './errors';

type MaybeParsed = IncomingMessage & { body?: unknown };

/**
 * The raw body, at most `limit` bytes (larger → `413`, decided before anything is
 * forwarded). When a host app's body parser (`express.json()`) already consumed the stream, its
 * result is re-serialized: the upstream must still receive a body (http-proxy-middleware's fixRequestBody).
 */
export function readBody(req: MaybeParsed, limit: number): Promise<Buffer> {
  if (req.readableEnded || (req as { _body?: boolean })._body) {
    const parsed = req.body;
    let buf: Buffer;
    if (Buffer.isBuffer(parsed)) buf = parsed;
    else if (typeof parsed === 'string') buf = Buffer.from(parsed);
    else if (parsed === undefined) buf = Buffer.alloc(0);
    else {
      try {
        buf = Buffer.from(serializeMessage(parsed));
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return buf.length > limit ? Promise.reject(tooLarge(limit)) : Promise.resolve(buf);
  }
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    discardRest(req);
    return Promise.reject(tooLarge(limit));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        discardRest(req);
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const onAborted = () => onError(new Error('request aborted'));
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}

/**
 * `readBody`, answering the client itself when it fails (`413`, or a connection that broke
 * mid-body is dropped): `undefined` then, and the caller just returns.
 */
export async function readBodyOrReply(req: MaybeParsed, res: ServerResponse, limit: number): Promise<Buffer | undefined> {
  try {
    return await readBody(req, limit);
  } catch (err) {
    if (err instanceof HttpError) sendHttpError(res, err);
    else res.destroy();
    return undefined;
  }
}

/** How much of a refused body is still read and thrown away, at most, before the connection is cut. */
const LINGER_MAX_BYTES = 16 * 1024 * 1024;
const LINGER_MAX_MS = 5000;

/**
 * Reads and throws away the rest of a refused body, and makes the connection's close a lingering
 * one. Node's HTTP server ends a `Connection: close` response with `socket.destroySoon()`: the
 * socket is closed as soon as the response is out, while the client is still sending, and the
 * kernel answers the unread bytes with a reset that can wipe the response from the client's
 * buffers before it is read ("fetch failed" instead of `413`). RFC 9112 §9.6 (Tear-down): close
 * in stages — half-close (the FIN after the response tells the client to stop), keep reading
 * until the client closes, then close. Bounded in bytes and time, so a client that never stops
 * cannot hold the connection; nothing read here is kept.
 */
function discardRest(req: IncomingMessage): void {
  const { socket } = req;
  let drained = 0;
  const cut = () => socket.destroy();
  const timer = setTimeout(cut, LINGER_MAX_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  req.on('data', (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > LINGER_MAX_BYTES) cut();
  });
  // Only the write side: the socket stays readable (Node's HTTP server allows half-open sockets)
  // and closes when the client closes its side, or when a bound above is reached.
  socket.destroySoon = () => {
    socket.end();
  };
  req.resume();
}

function tooLarge(limit: number): HttpError {
  return new HttpError(413, JsonRpcCode.InvalidRequest, `request body exceeds the limit of ${limit} bytes`, {
    Connection: 'close',
  });
}

export interface JsonRpcMessage {
  jsonrpc: '2.0';
  id?: string | number | null;
  method?: string;
  params?: { _meta?: Record<string, unknown>; [key: string]: unknown };
  result?: unknown;
  error?: unknown;
}

/**
 * Parses a JSON-RPC message or batch. Malformed JSON → `400` with `-32700`; valid JSON that is not
 * JSON-RPC → `400` with `-32600` (JSON-RPC 2.0 §5.1). Every route that takes a client body calls
 * it, including those that forward the original bytes unchanged: an id the proxy cannot hold is
 * refused here, before anything remembers it or sends it on.
 */
export function parseJsonRpc(body: Buffer): JsonRpcMessage[] {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw new HttpError(400, JsonRpcCode.ParseError, 'Parse error: the body is not valid JSON');
  }
  const messages = Array.isArray(value) ? value : [value];
  if (messages.length === 0 || !messages.every(isJsonRpcMessage)) {
    throw new HttpError(400, JsonRpcCode.InvalidRequest, 'Invalid Request: expected a JSON-RPC 2.0 message');
  }
  return messages as JsonRpcMessage[];
}

/**
 * JSON-RPC 2.0 §4 and §5: `jsonrpc` is exactly "2.0"; a request or notification has a string
 * `method`; a response has `result` or `error` and no `method`; an id, wherever it appears, is a
 * string, a number or null. Anything else as an id (an object, an array, a boolean) is an Invalid
 * Request: the proxy keeps ids to answer for them later, and an arbitrarily nested one cannot even
 * be written back out (`JSON.stringify` runs out of stack).
 */
function isJsonRpcMessage(value: unknown): value is JsonRpcMessage {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const m = value as Record<string, unknown>;
  if (m.jsonrpc !== '2.0') return false;
  if ('id' in m && !isJsonRpcId(m.id)) return false;
  if ('method' in m) return typeof m.method === 'string';
  return 'id' in m && ('result' in m || 'error' in m);
}

function isJsonRpcId(id: unknown): id is string | number | null {
  return typeof id === 'string' || typeof id === 'number' || id === null;
}

/**
 * `JSON.stringify` of a client message, or `400` with `-32600` when it cannot be written out (a
 * value nested deeper than the stack allows): thrown as an `HttpError`, never a `RangeError`.
 */
export function serializeMessage(value: unknown): string {
  try {
    return JSON.stringify(value);
  } catch {
    throw new HttpError(400, JsonRpcCode.InvalidRequest, 'Invalid Request: the message is nested too deeply to be relayed');
  }
}

/**
 * A message with a method and an id is a request, whatever the id: a null id does not make it a
 * notification (JSON-RPC 2.0 §4.1: a notification has no id member). The pipeline refuses a null
 * id as invalid (MCP base protocol); treating it as a notification would skip every check.
 */
export const isRequest = (m: JsonRpcMessage): boolean => typeof m.method === 'string' && m.id !== undefined;
export const isNotification = (m: JsonRpcMessage): boolean => typeof m.method === 'string' && m.id === undefined;
export const isResponse = (m: JsonRpcMessage): boolean => m.method === undefined;

/** The first byte of a body that is not JSON whitespace (`{` a message, `[` a batch), or -1. */
export function firstByte(body: Buffer): number {
  for (let i = 0; i < body.length; i++) {
    const b = body[i];
    if (b !== 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) return b;
  }
  return -1;
}
