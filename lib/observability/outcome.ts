// How a JSON-RPC request ended, in the words of the audit line and the metrics (README:
// Monitoring), the name it was about, and how much of the client's text may be repeated: shared
// by every observability module so that a request counts the same in each.
import type { JsonRpcMessage } from '../wire/body';
import type { Exchange, FailureOutcome, Verdict } from '../pipeline/hooks';

/**
 * `ok`, `tool_error` (a `tools/call` result with `isError: true`, MCP specification §Tools: Error
 * Handling), `error` (a JSON-RPC error), `denied` (refused by the proxy), `rate_limited` (refused
 * with `429`), `timeout`, `upstream_error` (the server failed or went away before answering).
 */
export type Outcome = 'ok' | 'tool_error' | 'error' | 'denied' | 'rate_limited' | 'timeout' | 'upstream_error';

export function answeredOutcome(response: JsonRpcMessage): Outcome {
  if (response.error !== undefined) return 'error';
  const result = response.result as { isError?: unknown } | undefined;
  return typeof result === 'object' && result !== null && result.isError === true ? 'tool_error' : 'ok';
}

/**
 * A request without the server's answer. A client that went away gets `error`: the request ended
 * without a result, and it is not the server's fault.
 */
export function failedOutcome(outcome: FailureOutcome): Outcome {
  switch (outcome) {
    case 'timeout':
      return 'timeout';
    case 'session_closed':
    case 'upstream_error':
      return 'upstream_error';
    case 'client_gone':
      return 'error';
  }
}

/** `429 Too Many Requests` (RFC 6585 §4) is a limit; any other verdict is a refusal. */
export function refusedOutcome(verdict: Verdict): Outcome {
  return verdict.status === 429 ? 'rate_limited' : 'denied';
}

/** The tool of `tools/call`, the prompt of `prompts/get`, the resource of `resources/read` and (un)subscribe. */
export function subjectOf(ex: Exchange): string | undefined {
  const p = ex.params;
  if (p === undefined) return undefined;
  switch (ex.method) {
    case 'tools/call':
    case 'prompts/get':
      return typeof p.name === 'string' ? p.name : undefined;
    case 'resources/read':
    case 'resources/subscribe':
    case 'resources/unsubscribe':
      return typeof p.uri === 'string' ? p.uri : undefined;
    default:
      return undefined;
  }
}

/**
 * A method name as a metric label: the methods of the MCP specification as they are, anything
 * else one value, so that a client cannot grow the number of series without bound.
 */
export function methodLabel(method: string): string {
  return KNOWN_METHODS.has(method) ? method : 'other';
}

const KNOWN_METHODS = new Set([
  'initialize',
  'ping',
  'tools/list',
  'tools/call',
  'prompts/list',
  'prompts/get',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'resources/subscribe',
  'resources/unsubscribe',
  'completion/complete',
  'logging/setLevel',
  'tasks/get',
  'tasks/list',
  'tasks/result',
  'tasks/cancel',
  'server/discover',
]);
