// The factory. One path per request, front to back: CORS/Origin → authenticate → resolve server →
// authorize → that server's transport (README: Security model). Everything derivable from the config is
// computed here or in reload(), never per request.
import { Router, type NextFunction, type Request, type Response } from 'express';
import { authThrottleFor, checkThrottle, countFailure, countsAsGuess, sendThrottled, type AuthThrottle } from './auth/throttle';
import { authenticatorFor, credentialOf, type Authenticator, type Proof } from './auth/authenticate';
import { endStreamAt } from './auth/stream-deadlines';
import { challengeFor, sendAuthFailure } from './auth/challenges';
import { metadataRouter } from './auth/resource-metadata';
import { tokenWarnings } from './config/token-warnings';
import { configFingerprint, resolveConfig, type ResolvedAggregate, type ResolvedConfig, type ResolvedServer } from './config';
import { Stores } from './store/stores';
import { healthRoute, metricsRoute, type OperatorRoutes } from './operator-routes';
import { draining, HttpError, JsonRpcCode, sendHttpError, sendJsonRpcError, shuttingDown } from './wire/errors';
import { clip, createDefaultLogger, debug, logFault } from './logger';
import { answerPreflight, originAllowed, setCorsHeaders } from './auth/origin';
import { createRemoteTransport } from './remote/streamable-passthrough';
import { Pipeline } from './pipeline/pipeline';
import type { PipelineHook } from './pipeline/hooks';
import { loggingHook } from './pipeline/logging-hook';
import { permissionsHook } from './policy/permissions';
import { requestLimitHook, sessionLimit } from './policy/limits';
import { auditHook } from './observability/audit';
import { healthHook } from './observability/health';
import { metricsHook } from './observability/metrics';
import { tracingHook } from './observability/tracing';
import { SessionRegistry } from './sessions/registry';
import { createStdioTransport } from './stdio/stdio-transport';
import { AggregateTransport, type AggregateDeps } from './aggregate/aggregate-transport';
import type { ProxySettings, RouteHandler, ServerTransport, TransportDeps } from './transport';
import type { CounterStore, Logger, McpFrontConfig, McpFrontOptions, McpFrontRouter } from './types';

const log = debug.extend('router');

/** `/:server/sse`, `/:server/message`, `/:server/mcp` — the only paths the router answers. */
const ROUTE = /^\/([^/]+)\/(sse|message|mcp)\/?$/;
const METHODS: Record<string, readonly string[]> = { sse: ['GET'], message: ['POST'], mcp: ['POST', 'GET', 'DELETE'] };
/**
 * The answer to a request or stream whose token was revoked before it was answered. `403`, not
 * `401`: an MCP client answers a `401` by starting its authorization flow (MCP specification,
 * Authorization), which a revoked static token cannot complete.
 */
const TOKEN_REVOKED = new HttpError(403, JsonRpcCode.ServerError, 'Forbidden: the token was revoked or may no longer use this server');
const SHUTTING_DOWN = shuttingDown();
const DRAINING = draining();

/** Options not yet part of the public API. */
interface InternalOptions extends McpFrontOptions {
  /** Modules plugged into the message pipeline after the default logging one. */
  hooks?: PipelineHook[];
  /** Serve `options.metrics` at `GET /metrics` as `proxy.metrics` says (the standalone command). */
  serveMetrics?: boolean;
}

/** Everything a request needs, swapped as one object by reload(). */
interface State {
  config: ResolvedConfig;
  /** Static tokens and, when configured, OAuth access tokens. */
  auth: Authenticator;
  transports: Map<string, ServerTransport>;
  /** The aggregates' routes, by name (README: Aggregates). */
  aggregates: Map<string, AggregateTransport>;
  proxy: ProxySettings;
  throttle: AuthThrottle | undefined;
  store: CounterStore;
  /** Computed once per config, off the event loop (config/fingerprint.ts). */
  fingerprint: Promise<string>;
}

/**
 * Creates the mcp-front router. Validates the whole config first and throws `ConfigError`
 * synchronously when anything is wrong.
 */
export function mcpFront(config: McpFrontConfig, options: McpFrontOptions = {}): McpFrontRouter {
  const env = options.env ?? process.env;
  const logger = options.logger ?? createDefaultLogger();
  const internal = options as InternalOptions;
  const overrides = options.instanceId === undefined ? {} : { instanceId: options.instanceId };
  const initial = resolveConfig(config, env, overrides);
  // Every message and every session event passes one pipeline (docs/architecture.md); the
  // default logging module writes the session, timeout and upstream-error lines; the policies
  // (limits, permissions) decide, and the observability modules record the audit line, metrics,
  // spans and the servers' state (README: Monitoring). The policies read the current state on
  // every message: a reload applies to the next one.
  const currentConfig = () => state.config;
  const serverStates = healthHook();
  const tracing = tracingHook();
  const requestLimit = requestLimitHook(currentConfig, () => state.store, logger);
  const pipeline = new Pipeline(
    [
      loggingHook(logger),
      requestLimit,
      permissionsHook(currentConfig),
      auditHook(logger, () => state.config.audit),
      serverStates,
      ...(options.metrics === undefined ? [] : [metricsHook(options.metrics as unknown as Parameters<typeof metricsHook>[0], [...initial.servers.keys()], initial.oauth !== undefined, [...initial.aggregates.keys()])]),
      ...(tracing === undefined ? [] : [tracing]),
      ...(internal.hooks ?? []),
    ],
    logger,
  );
  const sessions = new SessionRegistry({ observer: pipeline, limit: sessionLimit(currentConfig, logger) });
  // A client request to an aggregate is counted once, by the limits, before it becomes requests
  // to members (README: Aggregates); a refusal there is seen by the observers as any refusal.
  const front = new Pipeline([requestLimit, { refused: (ex, verdict, ms) => pipeline.observeRefusal(ex, verdict, ms) }], logger);
  const deps: AggregateDeps = { sessions, logger, pipeline, front, config: currentConfig };
  const stores = new Stores(options.store, logger);
  let state = buildState(initial, deps, stores, logger);
  // Every session id handed out begins with `<instanceId>.`, so that a load balancer can route
  // a session to the instance that holds it (README: Running several instances).
  sessions.setInstanceId(state.config.instanceId);
  let closed = false;
  let draining = false;
  // Requests and streams of the routes below, until their response closes: what a drain waits for.
  let inFlight = 0;
  let idle: (() => void) | undefined;
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
  // OAuth Protected Resource Metadata (RFC 9728): under the mount path, and `wellKnown` for the
  // host's root, where RFC 9728 §3.1 puts it (README: OAuth 2.1).
  router.use(metadataRouter(() => state.config, false));
  router.wellKnown = metadataRouter(() => state.config, true);

  // The operator's routes: open health (more with a valid token) and, for the standalone command, metrics.
  const operator: OperatorRoutes = { current: () => state, draining: () => draining || closed, serverStates, logger, pipeline };
  router.get('/health', healthRoute(operator));
  if (internal.serveMetrics && options.metrics !== undefined) router.get('/metrics', metricsRoute(operator, options.metrics));

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
    // A request without a session opens one (GET /sse; POST /mcp without Mcp-Session-Id, the
    // initialize request of the MCP Streamable HTTP transport); requests of live sessions go on.
    if (draining && (route === 'sse' || (route === 'mcp' && req.headers['mcp-session-id'] === undefined))) {
      return sendHttpError(res, DRAINING);
    }

    inFlight++;
    // A response emits 'close' once: `on`, not `once` (a wrapper per request, kept by every open stream).
    res.on('close', () => {
      inFlight--;
      if (inFlight === 0) idle?.();
    });

    if (current.throttle === undefined) return authorizeAndDispatch(req, res, current, encodedName, route);
    // Before any token comparison, so a throttled client learns nothing more about the tokens.
    checkThrottle(current.throttle, req.ip, logger).then(
      (retryAfterSeconds) => {
        if (retryAfterSeconds !== undefined) {
          pipeline.authFailed('throttled');
          return sendThrottled(res, retryAfterSeconds);
        }
        authorizeAndDispatch(req, res, current, encodedName, route);
      },
      next,
    );
  });

  function authorizeAndDispatch(req: Request, res: Response, current: State, encodedName: string, route: string): void {
    const serverName = safeDecode(encodedName);
    const server = serverName === undefined ? undefined : current.config.servers.get(serverName);
    const proof = current.auth.prove(req.headers.authorization);
    // A static token, an access token verified before, or a refusal is decided in this tick; only
    // a token the authorization server must be asked about waits.
    if (!(proof instanceof Promise)) return dispatch(req, res, current, serverName, server, route, proof);
    proof.then(
      (p) => dispatch(req, res, current, serverName, server, route, p),
      (err: unknown) => {
        logFault(logger, 'authentication failed', { server: logSafe(serverName) }, err);
        if (!res.headersSent) sendJsonRpcError(res, 500, JsonRpcCode.InternalError, 'Internal Server Error');
      },
    );
  }

  /** Authenticated (or not): find the server, hold the credential against it, hand it to its transport. */
  function dispatch(req: Request, res: Response, current: State, serverName: string | undefined, server: ResolvedServer | undefined, route: string, proof: Proof): void {
    // Permissions come from the current config, not the transport's: a transport outlives a
    // reload that only changed authTokens.
    const aggregate = server === undefined && serverName !== undefined ? current.config.aggregates.get(serverName) : undefined;
    const target: ResolvedServer | ResolvedAggregate | undefined = server ?? aggregate;
    if (!proof.ok) {
      logger.warn('auth failed', { reason: proof.reason, client_ip: req.ip, server: logSafe(serverName) });
      // An unreachable authorization server is not the client's failure.
      if (countsAsGuess(proof.reason)) countFailure(current.throttle, req.ip, logger);
      pipeline.authFailed(proof.reason);
      // An aggregate is a resource of its own: its 401 points at its metadata, with its scopes.
      return sendAuthFailure(res, proof.reason, challengeFor(current.config, target, route));
    }
    const transport: RouteHandler | undefined = server ? current.transports.get(server.name) : aggregate && current.aggregates.get(aggregate.name);
    if (!target || !transport) {
      const held = current.auth.principalOf(proof.credential);
      logger.warn('unknown server', { token: held.ok ? held.name : undefined, client_ip: req.ip, server: logSafe(serverName) });
      return sendJsonRpcError(res, 404, JsonRpcCode.ServerError, `Not Found: no server named "${logSafe(serverName)}"`);
    }
    const held = current.auth.hold(proof.credential, target);
    if (!held.ok) {
      const sub = proof.credential.kind === 'oauth' ? proof.credential.token.sub : undefined;
      logger.warn('auth failed', { reason: held.reason, token: held.name, sub: sub === undefined ? undefined : clip(sub), client_ip: req.ip, server: target.name });
      if (held.reason === 'wrong_audience') countFailure(current.throttle, req.ip, logger);
      pipeline.authFailed(held.reason);
      return sendAuthFailure(res, held.reason, challengeFor(current.config, target, route), { name: held.name, server: target.name });
    }
    if (!METHODS[route].includes(req.method)) {
      res.setHeader('Allow', METHODS[route].join(', '));
      return sendJsonRpcError(res, 405, JsonRpcCode.ServerError, `Method Not Allowed: ${route} accepts ${METHODS[route].join(', ')}`);
    }
    const { principal } = held;
    const subject = principal.subject === undefined ? undefined : clip(principal.subject);
    logger.info('auth successful', { token: principal.name, sub: subject, client_ip: req.ip, server: target.name });
    // A stream opened with an access token ends when the token does (README: OAuth 2.1); the
    // client opens it again with a fresh one.
    if (principal.expiresAt !== undefined) endStreamAt(res, principal.expiresAt);

    const ctx = { token: principal.name, identity: principal.identity, subject, proxy: current.proxy };
    if (route === 'sse') transport.handleSse(req, res, ctx);
    else if (route === 'message') transport.handleMessage(req, res, ctx);
    else transport.handleMcp(req, res, ctx);
  }

  router.reload = async function reload(next: McpFrontConfig): Promise<void> {
    if (closed) throw new Error('mcp-front router is closed');
    let resolved: ResolvedConfig;
    try {
      resolved = resolveConfig(next, env, overrides);
    } catch (err) {
      pipeline.configReloaded('failure');
      throw err;
    }
    const previous = state;
    state = buildState(resolved, deps, stores, logger, previous);
    pipeline.configReloaded('success');
    // A server whose upstream changed (or that is gone) starts over as unknown.
    for (const [name, transport] of previous.transports) if (state.transports.get(name) !== transport) serverStates.forget(name);
    sessions.setInstanceId(state.config.instanceId);
    if (previous.store !== state.store) await stores.retire(previous.store);

    // Revocation is immediate: sessions of a token (or principal) that is gone, whose value (or
    // claims) changed, or that may no longer use its server are closed now, streams included, and
    // so is every request or stream of theirs still starting (RFC 6750 §3.1: a revoked token is
    // no longer valid).
    const revoked = (s: { token: string; server: string }) =>
      credentialOf(resolved, s.token) !== credentialOf(previous.config, s.token) ||
      !((resolved.servers.get(s.server) ?? resolved.aggregates.get(s.server))?.authTokens.has(s.token) ?? false);
    const retired = [...previous.transports.values()].filter((t) => state.transports.get(t.server.name) !== t);
    const retiredAggregates = [...previous.aggregates.values()].filter((a) => state.aggregates.get(a.aggregate.name) !== a);
    await Promise.all([sessions.closeWhere(revoked, 'token revoked', TOKEN_REVOKED), ...retired.map((t) => t.close()), ...retiredAggregates.map((a) => a.close())]);

    warnTokens(resolved);
    logger.info('config reloaded', {
      ...diffNames('tokens', previous.config.tokens, resolved.tokens),
      ...diffNames('servers', previous.config.servers, resolved.servers),
      ...diffNames('aggregates', previous.config.aggregates, resolved.aggregates),
      servers_changed: retired.filter((t) => resolved.servers.has(t.server.name)).map((t) => t.server.name).join(',') || undefined,
    });
  };

  router.close = async function close(): Promise<void> {
    closed = true;
    // Requests and streams still starting are answered at once, not after the transports' ends.
    const aborting = sessions.closeWhere(() => true, 'proxy closed', SHUTTING_DOWN);
    await Promise.all([aborting, ...[...state.transports.values(), ...state.aggregates.values()].map((t) => t.close())]);
    await sessions.closeWhere(() => true, 'proxy closed', SHUTTING_DOWN);
    state.auth.close();
    await stores.retire(state.store);
  };

  router.drain = async function drain(timeoutMs?: number): Promise<void> {
    if (closed) return;
    const limit = timeoutMs ?? state.config.drainTimeoutMs;
    draining = true;
    logger.info('draining', { in_flight: inFlight, timeout_ms: limit });
    if (inFlight > 0) {
      let timer: NodeJS.Timeout | undefined;
      const finished = await new Promise<boolean>((resolve) => {
        idle = () => resolve(true);
        timer = setTimeout(() => resolve(false), limit);
      });
      clearTimeout(timer);
      idle = undefined;
      if (!finished) logger.info('drain timeout reached; closing what is left', { in_flight: inFlight });
    }
    await router.close();
  };

  registries.set(router, sessions);
  pipelines.set(router, pipeline);
  return router;
}

const registries = new WeakMap<McpFrontRouter, SessionRegistry>();
const pipelines = new WeakMap<McpFrontRouter, Pipeline>();

/**
 * A reload refused before it reached the router (the standalone command could not read or parse
 * the file): counted like a refused `reload()`. Not exported from the package.
 */
export function reloadRefused(router: McpFrontRouter): void {
  pipelines.get(router)?.configReloaded('failure');
}

/** Live sessions of a router: for leak tests and diagnostics, not exported from the package. */
export function liveSessionCount(router: McpFrontRouter): number {
  return registries.get(router)?.size ?? 0;
}

/** Requests and streams of a router still tracked as in flight: for leak tests, not exported from the package. */
export function inFlightCount(router: McpFrontRouter): number {
  return registries.get(router)?.inFlightCount ?? 0;
}

/** Reuses the transport of every server (and aggregate) whose settings did not change, so its sessions live on. */
function buildState(config: ResolvedConfig, deps: AggregateDeps, stores: Stores, logger: Logger, previous?: State): State {
  const transports = new Map<string, ServerTransport>();
  for (const [name, server] of config.servers) {
    const old = previous?.transports.get(name);
    transports.set(name, old && sameUpstream(old.server, server) ? old : createTransport(server, deps));
  }
  const aggregates = new Map<string, AggregateTransport>();
  for (const [name, aggregate] of config.aggregates) {
    const old = previous?.aggregates.get(name);
    const members = aggregate.members.map((m) => config.servers.get(m.server)!);
    const same = old !== undefined && sameAggregate(old.aggregate, aggregate) && members.every((s) => transports.get(s.name) === previous?.transports.get(s.name));
    aggregates.set(name, same ? old : new AggregateTransport(aggregate, members, deps));
  }
  const store = stores.for(config);
  const fingerprint = configFingerprint(config);
  // Awaited by /health only; a failure (out of memory) must not be an unhandled rejection.
  fingerprint.catch(() => undefined);
  return {
    config,
    auth: authenticatorFor(config, previous?.auth, logger),
    transports,
    aggregates,
    proxy: { name: config.name, maxBodyBytes: config.maxBodyBytes, maxEventBytes: config.maxEventBytes, maxBatch: config.maxBatch, keepAliveMs: config.keepAliveMs },
    throttle: authThrottleFor(config.authThrottle, previous?.throttle, store),
    store,
    fingerprint,
  };
}

function createTransport(server: ResolvedServer, deps: TransportDeps): ServerTransport {
  return server.kind === 'stdio' ? createStdioTransport(server, deps) : createRemoteTransport(server, deps);
}

/**
 * Two server settings that reach the same upstream the same way. `authTokens`, `permissions` and
 * `scopes` are left out: they are enforced per request (and by revoking sessions), not by a new
 * transport.
 */
function sameUpstream(a: ResolvedServer, b: ResolvedServer): boolean {
  // Resolved configs are built in a fixed key order, and a URL serializes as its href.
  const comparable = (s: ResolvedServer) => JSON.stringify({ ...s, authTokens: undefined, permissions: undefined, scopes: undefined });
  return comparable(a) === comparable(b);
}

/** Two aggregates whose sessions can go on: `authTokens` and `scopes` are enforced per request and by revocation. */
function sameAggregate(a: ResolvedAggregate, b: ResolvedAggregate): boolean {
  const comparable = (x: ResolvedAggregate) => JSON.stringify({ ...x, authTokens: undefined, scopes: undefined });
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

/** Server names in logs come from the URL: bounded like all client text (the logger escapes odd characters). */
function logSafe(name: string | undefined): string {
  return name === undefined ? '(undecodable)' : clip(name);
}
