// Observability (README: Monitoring), through real routers, real servers and the SDK client: the
// Prometheus series each event moves, the audit line per JSON-RPC request on every route, one
// OpenTelemetry span per request parented by the client's `traceparent`, and the per-server
// detail of authenticated `/health`.
import path from 'node:path';
import { propagation, trace, TraceFlags } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { Registry } from 'prom-client';
import { connectClient, INITIALIZE, type ClientTransportKind, postModern } from './helpers/clients';
import { captureLogger, configWith, DEV_TOKEN, EVERYTHING, PROD_TOKEN, REFUSING_ORIGIN, startEverything, startFront, waitFor, type Front, type Upstream } from './helpers/servers';
import type { PipelineHook } from '../lib/pipeline/hooks';
import { METRIC_NAMES } from '../lib/observability/metrics';
import { tracingHook } from '../lib/observability/tracing';
import type { McpFrontOptions } from '../lib/types';

const STDIO_SERVER = path.join(__dirname, 'fixtures', 'stdio-server.js');
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
trace.setGlobalTracerProvider(provider);
propagation.setGlobalPropagator(new W3CTraceContextPropagator());

/** Refuses `tools/call` of `refused-tool` and any call with `refuse: true`; answers `test/limited` with a `429`. */
const refusing: PipelineHook = {
  request(ex) {
    const refuse = ex.params?.name === 'refused-tool' || (ex.params?.arguments as { refuse?: unknown } | undefined)?.refuse === true;
    if (ex.method === 'tools/call' && refuse) return { code: -32602, message: `Unknown tool: ${String(ex.params?.name)}` };
    if (ex.method === 'test/limited') return { code: -32000, message: 'Too Many Requests', status: 429, headers: { 'Retry-After': '3' } };
    return undefined;
  },
};

const logger = captureLogger();
const registry = new Registry();
let front: Front;
let everythingHttp: Upstream;
let everythingSse: Upstream;

beforeAll(async () => {
  [everythingHttp, everythingSse] = await Promise.all([startEverything('streamableHttp'), startEverything('sse')]);
  front = await startFront(
    configWith({
      everything: { command: process.execPath, args: [EVERYTHING, 'stdio'] },
      'remote-http': { url: `${everythingHttp.origin}/mcp` },
      'remote-sse': { url: `${everythingSse.origin}/sse` },
      down: { url: `${REFUSING_ORIGIN}/mcp` },
      'prod-only': { url: `${everythingHttp.origin}/mcp`, authTokens: ['prod'] },
      stdio: { command: process.execPath, args: [STDIO_SERVER, '--modern'], timeout: '5s' },
    }),
    { logger, metrics: registry, hooks: [refusing] } as McpFrontOptions,
  );
});

afterAll(async () => {
  await front?.close();
  await Promise.all([everythingHttp?.close(), everythingSse?.close()]);
  await provider.shutdown();
});

/** Waits for a series to read `expected`: it moves when a session or child ends, which no event here announces. */
async function untilValue(name: string, labels: Record<string, string>, expected: number): Promise<void> {
  let current: number | undefined;
  const poll = () => void value(name, labels).then((n) => (current = n));
  poll();
  await waitFor(() => {
    if (current === expected) return true;
    poll();
    return false;
  }, `${name} ${JSON.stringify(labels)} to be ${expected}`);
}

/** The value of one series in the exposition, 0 when absent. */
async function value(name: string, labels: Record<string, string>): Promise<number> {
  const metric = await (registry.getSingleMetric(name) as { get(): Promise<{ values: unknown[] }> } | undefined)?.get();
  if (metric === undefined) throw new Error(`no metric ${name}`);
  const wanted = Object.entries(labels);
  let sum = 0;
  for (const v of metric.values as { value: number; labels: Record<string, string | number>; metricName?: string }[]) {
    if (v.metricName !== undefined && v.metricName !== name && !(name.endsWith('_seconds') && v.metricName === `${name}_count`)) continue;
    if (wanted.every(([k, want]) => String(v.labels[k]) === want)) sum += v.value;
  }
  return sum;
}

const mcpLines = () => logger.entries.filter((e) => e.message === 'mcp request');

const rawHeaders = (token = DEV_TOKEN, sessionId?: string) => ({
  Authorization: `Bearer ${token}`,
  'Content-Type': 'application/json',
  Accept: 'application/json, text/event-stream',
  'MCP-Protocol-Version': '2025-06-18',
  ...(sessionId ? { 'Mcp-Session-Id': sessionId } : {}),
});

describe('metrics', () => {
  it('are all registered when the router is created, before any traffic', async () => {
    const fresh = new Registry();
    const f = await startFront(configWith({ s: { url: `${everythingHttp.origin}/mcp` } }), { metrics: fresh });
    try {
      const text = await fresh.metrics();
      for (const name of METRIC_NAMES) expect(text).toContain(`# TYPE ${name} `);
      expect(text).toContain('mcp_front_auth_failures_total{reason="invalid_token"} 0');
      expect(text).toContain('mcp_front_config_reloads_total{result="failure"} 0');
      expect(text).toContain('mcp_front_sessions_active{server="s",transport="streamable"} 0');
    } finally {
      await f.close();
    }
  });
});

const ROUTES: [string, ClientTransportKind][] = [
  ['everything', 'sse'],
  ['everything', 'streamable'],
  ['remote-http', 'streamable'],
  ['remote-sse', 'sse'],
];

describe.each(ROUTES)('%s over %s', (server, kind) => {
  let client: Client;
  beforeAll(async () => {
    client = await connectClient(front.url, server, kind, DEV_TOKEN);
  });
  afterAll(async () => {
    await client?.close();
  });

  it('a tools/call moves the request, duration and tool-call series, logs its audit line, and gets its span', async () => {
    const before = {
      requests: await value('mcp_front_requests_total', { server, token: 'dev', method: 'tools/call', outcome: 'ok' }),
      tools: await value('mcp_front_tool_calls_total', { server, token: 'dev', tool: 'echo', outcome: 'ok' }),
      duration: await value('mcp_front_request_duration_seconds', { server, method: 'tools/call' }),
      toolDuration: await value('mcp_front_tool_call_duration_seconds', { server, tool: 'echo' }),
      lines: mcpLines().length,
    };
    exporter.reset();
    await client.callTool({ name: 'echo', arguments: { message: 'secret-argument-text' } });
    expect(await value('mcp_front_requests_total', { server, token: 'dev', method: 'tools/call', outcome: 'ok' })).toBe(before.requests + 1);
    expect(await value('mcp_front_tool_calls_total', { server, token: 'dev', tool: 'echo', outcome: 'ok' })).toBe(before.tools + 1);
    expect(await value('mcp_front_request_duration_seconds', { server, method: 'tools/call' })).toBe(before.duration + 1);
    expect(await value('mcp_front_tool_call_duration_seconds', { server, tool: 'echo' })).toBe(before.toolDuration + 1);

    const line = mcpLines().slice(before.lines).find((e) => e.fields.method === 'tools/call');
    expect(line).toMatchObject({ level: 'info', fields: { token: 'dev', server, method: 'tools/call', name: 'echo', outcome: 'ok', duration_ms: expect.any(Number) } });
    expect(logger.text()).not.toContain('secret-argument-text');

    const span = exporter.getFinishedSpans().find((s) => s.name === 'tools/call echo');
    expect(span).toBeDefined();
    expect(span!.attributes).toMatchObject({
      'mcp.method.name': 'tools/call',
      'gen_ai.tool.name': 'echo',
      'jsonrpc.request.id': expect.any(String),
      'mcp.session.id': expect.any(String),
      'mcp_front.server': server,
      'mcp_front.token': 'dev',
    });
    expect(span!.attributes['error.type']).toBeUndefined();
  });

  it('a refused call counts as denied in both counters, its unknown name as tool="other", with its audit line and span', async () => {
    const before = {
      requests: await value('mcp_front_requests_total', { server, token: 'dev', method: 'tools/call', outcome: 'denied' }),
      tools: await value('mcp_front_tool_calls_total', { server, token: 'dev', tool: 'other', outcome: 'denied' }),
      lines: mcpLines().length,
    };
    exporter.reset();
    await expect(client.callTool({ name: 'refused-tool', arguments: {} })).rejects.toMatchObject({ code: -32602 });
    expect(await value('mcp_front_requests_total', { server, token: 'dev', method: 'tools/call', outcome: 'denied' })).toBe(before.requests + 1);
    // A name the server was never seen to have is the client's text, not a label.
    expect(await value('mcp_front_tool_calls_total', { server, token: 'dev', tool: 'other', outcome: 'denied' })).toBe(before.tools + 1);
    expect(await value('mcp_front_tool_calls_total', { server, tool: 'refused-tool' })).toBe(0);
    expect(mcpLines().slice(before.lines)).toEqual([expect.objectContaining({ fields: expect.objectContaining({ server, name: 'refused-tool', outcome: 'denied' }) })]);
    const span = exporter.getFinishedSpans().find((s) => s.name === 'tools/call refused-tool');
    expect(span?.attributes['error.type']).toBe('-32602');
  });

  it('a refused call of a tool the server listed keeps the tool’s label', async () => {
    const tool = 'get-sum';
    const before = await value('mcp_front_tool_calls_total', { server, token: 'dev', tool, outcome: 'denied' });
    expect((await client.listTools()).tools.map((t) => t.name)).toContain(tool);
    await expect(client.callTool({ name: tool, arguments: { refuse: true } })).rejects.toMatchObject({ code: -32602 });
    expect(await value('mcp_front_tool_calls_total', { server, token: 'dev', tool, outcome: 'denied' })).toBe(before + 1);
  });

  it('every other request gets its audit line too (tools/list, no name)', async () => {
    const before = mcpLines().length;
    await client.listTools();
    expect(mcpLines().slice(before)).toEqual([expect.objectContaining({ fields: expect.objectContaining({ method: 'tools/list', name: undefined, outcome: 'ok' }) })]);
  });
});

describe('other events', () => {
  it('a 429 verdict counts in mcp_front_rate_limited_total and logs outcome=rate_limited', async () => {
    const before = await value('mcp_front_rate_limited_total', { token: 'dev' });
    const res = await fetch(`${front.url}/remote-http/mcp`, { method: 'POST', headers: rawHeaders(), body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'test/limited' }) });
    expect(res.status).toBe(429);
    await res.text();
    expect(await value('mcp_front_rate_limited_total', { token: 'dev' })).toBe(before + 1);
    expect(mcpLines().at(-1)?.fields).toMatchObject({ method: 'test/limited', outcome: 'rate_limited' });
    // An unknown method is one label value, whatever the client sends.
    expect(await value('mcp_front_requests_total', { server: 'remote-http', method: 'other', outcome: 'denied' })).toBeGreaterThanOrEqual(1);
  });

  it('a batch answered whole with 429 gives each of its requests one line: refused before, limited after', async () => {
    const before = mcpLines().length;
    const batch = [
      { jsonrpc: '2.0', id: 10, method: 'tools/call', params: { name: 'refused-tool', arguments: {} } },
      { jsonrpc: '2.0', id: 11, method: 'test/limited' },
      { jsonrpc: '2.0', id: 12, method: 'ping' },
    ];
    const res = await fetch(`${front.url}/remote-http/mcp`, { method: 'POST', headers: rawHeaders(), body: JSON.stringify(batch) });
    expect(res.status).toBe(429);
    await res.text();
    expect(mcpLines().slice(before).map((e) => [e.fields.method, e.fields.outcome])).toEqual([
      ['tools/call', 'denied'],
      ['test/limited', 'rate_limited'],
      ['ping', 'rate_limited'],
    ]);
  });

  it('auth failures count by reason: missing, invalid, forbidden', async () => {
    const reasons = ['missing_token', 'invalid_token', 'forbidden'];
    const before = await Promise.all(reasons.map((reason) => value('mcp_front_auth_failures_total', { reason })));
    const post = (server: string, auth?: string) =>
      fetch(`${front.url}/${server}/mcp`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', ...(auth ? { Authorization: auth } : {}) },
        body: JSON.stringify(INITIALIZE),
      }).then(async (r) => (await r.text(), r.status));
    expect(await post('remote-http')).toBe(401);
    expect(await post('remote-http', 'Bearer not-a-valid-token')).toBe(401);
    expect(await post('prod-only', `Bearer ${DEV_TOKEN}`)).toBe(403);
    const after = await Promise.all(reasons.map((reason) => value('mcp_front_auth_failures_total', { reason })));
    expect(after).toEqual(before.map((n) => n + 1));
  });

  it('an upstream error counts by server and status, and /health says the server is down', async () => {
    const res = await fetch(`${front.url}/down/mcp`, { method: 'POST', headers: rawHeaders(), body: JSON.stringify(INITIALIZE) });
    expect(res.status).toBe(502);
    await res.text();
    expect(await value('mcp_front_upstream_errors_total', { server: 'down', status: '502' })).toBe(1);
    const health = (await (await fetch(`${front.url}/health`, { headers: { Authorization: `Bearer ${DEV_TOKEN}` } })).json()) as { servers: Record<string, unknown> };
    expect(health.servers.down).toEqual({ state: 'down', lastFailure: { at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/), kind: 'refused' } });
  });

  it('a session’s start and end move mcp_front_sessions_active and mcp_front_stdio_processes', async () => {
    const labels = { server: 'everything', transport: 'sse' };
    // The legacy SSE session of the tests above is closed, but may still be ending (its child
    // exiting): the count starts from none.
    await untilValue('mcp_front_sessions_active', labels, 0);
    const childrenBefore = await value('mcp_front_stdio_processes', { server: 'everything' });
    const client = await connectClient(front.url, 'everything', 'sse', DEV_TOKEN);
    expect(await value('mcp_front_sessions_active', labels)).toBe(1);
    expect(await value('mcp_front_stdio_processes', { server: 'everything' })).toBe(childrenBefore + 1);
    await client.close();
    await untilValue('mcp_front_sessions_active', labels, 0);
    expect(await value('mcp_front_stdio_processes', { server: 'everything' })).toBe(childrenBefore);
  });

  it('reloads count by result', async () => {
    const good = configWith({ everything: { command: process.execPath, args: [EVERYTHING, 'stdio'] } });
    const fresh = new Registry();
    const f = await startFront(good, { metrics: fresh });
    try {
      await f.router.reload(good);
      await expect(f.router.reload({ ...good, mcpServers: { bad: { url: 'not a url' } } })).rejects.toThrow();
      const text = await fresh.metrics();
      expect(text).toContain('mcp_front_config_reloads_total{result="success"} 1');
      expect(text).toContain('mcp_front_config_reloads_total{result="failure"} 1');
    } finally {
      await f.close();
    }
  });

  it('no token value ever appears in the exposition', async () => {
    const text = await registry.metrics();
    expect(text).toContain('token="dev"');
    expect(text).not.toContain(DEV_TOKEN);
    expect(text).not.toContain(PROD_TOKEN);
    expect(text).not.toContain('not-a-valid-token');
  });
});

describe('outcomes other than ok', () => {
  const post = (body: unknown, sessionId?: string) => fetch(`${front.url}/stdio/mcp`, { method: 'POST', headers: rawHeaders(DEV_TOKEN, sessionId), body: JSON.stringify(body) });
  const call = (id: number, name: string) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {} } });
  let sessionId: string;
  beforeAll(async () => {
    const init = await post(INITIALIZE);
    sessionId = init.headers.get('mcp-session-id')!;
    await init.text();
  });
  const lastLine = (name: string) => mcpLines().filter((e) => e.fields.name === name).at(-1)?.fields;

  it('a tool result with isError: true is tool_error (ok for the JSON-RPC request counter)', async () => {
    const res = await post(call(2, 'fail'), sessionId);
    expect(res.status).toBe(200);
    await res.text();
    expect(lastLine('fail')).toMatchObject({ method: 'tools/call', outcome: 'tool_error' });
    expect(await value('mcp_front_tool_calls_total', { server: 'stdio', tool: 'fail', outcome: 'tool_error' })).toBe(1);
    expect(await value('mcp_front_requests_total', { server: 'stdio', method: 'tools/call', outcome: 'ok' })).toBe(1);
    const span = exporter.getFinishedSpans().find((s) => s.name === 'tools/call fail');
    expect(span?.attributes['error.type']).toBe('tool_error');
  });

  it('a request the server never answers is timeout, and /health tells when', async () => {
    const res = await post(call(3, 'hang'), sessionId);
    expect(res.status).toBe(504);
    await res.text();
    expect(lastLine('hang')).toMatchObject({ outcome: 'timeout' });
    expect(await value('mcp_front_requests_total', { server: 'stdio', method: 'tools/call', outcome: 'timeout' })).toBe(1);
    const health = (await (await fetch(`${front.url}/health`, { headers: { Authorization: `Bearer ${DEV_TOKEN}` } })).json()) as { servers: Record<string, unknown> };
    expect(health.servers.stdio).toEqual({ state: 'down', lastFailure: { at: expect.any(String), kind: 'timeout' } });
  });

  it('a child that exits before answering is upstream_error, and /health says exited', async () => {
    const init = await post(INITIALIZE);
    const own = init.headers.get('mcp-session-id')!;
    await init.text();
    const res = await post(call(4, 'crash'), own);
    await res.text();
    await waitFor(() => lastLine('crash') !== undefined, 'the audit line of the crashed call');
    expect(lastLine('crash')).toMatchObject({ outcome: 'upstream_error' });
    const health = async () => ((await (await fetch(`${front.url}/health`, { headers: { Authorization: `Bearer ${DEV_TOKEN}` } })).json()) as { servers: Record<string, { lastFailure?: { kind: string } }> }).servers.stdio;
    let kind: string | undefined;
    const poll = () => void health().then((s) => (kind = s.lastFailure?.kind));
    poll();
    await waitFor(() => {
      poll();
      return kind === 'exited';
    }, 'health to say exited');
  });

  it('stateless 2026-07-28 requests get their audit line and count too', async () => {
    const res = await postModern(`${front.url}/stdio/mcp`, DEV_TOKEN, 5, 'tools/call', { name: 'echo', arguments: { message: 'x' } });
    expect(res.status).toBe(200);
    await res.text();
    expect(lastLine('echo')).toMatchObject({ server: 'stdio', outcome: 'ok' });
    expect(await value('mcp_front_tool_calls_total', { server: 'stdio', tool: 'echo', outcome: 'ok' })).toBe(1);
    const span = exporter.getFinishedSpans().find((s) => s.name === 'tools/call echo' && s.attributes['mcp_front.server'] === 'stdio');
    expect(span?.attributes['mcp.protocol.version']).toBe('2026-07-28');
  });
});

describe('tracing', () => {
  it('parents the span with the traceparent of params._meta', async () => {
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const parentId = 'b7ad6b7169203331';
    exporter.reset();
    const init = await fetch(`${front.url}/remote-http/mcp`, { method: 'POST', headers: rawHeaders(), body: JSON.stringify(INITIALIZE) });
    const sessionId = init.headers.get('mcp-session-id')!;
    await init.text();
    const call = {
      jsonrpc: '2.0',
      id: 2,
      method: 'tools/call',
      params: { name: 'echo', arguments: { message: 'hi' }, _meta: { traceparent: `00-${traceId}-${parentId}-01` } },
    };
    const res = await fetch(`${front.url}/remote-http/mcp`, { method: 'POST', headers: rawHeaders(DEV_TOKEN, sessionId), body: JSON.stringify(call) });
    expect(res.status).toBe(200);
    await res.text();
    const span = exporter.getFinishedSpans().find((s: ReadableSpan) => s.name === 'tools/call echo')!;
    expect(span.spanContext().traceId).toBe(traceId);
    expect(span.parentSpanContext).toMatchObject({ traceId, spanId: parentId, traceFlags: TraceFlags.SAMPLED, isRemote: true });
    expect(span.attributes).toMatchObject({ 'mcp.session.id': sessionId, 'jsonrpc.request.id': '2', 'mcp.protocol.version': '2025-06-18' });
    // The initialize before it had no traceparent: a root span of its own trace.
    const root = exporter.getFinishedSpans().find((s) => s.name === 'initialize')!;
    expect(root.parentSpanContext).toBeUndefined();
    expect(root.spanContext().traceId).not.toBe(traceId);
  });

  it('is not loaded when @opentelemetry/api is not installed, and builds no span without a provider', () => {
    expect(tracingHook(() => undefined)).toBeUndefined();
    let started = 0;
    const api = {
      trace: { getTracerProvider: () => ({ getTracer: () => undefined, getDelegateTracer: () => undefined }), getTracer: () => ((started++, undefined)) },
    } as unknown as typeof import('@opentelemetry/api');
    const hook = tracingHook(() => api)!;
    const ex = { server: 's', token: 't', sessionId: undefined, route: 'streamable', upstream: 'stdio', method: 'ping', id: 1, params: undefined, protocolVersion: undefined, startedAt: 0 } as const;
    hook.answer!(ex, { jsonrpc: '2.0', id: 1, result: {} }, 1);
    expect(started).toBe(0);
  });
});

describe('audit', () => {
  it('proxy.audit: false turns the line off, and a reload turns it back on', async () => {
    const quiet = captureLogger();
    const c = configWith({ s: { url: `${everythingHttp.origin}/mcp` } }, { audit: false });
    const f = await startFront(c, { logger: quiet });
    try {
      const client = await connectClient(f.url, 's', 'streamable', DEV_TOKEN);
      await client.listTools();
      expect(quiet.entries.filter((e) => e.message === 'mcp request')).toEqual([]);
      await f.router.reload(configWith({ s: { url: `${everythingHttp.origin}/mcp` } }));
      await client.listTools();
      expect(quiet.entries.filter((e) => e.message === 'mcp request')).toEqual([expect.objectContaining({ fields: expect.objectContaining({ method: 'tools/list' }) })]);
      await client.close();
      // The `auth successful` line of every HTTP request stays.
      expect(quiet.entries.some((e) => e.message === 'auth successful')).toBe(true);
    } finally {
      await f.close();
    }
  });
});

describe('GET /health', () => {
  it('without a token names no server; with one, only the servers that token may use, unknown until something is known', async () => {
    const open = (await (await fetch(`${front.url}/health`)).json()) as Record<string, unknown>;
    expect(JSON.stringify(open)).not.toContain('everything');
    expect(JSON.stringify(open)).not.toContain('prod-only');
    const dev = (await (await fetch(`${front.url}/health`, { headers: { Authorization: `Bearer ${DEV_TOKEN}` } })).json()) as { servers: Record<string, { state: string }> };
    expect(Object.keys(dev.servers).sort()).toEqual(['down', 'everything', 'remote-http', 'remote-sse', 'stdio']);
    expect(dev.servers.everything.state).toBe('up');
    const prod = (await (await fetch(`${front.url}/health`, { headers: { Authorization: `Bearer ${PROD_TOKEN}` } })).json()) as { servers: Record<string, { state: string }> };
    expect(prod.servers['prod-only']).toEqual({ state: 'unknown' });
  });
});
