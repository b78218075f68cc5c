// A request through an aggregate (README: Monitoring; Aggregates) in every observability module:
// the audit line, the metric labels, the span and the log lines name the member as the server
// and the aggregate beside it, and a request to the member's own routes is as it always was. The
// requests go through a real pipeline as a transport hands them in, from an `ExchangeBase` that
// names the aggregate, so no live aggregate session is needed.
import { trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { Registry } from 'prom-client';
import { auditHook } from '../lib/observability/audit';
import { metricsHook } from '../lib/observability/metrics';
import { tracingHook } from '../lib/observability/tracing';
import { loggingHook } from '../lib/pipeline/logging-hook';
import { inboundOf } from '../lib/pipeline/inbound';
import { InFlight, Pipeline } from '../lib/pipeline/pipeline';
import type { ExchangeBase, PipelineHook } from '../lib/pipeline/hooks';
import type { SessionInfo } from '../lib/sessions/observer';
import { formatLine } from '../lib/logger';
import { captureLogger } from './helpers/servers';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
trace.setGlobalTracerProvider(provider);

afterAll(async () => {
  await provider.shutdown();
});

/** Refuses `tools/call` of `delete_repo`, as a permission would. */
const refusing: PipelineHook = {
  request: (ex) => (ex.method === 'tools/call' && ex.params?.name === 'delete_repo' ? { code: -32602, message: 'Unknown tool: gh__delete_repo' } : undefined),
};

const logger = captureLogger();
const pipeline = new Pipeline([loggingHook(logger), refusing, auditHook(logger, () => true), tracingHook()!], logger);

/** A member's request as the aggregate hands it on: the member is the server, its names its own. */
const THROUGH: ExchangeBase = { server: 'github', aggregate: 'all', token: 'dev', sessionId: 'session-1', route: 'streamable', upstream: 'streamable-http', protocolVersion: '2025-06-18' };
/** The same server on its own routes. */
const DIRECT: ExchangeBase = { server: 'github', token: 'dev', sessionId: 'session-2', route: 'streamable', upstream: 'streamable-http', protocolVersion: '2025-06-18' };

let nextId = 1;
const call = (name: string) => ({ jsonrpc: '2.0' as const, id: nextId++, method: 'tools/call', params: { name, arguments: {} } });

/** Admits one request from `base`, then answers it with a result, or fails it with `timeout`. */
async function send(base: ExchangeBase, message: ReturnType<typeof call>, end: 'answer' | 'timeout' = 'answer', through = pipeline): Promise<void> {
  const inFlight = new InFlight(through, base);
  const admission = await through.admit(base, inboundOf([message], false), inFlight);
  if (admission.exchanges.length === 0) return;
  if (end === 'timeout') return inFlight.fail(message.id, 'timeout', { event: 'upstream timed out', server: 'all', token: 'dev', timeout_ms: 5 });
  const response = { jsonrpc: '2.0' as const, id: message.id, result: { content: [{ type: 'text', text: 'ok' }] } };
  inFlight.answer(response, JSON.stringify(response));
}

const AT = new Date('2026-11-28T10:30:47.310Z');
const auditLines = () => logger.entries.filter((e) => e.message === 'mcp request').map((e) => formatLine('INFO', e.message, { ...e.fields, duration_ms: 7 }, AT));

beforeEach(() => {
  logger.entries.length = 0;
  exporter.reset();
});

describe('a request through an aggregate', () => {
  it('has its audit line name the member as server and the aggregate, after the server', async () => {
    await send(THROUGH, call('search_issues'));
    await send(THROUGH, call('delete_repo'));
    await send(THROUGH, call('slow'), 'timeout');
    await send(DIRECT, call('search_issues'));
    expect(auditLines()).toEqual([
      '2026-11-28T10:30:47.310Z INFO mcp request token=dev server=github aggregate=all method=tools/call name=search_issues outcome=ok duration_ms=7',
      '2026-11-28T10:30:47.310Z INFO mcp request token=dev server=github aggregate=all method=tools/call name=delete_repo outcome=denied duration_ms=7',
      '2026-11-28T10:30:47.310Z INFO mcp request token=dev server=github aggregate=all method=tools/call name=slow outcome=timeout duration_ms=7',
      '2026-11-28T10:30:47.310Z INFO mcp request token=dev server=github method=tools/call name=search_issues outcome=ok duration_ms=7',
    ]);
  });

  it('counts under server=<member> and aggregate=<name>; the member’s own route keeps its series without the label', async () => {
    const registry = new Registry();
    const counting = new Pipeline([refusing, metricsHook(registry, ['github'], false, ['all'])], logger);
    await send(THROUGH, call('search_issues'), 'answer', counting);
    await send(THROUGH, call('delete_repo'), 'answer', counting);
    await send(DIRECT, call('search_issues'), 'answer', counting);
    const text = await registry.metrics();
    for (const line of [
      'mcp_front_requests_total{server="github",aggregate="all",token="dev",method="tools/call",outcome="ok"} 1',
      'mcp_front_requests_total{server="github",aggregate="all",token="dev",method="tools/call",outcome="denied"} 1',
      'mcp_front_requests_total{server="github",token="dev",method="tools/call",outcome="ok"} 1',
      'mcp_front_request_duration_seconds_count{server="github",aggregate="all",method="tools/call"} 2',
      'mcp_front_request_duration_seconds_count{server="github",method="tools/call"} 1',
      // The member's own tool name, learned from its result, is one `tool` value on both routes.
      'mcp_front_tool_calls_total{server="github",aggregate="all",token="dev",tool="search_issues",outcome="ok"} 1',
      'mcp_front_tool_calls_total{server="github",aggregate="all",token="dev",tool="other",outcome="denied"} 1',
      'mcp_front_tool_calls_total{server="github",token="dev",tool="search_issues",outcome="ok"} 1',
      'mcp_front_tool_call_duration_seconds_count{server="github",aggregate="all",tool="search_issues"} 1',
      'mcp_front_tool_call_duration_seconds_count{server="github",tool="search_issues"} 1',
    ]) {
      expect(text).toContain(`\n${line}\n`);
    }
    expect(text).not.toContain('server="all",token=');
  });

  it('gets a span with mcp_front.aggregate beside the member’s mcp_front.server', async () => {
    await send(THROUGH, call('search_issues'));
    await send(DIRECT, call('search_issues'));
    const [through, direct] = exporter.getFinishedSpans();
    expect(through.name).toBe('tools/call search_issues');
    expect(through.attributes).toMatchObject({ 'mcp_front.server': 'github', 'mcp_front.aggregate': 'all', 'mcp_front.token': 'dev', 'gen_ai.tool.name': 'search_issues' });
    expect(direct.attributes['mcp_front.server']).toBe('github');
    expect(direct.attributes).not.toHaveProperty('mcp_front.aggregate');
  });

});

describe('a session of an aggregate', () => {
  const session: SessionInfo = { id: 'session-1', server: 'all', token: 'dev', kind: 'streamable', upstream: 'aggregate', fields: {} };

  it('logs under its own name, upstream=aggregate; a request through it that times out, as the audit line names it', async () => {
    pipeline.sessionStarted(session);
    await send(THROUGH, call('slow'), 'timeout');
    pipeline.sessionEnded(session, 'client disconnected');
    expect(logger.entries.filter((e) => e.message !== 'mcp request').map((e) => formatLine(e.level.toUpperCase(), e.message, e.fields, AT))).toEqual([
      // `aggregate=` is only ever beside a member's name: here the session's server is the aggregate.
      '2026-11-28T10:30:47.310Z INFO session started server=all token=dev transport=streamable upstream=aggregate',
      '2026-11-28T10:30:47.310Z WARN upstream timed out server=github aggregate=all token=dev timeout_ms=5',
      '2026-11-28T10:30:47.310Z INFO session ended server=all token=dev transport=streamable upstream=aggregate reason="client disconnected"',
    ]);
  });

  it('counts in mcp_front_sessions_active under server=<aggregate>, which starts at zero like a server’s, with no stdio process series', async () => {
    const registry = new Registry();
    const hook = metricsHook(registry, ['github', 'files'], false, ['all']);
    const before = await registry.metrics();
    for (const transport of ['sse', 'streamable', 'stateless']) expect(before).toContain(`\nmcp_front_sessions_active{server="all",transport="${transport}"} 0\n`);
    expect(before).toContain('\nmcp_front_stdio_processes{server="github"} 0\n');
    hook.sessionStarted!(session);
    const during = await registry.metrics();
    expect(during).toContain('\nmcp_front_sessions_active{server="all",transport="streamable"} 1\n');
    expect(during).not.toContain('mcp_front_stdio_processes{server="all"}');
    hook.sessionEnded!(session, 'client disconnected');
    expect(await registry.metrics()).toContain('\nmcp_front_sessions_active{server="all",transport="streamable"} 0\n');
  });
});
