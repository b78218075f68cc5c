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
 * The longest client text a metric label, a span or an audit line carries, in UTF-16 code units
 * (MCP specification 2025-11-25, Tools: a tool name SHOULD be 1 to 128 characters). A longer name
 * or URI is the client's choice, not the server's, and must not cost a line, a series or a span
 * its size.
 */
export const MAX_CLIENT_TEXT = 128;

/**
 * `text` cut to `MAX_CLIENT_TEXT` with a trailing `…` when it was longer, never in the middle of
 * a surrogate pair (a lone surrogate is not valid UTF-8 in an exposition, an exporter or a log).
 * The cut is a copy: V8 makes a slice of a long string point into it, so a 128-character label or
 * span attribute would keep the client's whole megabyte alive for as long as it is held.
 */
export function clip(text: string): string {
  if (text.length <= MAX_CLIENT_TEXT) return text;
  const last = text.charCodeAt(MAX_CLIENT_TEXT - 1);
  const end = last >= 0xd800 && last <= 0xdbff ? MAX_CLIENT_TEXT - 1 : MAX_CLIENT_TEXT;
  return Buffer.from(`${text.slice(0, end)}…`, 'utf16le').toString('utf16le');
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
