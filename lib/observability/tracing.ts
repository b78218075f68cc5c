// OpenTelemetry spans (README: Monitoring): one SERVER span per JSON-RPC request, named and
// attributed as the OpenTelemetry semantic conventions for MCP say (`{mcp.method.name} {target}`,
// `mcp.method.name`, `mcp.session.id`, `jsonrpc.request.id`, `gen_ai.tool.name`, …), whose parent
// is the `traceparent` of `params._meta` (MCP specification, `_meta`; W3C Trace Context) read with
// the globally registered propagator. Only `@opentelemetry/api`, an optional peer dependency, is
// used: the application that registered a tracer provider owns the SDK and the exporter.
import { performance } from 'node:perf_hooks';
import type * as OtelApi from '@opentelemetry/api';
import type { JsonRpcMessage } from '../wire/body';
import type { Exchange, PipelineHook } from '../pipeline/hooks';
import { clip } from '../logger';
import { answeredOutcome, failedOutcome, refusedOutcome, subjectOf, type Outcome } from './outcome';

type Api = typeof OtelApi;

/** `@opentelemetry/api` when the application has it installed; `undefined` otherwise. */
function loadApi(): Api | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('@opentelemetry/api') as Api;
  } catch {
    return undefined;
  }
}

/** The tracing module, or `undefined` when `@opentelemetry/api` is not installed. */
export function tracingHook(load: () => Api | undefined = loadApi): PipelineHook | undefined {
  const api = load();
  if (api === undefined) return undefined;
  const provider = api.trace.getTracerProvider() as OtelApi.TracerProvider & { getDelegateTracer?(name: string): OtelApi.Tracer | undefined };
  let tracer: OtelApi.Tracer | undefined;
  /**
   * The global provider is a proxy that only gets a delegate when an SDK registers one: until
   * then no span is built, no context is extracted, nothing is allocated per request.
   */
  const active = (): OtelApi.Tracer | undefined => {
    if (tracer !== undefined) return tracer;
    if (provider.getDelegateTracer !== undefined && provider.getDelegateTracer('mcp-front') === undefined) return undefined;
    tracer = api.trace.getTracer('mcp-front');
    return tracer;
  };

  const record = (ex: Exchange, outcome: Outcome, errorType: string | undefined, durationMs: number) => {
    const t = active();
    if (t === undefined) return;
    // Everything but the server, the aggregate and the token is the client's text: a span repeats at most
    // `MAX_CLIENT_TEXT` of each, as the audit line does, whatever the client sent.
    const named = subjectOf(ex);
    const subject = named === undefined ? undefined : clip(named);
    const method = clip(ex.method);
    const meta = ex.params?._meta;
    const parent = typeof meta === 'object' && meta !== null ? api.propagation.extract(api.ROOT_CONTEXT, meta as Record<string, unknown>) : api.ROOT_CONTEXT;
    const attributes: OtelApi.Attributes = {
      'mcp.method.name': method,
      'jsonrpc.request.id': clip(String(ex.id)),
      'mcp_front.server': ex.server,
      'mcp_front.token': ex.token,
    };
    // The member is the server; the aggregate the client addressed is said beside it.
    if (ex.aggregate !== undefined) attributes['mcp_front.aggregate'] = ex.aggregate;
    if (ex.sessionId !== undefined) attributes['mcp.session.id'] = clip(ex.sessionId);
    if (ex.protocolVersion !== undefined) attributes['mcp.protocol.version'] = clip(ex.protocolVersion);
    if (subject !== undefined) {
      if (ex.method === 'tools/call') attributes['gen_ai.tool.name'] = subject;
      else if (ex.method === 'prompts/get') attributes['gen_ai.prompt.name'] = subject;
      else attributes['mcp.resource.uri'] = subject;
    }
    if (errorType !== undefined) attributes['error.type'] = errorType;
    const end = performance.timeOrigin + performance.now();
    const name = subject !== undefined && !ex.method.startsWith('resources/') ? `${method} ${subject}` : method;
    const span = t.startSpan(name, { kind: api.SpanKind.SERVER, attributes, startTime: end - durationMs }, parent);
    if (errorType !== undefined) span.setStatus({ code: api.SpanStatusCode.ERROR, message: outcome });
    span.end(end);
  };

  return {
    // Until a provider is registered, answers need not be read for spans nobody would record.
    appliesTo: () => active() !== undefined,
    answer(ex, response: JsonRpcMessage, durationMs) {
      const outcome = answeredOutcome(response);
      const code = (response.error as { code?: unknown } | undefined)?.code;
      const errorType = outcome === 'error' ? (typeof code === 'number' ? String(code) : 'error') : outcome === 'tool_error' ? 'tool_error' : undefined;
      record(ex, outcome, errorType, durationMs);
      return undefined;
    },
    failed(ex, failure, durationMs) {
      const outcome = failedOutcome(failure);
      record(ex, outcome, outcome, durationMs);
    },
    refused(ex, verdict, durationMs) {
      record(ex, refusedOutcome(verdict), String(verdict.code), durationMs);
    },
  };
}
