// The audit line (README: Monitoring): one `mcp request` line per JSON-RPC request once it is
// answered, refused or failed — who, which server, which method and name, how it ended, how long
// it took. Never the arguments or the result: they may hold anything the user typed. A request
// through an aggregate names its member as `server` (`name` is then the member's own) and the
// aggregate as `aggregate`: `server=github` finds a server's requests whichever route they took.
import type { Logger } from '../types';
import type { Exchange, PipelineHook } from '../pipeline/hooks';
import { clip } from '../logger';
import { answeredOutcome, failedOutcome, refusedOutcome, subjectOf, type Outcome } from './outcome';

/** `enabled` is read per request, so that `proxy.audit` follows a reload. */
export function auditHook(logger: Logger, enabled: () => boolean): PipelineHook {
  const line = (ex: Exchange, outcome: Outcome, durationMs: number) => {
    if (!enabled()) return;
    const name = subjectOf(ex);
    logger.info('mcp request', {
      token: ex.token,
      sub: ex.subject,
      server: ex.server,
      aggregate: ex.aggregate,
      // Both the client's text: an unknown method is whatever it sent.
      method: clip(ex.method),
      name: name === undefined ? undefined : clip(name),
      outcome,
      duration_ms: Math.round(durationMs),
    });
  };
  return {
    // With `proxy.audit: false` answers need not be read for the audit's sake (bench/README.md).
    appliesTo: () => enabled(),
    answer(ex, response, durationMs) {
      line(ex, answeredOutcome(response), durationMs);
      return undefined;
    },
    failed: (ex, outcome, durationMs) => line(ex, failedOutcome(outcome), durationMs),
    refused: (ex, verdict, durationMs) => line(ex, refusedOutcome(verdict), durationMs),
  };
}
