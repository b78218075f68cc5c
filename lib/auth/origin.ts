// Origin validation and CORS. The MCP transport specification requires servers to
// validate `Origin` to stop DNS-rebinding attacks; browsers are the only clients that send it.
import type { Request, Response } from 'express';

export type AllowedOrigins = '*' | ReadonlySet<string> | undefined;

const ALLOW_METHODS = 'GET, POST, DELETE, OPTIONS';
/**
 * Request headers a browser client may send: the MCP Streamable HTTP transport's (`Mcp-Session-Id`,
 * `MCP-Protocol-Version`, `Last-Event-ID` for resumption, and on 2026-07-28 `Mcp-Method`,
 * `Mcp-Name` and the `Mcp-Param-{Name}` family below), bearer auth, the JSON body's, and W3C Trace
 * Context (`traceparent`, `tracestate`) and W3C Baggage (`baggage`), which OpenTelemetry's browser
 * instrumentation adds to every `fetch`. Nothing else: a header outside these is never allowed.
 */
const ALLOWED_HEADERS = [
  'Authorization',
  'Content-Type',
  'Accept',
  'Mcp-Session-Id',
  'MCP-Protocol-Version',
  'Last-Event-ID',
  'Mcp-Method',
  'Mcp-Name',
  'traceparent',
  'tracestate',
  'baggage',
];
const ALLOWED_LOWER = new Set(ALLOWED_HEADERS.map((h) => h.toLowerCase()));
const ALLOW_HEADERS = ALLOWED_HEADERS.join(', ');
/** `Mcp-Param-{Name}`: one header per tool parameter annotated `x-mcp-header`; Name is an RFC 9110 token. */
const MCP_PARAM = /^mcp-param-[!#$%&'*+.^_`|~0-9a-z-]+$/;
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
  // No list: same-origin only. `Host` is chosen by whoever resolved the name, so
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

/**
 * The preflight's `Access-Control-Allow-Headers`: the fixed list, plus the requested
 * `Mcp-Param-*` headers, which no fixed list can name (the Fetch standard's CORS-preflight fetch
 * compares names case-insensitively, and `*` would not cover `Authorization`).
 */
function allowHeaders(requested: string | undefined): string {
  if (requested === undefined) return ALLOW_HEADERS;
  const params = new Set<string>();
  for (const item of requested.split(',')) {
    const name = item.trim().toLowerCase();
    if (!ALLOWED_LOWER.has(name) && MCP_PARAM.test(name)) params.add(name);
  }
  return params.size === 0 ? ALLOW_HEADERS : `${ALLOW_HEADERS}, ${[...params].join(', ')}`;
}

/** Answers a preflight (`OPTIONS` with `Access-Control-Request-Method`) of an allowed origin. */
export function answerPreflight(req: Request, res: Response): void {
  setCorsHeaders(req, res);
  res.setHeader('Access-Control-Allow-Methods', ALLOW_METHODS);
  res.setHeader('Access-Control-Allow-Headers', allowHeaders(req.headers['access-control-request-headers']));
  // The answer depends on the requested headers: a shared cache must not reuse it for others.
  res.append('Vary', 'Access-Control-Request-Headers');
  res.setHeader('Access-Control-Max-Age', '600');
  res.statusCode = 204;
  res.end();
}
