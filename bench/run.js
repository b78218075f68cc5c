'use strict';
// `npm run bench`: proxy overhead and stdio bridge speed, against direct and against the peers.
// See bench/README.md for the method. Every process it starts is stopped by pid before it exits.
//
// Environment (all optional):
//   BENCH_DURATION=10      seconds per measured run
//   BENCH_WARMUP=2         seconds of warm-up per target (not counted)
//   BENCH_ROUNDS=3         measured runs per target, interleaved A B C A B C …; medians reported
//   BENCH_CONNECTIONS=8    concurrent connections (= sessions) per target, every load case (the
//                          issue's throughput goal is "at 8 connections"); the Streamable case also
//                          runs at 1 connection
//   BENCH_WINDOW=16        requests in flight on the raw stdio child
//   BENCH_IDLE_SESSIONS=5000  idle legacy SSE sessions through the passthrough
//   BENCH_STDIO_SESSIONS=20   stdio sessions for the per-session memory cost
//   BENCH_INIT_SAMPLES=10  initialize timings per target
//   BENCH_BIG_BYTES=8388608   size of the one big SSE event of the bigevent case (8 MiB)
//   BENCH_BIG_REPEATS=5    big events relayed per target (median and max reported)
//   BENCH_CASES=streamable,sse,stdio,memory,init,bigevent   (add observability for the cost of metrics
//   and spans, permissions for the cost of per-token permissions on tools/list)
//   BENCH_PROFILE=<dir>    start the mcp-front processes with --cpu-prof into <dir>
//   BENCH_RESULTS=<file>   where to write the report (default bench/RESULTS.md; "-" = nowhere)
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { performance } = require('node:perf_hooks');
const L = require('./lib');
const D = require('./drivers');
const B = require('./bigevent');

const env = process.env;
const num = (name, def) => (env[name] === undefined || env[name] === '' ? def : Number(env[name]));
const opts = {
  duration: num('BENCH_DURATION', 10),
  warmup: num('BENCH_WARMUP', 2),
  rounds: num('BENCH_ROUNDS', 3),
  connections: num('BENCH_CONNECTIONS', 8),
  window: num('BENCH_WINDOW', 16),
  idleSessions: num('BENCH_IDLE_SESSIONS', 5000),
  stdioSessions: num('BENCH_STDIO_SESSIONS', 20),
  initSamples: num('BENCH_INIT_SAMPLES', 10),
  bigBytes: num('BENCH_BIG_BYTES', 8 * 1024 * 1024),
  bigRepeats: num('BENCH_BIG_REPEATS', 5),
  cases: new Set((env.BENCH_CASES || 'streamable,sse,stdio,memory,init,bigevent').split(',').map((s) => s.trim())),
  profile: env.BENCH_PROFILE ? path.resolve(env.BENCH_PROFILE) : undefined,
  results: env.BENCH_RESULTS === '-' ? undefined : path.resolve(env.BENCH_RESULTS || path.join(__dirname, 'RESULTS.md')),
};
for (const [k, v] of Object.entries(opts)) {
  if (typeof v === 'number' && !(v > 0)) throw new Error(`${k} must be a positive number`);
}

const log = (...args) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...args);

// --- measurement helpers ---------------------------------------------------------------------------

/**
 * Interleaved runs: warm-up of each target, then `rounds` × (each target once), so that drift of
 * the machine (other processes, thermal, GC of long-lived upstreams) hits every target alike.
 */
async function interleave(targets, runOne, { duration = opts.duration, warmup = opts.warmup } = {}) {
  for (const t of targets) {
    if (warmup > 0) {
      log(`warm-up ${t.label}`);
      await runOne(t, warmup);
    }
    t.runs = [];
  }
  for (let r = 1; r <= opts.rounds; r++) {
    for (const t of targets) {
      const res = await D.withCpu({ loadgen: process.pid, ...(t.watch?.() ?? {}) }, () => runOne(t, duration));
      t.runs.push(res);
      log(`round ${r} ${t.label}: ${fmt(res.rps, 0)} req/s, p50 ${fmt(res.p50, 2)} ms, p99 ${fmt(res.p99, 2)} ms, errors ${res.errors}`);
    }
  }
  return targets.map(aggregate);
}

function aggregate(t) {
  // CPU per request (µs) of one watched process group, user + kernel, or kernel only.
  const perReq = (key, part) =>
    L.median(
      t.runs.map((r) => {
        const c = r.cpuMs?.[key];
        if (!c) return NaN;
        return ((part ? c[part] : c.user + c.sys) * 1000) / r.requests;
      }),
    );
  return {
    label: t.label,
    rps: L.median(t.runs.map((r) => r.rps)),
    p50: L.median(t.runs.map((r) => r.p50)),
    p99: L.median(t.runs.map((r) => r.p99)),
    errors: t.runs.reduce((s, r) => s + r.errors, 0),
    requests: t.runs.reduce((s, r) => s + r.requests, 0),
    proxyCpuUs: perReq('proxy'),
    proxySysUs: perReq('proxy', 'sys'),
    upstreamCpuUs: perReq('upstream'),
    childCpuUs: perReq('children'),
    loadgenCpuUs: perReq('loadgen'),
    otherCores: L.median(t.runs.map((r) => r.otherCores)),
    runs: t.runs.map((r) => ({ rps: r.rps, p50: r.p50, p99: r.p99, errors: r.errors, otherCores: r.otherCores })),
  };
}

function fmt(v, digits = 1) {
  return Number.isFinite(v) ? v.toFixed(digits) : '–';
}

async function openSessions(url, auth, count) {
  const sessions = [];
  for (let i = 0; i < count; i++) sessions.push(await L.openStreamableSession(url, auth));
  await L.checkEcho(url, auth, sessions[0]);
  return sessions;
}

const fronts = (name, config) =>
  Promise.all([
    L.startFront(`${name}-default`, config, { logger: 'default', profile: opts.profile }),
    L.startFront(`${name}-noop`, config, { logger: 'noop', profile: opts.profile }),
  ]);

function countLines(file, needle) {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.includes(needle)).length;
  } catch {
    return NaN;
  }
}

// --- cases -----------------------------------------------------------------------------------------

/** The label of the floor hop's rows (bench/floor.js, FLOOR=hop). */
const HOP = 'floor: bare proxy hop in Express';

async function caseStreamable(up) {
  log('case: Streamable HTTP passthrough');
  const [[fd, fn], hop] = await Promise.all([fronts('streamable', L.frontConfig({ httpOrigin: up.http.origin })), L.startFloor('hop', { upstream: up.http.origin })]);
  const upstream = up.http.child.pid;
  const targets = [
    { label: 'direct', url: `${up.http.origin}/mcp`, auth: false, watch: () => ({ upstream }) },
    { label: HOP, url: `${hop.origin}/mcp`, auth: false, watch: () => ({ proxy: hop.child.pid, upstream }) },
    { label: 'mcp-front, default logger', url: fd.url('everything-http', 'mcp'), auth: true, watch: () => ({ proxy: fd.child.pid, upstream }) },
    { label: 'mcp-front, no-op logger', url: fn.url('everything-http', 'mcp'), auth: true, watch: () => ({ proxy: fn.child.pid, upstream }) },
  ];
  for (const t of targets) t.sessions = await openSessions(t.url, t.auth, opts.connections);
  const rows = await interleave(targets, (t, duration) => D.streamableLoad({ url: t.url, auth: t.auth, sessions: t.sessions, duration }));
  // The same at one connection: nothing queues and the cores are not saturated, so Δp50 is the
  // latency the proxy hop itself adds.
  log('Streamable HTTP at 1 connection (unsaturated)');
  const single = await interleave(
    targets.map((t) => ({ ...t, runs: [] })),
    (t, duration) => D.streamableLoad({ url: t.url, auth: t.auth, sessions: t.sessions.slice(0, 1), duration }),
    { duration: Math.max(2, Math.round(opts.duration / 2)), warmup: 0 },
  );
  for (const t of targets) for (const s of t.sessions) await L.deleteSession(t.url, t.auth, s);
  await Promise.all([fd.stop(), fn.stop(), L.terminate(hop.child, 3000)]);
  return { rows, single, logLines: countLines(fd.log, 'auth successful') };
}

/**
 * The cost of observability on the Streamable HTTP passthrough (no-op logger everywhere, so that
 * log output is not what is measured): without @opentelemetry/api and without metrics; with the
 * API installed but no tracer provider registered (must cost nothing); with metrics; with metrics
 * and an SDK recording every span.
 */
async function caseObservability(up) {
  log('case: observability (Streamable HTTP passthrough)');
  const config = L.frontConfig({ httpOrigin: up.http.origin });
  const variants = [
    ['no @opentelemetry/api, no metrics', { BENCH_FRONT_NO_OTEL: '1' }],
    ['@opentelemetry/api without a provider, no metrics', {}],
    ['metrics (prom-client)', { BENCH_FRONT_METRICS: '1' }],
    ['metrics + spans recorded by an SDK', { BENCH_FRONT_METRICS: '1', BENCH_FRONT_TRACING: '1' }],
  ];
  const started = await Promise.all(variants.map(([, env], i) => L.startFront(`obs-${i}`, config, { logger: 'noop', profile: opts.profile, env })));
  const targets = variants.map(([label], i) => ({ label, url: started[i].url('everything-http', 'mcp'), auth: true, watch: () => ({ proxy: started[i].child.pid, upstream: up.http.child.pid }) }));
  for (const t of targets) t.sessions = await openSessions(t.url, t.auth, opts.connections);
  const rows = await interleave(targets, (t, duration) => D.streamableLoad({ url: t.url, auth: t.auth, sessions: t.sessions, duration }));
  for (const t of targets) for (const s of t.sessions) await L.deleteSession(t.url, t.auth, s);
  await Promise.all(started.map((f) => f.stop()));
  return { rows };
}

/**
 * The cost of per-token permissions on the Streamable HTTP passthrough, `tools/list` (no-op
 * logger): a config without `permissions`; one with `permissions` for another token only (this
 * token is unrestricted: its answers must cost what they cost without the option); and one whose
 * entry for this token filters the list (the answer is parsed, filtered and serialized again).
 */
async function casePermissions(up) {
  log('case: permissions (Streamable HTTP passthrough, tools/list)');
  const base = L.frontConfig({ httpOrigin: up.http.origin });
  const withPermissions = (entry) => {
    const config = JSON.parse(JSON.stringify(base));
    config.proxy.auth.tokens.other = L.OTHER_TOKEN;
    config.mcpServers['everything-http'].permissions = entry;
    return config;
  };
  const variants = [
    ['no permissions', base],
    ['permissions for another token only', withPermissions({ other: { tools: ['echo'] } })],
    ['filtered tools/list (echo, get-*)', withPermissions({ bench: { tools: ['echo', 'get-*'] } })],
  ];
  const started = await Promise.all(variants.map(([, config], i) => L.startFront(`perm-${i}`, config, { logger: 'noop', profile: opts.profile })));
  const targets = variants.map(([label], i) => ({ label, url: started[i].url('everything-http', 'mcp'), auth: true, watch: () => ({ proxy: started[i].child.pid, upstream: up.http.child.pid }) }));
  for (const t of targets) t.sessions = await openSessions(t.url, t.auth, opts.connections);
  const message = { jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} };
  const rows = await interleave(targets, (t, duration) => D.streamableLoad({ url: t.url, auth: t.auth, sessions: t.sessions, duration, message }));
  for (const t of targets) for (const s of t.sessions) await L.deleteSession(t.url, t.auth, s);
  await Promise.all(started.map((f) => f.stop()));
  return { rows };
}

async function caseSse(up) {
  log('case: legacy SSE passthrough');
  const [[fd, fn], hop] = await Promise.all([fronts('sse', L.frontConfig({ sseOrigin: up.sse.origin })), L.startFloor('hop', { upstream: up.sse.origin })]);
  const upstream = up.sse.child.pid;
  const targets = [
    { label: 'direct', url: `${up.sse.origin}/sse`, auth: false, watch: () => ({ upstream }) },
    // The upstream's `endpoint` event is a relative path: the POSTs go through the hop too.
    { label: HOP, url: `${hop.origin}/sse`, auth: false, watch: () => ({ proxy: hop.child.pid, upstream }) },
    { label: 'mcp-front, default logger', url: fd.url('everything-sse', 'sse'), auth: true, watch: () => ({ proxy: fd.child.pid, upstream }) },
    { label: 'mcp-front, no-op logger', url: fn.url('everything-sse', 'sse'), auth: true, watch: () => ({ proxy: fn.child.pid, upstream }) },
  ];
  const rows = await interleave(targets, (t, duration) => D.sseLoad({ url: t.url, auth: t.auth, connections: opts.connections, duration }));
  await Promise.all([fd.stop(), fn.stop(), L.terminate(hop.child, 3000)]);
  return { rows };
}

async function caseStdio() {
  log('case: stdio bridge');
  const [[fd, fn], sg, mp, floor, efloor] = await Promise.all([
    fronts('stdio', L.frontConfig({})),
    L.startSupergateway(),
    L.startMcpProxy(),
    L.startFloor('http'),
    L.startFloor('express'),
  ]);
  const targets = [
    { label: 'raw stdio (the limit)', raw: true },
    { label: 'mcp-front, default logger', url: fd.url('everything-stdio', 'mcp'), auth: true, proc: fd.child },
    { label: 'mcp-front, no-op logger', url: fn.url('everything-stdio', 'mcp'), auth: true, proc: fn.child },
    { label: 'supergateway (stateful)', url: sg.url, auth: false, proc: sg.child },
    { label: 'mcp-proxy', url: mp.url, auth: false, proc: mp.child },
    { label: 'floor: bare node:http, no work', url: floor.url, auth: false, proc: floor.child, fake: true },
    { label: 'floor: Express app, no work', url: efloor.url, auth: false, proc: efloor.child, fake: true },
  ];
  for (const t of targets) {
    if (t.raw) continue;
    t.sessions = t.fake ? Array.from({ length: opts.connections }, (_, i) => `floor-${i}`) : await openSessions(t.url, t.auth, opts.connections);
    const children = L.descendants([t.proc.pid]);
    t.watch = () => ({ proxy: t.proc.pid, children });
    t.children = children.length;
  }
  const rows = await interleave(targets, (t, duration) =>
    t.raw ? D.rawStdioLoad({ duration, window: opts.window }) : D.streamableLoad({ url: t.url, auth: t.auth, sessions: t.sessions, duration }),
  );
  for (const t of targets) if (!t.raw && !t.fake) for (const s of t.sessions) await L.deleteSession(t.url, t.auth, s);
  rows.forEach((row, i) => {
    row.children = targets[i].raw ? 1 : targets[i].children;
  });
  await Promise.all([fd.stop(), fn.stop(), L.terminate(sg.child, 8000, true), L.terminate(mp.child, 8000, true), L.terminate(floor.child, 3000), L.terminate(efloor.child, 3000)]);
  return { rows };
}

/** Opens `count` legacy SSE streams, at most `parallel` handshakes at a time. */
async function openIdleStreams(url, count, parallel = 50) {
  const conns = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      conns.push(await L.openSse(url, true, () => undefined));
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return conns;
}

/** The soft limit on open files of this process (its children inherit it), from /proc. */
function openFilesLimit() {
  try {
    return Number(/^Max open files\s+(\d+|unlimited)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'))?.[1].replace('unlimited', 'Infinity'));
  } catch {
    return NaN;
  }
}

async function caseMemory(up) {
  // mcp-front holds two sockets per idle session (client and upstream); this process and the
  // upstream one each. Fewer sessions than asked when `ulimit -n` would not allow them (raised
  // nowhere here), and the report says so.
  const limit = openFilesLimit();
  const sessions = Number.isFinite(limit) ? Math.min(opts.idleSessions, Math.floor((limit - 500) / 2)) : opts.idleSessions;
  if (sessions < opts.idleSessions) log(`ulimit -n is ${limit}: ${sessions} idle SSE sessions instead of ${opts.idleSessions}`);
  log(`case: memory, ${sessions} idle SSE sessions and ${opts.stdioSessions} stdio sessions`);
  const out = {};
  // A fresh process, so that earlier load leaves nothing in its heap.
  const front = await L.startFront('memory', L.frontConfig({ sseOrigin: up.sse.origin }), { profile: opts.profile });
  try {
    const url = front.url('everything-sse', 'sse');
    // Warm-up: the code paths of a session are loaded and compiled before the baseline.
    for (const c of await openIdleStreams(url, 5, 5)) c.close();
    await L.sleep(500);
    const before = await front.memory();
    const t0 = performance.now();
    const conns = await openIdleStreams(url, sessions);
    const openMs = performance.now() - t0;
    await L.sleep(1000);
    const during = await front.memory();
    const stillOpen = conns.filter((c) => !c.closed).length;
    for (const c of conns) c.close();
    // Closed sessions are torn down asynchronously: wait (bounded) until the heap is back near its
    // baseline, and say how long that took.
    const t1 = performance.now();
    let after;
    do {
      await L.sleep(1000);
      after = await front.memory();
    } while (after.heapUsed - before.heapUsed > 0.1 * (during.heapUsed - before.heapUsed) && performance.now() - t1 < 20000);
    const freedMs = performance.now() - t1;
    out.sse = { sessions, asked: opts.idleSessions, openFiles: limit, stillOpen, openMs, before, during, after, freedMs };
    log(`idle SSE: RSS ${mb(before.rss)} → ${mb(during.rss)} MB with ${stillOpen} open, ${mb(after.rss)} MB (heap ${mb(after.heapUsed)} MB) ${fmt(freedMs / 1000, 1)} s after closing`);
  } finally {
    await front.stop();
  }

  const sfront = await L.startFront('stdio-memory', L.frontConfig({}), { profile: opts.profile });
  try {
    const url = sfront.url('everything-stdio', 'mcp');
    await L.deleteSession(url, true, await L.openStreamableSession(url, true));
    await waitForChildren(sfront.child.pid, 0);
    const before = await sfront.memory();
    const sessions = [];
    for (let i = 0; i < opts.stdioSessions; i++) sessions.push(await L.openStreamableSession(url, true));
    await L.sleep(1000);
    const during = await sfront.memory();
    const children = L.descendants([sfront.child.pid]);
    const mem = children.map(L.procMemory);
    const childRssKb = mem.reduce((s, m) => s + m.rssKb, 0);
    const childPssKb = mem.reduce((s, m) => s + m.pssKb, 0);
    for (const s of sessions) await L.deleteSession(url, true, s);
    await waitForChildren(sfront.child.pid, 0);
    out.stdio = { sessions: opts.stdioSessions, children: children.length, before, during, childRssKb, childPssKb };
    log(`stdio: ${children.length} children, ${mb(childPssKb * 1024)} MB PSS (${mb(childRssKb * 1024)} MB RSS), front RSS +${mb(during.rss - before.rss)} MB`);
  } finally {
    await sfront.stop();
  }
  return out;
}

async function waitForChildren(pid, count, ms = 8000) {
  const deadline = Date.now() + ms;
  while (L.descendants([pid]).length > count && Date.now() < deadline) await L.sleep(50);
}

async function caseInit() {
  log(`case: initialize of a new stdio session, ${opts.initSamples} samples each`);
  const [front, sg] = await Promise.all([L.startFront('init', L.frontConfig({}), { logger: 'default', profile: opts.profile }), L.startSupergateway()]);
  const samples = { raw: [], front: [], supergateway: [] };
  const viaHttp = async (url, auth, ownerPid) => {
    const t0 = performance.now();
    const answer = await L.request(url, { headers: L.streamableHeaders(auth), body: L.initializeMessage(0) });
    const ms = performance.now() - t0;
    const ok = answer.status === 200 && L.messagesOf(answer).some((m) => m.id === 0 && m.result);
    if (!ok) throw new Error(`initialize at ${url}: ${answer.status} ${answer.body.slice(0, 200)}`);
    await L.deleteSession(url, auth, answer.headers['mcp-session-id']);
    // The child's stop must not overlap the next sample.
    await waitForChildren(ownerPid, 0);
    return ms;
  };
  try {
    // One unmeasured round: the first spawn pays for cold file caches.
    await D.rawStartup();
    await viaHttp(front.url('everything-stdio', 'mcp'), true, front.child.pid);
    await viaHttp(sg.url, false, sg.child.pid);
    for (let i = 0; i < opts.initSamples; i++) {
      samples.raw.push(await D.rawStartup());
      samples.front.push(await viaHttp(front.url('everything-stdio', 'mcp'), true, front.child.pid));
      samples.supergateway.push(await viaHttp(sg.url, false, sg.child.pid));
    }
  } finally {
    await Promise.all([front.stop(), L.terminate(sg.child, 8000, true)]);
  }
  const med = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, L.median(v)]));
  log(`initialize medians: raw ${fmt(med.raw)} ms, mcp-front ${fmt(med.front)} ms, supergateway ${fmt(med.supergateway)} ms`);
  return { samples, med };
}

/**
 * One big SSE event (BENCH_BIG_BYTES, 8 MiB) relayed, `bench/big-upstream.js` behind: the CPU the
 * proxy process burns for it (all threads, GC helpers included, /proc/<pid>/task/<tid>/schedstat in
 * ns), from just before the request until the client has read the whole event, plus a settle time
 * for deferred work, minus the process's idle CPU over the same time. Paths: the legacy SSE relay
 * (events parsed and re-framed), the Streamable HTTP passthrough with the default config (its
 * answer is read for the audit line), the same with `proxy.audit: false` (once the server is known up,
 * nothing reads answers and they are piped unread), and the floor hop (a pure pipe) on both.
 * Warm: one unmeasured event per target first (it also checks the relayed event: the answer to its
 * request id, with every byte of text).
 */
async function caseBigEvent() {
  const bytes = opts.bigBytes;
  log(`case: one ${fmt(bytes / 1048576, 1)} MiB SSE event relayed, ${opts.bigRepeats} times per target`);
  const big = await L.startBigUpstream(bytes);
  const config = L.frontConfig({ httpOrigin: big.origin, sseOrigin: big.origin });
  const noAudit = { ...config, proxy: { ...config.proxy, audit: false } };
  const [front, frontNoAudit, hop] = await Promise.all([
    L.startFront('bigevent', config, { logger: 'default', profile: opts.profile }),
    L.startFront('bigevent-noaudit', noAudit, { logger: 'default', profile: opts.profile }),
    L.startFloor('hop', { upstream: big.origin }),
  ]);
  const target = B.targets(bytes);
  const targets = [
    target.sse('legacy SSE relay', 'mcp-front', front.url('everything-sse', 'sse'), true, front.child.pid),
    target.sse('legacy SSE relay', HOP, `${hop.origin}/sse`, false, hop.child.pid),
    target.streamable('Streamable HTTP passthrough', 'mcp-front (answers observed)', front.url('everything-http', 'mcp'), true, front.child.pid),
    target.streamable('Streamable HTTP passthrough', 'mcp-front, `proxy.audit: false`', frontNoAudit.url('everything-http', 'mcp'), true, frontNoAudit.child.pid),
    target.streamable('Streamable HTTP passthrough', HOP, `${hop.origin}/mcp`, false, hop.child.pid),
  ];
  const settleMs = 100;
  try {
    for (const t of targets) {
      await t.open();
      await t.call(true);
      t.samples = [];
    }
    for (let r = 1; r <= opts.bigRepeats; r++) {
      for (const t of targets) {
        const { cpuMs, readMs, idleMsPerS, eventBytes } = await B.measure(t, settleMs);
        t.samples.push({ cpuMs, readMs, idleMsPerS, eventBytes });
        log(`round ${r} ${t.path}, ${t.label}: ${fmt(cpuMs, 1)} ms CPU, event read in ${fmt(readMs, 1)} ms (${eventBytes} bytes)`);
      }
    }
  } finally {
    for (const t of targets) await t.close();
    await Promise.all([front.stop(), frontNoAudit.stop(), L.terminate(hop.child, 3000), L.terminate(big.child, 3000)]);
  }
  const rows = targets.map((t) => ({
    path: t.path,
    label: t.label,
    cpuMs: L.median(t.samples.map((x) => x.cpuMs)),
    maxCpuMs: Math.max(...t.samples.map((x) => x.cpuMs)),
    readMs: L.median(t.samples.map((x) => x.readMs)),
    idleMsPerS: L.median(t.samples.map((x) => x.idleMsPerS)),
    eventBytes: t.samples[0]?.eventBytes,
    samples: t.samples.map((x) => x.cpuMs),
  }));
  return { bytes, rows, settleMs };
}

// --- report -----------------------------------------------------------------------------------------

const mb = (bytes) => fmt(bytes / 1048576, 1);

function machine() {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? 'unknown';
  let nproc = String(os.availableParallelism());
  try {
    nproc = execFileSync('nproc', { encoding: 'utf8' }).trim();
  } catch {
    /* keep the Node figure */
  }
  const version = (name) => {
    try {
      return JSON.parse(fs.readFileSync(path.join(L.ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
    } catch {
      return '?';
    }
  };
  return {
    nproc,
    model,
    node: process.version,
    memGb: (os.totalmem() / 2 ** 30).toFixed(1),
    kernel: `${os.type()} ${os.release()}`,
    versions: {
      'mcp-front': JSON.parse(fs.readFileSync(path.join(L.ROOT, 'package.json'), 'utf8')).version,
      '@modelcontextprotocol/server-everything': version('@modelcontextprotocol/server-everything'),
      '@modelcontextprotocol/sdk': version('@modelcontextprotocol/sdk'),
      express: version('express'),
      supergateway: version('supergateway'),
      'mcp-proxy': version('mcp-proxy'),
      autocannon: version('autocannon'),
    },
  };
}

function command() {
  const vars = Object.entries(env)
    .filter(([k]) => k.startsWith('BENCH_'))
    .map(([k, v]) => `${k}=${v}`);
  const run = env.npm_lifecycle_event === 'bench' ? 'npm run bench' : `node ${path.relative(L.ROOT, process.argv[1])}`;
  return [...vars, run].join(' ');
}

function loadTable(title, rows, baselineLabel, { serverColumn = 'upstream', serverKey = 'upstreamCpuUs' } = {}) {
  const base = rows.find((r) => r.label === baselineLabel);
  // With a floor hop in the table: each proxy's CPU per request against the hop's.
  const hop = rows.find((r) => r.label === HOP);
  const lines = [
    `### ${title}`,
    '',
    `| target | req/s | p50 ms | p99 ms | errors | × ${baselineLabel} | Δp50 ms | proxy or gateway CPU µs/req (kernel part) |${hop ? ' proxy CPU × floor hop |' : ''} ${serverColumn} CPU µs/req | load generator CPU µs/req | other load (cores) |`,
    `|---|---:|---:|---:|---:|---:|---:|---:|${hop ? '---:|' : ''}---:|---:|---:|`,
  ];
  for (const r of rows) {
    const ratio = base ? r.rps / base.rps : NaN;
    const delta = base ? r.p50 - base.p50 : NaN;
    const proxy = Number.isFinite(r.proxyCpuUs) ? `${fmt(r.proxyCpuUs, 0)} (${fmt(r.proxySysUs, 0)})` : '–';
    const server = fmt(r[serverKey], 0) + (r.children !== undefined && r.children !== 0 ? ` (${r.children} proc.)` : '');
    const vsHop = hop ? ` ${fmt(r.proxyCpuUs / hop.proxyCpuUs, 2)} |` : '';
    lines.push(
      `| ${r.label} | ${fmt(r.rps, 0)} | ${fmt(r.p50, 2)} | ${fmt(r.p99, 2)} | ${r.errors} | ${fmt(ratio, 2)} | ${r === base ? '–' : (delta >= 0 ? '+' : '') + fmt(delta, 2)} | ${proxy} |${vsHop} ${server} | ${fmt(r.loadgenCpuUs, 0)} | ${fmt(r.otherCores, 2)} |`,
    );
  }
  lines.push('', '<details><summary>every run (req/s / p50 / p99 / errors / other load)</summary>', '');
  for (const r of rows) {
    lines.push(`- ${r.label}: ${r.runs.map((x) => `${fmt(x.rps, 0)} / ${fmt(x.p50, 2)} / ${fmt(x.p99, 2)} / ${x.errors} / ${fmt(x.otherCores, 2)}`).join(' · ')}`);
  }
  lines.push('', '</details>', '');
  return lines.join('\n');
}

const signed = (v, digits = 2) => `${v >= 0 ? '+' : ''}${fmt(v, digits)}`;

/** The goals of issue 15, each with its measured value (ratios within this run). */
function goals(results) {
  const out = [];
  const pick = (rows, label) => rows?.find((r) => r.label === label);
  const fronts = ['mcp-front, default logger', 'mcp-front, no-op logger'];
  const short = (label) => label.replace('mcp-front, ', '');
  if (results.streamable) {
    const rows = results.streamable.rows;
    const direct = pick(rows, 'direct');
    const hop = pick(rows, HOP);
    for (const label of fronts) {
      const r = pick(rows, label);
      const x = r.proxyCpuUs / hop.proxyCpuUs;
      out.push({
        goal: `passthrough (Streamable HTTP, ${short(label)}): proxy CPU per request ≤ 1.5× the floor hop's`,
        measured: `${fmt(x, 2)}× (${fmt(r.proxyCpuUs, 0)} vs ${fmt(hop.proxyCpuUs, 0)} µs)`,
        met: x <= 1.5,
      });
    }
    for (const label of fronts) {
      const r = pick(rows, label);
      const x = r.rps / direct.rps;
      out.push({
        goal: `passthrough (Streamable HTTP, ${short(label)}) ≥ 0.9× direct req/s at ${opts.connections} connections`,
        measured: `${fmt(x, 2)}× (floor hop: ${fmt(hop.rps / direct.rps, 2)}×)`,
        met: x >= 0.9,
      });
    }
    const single = results.streamable.single;
    const direct1 = pick(single, 'direct');
    const hop1 = pick(single, HOP);
    for (const label of fronts) {
      const r = pick(single, label);
      const delta = r.p50 - direct1.p50;
      out.push({
        goal: `passthrough at 1 connection (${short(label)}): added p50 ≤ 0.25 ms`,
        measured: `${signed(delta)} ms (floor hop: ${signed(hop1.p50 - direct1.p50)} ms)`,
        met: delta <= 0.25,
      });
    }
  }
  if (results.sse) {
    const rows = results.sse.rows;
    const direct = pick(rows, 'direct');
    const hop = pick(rows, HOP);
    for (const label of fronts) {
      const r = pick(rows, label);
      const x = r.rps / direct.rps;
      const delta = r.p50 - direct.p50;
      out.push({
        goal: `legacy SSE passthrough (${short(label)}) ≥ 0.8× direct req/s, added p50 ≤ 0.5 ms`,
        measured: `${fmt(x, 2)}×, ${signed(delta)} ms (floor hop: ${fmt(hop.rps / direct.rps, 2)}×, ${signed(hop.p50 - direct.p50)} ms)`,
        met: x >= 0.8 && delta <= 0.5,
      });
    }
  }
  if (results.stdio) {
    const rows = results.stdio.rows;
    const peers = ['supergateway (stateful)', 'mcp-proxy'].map((l) => pick(rows, l)).filter(Boolean);
    const best = peers.reduce((a, b) => (b.rps > a.rps ? b : a));
    for (const label of fronts) {
      const r = pick(rows, label);
      const ratio = r.rps / best.rps;
      out.push({ goal: `stdio bridge (${short(label)}) ≥ 2× the faster of supergateway and mcp-proxy in req/s (${best.label})`, measured: `${fmt(ratio, 2)}×`, met: ratio >= 2 });
    }
  }
  if (results.memory?.sse) {
    const m = results.memory.sse;
    const perSession = (m.during.rss - m.before.rss) / m.sessions / 1024;
    out.push({
      goal: `${m.sessions} idle legacy SSE sessions ≤ 25 KiB RSS each`,
      measured: `${fmt(perSession, 1)} KiB (${m.stillOpen} of ${m.sessions} open)`,
      met: perSession <= 25 && m.stillOpen === m.sessions,
    });
  }
  if (results.bigevent) {
    const mib = fmt(results.bigevent.bytes / 1048576, 0);
    for (const r of results.bigevent.rows.filter((x) => x.label !== HOP && !x.label.includes('audit'))) {
      out.push({
        goal: `one ${mib} MiB SSE event relayed with ≤ 50 ms of proxy CPU (${r.path}, median)`,
        measured: `${fmt(r.cpuMs, 1)} ms (max ${fmt(r.maxCpuMs, 1)}; floor hop ${fmt(results.bigevent.rows.find((x) => x.path === r.path && x.label === HOP)?.cpuMs, 1)} ms)`,
        met: r.cpuMs <= 50,
      });
    }
  }
  return out;
}

const hopNote =
  'The floor hop is `bench/floor.js` with `FLOOR=hop`: an Express 5 middleware that sends each request on with ' +
  '`node:http` through a keep-alive agent and pipes both ways (no auth, no parsing, no sessions), in front of ' +
  'the same upstream — the CPU per request no Express-hosted proxy can go below. "× floor hop" divides each ' +
  'row\'s proxy CPU per request by the hop\'s.';

function report(results, info) {
  const m = info.machine;
  const parts = [
    '# Benchmark results',
    '',
    `Generated by \`bench/run.js\` on ${info.date}. Method, fairness notes and the profile findings: [README.md](README.md).`,
    '',
    `- command: \`${info.command}\``,
    `- machine: ${m.nproc} cores (\`nproc\`), ${m.model}, ${m.memGb} GiB, ${m.kernel}; Node ${m.node}`,
    `- load average (1/5/15 min) at start: ${info.loadStart}; at end: ${info.loadEnd}`,
    `- versions: ${Object.entries(m.versions).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    `- settings: ${opts.connections} connections (one session each), ${opts.duration} s per run, ${opts.warmup} s warm-up, ${opts.rounds} interleaved rounds (medians shown), raw stdio window ${opts.window}`,
    `- total time: ${fmt(info.seconds, 0)} s`,
    '',
    '**Two cores are shared** by the load generator, mcp-front and the upstream (and, for stdio, the',
    'children): a proxied run spends CPU that the direct run gives to the upstream and the load generator,',
    'so the ratios measure total CPU cost on a saturated machine, not latency on an idle one. The',
    'CPU columns are CPU time (user + kernel, from /proc) divided by the requests served: figures that do',
    'not depend on scheduling. "Other load" is the CPU that processes outside the benchmark (other work on',
    'this machine) used during the run, in cores: throughput is only comparable between runs where it is low.',
    '',
  ];
  const g = goals(results);
  if (g.length) {
    parts.push(
      '## Goals',
      '',
      'The goals of issue 15, as ratios within this run; CPU per request is the proxy process\'s (user + kernel,',
      '/proc). The floor hop (`bench/floor.js`, `FLOOR=hop`) is a bare proxy hop hosted in Express 5 in front of',
      'the same upstream: what no Express-hosted proxy can go below on this machine.',
      '',
      '| goal | measured | met |',
      '|---|---|---|',
    );
    for (const x of g) parts.push(`| ${x.goal} | ${x.measured} | ${x.met ? 'yes' : '**no**'} |`);
    parts.push('');
  }
  if (results.streamable || results.observability || results.permissions || results.sse || results.stdio) parts.push('## Throughput and latency', '');
  if (results.streamable) {
    parts.push(loadTable(`Streamable HTTP, \`tools/call echo\`, ${opts.connections} connections (autocannon)`, results.streamable.rows, 'direct'));
    parts.push(hopNote, '');
    parts.push(`The default logger wrote ${results.streamable.logLines} \`auth successful\` lines (to a file) during this case.`, '');
    parts.push(loadTable('Streamable HTTP at 1 connection (unsaturated: Δp50 is the latency of the proxy hop)', results.streamable.single, 'direct'));
  }
  if (results.observability) {
    parts.push(loadTable('Observability on the Streamable HTTP passthrough, no-op logger (autocannon)', results.observability.rows, 'no @opentelemetry/api, no metrics'));
  }
  if (results.permissions) {
    parts.push(loadTable('Permissions on the Streamable HTTP passthrough, `tools/list`, no-op logger (autocannon)', results.permissions.rows, 'no permissions'));
  }
  if (results.sse) {
    parts.push(loadTable(`Legacy HTTP+SSE, POST → response event, ${opts.connections} connections (custom driver)`, results.sse.rows, 'direct'));
    parts.push('The floor hop relays the stream and the POSTs alike: the upstream\'s `endpoint` event is a relative path.', '');
  }
  if (results.stdio) {
    parts.push(
      loadTable('stdio bridge, Streamable HTTP `tools/call echo` (autocannon; raw = pipelined driver)', results.stdio.rows, 'raw stdio (the limit)', {
        serverColumn: 'children',
        serverKey: 'childCpuUs',
      }),
    );
    parts.push(
      'mcp-front and supergateway (stateful) spawn one child per session; mcp-proxy shares one child between',
      `all sessions. The raw row is one child driven over its own stdin/stdout with ${opts.window} requests in flight.`,
      'The floor rows are `bench/floor.js`: a server that answers a fixed SSE frame in one write and does nothing',
      'else, as bare `node:http` and as an Express 5 middleware — no gateway here, with this load generator, can',
      'exceed the first, and no Express-hosted one the second.',
      'supergateway runs with `--logLevel none`, mcp-proxy with its defaults (no per-request log).',
      '',
    );
  }
  if (results.memory) {
    parts.push('## Memory', '');
    const s = results.memory.sse;
    if (s) {
      parts.push(
        `### ${s.sessions} idle legacy SSE sessions through the passthrough (remote SSE upstream)`,
        '',
        '| | RSS MB | heap used MB | PSS MB |',
        '|---|---:|---:|---:|',
        `| before (after GC) | ${mb(s.before.rss)} | ${mb(s.before.heapUsed)} | ${mb(s.before.pssKb * 1024)} |`,
        `| ${s.stillOpen} sessions open (after GC) | ${mb(s.during.rss)} | ${mb(s.during.heapUsed)} | ${mb(s.during.pssKb * 1024)} |`,
        `| all closed again, ${fmt(s.freedMs / 1000, 1)} s later (after GC) | ${mb(s.after.rss)} | ${mb(s.after.heapUsed)} | ${mb(s.after.pssKb * 1024)} |`,
        '',
        ...(s.sessions < s.asked ? [`Capped at ${s.sessions} sessions (${s.asked} asked) by \`ulimit -n\` = ${s.openFiles}: two sockets per session in mcp-front.`, ''] : []),
        `Growth: ${mb(s.during.rss - s.before.rss)} MB RSS, ${fmt((s.during.rss - s.before.rss) / s.sessions / 1024, 1)} KiB per session ` +
          `(heap ${fmt((s.during.heapUsed - s.before.heapUsed) / s.sessions / 1024, 1)} KiB). Opening them took ${fmt(s.openMs / 1000, 1)} s (50 handshakes at a time).`,
        '',
      );
    }
    const t = results.memory.stdio;
    if (t) {
      const perChildPss = t.childPssKb / Math.max(1, t.children);
      const frontRss = t.during.rss - t.before.rss;
      const frontHeap = t.during.heapUsed - t.before.heapUsed;
      const frontText =
        `mcp-front itself: heap used +${fmt(frontHeap / 1024, 0)} KiB (${fmt(frontHeap / t.sessions / 1024, 1)} KiB per session), RSS ` +
        (frontRss > 0 ? `+${mb(frontRss)} MB` : `${mb(frontRss)} MB (below the noise of a GC'd heap)`) +
        '.';
      parts.push(
        `### stdio sessions: ${t.sessions} measured, extrapolated`,
        '',
        `Every stdio session is a child process (${t.children} children for ${t.sessions} sessions). Children: ` +
          `${mb(t.childPssKb * 1024)} MB PSS in total (${mb(t.childRssKb * 1024)} MB RSS, which counts the shared Node binary once per child), ` +
          `${fmt(perChildPss / 1024, 1)} MB PSS each. ${frontText}`,
        '',
        `Extrapolated (linear, not measured): 1,000 stdio sessions ≈ ${fmt((perChildPss * 1000) / 1024 / 1024, 1)} GiB of children — ` +
          'and `maxSessions` (default 100) caps a server well before that.',
        '',
      );
    }
  }
  if (results.bigevent) {
    const b = results.bigevent;
    parts.push(
      `## One ${fmt(b.bytes / 1048576, 0)} MiB SSE event`,
      '',
      `\`bench/big-upstream.js\` answers a \`tools/call\` with one \`message\` event whose data is a JSON-RPC response to`,
      `its id, ${b.bytes.toLocaleString('en')} bytes long for a one-digit id (one text item, ASCII with nothing to escape), written at once,`,
      'chunked. Proxy CPU:',
      'every thread of the proxy process (GC helpers included), from `/proc/<pid>/task/*/schedstat` (ns), from',
      `just before the request until the client has read the whole event plus ${b.settleMs} ms for deferred work, minus`,
      `the process's idle CPU over the same time; ${opts.bigRepeats} events per target, interleaved, after one unmeasured`,
      'event that also checks the relayed one (its id, every byte of text). The default config reads every',
      'Streamable answer for the audit line; with `proxy.audit: false`, once the server is known up (the',
      'unmeasured event), nothing reads answers and they are piped unread. The floor hop is a pure pipe.',
      '',
      '| path | target | proxy CPU ms, median | max | every event | read in ms (median) | idle CPU ms/s | event bytes |',
      '|---|---|---:|---:|---|---:|---:|---:|',
    );
    for (const r of b.rows) {
      parts.push(
        `| ${r.path} | ${r.label} | ${fmt(r.cpuMs, 1)} | ${fmt(r.maxCpuMs, 1)} | ${r.samples.map((x) => fmt(x, 1)).join(' / ')} | ${fmt(r.readMs, 1)} | ${fmt(r.idleMsPerS, 2)} | ${r.eventBytes} |`,
      );
    }
    parts.push('');
  }
  if (results.init) {
    const { med, samples } = results.init;
    parts.push(
      '## Start-up of a new stdio session',
      '',
      `Median of ${samples.raw.length}; from the client's first byte of \`initialize\` to the whole answer.`,
      '',
      '| | median ms | min | max | × raw |',
      '|---|---:|---:|---:|---:|',
    );
    const row = (label, key) =>
      `| ${label} | ${fmt(med[key])} | ${fmt(Math.min(...samples[key]))} | ${fmt(Math.max(...samples[key]))} | ${fmt(med[key] / med.raw, 2)} |`;
    parts.push(row('raw: spawn + initialize over stdio', 'raw'), row('mcp-front (Streamable HTTP, new session)', 'front'), row('supergateway stateful (new session)', 'supergateway'), '');
  }
  if (info.survivors.length) parts.push(`Processes that outlived their parent and were killed by pid at the end: ${info.survivors.join(', ')}.`, '');
  return parts.join('\n');
}

function printSummary(results) {
  const rowsOf = (name, r) =>
    r?.rows.map((x) => ({ case: name, target: x.label, 'req/s': fmt(x.rps, 0), 'p50 ms': fmt(x.p50, 2), 'p99 ms': fmt(x.p99, 2), errors: x.errors, 'proxy µs/req': fmt(x.proxyCpuUs, 0) })) ?? [];
  const table = [
    ...rowsOf('streamable', results.streamable),
    ...rowsOf('streamable, 1 conn', results.streamable && { rows: results.streamable.single }),
    ...rowsOf('sse', results.sse),
    ...rowsOf('stdio', results.stdio),
  ];
  if (table.length) console.table(table);
  if (results.bigevent) {
    console.table(results.bigevent.rows.map((r) => ({ path: r.path, target: r.label, 'CPU ms (median)': fmt(r.cpuMs, 1), 'max': fmt(r.maxCpuMs, 1), 'read ms': fmt(r.readMs, 1) })));
  }
  for (const g of goals(results)) console.log(`${g.met ? 'MET    ' : 'NOT MET'}  ${g.goal}: ${g.measured}`);
}

// --- main ------------------------------------------------------------------------------------------

async function main() {
  const t0 = performance.now();
  const info = { date: new Date().toISOString(), command: command(), machine: machine(), loadStart: os.loadavg().map((x) => x.toFixed(2)).join(' ') };
  log(`${info.machine.nproc} cores, ${info.machine.model}, Node ${info.machine.node}; load ${info.loadStart}`);
  if (opts.profile) fs.mkdirSync(opts.profile, { recursive: true });
  const results = {};
  let failure;
  const up = {};
  try {
    if (opts.cases.has('streamable') || opts.cases.has('observability') || opts.cases.has('permissions')) up.http = await L.startEverything('streamableHttp');
    if (opts.cases.has('sse') || opts.cases.has('memory')) up.sse = await L.startEverything('sse');
    if (opts.cases.has('streamable')) results.streamable = await caseStreamable(up);
    if (opts.cases.has('observability')) results.observability = await caseObservability(up);
    if (opts.cases.has('permissions')) results.permissions = await casePermissions(up);
    if (opts.cases.has('sse')) results.sse = await caseSse(up);
    if (opts.cases.has('stdio')) results.stdio = await caseStdio();
    if (opts.cases.has('memory')) results.memory = await caseMemory(up);
    if (opts.cases.has('init')) results.init = await caseInit();
    if (opts.cases.has('bigevent')) results.bigevent = await caseBigEvent();
  } catch (err) {
    failure = err;
  }
  info.survivors = await L.stopAll();
  L.agent.destroy();
  info.loadEnd = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  info.seconds = (performance.now() - t0) / 1000;
  const left = L.descendants([process.pid]);
  if (failure) {
    console.error(failure);
    for (const f of fs.readdirSync(L.TMP)) {
      const text = L.tail(path.join(L.TMP, f), 15);
      if (text.trim()) console.error(`--- ${f}\n${text}`);
    }
  } else {
    printSummary(results);
    if (opts.results) {
      fs.writeFileSync(opts.results, report(results, info) + '\n');
      log(`wrote ${path.relative(process.cwd(), opts.results)}`);
    }
  }
  fs.rmSync(L.TMP, { recursive: true, force: true });
  if (info.survivors.length) log(`killed by pid after their parent stopped: ${info.survivors.join(', ')}`);
  if (left.length) log(`still running after cleanup: ${left.join(', ')}`);
  log(`done in ${fmt(info.seconds, 0)} s`);
  process.exitCode = failure || left.length ? 1 : 0;
}

// Ctrl-C: stop everything we started before leaving.
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    log(`${sig}: stopping every process started by the benchmark`);
    void L.stopAll().finally(() => process.exit(130));
  });
}

main();
