// The one place that turns an upstream failure into a status and a sanitized JSON-RPC error
// (README: Authentication and status codes — refused/unreachable → 502, too slow → 504). Nothing else looks at errno codes.
// Bodies name the server, never its URL, address or the system error text.
import type { ServerResponse } from 'node:http';
import { HttpError, JsonRpcCode, sendJsonRpcError } from '../wire/errors';
import type { UpstreamErrorInfo } from '../pipeline/hooks';

/** The upstream did not start answering (response headers) within the server's `timeout`. */
export class UpstreamTimeoutError extends Error {
  readonly code = 'UPSTREAM_TIMEOUT';
  constructor(readonly timeoutMs: number) {
    super(`upstream did not answer within ${timeoutMs} ms`);
    this.name = 'UpstreamTimeoutError';
  }
}

export interface UpstreamFailure {
  status: 502 | 504;
  /** For logs: the errno code, or `UPSTREAM_TIMEOUT`. */
  code: string;
  message: string;
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'EHOSTDOWN', 'ENETDOWN']);
const DROPPED = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);
const SLOW = new Set(['ETIMEDOUT', 'ESOCKETTIMEDOUT']);

export function classifyUpstreamError(err: unknown, server: string): UpstreamFailure {
  const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : 'UNKNOWN';
  if (err instanceof UpstreamTimeoutError) {
    return { status: 504, code, message: `Gateway Timeout: upstream "${server}" did not start answering within ${err.timeoutMs} ms` };
  }
  if (SLOW.has(code)) return { status: 504, code, message: `Gateway Timeout: upstream "${server}" timed out` };
  if (UNREACHABLE.has(code)) return { status: 502, code, message: `Bad Gateway: upstream "${server}" is unreachable` };
  if (DROPPED.has(code)) return { status: 502, code, message: `Bad Gateway: upstream "${server}" closed the connection` };
  return { status: 502, code, message: `Bad Gateway: upstream "${server}" failed` };
}

export interface UpstreamErrorContext {
  server: string;
  /** Where the failure is reported: the pipeline, whose logging module logs it. */
  report: (info: UpstreamErrorInfo) => void;
  /** JSON-RPC id of the request, when it was a single one. */
  id?: unknown;
}

/**
 * Logs and answers an upstream failure. When a stream is already open the status cannot change:
 * the response is just ended (sendJsonRpcError does that).
 */
export function sendUpstreamError(res: ServerResponse, err: unknown, ctx: UpstreamErrorContext): void {
  const failure = classifyUpstreamError(err, ctx.server);
  ctx.report({ server: ctx.server, code: failure.code, status: res.headersSent ? undefined : failure.status });
  sendJsonRpcError(res, failure.status, JsonRpcCode.ServerError, failure.message, { id: ctx.id });
}

/**
 * An upstream 401/407 judges the proxy's configured credentials, not the client's token: passed
 * through, it would make clients discard a valid proxy token or start OAuth against the upstream.
 */
export function rejectsProxyCredentials(status: number): boolean {
  return status === 401 || status === 407;
}

export const CREDENTIALS_REJECTED = "to the proxy's credentials (check the server's configured headers)";

/** The upstream answered, but not what the transport needs (e.g. no event stream on `GET /sse`). */
export function sendBadUpstreamAnswer(res: ServerResponse, status: number, what: string, ctx: UpstreamErrorContext): void {
  ctx.report({ server: ctx.server, code: `HTTP_${status}`, status: 502 });
  sendJsonRpcError(res, 502, JsonRpcCode.ServerError, `Bad Gateway: upstream "${ctx.server}" answered HTTP ${status} ${what}`, { id: ctx.id });
}

/**
 * The `HttpError` for an upstream failure, for bridged sessions that answer through their own
 * code path (front-sessions.ts): same status, message and log line as `sendUpstreamError`.
 */
export function upstreamHttpError(err: unknown, ctx: UpstreamErrorContext): HttpError {
  if (err instanceof HttpError) return err;
  const failure = classifyUpstreamError(err, ctx.server);
  ctx.report({ server: ctx.server, code: failure.code, status: failure.status });
  return new HttpError(failure.status, JsonRpcCode.ServerError, failure.message);
}

/** The `HttpError` counterpart of `sendBadUpstreamAnswer`. */
export function badUpstreamAnswer(status: number, what: string, ctx: UpstreamErrorContext): HttpError {
  ctx.report({ server: ctx.server, code: `HTTP_${status}`, status: 502 });
  return new HttpError(502, JsonRpcCode.ServerError, `Bad Gateway: upstream "${ctx.server}" answered HTTP ${status} ${what}`);
}

/**
 * An upstream that refused a bridged client message. A `4xx` judges the message (invalid,
 * unsupported), so the client gets that status and the upstream's JSON-RPC error code and
 * message, when it sent one; `401`/`407` and `5xx` are the upstream's own problem: `502`.
 * `body` is the start of the upstream's answer.
 */
export function refusedMessageError(status: number, body: string, ctx: UpstreamErrorContext): HttpError {
  if (rejectsProxyCredentials(status)) return badUpstreamAnswer(status, CREDENTIALS_REJECTED, ctx);
  if (status < 400 || status >= 500) return badUpstreamAnswer(status, 'to a message', ctx);
  let upstream: { code?: unknown; message?: unknown } | undefined;
  try {
    upstream = (JSON.parse(body) as { error?: { code?: unknown; message?: unknown } }).error;
  } catch {
    // Not JSON-RPC: the status alone says it.
  }
  const code = typeof upstream?.code === 'number' ? upstream.code : JsonRpcCode.InvalidRequest;
  const detail = typeof upstream?.message === 'string' ? `: ${upstream.message.slice(0, 500)}` : '';
  ctx.report({ server: ctx.server, code: `HTTP_${status}`, status, refused: true });
  return new HttpError(status, code, `upstream "${ctx.server}" refused the message (HTTP ${status})${detail}`);
}
