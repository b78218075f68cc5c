// Limits per token (README: Limits per token): JSON-RPC requests per window, counted in the
// router's counter store (shared between instances when it is Redis), and the live sessions of a
// token across every server of this instance. Read from the current config on every request and
// session, so a reload applies at once.
import type { ResolvedConfig, ResolvedLimits } from '../config';
import { HttpError, JsonRpcCode } from '../wire/errors';
import { logFault } from '../logger';
import type { CounterStore, Logger } from '../types';
import type { Exchange, PipelineHook, Verdict } from '../pipeline/hooks';

/** Which limit applies: the token's own entry, else `"*"`, field by field. */
function limitOf<K extends keyof ResolvedLimits>(config: ResolvedConfig, token: string, field: K): ResolvedLimits[K] | undefined {
  const limits = config.limits;
  if (limits === undefined) return undefined;
  return limits.get(token)?.[field] ?? limits.get('*')?.[field];
}

/** Counts each JSON-RPC request of a token (the pipeline hands it requests only, never notifications or responses). */
export function requestLimitHook(currentConfig: () => ResolvedConfig, currentStore: () => CounterStore, logger: Logger): PipelineHook {
  return {
    // A request through an aggregate was counted once, as the client's, before it reached a member (README: Aggregates).
    appliesTo: (base) => base.aggregate === undefined && limitOf(currentConfig(), base.token, 'requests') !== undefined,
    // A request with a null or reused id is still a request: it counts, though the pipeline refuses it.
    countsInvalid: true,

    async request(ex: Exchange): Promise<Verdict | undefined> {
      const limit = limitOf(currentConfig(), ex.token, 'requests');
      if (limit === undefined) return undefined;
      let count: number;
      let resetInMs: number;
      try {
        ({ count, resetInMs } = await currentStore().increment(`limits:requests:${ex.token}`, limit.windowMs));
      } catch (err) {
        // A failing store must not take every server down with it: counted as allowed, and logged.
        logFault(logger, 'counter store failed', { token: ex.token, server: ex.server }, err);
        return undefined;
      }
      if (count <= limit.max) return undefined;
      // RFC 9110 §10.2.3: whole seconds; at least 1, so that a client does not retry at once.
      const retryAfter = Math.max(1, Math.ceil(resetInMs / 1000));
      // One line per window, not one per refused request.
      if (count === limit.max + 1) logger.warn('request limit reached', { token: ex.token, server: ex.server, max: limit.max, retry_after: retryAfter });
      return {
        code: JsonRpcCode.ServerError,
        message: `Too Many Requests: token "${ex.token}" is over its limit of ${limit.max} requests per ${limit.windowMs} ms`,
        status: 429,
        headers: { 'Retry-After': String(retryAfter) },
      };
    },
  };
}

/**
 * `Retry-After` of a token at its `maxSessions`: a slot frees only when one of its sessions ends,
 * which the proxy cannot foresee; the same wait as a full server's.
 */
const SESSIONS_RETRY_AFTER = '5';

/**
 * The session registry's check before it opens a session for `token`, which holds `held` now:
 * `429` (RFC 6585 §4) when that is the token's `maxSessions`.
 */
export function sessionLimit(currentConfig: () => ResolvedConfig, logger: Logger): (token: string, held: number, server: string) => HttpError | undefined {
  return (token, held, server) => {
    const max = limitOf(currentConfig(), token, 'maxSessions');
    if (max === undefined || held < max) return undefined;
    logger.warn('session limit reached', { token, server, max_sessions: max });
    return new HttpError(429, JsonRpcCode.ServerError, `Too Many Requests: token "${token}" has reached its maximum of ${max} sessions`, {
      'Retry-After': SESSIONS_RETRY_AFTER,
    });
  };
}
