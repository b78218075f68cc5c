// How mcp-front speaks HTTP to remote upstreams: one keep-alive agent per protocol, and which
// headers cross the proxy in each direction (README: Security model).
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { urlToHttpOptions } from 'node:url';

// Without keep-alive every proxied request opens a new upstream connection (measured: about
// 40 % of throughput lost). No maxSockets cap: every open SSE stream holds a socket for its whole
// life, so a cap would queue new requests behind idle streams.
//
// A connection that is not established within CONNECT_TIMEOUT_MS fails with ETIMEDOUT (→ 504),
// so a black-holed upstream answers long before the server's `timeout` (default 60 s), which
// bounds the whole wait for the first byte.
export const CONNECT_TIMEOUT_MS = 10_000;

export function withConnectTimeout<T extends net.Socket>(socket: T, timeoutMs = CONNECT_TIMEOUT_MS): T {
  if (!socket.connecting) return socket;
  const timer = setTimeout(() => {
    socket.destroy(Object.assign(new Error(`connect timeout after ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
  }, timeoutMs);
  timer.unref();
  const clear = () => clearTimeout(timer);
  socket.once(socket instanceof tls.TLSSocket ? 'secureConnect' : 'connect', clear);
  socket.once('close', clear);
  return socket;
}

// A server closes a keep-alive connection left idle for its own timeout (Node's http server and
// uvicorn: 5 s), and a request sent on it at that moment is lost with it (RFC 9112 §9.5): a 502
// "closed the connection" for a client that did nothing wrong. Node's agent drops an idle socket
// only when the agent has a `timeout` (a server's `Keep-Alive: timeout=` hint can only shorten
// it), and a server that writes `Connection` itself sends no hint at all (the MCP SDK's Streamable
// HTTP server, on every event stream it answers with). So an idle socket waits IDLE_SOCKET_MS at
// most, 1 s less than the server announced when that is shorter; a socket carrying a request has
// no timeout (an event stream may be silent for minutes).
export const IDLE_SOCKET_MS = 4_000;

// The agents' own connection code (TLS session reuse included) stays; only the timers are added.
type CreateConnection = (this: http.Agent, ...args: unknown[]) => net.Socket;

class UpstreamHttpAgent extends http.Agent {
  createConnection(...args: unknown[]): net.Socket {
    return inUse(withConnectTimeout((http.Agent.prototype as unknown as { createConnection: CreateConnection }).createConnection.apply(this, args)));
  }

  reuseSocket(socket: net.Socket, request: http.ClientRequest): void {
    super.reuseSocket(inUse(socket), request);
  }
}

class UpstreamHttpsAgent extends https.Agent {
  createConnection(...args: unknown[]): net.Socket {
    return inUse(withConnectTimeout((https.Agent.prototype as unknown as { createConnection: CreateConnection }).createConnection.apply(this, args)));
  }

  reuseSocket(socket: net.Socket, request: http.ClientRequest): void {
    super.reuseSocket(inUse(socket), request);
  }
}

/** The agent's `timeout` is its idle limit only: a socket that carries a request has none. */
function inUse<T extends net.Socket>(socket: T): T {
  return socket.setTimeout(0);
}

const httpAgent = new UpstreamHttpAgent({ keepAlive: true, timeout: IDLE_SOCKET_MS });
const httpsAgent = new UpstreamHttpsAgent({ keepAlive: true, timeout: IDLE_SOCKET_MS });

export function agentFor(url: URL): http.Agent {
  return url.protocol === 'https:' ? httpsAgent : httpAgent;
}

/**
 * One request to an upstream (a DELETE, a bridged message), over http or https as its URL says,
 * through the shared agent. Throws synchronously on an invalid header value, like `http.request`.
 * Routes that send many requests to one URL keep an `upstreamRequester` instead.
 */
export function upstreamRequest(url: URL, options: UpstreamRequestOptions): http.ClientRequest {
  return upstreamRequester(url)(options);
}

/** Options of one request to a server, on top of its URL's: the path defaults to the URL's own. */
export interface UpstreamRequestOptions {
  method: string;
  headers: http.OutgoingHttpHeaders;
  path?: string;
}

/**
 * A server's requests, with the options of its URL computed once: `http.request(url)` turns the
 * URL into the same options on every call, and the agent keeps them for the life of the socket,
 * so only what a request needs is kept (credentials in the URL included). Throws synchronously on
 * an invalid header value, like `http.request`.
 */
export function upstreamRequester(url: URL): (options: UpstreamRequestOptions) => http.ClientRequest {
  const { protocol, hostname, port, auth, path } = urlToHttpOptions(url);
  const base: http.RequestOptions = { protocol, hostname, path, agent: agentFor(url) };
  if (port !== undefined) base.port = port;
  if (auth !== undefined) base.auth = auth;
  const request = url.protocol === 'https:' ? https.request : http.request;
  return (options) => request({ ...base, ...options });
}

/**
 * Client request headers sent upstream: an allowlist, not a blocklist, so that `Authorization`,
 * `Cookie`, `Proxy-Authorization`, `Origin` and whatever a browser adds never reach a server that
 * trusts the proxy. `Mcp-*` covers Mcp-Session-Id, MCP-Protocol-Version, Mcp-Method, Mcp-Name and
 * Mcp-Param-* (and later additions of the specification).
 */
const FORWARDED_REQUEST_HEADERS = new Set(['accept', 'content-type', 'last-event-id', 'user-agent', 'traceparent', 'tracestate']);

export function isForwardedRequestHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return FORWARDED_REQUEST_HEADERS.has(lower) || lower.startsWith('mcp-');
}

/** The forwardable subset of a client's headers. */
export function forwardedRequestHeaders(headers: http.IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && isForwardedRequestHeader(name)) out[name] = value;
  }
  return out;
}

// RFC 9110 §7.6.1: hop-by-hop fields describe one connection and must not be relayed.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authenticate', 'proxy-connection']);
// The client authenticates to the proxy, never to the upstream: an upstream challenge is not theirs.
const UPSTREAM_AUTH = new Set(['www-authenticate']);

/**
 * Upstream response headers passed to the client: everything but hop-by-hop fields (including
 * those the upstream's `Connection` names), `WWW-Authenticate`, and `Access-Control-*`, which
 * would override the router's own CORS decision (http-proxy copies upstream response headers verbatim).
 */
export function clientResponseHeaders(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const named = new Set(
    String(headers.connection ?? '')
      .split(',')
      .map((t) => t.trim().toLowerCase())
      .filter(Boolean),
  );
  const out: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || UPSTREAM_AUTH.has(name) || named.has(name) || name.startsWith('access-control-')) continue;
    out[name] = value;
  }
  return out;
}

export function isEventStream(headers: http.IncomingHttpHeaders): boolean {
  return /^\s*text\/event-stream\s*(;|$)/i.test(String(headers['content-type'] ?? ''));
}

/** A single-valued request/response header, or undefined. */
export function headerOf(headers: http.IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined || first === '' ? undefined : first;
}
