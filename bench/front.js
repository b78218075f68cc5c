'use strict';
// mcp-front mounted in a host Express app, as a user would run it, in a process of its own (forked
// by bench/lib.js) so the proxy has its own event loop. Config from BENCH_FRONT_CONFIG; logger
// 'default' (mcp-front's own: one line per event on stderr) or 'noop'. IPC: `mem` (two full GCs,
// then memory figures) and `close` (router.close(), then exit: --cpu-prof writes its file on exit).
const fs = require('node:fs');
const http = require('node:http');
const express = require('express');
// BENCH_FRONT_NO_OTEL=1: @opentelemetry/api cannot be resolved, as in an app without it.
if (process.env.BENCH_FRONT_NO_OTEL === '1') {
  const Module = require('node:module');
  const resolve = Module._resolveFilename;
  Module._resolveFilename = function (request, ...rest) {
    if (request === '@opentelemetry/api') throw Object.assign(new Error(`Cannot find module '${request}'`), { code: 'MODULE_NOT_FOUND' });
    return resolve.call(this, request, ...rest);
  };
}
// BENCH_FRONT_DIST: another build of mcp-front (e.g. a patched copy) to compare against ../dist.
const { mcpFront } = require(process.env.BENCH_FRONT_DIST || '../dist');

const config = JSON.parse(process.env.BENCH_FRONT_CONFIG);
const noop = () => undefined;
const options = process.env.BENCH_FRONT_LOGGER === 'noop' ? { logger: { info: noop, warn: noop, error: noop, debug: noop } } : {};

// BENCH_FRONT_METRICS=1: the mcp_front_* metrics in a prom-client registry.
if (process.env.BENCH_FRONT_METRICS === '1') options.metrics = new (require('prom-client').Registry)();
// BENCH_FRONT_TRACING=1: an OpenTelemetry SDK records every span (exported nowhere).
if (process.env.BENCH_FRONT_TRACING === '1') {
  const { trace } = require('@opentelemetry/api');
  const { BasicTracerProvider, NoopSpanProcessor } = require('@opentelemetry/sdk-trace-base');
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new NoopSpanProcessor()] }));
}
const router = mcpFront(config, options);
const app = express();
app.use(router);
const server = http.createServer(app);
server.listen(0, '127.0.0.1', () => process.send({ type: 'ready', port: server.address().port }));

let closing;
function shutdown() {
  closing ??= (async () => {
    try {
      await router.close();
    } finally {
      server.closeAllConnections();
      server.close();
    }
  })();
  return closing;
}

function pssKb() {
  try {
    return Number(/^Pss:\s+(\d+)/m.exec(fs.readFileSync('/proc/self/smaps_rollup', 'utf8'))?.[1]);
  } catch {
    return NaN;
  }
}

process.on('message', async (msg) => {
  if (msg.type === 'mem') {
    if (global.gc) {
      global.gc();
      global.gc();
    }
    process.send({ id: msg.id, ...process.memoryUsage(), pssKb: pssKb() });
  } else if (msg.type === 'close') {
    await shutdown().catch(() => undefined);
    process.send({ id: msg.id, closed: true }, () => {
      process.disconnect();
      process.exit(0);
    });
  }
});

// The parent went away without asking: close anyway, so no stdio child is left behind.
process.on('disconnect', () => {
  void shutdown().finally(() => process.exit(0));
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    void shutdown().finally(() => process.exit(0));
  });
}
