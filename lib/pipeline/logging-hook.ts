// The pipeline's default module: the log lines of sessions starting and ending, of requests that
// end without an answer, and of upstreams that fail (README: Logs and debugging). A session's
// `server` is the name the client addressed, an aggregate's too (`upstream=aggregate`); a request's
// is the server that had it, with `aggregate=` when it came through one, as on the audit line.
import type { Logger } from '../types';
import { loggingObserver } from '../sessions/observer';
import type { PipelineHook } from './hooks';

/**
 * Logs what the transports hand it for failed requests. A route that fails a whole HTTP exchange
 * (a batch) at once passes `event` with the first request only, so that one failure is one line.
 */
export function loggingHook(logger: Logger): PipelineHook {
  const sessions = loggingObserver(logger);
  return {
    sessionStarted: (info) => sessions.sessionStarted(info),
    sessionEnded: (info, reason) => sessions.sessionEnded(info, reason),
    failed(ex, _outcome, _duration, fields) {
      if (fields === undefined || typeof fields.event !== 'string') return;
      const { event, ...rest } = fields;
      if (ex.aggregate === undefined) return logger.warn(event, rest);
      const { server: _addressed, ...others } = rest;
      logger.warn(event, { server: ex.server, aggregate: ex.aggregate, ...others });
    },
    upstreamError(info) {
      if (info.refused) logger.warn('upstream refused a message', { server: info.server, status: info.status });
      else logger.warn('upstream error', { server: info.server, code: info.code, status: info.status });
    },
  };
}
