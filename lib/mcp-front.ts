// The factory. One path per request, front to back: CORS/Origin → authenticate → resolve server →
// authorize → that server's transport (README: Security model). Everything derivable from the config is
// computed here or in reload(), never per request.
import { Router, type NextFunction, type Request, type Response } from 'express';
import { authThrottleFor, sendThrottled, type AuthThrottle } from './auth/throttle';
import { TokenIndex, sendUnauthorized } from './auth/bearer';
import { tokenWarnings } from './config/token-warnings';
import { resolveConfig, type ResolvedConfig, type ResolvedServer } from './config';
import { HttpError, JsonRpcCode, sendHttpError, sendJsonRpcError, shuttingDown } from './wire/errors';
import { createDefaultLogger, debug } from './logger';
import { answerPreflight, originAllowed, setCorsHeaders } from './auth/origin';
import { createRemoteTransport } from './remote/streamable-passthrough';
import { Pipeline } from './pipeline/pipeline';
import type { PipelineHook } from './pipeline/hooks';
import { loggingHook } from './pipeline/logging-hook';
import { SessionRegistry } from './sessions/registry';
import { createStdioTransport } from './stdio/stdio-transport';
import type { ProxySettings, ServerTransport, TransportDeps } from './transport';
import type { McpFrontConfig, McpFrontOptions, McpFrontRouter } from './types';

const log = debug.extend('router');

/** `/:server/sse`, `/:server/message`, `/:server/mcp` — the only paths the router answers. */
const ROUTE = /^\/([^/]+)\/(sse|message|mcp)\/?$/;
const METHODS: Record<string, readonly string[]> = { sse: ['GET'], message: ['POST'], mcp: ['POST', 'GET', 'DELETE'] };
const MAX_LOGGED_NAME = 64;
/**
 * The answer to a request or stream whose token was revoked before it was answered. `403`, not
 * `401`: an MCP client answers a `401` by starting its authorization flow (MCP specification,
 * Authorization), which a revoked static token cannot complete.
 */
const TOKEN_REVOKED = new HttpError(403, JsonRpcCode.ServerError, 'Forbidden: the token was revoked or may no longer use this server');
const SHUTTING_DOWN = shuttingDown();

/** Options not yet part of the public API. */
interface InternalOptions extends McpFrontOptions {
  /** Modules plugged into the message pipeline after the default logging one. */
  hooks?: PipelineHook[];
}

/** Everything a request needs, swapped as one object by reload(). */
interface State {
  config: ResolvedConfig;
  tokens: TokenIndex;
  transports: Map<string, ServerTransport>;
  proxy: ProxySettings;
  throttle: AuthThrottle | undefined;
}

/**
 * Creates the mcp-front router. Validates the whole config first and throws `ConfigError`
 * synchronously when anything is wrong.
 */
export function mcpFront(config: McpFrontConfig, options: McpFrontOptions = {}): McpFrontRouter {
  const env = options.env ?? process.env;
  const logger = options.logger ?? createDefaultLogger();
  const hooks = (options as InternalOptions).hooks ?? [];
  // Every message and every session event passes one pipeline (docs/architecture.md); the
  // default logging module writes the session, timeout and upstream-error lines.
  const pipeline = new Pipeline([loggingHook(logger), ...hooks], logger);
  const sessions = new SessionRegistry({ observer: pipeline });
  const deps: TransportDeps = { sessions, logger, pipeline };
  let state = buildState(resolveConfig(config, env), new Map(), deps);
  let closed = false;
  // Soft problems are logged once each: at start, and on reload only when new.
  const warned = new Set<string>();
  const warnTokens = (c: ResolvedConfig) => {
    for (const w of tokenWarnings(c, env)) {
      const key = `${w.code}:${w.token ?? ''}`;
      if (warned.has(key)) continue;
      warned.add(key);
      logger.warn(w.message, { code: w.code, token: w.token });
    }
  };
  warnTokens(state.config);
  log('configured %s servers: %o', state.config.servers.size, [...state.config.servers.keys()]);

  const router = Router() as McpFrontRouter;

  router.get('/health', function health(_req: Request, res: Response) {
    res.json({ status: 'ok', service: 'mcp-front', name: state.config.name, servers: state.config.servers.size });
  });

  router.use(function mcpFrontRequest(req: Request, res: Response, next: NextFunction) {
    const match = ROUTE.exec(req.path);
    if (!match) return next();
    const current = state;
    const [, encodedName, route] = match;

    // Preflights carry no credentials (Fetch §4.8): answer them before authentication.
    if (req.method === 'OPTIONS') {
      if (!originAllowed(req, current.config.allowedOrigins)) return forbiddenOrigin(res);
      return answerPreflight(req, res);
    }
    if (!originAllowed(req, current.config.allowedOrigins)) return forbiddenOrigin(res);
    setCorsHeaders(req, res);

    if (closed) {
      return sendHttpError(res, SHUTTING_DOWN);
    }

    // Before any token comparison, so a throttled client learns nothing more about the tokens.
    const throttled = current.throttle?.check(req.ip);
    if (throttled?.throttled) {
      if (throttled.firstRefusal) logger.warn('auth throttled', { client_ip: req.ip, retry_after: throttled.retryAfterSeconds });
      return sendThrottled(res, throttled.retryAfterSeconds);
    }
    const serverName = safeDecode(encodedName);
    const auth = current.tokens.authenticate(req.headers.authorization);
    if (!auth.ok) {
      logger.warn('auth failed', { reason: auth.reason, client_ip: req.ip, server: logSafe(serverName) });
      current.throttle?.recordFailure(req.ip);
      return sendUnauthorized(res, current.config.name, auth.reason);
    }
    // Permissions come from the current config, not the transport's: a transport outlives a
    // reload that only changed authTokens.
    const server = serverName === undefined ? undefined : current.config.servers.get(serverName);
    const transport = server && current.transports.get(server.name);
    if (!server || !transport) {
      logger.warn('unknown server', { token: auth.token, client_ip: req.ip, server: logSafe(serverName) });
      return sendJsonRpcError(res, 404, JsonRpcCode.ServerError, `Not Found: no server named "${logSafe(serverName)}"`);
    }
    if (!server.authTokens.has(auth.token)) {
      logger.warn('auth failed', { reason: 'forbidden', token: auth.token, client_ip: req.ip, server: server.name });
      return sendJsonRpcError(res, 403, JsonRpcCode.ServerError, `Forbidden: token "${auth.token}" may not use server "${server.name}"`);
    }
    if (!METHODS[route].includes(req.method)) {
      res.setHeader('Allow', METHODS[route].join(', '));
      return sendJsonRpcError(res, 405, JsonRpcCode.ServerError, `Method Not Allowed: ${route} accepts ${METHODS[route].join(', ')}`);
    }
    logger.info('auth successful', { token: auth.token, client_ip: req.ip, server: server.name });

    const ctx = { token: auth.token, proxy: current.proxy };
    if (route === 'sse') transport.handleSse(req, res, ctx);
    else if (route === 'message') transport.handleMessage(req, res, ctx);
    else transport.handleMcp(req, res, ctx);
  });

  router.reload = async function reload(next: McpFrontConfig): Promise<void> {
    if (closed) throw new Error('mcp-front router is closed');
    const resolved = resolveConfig(next, env);
    const previous = state;
    state = buildState(resolved, previous.transports, deps, previous.throttle);

    // Revocation is immediate: sessions of a token that is gone, whose value changed, or that may
    // no longer use its server are closed now, streams included, and so is every request or
    // stream of theirs still starting (RFC 6750 §3.1: a revoked token is no longer valid).
    const revoked = (s: { token: string; server: string }) =>
      resolved.tokens.get(s.token) !== previous.config.tokens.get(s.token) ||
      !(resolved.servers.get(s.server)?.authTokens.has(s.token) ?? false);
    const retired = [...previous.transports.values()].filter((t) => state.transports.get(t.server.name) !== t);
    await Promise.all([sessions.closeWhere(revoked, 'token revoked', TOKEN_REVOKED), ...retired.map((t) => t.close())]);

    warnTokens(resolved);
    logger.info('config reloaded', {
      ...diffNames('tokens', previous.config.tokens, resolved.tokens),
      ...diffNames('servers', previous.config.servers, resolved.servers),
      servers_changed: retired.filter((t) => resolved.servers.has(t.server.name)).map((t) => t.server.name).join(',') || undefined,
    });
  };

  router.close = async function close(): Promise<void> {
    closed = true;
    // Requests and streams still starting are answered at once, not after the transports' ends.
    const aborting = sessions.closeWhere(() => true, 'proxy closed', SHUTTING_DOWN);
    await Promise.all([aborting, ...[...state.transports.values()].map((t) => t.close())]);
    await sessions.closeWhere(() => true, 'proxy closed', SHUTTING_DOWN);
  };

  registries.set(router, sessions);
  return router;
}

const registries = new WeakMap<McpFrontRouter, SessionRegistry>();

/** Live sessions of a router: for leak tests and diagnostics, not exported from the package. */
export function liveSessionCount(router: McpFrontRouter): number {
  return registries.get(router)?.size ?? 0;
}

/** Requests and streams of a router still tracked as in flight: for leak tests, not exported from the package. */
export function inFlightCount(router: McpFrontRouter): number {
  return registries.get(router)?.inFlightCount ?? 0;
}

/** Reuses the transport of every server whose settings did not change, so its sessions live on. */
function buildState(config: ResolvedConfig, previous: Map<string, ServerTransport>, deps: TransportDeps, previousThrottle?: AuthThrottle): State {
  const transports = new Map<string, ServerTransport>();
  for (const [name, server] of config.servers) {
    const old = previous.get(name);
    transports.set(name, old && sameUpstream(old.server, server) ? old : createTransport(server, deps));
  }
  return {
    config,
    tokens: new TokenIndex(config.tokens),
    transports,
    proxy: { name: config.name, maxBodyBytes: config.maxBodyBytes, maxEventBytes: config.maxEventBytes, keepAliveMs: config.keepAliveMs },
    throttle: authThrottleFor(config.authThrottle, previousThrottle),
  };
}

function createTransport(server: ResolvedServer, deps: TransportDeps): ServerTransport {
  return server.kind === 'stdio' ? createStdioTransport(server, deps) : createRemoteTransport(server, deps);
}

/**
 * Two server settings that reach the same upstream the same way. `authTokens` is left out: a
 * change of permissions is enforced per request and by revoking sessions, not by a new transport.
 */
function sameUpstream(a: ResolvedServer, b: ResolvedServer): boolean {
  // Resolved configs are built in a fixed key order, and a URL serializes as its href.
  const comparable = (s: ResolvedServer) => JSON.stringify({ ...s, authTokens: undefined });
  return comparable(a) === comparable(b);
}

function diffNames(label: string, before: ReadonlyMap<string, unknown>, after: ReadonlyMap<string, unknown>) {
  const added = [...after.keys()].filter((k) => !before.has(k));
  const removed = [...before.keys()].filter((k) => !after.has(k));
  return { [`${label}_added`]: added.join(',') || undefined, [`${label}_removed`]: removed.join(',') || undefined };
}

function forbiddenOrigin(res: Response): void {
  sendJsonRpcError(res, 403, JsonRpcCode.ServerError, 'Forbidden: origin not allowed');
}

function safeDecode(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/** Server names in logs come from the URL: bound their length (the logger quotes odd bytes). */
function logSafe(name: string | undefined): string {
  if (name === undefined) return '(undecodable)';
  return name.length > MAX_LOGGED_NAME ? `${name.slice(0, MAX_LOGGED_NAME)}…` : name;
}
