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
  sendJsonRpcError(res, err.status, err.code, err.message, { id, headers: err.headers });
}
