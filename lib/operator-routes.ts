// The operator's routes (README: Monitoring): `GET /health`, open to all and richer with a valid
// token, and `GET /metrics` of the standalone command. They read the router's current state on
// every request, so they follow reloads.
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Authenticator } from './auth/authenticate';
import { sendAuthFailure } from './auth/challenges';
import { checkThrottle, countFailure, countsAsGuess, sendThrottled, type AuthThrottle } from './auth/throttle';
import type { ResolvedConfig } from './config';
import type { AggregateHealth, HealthHook } from './observability/health';
import type { Pipeline } from './pipeline/pipeline';
import { JsonRpcCode, sendJsonRpcError } from './wire/errors';
import type { Logger, MetricsRegistry } from './types';

/** What the operator's routes read of the router. */
export interface OperatorRoutes {
  current(): { config: ResolvedConfig; auth: Authenticator; throttle: AuthThrottle | undefined; fingerprint: Promise<string> };
  /** The router is draining or closed: `/health` says so with `503`. */
  draining(): boolean;
  serverStates: HealthHook;
  logger: Logger;
  pipeline: Pipeline;
}

/**
 * Open to all (load balancers probe it without credentials). A valid token adds what only an
 * operator needs; a missing or wrong one gets the open answer, not a 401, so that a probe
 * configured with an old token keeps working. A wrong token still counts as a failed
 * authentication for the throttle: the difference between the two answers tells whether a
 * token is valid.
 */
export function healthRoute({ current: state, draining, serverStates, logger }: OperatorRoutes): RequestHandler {
  return function health(req: Request, res: Response) {
    const current = state();
    const status = draining() ? 'draining' : 'ok';
    const { aggregates } = current.config;
    // Counted only when there are some: a config without aggregates answers as it always did.
    const counted = aggregates.size === 0 ? {} : { aggregates: aggregates.size };
    const open = { status, service: 'mcp-front', name: current.config.name, servers: current.config.servers.size, ...counted };
    const answer = (body: object) => {
      res.status(status === 'ok' ? 200 : 503).json(body);
    };
    if (req.headers.authorization === undefined) return answer(open);
    void (async () => {
      const throttled = await checkThrottle(current.throttle, req.ip, logger);
      if (throttled !== undefined) return answer(open);
      const proof = await current.auth.prove(req.headers.authorization);
      const held = proof.ok ? current.auth.principalOf(proof.credential) : undefined;
      if (held === undefined || !held.ok) {
        // A token meant for another resource is a wrong token here, as at a server (401).
        const failed = held === undefined ? !proof.ok && countsAsGuess(proof.reason) : held.reason === 'wrong_audience';
        if (failed) countFailure(current.throttle, req.ip, logger);
        return answer(open);
      }
      const { name } = held;
      const fingerprint = await current.fingerprint;
      const instance = current.config.instanceId === undefined ? {} : { instanceId: current.config.instanceId };
      // Only the servers this token may use: the others' names are not its business.
      const usable = [...current.config.servers.values()].filter((s) => s.authTokens.has(name)).map((s) => s.name);
      const detail = { ...open, ...instance, configFingerprint: fingerprint, servers: serverStates.report(usable) };
      answer(aggregates.size === 0 ? detail : { ...detail, aggregates: aggregateStates(current.config, name, serverStates) });
    })().catch(() => answer(open));
  };
}

/**
 * The aggregates `token` may open, each from the members it sees there (README: Aggregates): the
 * same members, and so the same state, its sessions of that aggregate would have.
 */
function aggregateStates(config: ResolvedConfig, token: string, serverStates: HealthHook): Record<string, AggregateHealth> {
  const out: Record<string, AggregateHealth> = {};
  for (const aggregate of config.aggregates.values()) {
    if (!aggregate.authTokens.has(token)) continue;
    const visible = aggregate.members.filter((m) => config.servers.get(m.server)?.authTokens.has(token) === true).map((m) => m.server);
    out[aggregate.name] = serverStates.reportAggregate(visible, aggregate.onUnavailable);
  }
  return out;
}

/** `GET /metrics` as `proxy.metrics` says: open, or for the tokens and principals it lists. */
export function metricsRoute({ current: state, logger, pipeline }: OperatorRoutes, registry: MetricsRegistry): RequestHandler {
  return function metrics(req: Request, res: Response, next: NextFunction) {
    const current = state();
    const allowed = current.config.metrics;
    if (allowed === undefined) return next();
    const serve = () => {
      registry.metrics().then(
        (text) => res.setHeader('Content-Type', registry.contentType).end(text),
        next,
      );
    };
    if (allowed.authTokens === undefined) return serve();
    void (async () => {
      const throttled = await checkThrottle(current.throttle, req.ip, logger);
      if (throttled !== undefined) return sendThrottled(res, throttled);
      const proof = await current.auth.prove(req.headers.authorization);
      if (!proof.ok) {
        logger.warn('auth failed', { reason: proof.reason, client_ip: req.ip, path: '/metrics' });
        if (countsAsGuess(proof.reason)) countFailure(current.throttle, req.ip, logger);
        pipeline.authFailed(proof.reason);
        return sendAuthFailure(res, proof.reason, { realm: current.config.name });
      }
      const held = current.auth.principalOf(proof.credential);
      if (!held.ok || !allowed.authTokens!.has(held.name)) {
        const reason = held.ok ? 'forbidden' : held.reason;
        const name = held.ok ? held.name : undefined;
        logger.warn('auth failed', { reason, token: name, client_ip: req.ip, path: '/metrics' });
        if (reason === 'wrong_audience') countFailure(current.throttle, req.ip, logger);
        pipeline.authFailed(reason);
        if (reason !== 'forbidden') return sendAuthFailure(res, reason, { realm: current.config.name });
        return sendJsonRpcError(res, 403, JsonRpcCode.ServerError, `Forbidden: token "${name}" may not read /metrics`);
      }
      serve();
    })().catch(next);
  };
}
