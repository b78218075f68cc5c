// What a hostile client's names cost the observability modules (README: Monitoring): a metric
// label only for a tool the server is known to have, every client text clipped to 128 characters
// in labels and spans, whatever the client sends and however much of it. The metrics module is
// driven directly, as the pipeline drives it, so that 100 MiB of names cost seconds, not minutes.
import v8 from 'node:v8';
import vm from 'node:vm';
import { trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { Registry } from 'prom-client';
import { MAX_CALLED_TOOLS, metricsHook } from '../lib/observability/metrics';
import { clip, MAX_CLIENT_TEXT } from '../lib/logger';
import { tracingHook } from '../lib/observability/tracing';
import type { Exchange, PipelineHook } from '../lib/pipeline/hooks';
import type { JsonRpcMessage } from '../lib/wire/body';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
trace.setGlobalTracerProvider(provider);

afterAll(async () => {
  await provider.shutdown();
});

const SERVER = 'files';
const MiB = 1024 * 1024;
let nextId = 1;

/** An exchange as a transport admits it: a Streamable HTTP session to a stdio server. */
function exchange(method: string, params: Record<string, unknown> | undefined, id: string | number = nextId++): Exchange {
  return { server: SERVER, token: 'dev', sessionId: 'session-1', route: 'streamable', upstream: 'stdio', method, id, params, protocolVersion: '2025-06-18', startedAt: 0 };
}
const call = (name: string) => exchange('tools/call', { name, arguments: { path: '/etc/hosts' } });
const listAnswer = (ex: Exchange, names: string[]): JsonRpcMessage => ({ jsonrpc: '2.0', id: ex.id, result: { tools: names.map((name) => ({ name, inputSchema: { type: 'object' } })) } });
const errorAnswer = (ex: Exchange): JsonRpcMessage => ({ jsonrpc: '2.0', id: ex.id, error: { code: -32602, message: 'Unknown tool' } });
const toolError = (ex: Exchange): JsonRpcMessage => ({ jsonrpc: '2.0', id: ex.id, result: { content: [{ type: 'text', text: 'Tool not found' }], isError: true } });

/**
 * Distinct names of `bytes` characters each, made one at a time: the test holds none of them.
 * Each is read from JSON, as a body's are: a flat string of its own (`padEnd` would give ropes
 * sharing one filler), and no Buffer, whose freed memory the allocator may keep in RSS.
 */
function* hostileNames(total: number, bytes: number): Generator<string> {
  const filler = JSON.parse(JSON.stringify('x'.repeat(bytes))) as string;
  for (let i = 0; i < total / bytes; i++) yield JSON.parse(`"${i}:${filler.slice(String(i).length + 1)}"`) as string;
}

/** A full collection before reading memory, as `--expose-gc` would give; jest does not pass that flag. */
const gc = (() => {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
})();
const MB = 1_000_000;

/**
 * What `run` leaves behind, after a full collection: RSS, which the bound is about, and the live
 * heap, which says exactly what is still held. RSS also moves with what the process merely keeps
 * mapped (freed pages the kernel has not taken back yet), so only the flood's bound reads it.
 */
async function retainedBy(run: () => unknown): Promise<{ rss: number; heap: number }> {
  gc();
  const before = process.memoryUsage();
  await run();
  gc();
  const after = process.memoryUsage();
  return { rss: after.rss - before.rss, heap: after.heapUsed - before.heapUsed };
}

/** The `tool` label values of one metric's series. */
async function toolLabels(registry: Registry, name: string): Promise<Set<string>> {
  const metric = await registry.getSingleMetric(name)!.get();
  return new Set(metric.values.map((v) => String(v.labels.tool)).filter((t) => t !== 'undefined'));
}

/** A listed tool called once, with a result: the series a real tool has. */
function useRealTool(hook: PipelineHook, name: string): void {
  const list = exchange('tools/list', {});
  hook.answer!(list, listAnswer(list, [name]), 1);
  const ex = call(name);
  hook.answer!(ex, { jsonrpc: '2.0', id: ex.id, result: { content: [{ type: 'text', text: 'ok' }] } }, 1);
}

describe('metric labels', () => {
  it('100 MiB of refused, failed and error-answered names change the exposition by under 64 KiB and memory by under 50 MB; a listed tool keeps its label', async () => {
    let i = 0;
    const feed = (hook: PipelineHook, name: string) => {
      const ex = call(name);
      switch (i++ % 3) {
        case 0:
          return hook.refused!(ex, { code: -32602, message: `Unknown tool: ${name}` }, 1);
        case 1:
          return hook.answer!(ex, errorAnswer(ex), 1);
        default:
          return hook.failed!(ex, 'timeout', 1);
      }
    };
    // The first megabytes bring the heap and the allocator to their working size (the young
    // generation grows, pages get mapped): a cost of any traffic, not what is measured. They go
    // to a registry of their own, so that the measured one sees all 100 MiB.
    const warmUp = metricsHook(new Registry(), [SERVER]);
    for (const name of hostileNames(32 * MiB, 16 * 1024)) feed(warmUp, name);
    for (const name of hostileNames(2 * MiB, MiB)) feed(warmUp, name);

    const registry = new Registry();
    const hook = metricsHook(registry, [SERVER]);
    useRealTool(hook, 'read_file');
    const textBefore = (await registry.metrics()).length;
    let textAfter = 0;
    // Many names of 16 KiB and a few of 1 MiB, through every path a refused or unknown name
    // takes, then a scrape.
    const retained = await retainedBy(async () => {
      for (const name of hostileNames(96 * MiB, 16 * 1024)) feed(hook, name);
      for (const name of hostileNames(4 * MiB, MiB)) feed(hook, name);
      textAfter = (await registry.metrics()).length;
    });
    expect(textAfter - textBefore).toBeLessThan(64 * 1024);
    expect(retained.rss).toBeLessThan(50 * MB);
    expect(retained.heap).toBeLessThan(50 * MB);
    expect([...(await toolLabels(registry, 'mcp_front_tool_calls_total'))].sort()).toEqual(['other', 'read_file']);
    // The real tool, refused afterwards, still counts under its own name.
    hook.refused!(call('read_file'), { code: -32602, message: 'Unknown tool: read_file' }, 1);
    expect(await registry.metrics()).toContain('mcp_front_tool_calls_total{server="files",token="dev",tool="read_file",outcome="denied"} 1');
  });

  it('names learned from results are at most MAX_CALLED_TOOLS per server, each clipped, and a tool listed after them keeps its label', async () => {
    const registry = new Registry();
    const hook = metricsHook(registry, [SERVER]);
    // A server built on the TypeScript SDK's McpServer answers a name it does not have with a
    // result (`isError: true`): those names are the client's own, 1 MiB each here.
    const retained = await retainedBy(() => {
      for (const name of hostileNames(2 * MAX_CALLED_TOOLS * MiB, MiB)) {
        const ex = call(name);
        hook.answer!(ex, toolError(ex), 1);
      }
    });
    expect(retained.heap).toBeLessThan(10 * MB);
    const labels = await toolLabels(registry, 'mcp_front_tool_calls_total');
    expect(labels.size).toBe(MAX_CALLED_TOOLS + 1);
    expect(labels.has('other')).toBe(true);
    for (const label of labels) expect(label.length).toBeLessThanOrEqual(MAX_CLIENT_TEXT + 1);

    useRealTool(hook, 'write_file');
    expect(await toolLabels(registry, 'mcp_front_tool_call_duration_seconds')).toContain('write_file');
  });

  it('a tools/list answer teaches a bounded number of names, and its error teaches none', async () => {
    const registry = new Registry();
    const hook = metricsHook(registry, [SERVER]);
    const list = exchange('tools/list', {});
    hook.answer!(list, errorAnswer(list), 1);
    hook.answer!(list, { jsonrpc: '2.0', id: list.id, result: { tools: [null, 7, { name: 42 }, { name: 'search' }] } }, 1);
    hook.refused!(call('search'), { code: -32602, message: 'Unknown tool: search' }, 1);
    hook.refused!(call('42'), { code: -32602, message: 'Unknown tool: 42' }, 1);
    expect([...(await toolLabels(registry, 'mcp_front_tool_calls_total'))].sort()).toEqual(['other', 'search']);
  });
});

describe('clip', () => {
  it('keeps up to 128 characters, marks a cut with …, and never splits a surrogate pair', () => {
    expect(clip('a'.repeat(128))).toBe('a'.repeat(128));
    expect(clip('a'.repeat(129))).toBe(`${'a'.repeat(128)}…`);
    // '😀' is two code units: one starting at the 128th would be cut in half.
    expect(clip(`${'a'.repeat(127)}😀b`)).toBe(`${'a'.repeat(127)}…`);
    expect(clip(`${'a'.repeat(126)}😀b`)).toBe(`${'a'.repeat(126)}😀…`);
  });
});

describe('spans', () => {
  const hook = tracingHook()!;
  const HUGE = MiB;
  const long = (head: string) => head.padEnd(HUGE, 'x');
  const spanOf = (ex: Exchange, answer: (ex: Exchange) => void) => {
    exporter.reset();
    answer(ex);
    const spans = exporter.getFinishedSpans();
    expect(spans).toHaveLength(1);
    return spans[0];
  };
  /** Every string the span carries, its name included, is at most 128 characters plus the mark. */
  const expectClipped = (span: { name: string; attributes: Record<string, unknown> }) => {
    const [method, ...subject] = span.name.split(' ');
    expect(method.length).toBeLessThanOrEqual(MAX_CLIENT_TEXT + 1);
    expect(subject.join(' ').length).toBeLessThanOrEqual(MAX_CLIENT_TEXT + 1);
    for (const value of Object.values(span.attributes)) expect(String(value).length).toBeLessThanOrEqual(MAX_CLIENT_TEXT + 1);
  };

  it('a 1 MiB tool name, id, session id and protocol version are clipped in the name and every attribute', () => {
    const ex = { ...call(long('tool-')), id: long('id-'), sessionId: long('session-'), protocolVersion: long('2025-') };
    const span = spanOf(ex, (e) => hook.answer!(e, toolError(e), 1));
    expectClipped(span);
    expect(span.name).toBe(`tools/call ${clip(long('tool-'))}`);
    expect(span.attributes).toMatchObject({
      'gen_ai.tool.name': clip(long('tool-')),
      'jsonrpc.request.id': clip(long('id-')),
      'mcp.session.id': clip(long('session-')),
      'mcp.protocol.version': clip(long('2025-')),
      'error.type': 'tool_error',
    });
  });

  it('a span held by an exporter does not hold the client’s whole name', async () => {
    exporter.reset();
    const retained = await retainedBy(() => {
      for (const name of hostileNames(100 * MiB, MiB)) {
        const ex = call(name);
        hook.answer!(ex, toolError(ex), 1);
      }
    });
    expect(exporter.getFinishedSpans()).toHaveLength(100);
    // 100 spans of a few short strings each; a slice of each name would hold 100 MiB.
    expect(retained.heap).toBeLessThan(10 * MB);
  });

  it('a 1 MiB prompt name (refused), resource URI (failed) and unknown method (answered) are clipped', () => {
    const prompt = spanOf(exchange('prompts/get', { name: long('prompt-') }), (e) => hook.refused!(e, { code: -32602, message: 'Unknown prompt' }, 1));
    expectClipped(prompt);
    expect(prompt.attributes['gen_ai.prompt.name']).toBe(clip(long('prompt-')));

    const resource = spanOf(exchange('resources/read', { uri: long('file:///') }), (e) => hook.failed!(e, 'timeout', 1));
    expectClipped(resource);
    expect(resource.name).toBe('resources/read');
    expect(resource.attributes['mcp.resource.uri']).toBe(clip(long('file:///')));

    const unknown = spanOf(exchange(long('x/'), undefined), (e) => hook.answer!(e, errorAnswer(e), 1));
    expectClipped(unknown);
    expect(unknown.name).toBe(clip(long('x/')));
    expect(unknown.attributes['mcp.method.name']).toBe(clip(long('x/')));
  });
});
