// Prometheus metrics (README: Monitoring), one pipeline module. `prom-client` is an optional peer
// dependency: it is required only when the caller passes a registry, and its metric classes are
// the ones that registry belongs to. Labels carry token names, never token values.
import type { Registry } from 'prom-client';
import type { Exchange, PipelineHook } from '../pipeline/hooks';
import type { JsonRpcMessage } from '../wire/body';
import { clip } from '../logger';
import { answeredOutcome, failedOutcome, methodLabel, refusedOutcome, subjectOf, type Outcome } from './outcome';

/** From milliseconds (a cached `ping`) to minutes (a long tool call), in seconds. */
export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
/** Distinct names per server taken from its `tools/list` answers: the server's own word. */
const MAX_LISTED_TOOLS = 1000;
/**
 * Distinct names per server learned only from a `tools/call` result. Fewer: a server may answer a
 * name it does not have with a result (`isError: true`, as the MCP TypeScript SDK's `McpServer`
 * does), so these names may still be the client's choice.
 */
export const MAX_CALLED_TOOLS = 100;

export const METRIC_NAMES = [
  'mcp_front_requests_total',
  'mcp_front_request_duration_seconds',
  'mcp_front_tool_calls_total',
  'mcp_front_tool_call_duration_seconds',
  'mcp_front_sessions_active',
  'mcp_front_stdio_processes',
  'mcp_front_auth_failures_total',
  'mcp_front_rate_limited_total',
  'mcp_front_upstream_errors_total',
  'mcp_front_config_reloads_total',
] as const;

type PromClient = typeof import('prom-client');
type Labels<T extends string> = Partial<Record<T, string>>;

const AUTH_FAILURE_REASONS = ['missing_token', 'malformed_header', 'invalid_token', 'forbidden', 'throttled'];
const OAUTH_FAILURE_REASONS = ['expired', 'wrong_audience', 'insufficient_scope', 'no_principal', 'issuer_unavailable'];
const TRANSPORTS = ['sse', 'streamable', 'stateless'];

/**
 * The server a request went to and, for a member's request, the aggregate it came through. A
 * request addressed to a server directly has no `aggregate` label, which PromQL reads as
 * `aggregate=""`: its series are those it had before aggregates existed, and the label's values
 * are configured names, so it multiplies the series by at most the aggregates a server is in.
 */
function placeOf(ex: Exchange): Labels<'server' | 'aggregate'> {
  return ex.aggregate === undefined ? { server: ex.server } : { server: ex.server, aggregate: ex.aggregate };
}

/**
 * The metrics module. Every metric is registered now, so that a scrape shows them before any
 * traffic; the series of closed label sets (auth failure reasons, reload results, sessions and
 * children of the configured servers, sessions of the configured aggregates, which count under
 * `server=<aggregate>`) start at zero.
 */
export function metricsHook(registry: Registry, servers: readonly string[], oauth = false, aggregates: readonly string[] = []): PipelineHook {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const prom = require('prom-client') as PromClient;
  const existing = (name: string) => registry.getSingleMetric(name);
  const counter = <T extends string>(name: string, help: string, labelNames: readonly T[]) =>
    (existing(name) as import('prom-client').Counter<T> | undefined) ?? new prom.Counter<T>({ name, help, labelNames, registers: [registry] });
  const gauge = <T extends string>(name: string, help: string, labelNames: readonly T[]) =>
    (existing(name) as import('prom-client').Gauge<T> | undefined) ?? new prom.Gauge<T>({ name, help, labelNames, registers: [registry] });

  const requests = counter('mcp_front_requests_total', 'JSON-RPC requests by server, aggregate, token name, MCP method and outcome.', ['server', 'aggregate', 'token', 'method', 'outcome']);
  const duration =
    (existing('mcp_front_request_duration_seconds') as import('prom-client').Histogram<'server' | 'aggregate' | 'method'> | undefined) ??
    new prom.Histogram({
      name: 'mcp_front_request_duration_seconds',
      help: 'Time from the proxy taking a JSON-RPC request to its answer, in seconds.',
      labelNames: ['server', 'aggregate', 'method'],
      buckets: DURATION_BUCKETS,
      registers: [registry],
    });
  const toolCalls = counter('mcp_front_tool_calls_total', 'tools/call requests by server, aggregate, token name, tool and outcome.', ['server', 'aggregate', 'token', 'tool', 'outcome']);
  // Per tool as well: a p95 per tool needs the tool among a histogram's labels.
  const toolDuration =
    (existing('mcp_front_tool_call_duration_seconds') as import('prom-client').Histogram<'server' | 'aggregate' | 'tool'> | undefined) ??
    new prom.Histogram({
      name: 'mcp_front_tool_call_duration_seconds',
      help: 'Time from the proxy taking a tools/call request to its answer, in seconds, by server, aggregate and tool.',
      labelNames: ['server', 'aggregate', 'tool'],
      buckets: DURATION_BUCKETS,
      registers: [registry],
    });
  const sessions = gauge('mcp_front_sessions_active', 'Live client sessions by server and client transport.', ['server', 'transport']);
  const processes = gauge('mcp_front_stdio_processes', 'Running stdio server processes by server.', ['server']);
  const authFailures = counter('mcp_front_auth_failures_total', 'Requests refused by authentication or authorization, by reason.', ['reason']);
  const rateLimited = counter('mcp_front_rate_limited_total', 'Requests refused with 429 by a request limit, by token name.', ['token']);
  const upstreamErrors = counter('mcp_front_upstream_errors_total', 'Upstream failures by server and the HTTP status the client got (none: it got none).', ['server', 'status']);
  const reloads = counter('mcp_front_config_reloads_total', 'Configuration reloads by result.', ['result']);

  // Every reason starts at zero, the OAuth ones only when OAuth is configured (README: Metrics).
  for (const reason of AUTH_FAILURE_REASONS) authFailures.inc({ reason }, 0);
  if (oauth) for (const reason of OAUTH_FAILURE_REASONS) authFailures.inc({ reason }, 0);
  for (const result of ['success', 'failure']) reloads.inc({ result }, 0);
  for (const server of servers) {
    for (const transport of TRANSPORTS) sessions.inc({ server, transport }, 0);
    processes.inc({ server }, 0);
  }
  for (const server of aggregates) for (const transport of TRANSPORTS) sessions.inc({ server, transport }, 0);

  // Per server, aggregates or not: a member's requests carry its own names, the prefix being the
  // aggregate's (README: Aggregates), so one member's tool is one `tool` value on every route.
  const tools = new Map<string, KnownTools>();
  const toolsOf = (server: string): KnownTools => {
    let known = tools.get(server);
    if (known === undefined) tools.set(server, (known = new KnownTools()));
    return known;
  };

  const count = (ex: Exchange, outcome: Outcome, durationMs: number) => {
    const method = methodLabel(ex.method);
    const place = placeOf(ex);
    // The request counter keeps the JSON-RPC view: a tool's own error is a result.
    const requestOutcome = outcome === 'tool_error' ? 'ok' : outcome === 'rate_limited' ? 'denied' : outcome;
    requests.inc({ ...place, token: ex.token, method, outcome: requestOutcome });
    duration.observe({ ...place, method }, durationMs / 1000);
    if (ex.method === 'tools/call') {
      const toolOutcome = outcome === 'rate_limited' ? 'denied' : outcome;
      const name = subjectOf(ex);
      const known = toolsOf(ex.server);
      // A result (even `isError: true`, MCP specification §Tools: Error Handling) means the
      // server ran the call; a refusal, a JSON-RPC error or no answer says nothing of the name.
      if (name !== undefined && (outcome === 'ok' || outcome === 'tool_error')) known.called(name);
      const tool = known.label(name);
      toolCalls.inc({ ...place, token: ex.token, tool, outcome: toolOutcome });
      toolDuration.observe({ ...place, tool }, durationMs / 1000);
    }
  };

  return {
    answer(ex, response, durationMs) {
      if (ex.method === 'tools/list') toolsOf(ex.server).listed(response);
      count(ex, answeredOutcome(response), durationMs);
      return undefined;
    },
    failed(ex, outcome, durationMs) {
      count(ex, failedOutcome(outcome), durationMs);
    },
    refused(ex, verdict, durationMs) {
      const outcome = refusedOutcome(verdict);
      if (outcome === 'rate_limited') rateLimited.inc({ token: ex.token } satisfies Labels<'token'>);
      count(ex, outcome, durationMs);
    },
    sessionStarted(info) {
      sessions.inc({ server: info.server, transport: info.kind });
      if (info.upstream === 'stdio') processes.inc({ server: info.server });
    },
    sessionEnded(info) {
      sessions.dec({ server: info.server, transport: info.kind });
      if (info.upstream === 'stdio') processes.dec({ server: info.server });
    },
    upstreamError(info) {
      upstreamErrors.inc({ server: info.server, status: info.status === undefined ? 'none' : String(info.status) });
    },
    authFailed(reason) {
      authFailures.inc({ reason });
    },
    configReloaded(result) {
      reloads.inc({ result });
    },
  };
}

/**
 * The tool names one server is known to have, which alone may become `tool` label values: a
 * name a client merely sends would otherwise make a series (and a line of every scrape) per
 * name, and fill the label set so that the real tools count as `other`. Names are kept clipped,
 * as labels are, so that neither their number nor their length follows the client.
 */
class KnownTools {
  private readonly fromLists = new Set<string>();
  private readonly fromCalls = new Set<string>();

  /** The names of a `tools/list` result (MCP specification §Tools: Listing Tools). */
  listed(response: JsonRpcMessage): void {
    const list = (response.result as { tools?: unknown } | undefined)?.tools;
    if (!Array.isArray(list)) return;
    for (const tool of list as unknown[]) {
      if (this.fromLists.size >= MAX_LISTED_TOOLS) return;
      const name = (tool as { name?: unknown } | null)?.name;
      if (typeof name === 'string') this.fromLists.add(clip(name));
    }
  }

  /** A name the server answered a `tools/call` of with a result. */
  called(name: string): void {
    const label = clip(name);
    if (this.fromLists.has(label) || this.fromCalls.size >= MAX_CALLED_TOOLS) return;
    this.fromCalls.add(label);
  }

  label(name: string | undefined): string {
    if (name === undefined) return 'other';
    const label = clip(name);
    return this.fromLists.has(label) || this.fromCalls.has(label) ? label : 'other';
  }
}
