'use strict';
// Aggregates (README: Aggregates): what serving several servers behind one endpoint costs, against
// the same servers on their own routes. Method and results: bench/README.md "Aggregates".
//
//   npm run build && node bench/aggregate.js [cases]     cases: call,list,memory (default: all)
//
// - call: `tools/call` through an aggregate of a stdio member (server-everything over stdio) and a
//   Streamable HTTP member (server-everything in streamableHttp mode) against the same call on the
//   member's own route: proxy CPU per request (/proc), two fronts loaded together and crossed
//   over (as compare.js does for OAuth), per member kind. Goal: ≤ 1.15×.
// - list: `tools/list` of an aggregate of three stdio members of 100 tools each
//   (bench/tools-server.js) against the slowest member's own route, one request at a time,
//   alternating; with no delay in the members, and with list delays of 10, 20 and 30 ms. Goal:
//   the aggregate's answer comes at most 5 ms after the slowest member's (median).
// - memory: heap of the front (after full GCs) with N idle aggregate sessions against N idle
//   sessions on each member route, at N and 2N; an aggregate of one stdio member (the aggregate's
//   own layer) and of a stdio and a Streamable HTTP member. Goal: ≤ 8 KiB per aggregate session
//   beyond its member sessions.
//
// Honours BENCH_DURATION (default 8), BENCH_WARMUP (2), BENCH_ROUNDS (6, even: pairs of crossed
// rounds), BENCH_CONNECTIONS (8), BENCH_AGG_LIST_SAMPLES (200 per target and variant),
// BENCH_AGG_SESSIONS (N, 50), BENCH_LOGGER (noop, or default), BENCH_FRONT_DIST (another build).
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const L = require('./lib');
const D = require('./drivers');

const env = process.env;
const num = (name, def) => (env[name] === undefined || env[name] === '' ? def : Number(env[name]));
const opts = {
  duration: num('BENCH_DURATION', 8),
  warmup: num('BENCH_WARMUP', 2),
  rounds: num('BENCH_ROUNDS', 6),
  connections: num('BENCH_CONNECTIONS', 8),
  listSamples: num('BENCH_AGG_LIST_SAMPLES', 200),
  sessions: num('BENCH_AGG_SESSIONS', 50),
  logger: env.BENCH_LOGGER === 'default' ? 'default' : 'noop',
  dist: env.BENCH_FRONT_DIST || undefined,
};
const cases = new Set((process.argv[2] ?? 'call,list,memory').split(',').map((s) => s.trim()));
const TOOLS_SERVER = path.join(__dirname, 'tools-server.js');

const log = (...args) => console.error(`[aggregate ${new Date().toISOString().slice(11, 19)}]`, ...args);
const fmt = (v, digits = 1) => (Number.isFinite(v) ? v.toFixed(digits) : '–');
const signed = (v, digits = 1, unit = '') => `${v > 0 ? '+' : ''}${fmt(v, digits)}${unit}`;
const callMessage = (name) => ({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name, arguments: { message: 'bench' } } });
const listMessage = (id) => ({ jsonrpc: '2.0', id, method: 'tools/list', params: {} });

/** A stdio member running bench/tools-server.js. */
const toolsServer = (name, delayMs, extra = {}) => ({
  command: process.execPath,
  args: [TOOLS_SERVER],
  env: { TOOLS: '100', LIST_DELAY_MS: String(delayMs), SERVER_NAME: name },
  maxSessions: 1000,
  ...extra,
});

async function openSessions(url, count, check) {
  const sessions = [];
  for (let i = 0; i < count; i++) sessions.push(await L.openStreamableSession(url, true));
  if (check) await checkCall(url, sessions[0], check);
  return sessions;
}

async function checkCall(url, sessionId, name) {
  const answer = await L.request(url, { headers: L.streamableHeaders(true, sessionId), body: { ...callMessage(name), id: 1 } });
  const text = L.messagesOf(answer).find((m) => m.id === 1)?.result?.content?.[0]?.text ?? '';
  if (!text.includes('bench')) throw new Error(`${name} at ${url} failed: ${answer.status} ${answer.body.slice(0, 300)}`);
}

async function closeSessions(url, sessions) {
  for (const s of sessions) await L.deleteSession(url, true, s);
}

// --- call: CPU per request, aggregate against the member's own route ------------------------------

/**
 * Two fronts of one build and config, each with sessions on the member's own route and on the
 * aggregate, loaded at the same time: in odd rounds front 1 serves the own route and front 2 the
 * aggregate, in even rounds the reverse. Which of two identical fronts runs cheaper shifts its
 * CPU per request by up to ~15 µs on this machine; a pair of consecutive rounds holds no front's
 * bias, so the figure is the median over pairs of (aggregate CPU) / (own-route CPU) of the pair.
 */
async function caseCall(up) {
  const config = L.frontConfig({ httpOrigin: up.origin });
  config.aggregates = { agg: { servers: { 'everything-stdio': { prefix: 'stdio' }, 'everything-http': { prefix: 'http' } } } };
  const kinds = [
    { kind: 'stdio', server: 'everything-stdio', prefix: 'stdio' },
    { kind: 'Streamable HTTP', server: 'everything-http', prefix: 'http' },
  ];
  const out = [];
  for (const k of kinds) {
    log(`case call, ${k.kind} member: two fronts, ${opts.connections} sessions per route each`);
    const fronts = [];
    try {
      for (const n of [1, 2]) {
        const front = await L.startFront(`agg-call-${n}`, config, { logger: opts.logger, dist: opts.dist });
        const routes = [
          { label: 'own route', url: front.url(k.server, 'mcp'), tool: 'echo', runs: [] },
          { label: 'aggregate', url: front.url('agg', 'mcp'), tool: `${k.prefix}__echo`, runs: [] },
        ];
        for (const r of routes) r.sessions = await openSessions(r.url, opts.connections, r.tool);
        fronts.push({ front, routes });
      }
      const runOne = (r, seconds) => D.streamableLoad({ url: r.url, auth: true, sessions: r.sessions, duration: seconds, message: callMessage(r.tool) });
      if (opts.warmup > 0) for (const f of fronts) for (const r of f.routes) await runOne(r, opts.warmup);
      const results = { own: [], agg: [] };
      for (let round = 1; round <= opts.rounds; round++) {
        const order = round % 2 ? [0, 1] : [1, 0];
        const measured = await Promise.all(
          fronts.map(async (f, i) => {
            const r = f.routes[order[i]];
            const watch = { proxy: f.front.child.pid };
            if (k.kind === 'stdio') watch.children = L.descendants([f.front.child.pid]);
            else watch.upstream = up.child.pid;
            const res = await D.withCpu(watch, () => runOne(r, opts.duration));
            res.proxyUs = ((res.cpuMs.proxy.user + res.cpuMs.proxy.sys) * 1000) / res.requests;
            res.front = f.front.name;
            log(`round ${round} ${f.front.name} ${r.label}: ${fmt(res.rps, 0)} req/s, p50 ${fmt(res.p50, 2)} ms, proxy ${fmt(res.proxyUs, 0)} µs/req, errors ${res.errors}, other load ${fmt(res.otherCores, 2)} cores`);
            return [r.label, res];
          }),
        );
        for (const [label, res] of measured) results[label === 'aggregate' ? 'agg' : 'own'].push(res);
      }
      const ratios = [];
      for (let i = 0; i + 1 < opts.rounds; i += 2) {
        ratios.push((results.agg[i].proxyUs + results.agg[i + 1].proxyUs) / (results.own[i].proxyUs + results.own[i + 1].proxyUs));
      }
      const m = (list, f) => L.median(list.map(f));
      const row = {
        kind: k.kind,
        own: m(results.own, (r) => r.proxyUs),
        agg: m(results.agg, (r) => r.proxyUs),
        ownP50: m(results.own, (r) => r.p50),
        aggP50: m(results.agg, (r) => r.p50),
        ownRps: m(results.own, (r) => r.rps),
        aggRps: m(results.agg, (r) => r.rps),
        ratio: L.median(ratios),
        ratios,
        errors: [...results.own, ...results.agg].reduce((s, r) => s + r.errors, 0),
        otherCores: m([...results.own, ...results.agg], (r) => r.otherCores),
      };
      console.log(
        `call, ${k.kind} member: proxy CPU per request own route ${fmt(row.own, 0)} µs, aggregate ${fmt(row.agg, 0)} µs (medians); ` +
          `aggregate / own, median of crossed pairs: ${fmt(row.ratio, 3)}× (pairs: ${ratios.map((x) => fmt(x, 3)).join(' / ')}); ` +
          `p50 ${fmt(row.ownP50, 2)} → ${fmt(row.aggP50, 2)} ms; errors ${row.errors}`,
      );
      out.push(row);
      for (const f of fronts) for (const r of f.routes) await closeSessions(r.url, r.sessions);
    } finally {
      await Promise.all(fronts.map((f) => f.front.stop()));
    }
  }
  return out;
}

// --- list: latency of a merged list against the slowest member's own -------------------------------

/**
 * One front with two aggregates of three 100-tool members each: without delay, and with list
 * delays of 10, 20 and 30 ms. One session per route; requests one at a time, own route and
 * aggregate alternating, so the machine's drift hits both alike. The figure is the difference of
 * the medians (and the median of each alternate pair's difference).
 */
async function caseList() {
  const variants = [
    { label: 'no delay', delays: [0, 0, 0] },
    { label: 'list delays 10, 20, 30 ms', delays: [10, 20, 30] },
  ];
  const mcpServers = {};
  const aggregates = {};
  variants.forEach((v, i) => {
    v.members = v.delays.map((d, j) => `t${i}${'abc'[j]}`);
    v.members.forEach((name, j) => {
      mcpServers[name] = toolsServer(name, v.delays[j]);
    });
    v.aggregate = `list${i}`;
    aggregates[v.aggregate] = { servers: v.members };
  });
  const config = { ...L.frontConfig({}), mcpServers, aggregates };
  log(`case list: ${opts.listSamples} tools/list per target and variant, one at a time`);
  const front = await L.startFront('agg-list', config, { logger: opts.logger, dist: opts.dist });
  const out = [];
  try {
    for (const v of variants) {
      const slowest = v.members[v.delays.indexOf(Math.max(...v.delays))];
      const targets = [
        { label: `own route (${slowest}, ${Math.max(...v.delays)} ms)`, url: front.url(slowest, 'mcp'), tools: 100, ms: [] },
        { label: `aggregate of ${v.members.join(', ')}`, url: front.url(v.aggregate, 'mcp'), tools: 300, ms: [] },
      ];
      for (const t of targets) t.session = (await openSessions(t.url, 1))[0];
      const once = async (t, id) => {
        const t0 = performance.now();
        const answer = await L.request(t.url, { headers: L.streamableHeaders(true, t.session), body: listMessage(id) });
        const ms = performance.now() - t0;
        const got = L.messagesOf(answer).find((m) => m.id === id)?.result?.tools?.length;
        if (got !== t.tools) throw new Error(`tools/list at ${t.url}: ${got} tools, ${t.tools} expected (${answer.status} ${answer.body.slice(0, 200)})`);
        return { ms, bytes: answer.body.length };
      };
      // Warm-up: code compiled, sockets open, members' first answers out of the way.
      for (let i = 0; i < 20; i++) for (const t of targets) await once(t, 1000 + i);
      const cpu0 = targets.map(() => 0);
      for (let i = 0; i < opts.listSamples; i++) {
        const order = i % 2 ? [1, 0] : [0, 1];
        for (const j of order) {
          const t = targets[j];
          const before = D.cpuMs(front.child.pid);
          const { ms, bytes } = await once(t, 10_000 + i);
          const after = D.cpuMs(front.child.pid);
          cpu0[j] += after.user + after.sys - before.user - before.sys;
          t.ms.push(ms);
          t.bytes = bytes;
        }
      }
      const [own, agg] = targets;
      const pairs = own.ms.map((x, i) => agg.ms[i] - x);
      const row = {
        label: v.label,
        own: L.median(own.ms),
        agg: L.median(agg.ms),
        own90: percentile(own.ms, 90),
        agg90: percentile(agg.ms, 90),
        added: L.median(agg.ms) - L.median(own.ms),
        pairedAdded: L.median(pairs),
        ownCpuMs: cpu0[0] / opts.listSamples,
        aggCpuMs: cpu0[1] / opts.listSamples,
        ownBytes: own.bytes,
        aggBytes: agg.bytes,
      };
      console.log(
        `list, ${v.label}: own route p50 ${fmt(row.own, 2)} ms (p90 ${fmt(row.own90, 2)}), aggregate p50 ${fmt(row.agg, 2)} ms (p90 ${fmt(row.agg90, 2)}); ` +
          `added ${signed(row.added, 2, ' ms')} (median of paired requests ${signed(row.pairedAdded, 2, ' ms')}); ` +
          `proxy CPU per list ${fmt(row.ownCpuMs, 2)} → ${fmt(row.aggCpuMs, 2)} ms (10 ms ticks, averaged); answers ${row.ownBytes} → ${row.aggBytes} bytes`,
      );
      out.push(row);
      for (const t of targets) await L.deleteSession(t.url, true, t.session);
    }
  } finally {
    await front.stop();
  }
  return out;
}

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

// --- memory: heap per idle aggregate session beyond its member sessions ----------------------------

/** The standalone GET stream of a Streamable HTTP session, held open (as SDK clients hold it). */
function openGetStream(url, sessionId) {
  return new Promise((resolve, reject) => {
    const headers = { ...L.streamableHeaders(true, sessionId), accept: 'text/event-stream' };
    delete headers['content-type'];
    const req = http.request(url, { method: 'GET', headers, agent: false });
    const timer = setTimeout(() => req.destroy(new Error(`GET ${url}: no answer`)), 30_000);
    req.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.once('response', (res) => {
      clearTimeout(timer);
      if (res.statusCode !== 200) {
        res.resume();
        return reject(new Error(`GET ${url}: ${res.statusCode}`));
      }
      res.on('data', () => undefined);
      res.on('error', () => undefined);
      resolve({ close: () => req.destroy() });
    });
    req.end();
  });
}

/**
 * One front, two aggregates: `one`, of the stdio member alone (bench/tools-server.js, a small
 * child), against that member's own route — the same client side (the bridge's) and the same
 * member session (a `StdioChannel`) on both, so the difference is the aggregate's own layer; and
 * `agg`, of that member and a Streamable HTTP member, against N sessions on each member route —
 * what a client saves or pays by using one endpoint instead of two. Each phase starts from the
 * same baseline (the previous phase's sessions closed, their children gone) and opens N, then N
 * more, idle sessions, each with its standalone GET stream open as SDK clients hold it. The heap
 * (`heapUsed` after two full GCs) is read at 0, N and 2N; per-session figures are increments / N,
 * medians over phases. Phases alternate (routes, aggregate, routes, …): the heap's drift hits both.
 */
async function caseMemory(up) {
  const n = opts.sessions;
  const base = L.frontConfig({ httpOrigin: up.origin });
  const config = {
    ...base,
    mcpServers: { 'everything-http': base.mcpServers['everything-http'], tools: toolsServer('tools', 0) },
    aggregates: {
      one: { servers: { tools: { prefix: 'tools' } } },
      agg: { servers: { 'everything-http': { prefix: 'http' }, tools: { prefix: 'tools' } } },
    },
  };
  log(`case memory: ${n} and ${2 * n} idle sessions, member routes against aggregates`);
  const front = await L.startFront('agg-memory', config, { logger: opts.logger, dist: opts.dist });
  const variants = [
    { label: 'stdio member alone', routes: [front.url('tools', 'mcp')], aggregate: front.url('one', 'mcp') },
    { label: 'stdio + Streamable HTTP members', routes: [front.url('tools', 'mcp'), front.url('everything-http', 'mcp')], aggregate: front.url('agg', 'mcp') },
  ];
  const open = async (urls, count) => {
    const held = [];
    for (let i = 0; i < count; i++) {
      for (const url of urls) {
        const id = await L.openStreamableSession(url, true);
        held.push({ url, id, stream: await openGetStream(url, id) });
      }
    }
    return held;
  };
  const close = async (held) => {
    for (const h of held) {
      h.stream.close();
      await L.deleteSession(h.url, true, h.id);
    }
    const deadline = Date.now() + 30_000;
    while (membersRunning(front.child.pid) > 0 && Date.now() < deadline) await L.sleep(100);
  };
  const heap = async () => {
    await L.sleep(500); // the last openings' timers and first pings settle
    const m = await front.memory();
    return { heap: m.heapUsed, external: m.external, rss: m.rss };
  };
  const out = [];
  try {
    // Warm-up: every code path compiled and every lazily built structure there.
    for (const v of variants) for (const urls of [v.routes, [v.aggregate]]) await close(await open(urls, 3));
    for (const v of variants) {
      const phases = [];
      for (let i = 0; i < 6; i++) {
        const kind = i % 2 ? 'aggregate' : 'routes';
        const urls = kind === 'aggregate' ? [v.aggregate] : v.routes;
        const at0 = await heap();
        const first = await open(urls, n);
        const atN = await heap();
        const second = await open(urls, n);
        const at2N = await heap();
        await close([...first, ...second]);
        phases.push({ kind, at0, atN, at2N });
        log(`${v.label}, ${kind}: heap ${kib(at0.heap)} → ${kib(atN.heap)} → ${kib(at2N.heap)} KiB; per session ${fmt((atN.heap - at0.heap) / n / 1024, 2)} KiB (0→N), ${fmt((at2N.heap - atN.heap) / n / 1024, 2)} KiB (N→2N)`);
      }
      const perSession = (kind, from, to) => L.median(phases.filter((p) => p.kind === kind).map((p) => (p[to].heap - p[from].heap) / n / 1024));
      const row = {
        label: v.label,
        n,
        routesFirst: perSession('routes', 'at0', 'atN'),
        routesSecond: perSession('routes', 'atN', 'at2N'),
        aggFirst: perSession('aggregate', 'at0', 'atN'),
        aggSecond: perSession('aggregate', 'atN', 'at2N'),
        phases,
      };
      row.beyondFirst = row.aggFirst - row.routesFirst;
      row.beyondSecond = row.aggSecond - row.routesSecond;
      console.log(
        `memory, ${v.label}, ${n} → ${2 * n} idle sessions: member routes ${fmt(row.routesFirst, 2)} / ${fmt(row.routesSecond, 2)} KiB of heap per session (0→N / N→2N, all members), ` +
          `aggregate ${fmt(row.aggFirst, 2)} / ${fmt(row.aggSecond, 2)} KiB; aggregate − routes ${signed(row.beyondFirst, 2)} / ${signed(row.beyondSecond, 2)} KiB`,
      );
      out.push(row);
    }
  } finally {
    await front.stop();
  }
  return out;
}

/** The front's bench/tools-server.js children (its process-tree watchdog, also a child, stays). */
function membersRunning(pid) {
  return L.descendants([pid]).filter((child) => {
    try {
      return fs.readFileSync(`/proc/${child}/cmdline`, 'utf8').includes(TOOLS_SERVER);
    } catch {
      return false;
    }
  }).length;
}

const kib = (bytes) => fmt(bytes / 1024, 0);

async function main() {
  const results = {};
  let up;
  try {
    if (cases.has('call') || cases.has('memory')) up = await L.startEverything('streamableHttp');
    if (cases.has('call')) results.call = await caseCall(up);
    if (cases.has('list')) results.list = await caseList();
    if (cases.has('memory')) results.memory = await caseMemory(up);
  } finally {
    const survivors = await L.stopAll();
    if (survivors.length > 0) log(`had to kill ${survivors.length} leftover processes: ${survivors.join(' ')}`);
    L.agent.destroy();
  }
  if (env.BENCH_AGG_JSON) fs.writeFileSync(env.BENCH_AGG_JSON, JSON.stringify(results, null, 2));
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
