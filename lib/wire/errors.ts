import type { ServerResponse } from 'node:http';

/** JSON-RPC error codes used by the proxy. */
export const JsonRpcCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  InternalError: -32603,
  /** Implementation-defined server errors (JSON-RPC 2.0 §5.1): the proxy's own failures. */
  ServerError: -32000,
} as const;

/** An HTTP failure that becomes a status and a JSON-RPC error body. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
    readonly headers: Record<string, string> = {},
    /** The id of the request it answers, when the failure is about one request the proxy read. */
    readonly id?: unknown,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export function jsonRpcErrorBody(code: number, message: string, id: unknown = null, data?: unknown): string {
  return JSON.stringify({ jsonrpc: '2.0', error: data === undefined ? { code, message } : { code, message, data }, id: id ?? null });
}

/**
 * Writes a JSON-RPC error response, or — when headers are already out (a stream is open) — just
 * ends it. Works on Express and bare Node responses.
 */
export function sendJsonRpcError(
  res: ServerResponse,
  status: number,
  code: number,
  message: string,
  options: { id?: unknown; headers?: Record<string, string>; data?: unknown } = {},
): void {
  if (res.headersSent) {
    if (!res.writableEnded) res.end();
    return;
  }
  const body = jsonRpcErrorBody(code, message, options.id, options.data);
  res.writeHead(status, {
    ...options.headers,
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

export function sendHttpError(res: ServerResponse, err: HttpError, id?: unknown): void {
  sendJsonRpcError(res, err.status, err.code, err.message, { id: id ?? err.id, headers: err.headers });
}

// --- the answers every transport shares ------------------------------------------------------------

/** The same words whatever the server kind: clients cannot tell them apart, and need not. */
const SESSION_GONE = 'Not Found: unknown or ended session; initialize a new one';

/**
 * `Retry-After` of every "shutting down" answer: the proxy (or a server retired by reload) is
 * going away and its successor — the process restarted by its supervisor, the reloaded
 * transport — is ready within about a second. A capacity refusal waits longer (see
 * `sessionsExhausted`).
 */
const SHUTTING_DOWN_RETRY_AFTER = '1';

/** Sent with a full server's `503`: a slot frees only when some session ends. */
const EXHAUSTED_RETRY_AFTER = '5';

/**
 * `404` for an unknown, ended or another token's session: it tells MCP clients to initialize
 * again (MCP Streamable HTTP transport, §Session Management).
 */
export function sessionGone(): HttpError {
  return new HttpError(404, JsonRpcCode.ServerError, SESSION_GONE);
}

/** `503` (RFC 9110 §15.6.4) with `Retry-After` (§10.2.3): the proxy, or this one server, is closing. */
export function shuttingDown(server?: string): HttpError {
  const what = server === undefined ? 'mcp-front is' : `server "${server}" is`;
  return new HttpError(503, JsonRpcCode.ServerError, `Service Unavailable: ${what} shutting down`, { 'Retry-After': SHUTTING_DOWN_RETRY_AFTER });
}

/**
 * `503` with `Retry-After` for a request that would open a session while this instance drains
 * (README: Running several instances): behind a load balancer the retry lands on another one.
 */
export function draining(): HttpError {
  return new HttpError(503, JsonRpcCode.ServerError, 'Service Unavailable: this mcp-front instance is draining; retry', {
    'Retry-After': SHUTTING_DOWN_RETRY_AFTER,
  });
}

/** `503` with `Retry-After`: the server is at its `maxSessions` (README: Configuration). */
export function sessionsExhausted(server: string, maxSessions: number): HttpError {
  return new HttpError(503, JsonRpcCode.ServerError, `Service Unavailable: server "${server}" has reached its maximum of ${maxSessions} sessions`, {
    'Retry-After': EXHAUSTED_RETRY_AFTER,
  });
}

/** `500`: a fault of the proxy itself; the details go to the log, never to the client. */
export function internalError(): HttpError {
  return new HttpError(500, JsonRpcCode.InternalError, 'Internal error');
}

/**
 * Answers `err`. A request whose body was not read yet has it drained first, so that the answer
 * neither waits on it nor is cut by it.
 */
export function sendHttpErrorDraining(res: ServerResponse, err: HttpError, req?: import('node:http').IncomingMessage, id?: unknown): void {
  if (req && !req.readableEnded) req.resume();
  sendHttpError(res, err, id);
}
