// Origin validation and CORS (CONTRACT §5). The MCP transport specification requires servers to
// validate `Origin` to stop DNS-rebinding attacks; browsers are the only clients that send it.
import type { Request, Response } from 'express';

export type AllowedOrigins = '*' | ReadonlySet<string> | undefined;

const ALLOW_METHODS = 'GET, POST, DELETE, OPTIONS';
const ALLOW_HEADERS = [
  'Authorization',
  'Content-Type',
  'Accept',
  'Mcp-Session-Id',
  'MCP-Protocol-Version',
  'Last-Event-ID',
  'Mcp-Method',
  'Mcp-Name',
].join(', ');
const EXPOSE_HEADERS = 'Mcp-Session-Id, MCP-Protocol-Version, WWW-Authenticate, Retry-After';

/**
 * Is this request's `Origin` acceptable? No `Origin` (a non-browser client) always is. With a
 * list, only listed origins are; without one, only the proxy's own origin (honouring `trust proxy`
 * through `req.protocol`).
 */
export function originAllowed(req: Request, allowed: AllowedOrigins): boolean {
  const origin = req.headers.origin;
  if (origin === undefined || allowed === '*') return true;
  if (allowed !== undefined) return allowed.has(origin);
  // No list: same-origin only (CONTRACT §5). `Host` is chosen by whoever resolved the name, so
  // this alone cannot stop DNS rebinding — a configured list can; the bearer token, which
  // browsers never attach on their own, is what protects then.
  const host = req.headers.host;
  return host !== undefined && origin === `${req.protocol}://${host}`;
}

/** CORS response headers for an allowed cross-origin request. */
export function setCorsHeaders(req: Request, res: Response): void {
  const origin = req.headers.origin;
  if (origin === undefined) return;
  res.setHeader('Access-Control-Allow-Origin', origin);
  res.setHeader('Access-Control-Expose-Headers', EXPOSE_HEADERS);
  res.append('Vary', 'Origin');
}

/** Answers a preflight (`OPTIONS` with `Access-Control-Request-Method`) of an allowed origin. */
export function answerPreflight(req: Request, res: Response): void {
  setCorsHeaders(req, res);
  res.setHeader('Access-Control-Allow-Methods', ALLOW_METHODS);
  res.setHeader('Access-Control-Allow-Headers', ALLOW_HEADERS);
  res.setHeader('Access-Control-Max-Age', '600');
  res.statusCode = 204;
  res.end();
}
