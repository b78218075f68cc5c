'use strict';
// `node bench/hooks.js`: the CPU cost per JSON-RPC request of each observability module, in
// process, without HTTP (README: Monitoring). Each module sees the `answer` of a `tools/call`, as
// on every route. Run after `npm run build`; figures are nanoseconds per request, medians of
// BENCH_ROUNDS rounds of BENCH_N requests.
const { performance } = require('node:perf_hooks');
const { auditHook } = require('../dist/observability/audit');
const { metricsHook } = require('../dist/observability/metrics');
const { tracingHook } = require('../dist/observability/tracing');
const { healthHook } = require('../dist/observability/health');

const N = Number(process.env.BENCH_N || 200_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS || 5);
const noop = () => undefined;
const logger = { info: noop, warn: noop, error: noop, debug: noop };
const ex = { server: 's', token: 'dev', sessionId: 'abc', route: 'streamable', upstream: 'stdio', method: 'tools/call', id: 1, params: { name: 'echo', arguments: { message: 'x' } }, protocolVersion: '2025-06-18', startedAt: 0 };
const response = { jsonrpc: '2.0', id: 1, result: { content: [{ type: 'text', text: 'x' }] } };

function measure(hook) {
  const runs = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = performance.now();
    for (let i = 0; i < N; i++) hook?.answer?.(ex, response, 3);
    runs.push(((performance.now() - t0) * 1e6) / N);
  }
  return runs.sort((a, b) => a - b)[Math.floor(runs.length / 2)];
}

const rows = [];
rows.push(['nothing (the loop itself)', measure(undefined)]);
rows.push(['audit line (no-op logger)', measure(auditHook(logger, () => true))]);
rows.push(['audit off (proxy.audit: false)', measure(auditHook(logger, () => false))]);
rows.push(['server state (health)', measure(healthHook())]);
rows.push(['tracing, @opentelemetry/api without a provider', measure(tracingHook())]);
const { Registry } = require('prom-client');
rows.push(['metrics (prom-client)', measure(metricsHook(new Registry(), ['s']))]);
const { trace } = require('@opentelemetry/api');
const { BasicTracerProvider, NoopSpanProcessor } = require('@opentelemetry/sdk-trace-base');
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new NoopSpanProcessor()] }));
rows.push(['tracing, spans recorded by an SDK', measure(tracingHook())]);

console.log(`| module | ns per request (median of ${ROUNDS} × ${N}) |`);
console.log('|---|---:|');
for (const [label, ns] of rows) console.log(`| ${label} | ${ns.toFixed(0)} |`);
