'use strict';
// A/B of two builds of mcp-front on one case, interleaved (A B A B …), no-op logger unless
// BENCH_LOGGER=default: the way each change in README.md "Optimisations" was measured.
//
//   node bench/compare.js <case> <dist A> <dist B>      case: stdio | streamable | sse
//
//   node bench/compare.js bigevent <dist A> <dist B>    one 8 MiB SSE event (BENCH_BIG_BYTES), A and B
//                                                     in turn (A B, then B A), BENCH_BIG_REPEATS (9) each,
//                                                     on the legacy SSE relay and the Streamable passthrough
//
// `hop` instead of a dist (streamable, sse, bigevent): the floor hop of bench/floor.js (FLOOR=hop), a bare
// proxy hop in Express in front of the same upstream, e.g. `node bench/compare.js streamable hop dist`
// for mcp-front's CPU per request against the floor's, paired.
//
//   node bench/compare.js <case>-oauth <dist>           case: stdio | streamable | sse
//                                                     one build, the same OAuth config in two fronts: the
//                                                     proxy's CPU per request with a static token against
//                                                     the same with a cached OAuth access token (a JWT of
//                                                     bench/lib.js startIssuer), crossed over (below);
//                                                     BENCH_OAUTH_STATIC=long: a static token as long
//                                                     as the access token
//
// e.g. a build of the last commit against the working tree:
//   mkdir -p /tmp/head && git archive HEAD lib tsconfig.json tsconfig.build.json | tar -x -C /tmp/head \
//     && ln -s "$PWD/node_modules" /tmp/head/node_modules && (cd /tmp/head && npx tsc -p tsconfig.build.json)
//   npm run build && node bench/compare.js stdio /tmp/head/dist dist
//
// Honours BENCH_DURATION (default 8), BENCH_WARMUP (2), BENCH_ROUNDS (3), BENCH_CONNECTIONS (8, as bench/run.js).
// By default A and B run at the same time (BENCH_MODE=alternate: one after the other, A B / B A);
// the paired figure (each round's B against the same round's A) is the one to trust.
// Prints, per build, the median req/s, p50 and the proxy's CPU per request (user + kernel, /proc):
// the figure that does not depend on how the two shared cores were scheduled.
const L = require('./lib');
const D = require('./drivers');

const env = process.env;
const num = (name, def) => (env[name] === undefined || env[name] === '' ? def : Number(env[name]));
const duration = num('BENCH_DURATION', 8);
const warmup = num('BENCH_WARMUP', 2);
const rounds = num('BENCH_ROUNDS', 3);
const connections = num('BENCH_CONNECTIONS', 8);
const logger = env.BENCH_LOGGER === 'default' ? 'default' : 'noop';
// `together`: A and B loaded at the same time (each with its own connections), so that the drift
// of a shared machine's speed, tens of percent within seconds here, hits both alike; throughput is
// then that of a machine twice as loaded, but the CPU per request compares fairly.
const together = env.BENCH_MODE !== 'alternate';

const [requested, distA, distArg] = process.argv.slice(2);
const oauth = /^(stdio|streamable|sse)-oauth$/.test(requested ?? '');
const kind = oauth ? requested.replace(/-oauth$/, '') : requested;
const distB = oauth ? distA : distArg;
const usable = oauth ? distA !== undefined && distA !== 'hop' && distArg === undefined : ['stdio', 'streamable', 'sse', 'bigevent'].includes(kind) && distA && distB;
if (!usable || (kind === 'stdio' && [distA, distB].includes('hop'))) {
  console.error('usage: node bench/compare.js stdio|streamable|sse|bigevent <dist A> <dist B>');
  console.error('       node bench/compare.js stdio-oauth|streamable-oauth|sse-oauth <dist>');
  process.exit(2);
}

const log = (...args) => console.error(`[compare ${new Date().toISOString().slice(11, 19)}]`, ...args);

async function openSessions(url, count, auth) {
  const sessions = [];
  for (let i = 0; i < count; i++) sessions.push(await L.openStreamableSession(url, auth));
  await L.checkEcho(url, auth, sessions[0]);
  return sessions;
}

/** A/B of one big SSE event: the proxy's CPU per event, paired A/B per round. */
async function bigEvent() {
  const B = require('./bigevent');
  const bytes = num('BENCH_BIG_BYTES', 8 * 1024 * 1024);
  const repeats = num('BENCH_BIG_REPEATS', 9);
  const big = await L.startBigUpstream(bytes);
  const config = L.frontConfig({ httpOrigin: big.origin, sseOrigin: big.origin });
  const procs = [];
  try {
    const target = B.targets(bytes);
    const sides = [];
    for (const [label, dist] of [
      ['A', distA],
      ['B', distB],
    ]) {
      const hop = dist === 'hop';
      const p = hop ? await L.startFloor('hop', { upstream: big.origin }) : await L.startFront(`compare-${label}`, config, { logger, dist });
      procs.push(hop ? () => L.terminate(p.child, 3000) : () => p.stop());
      const url = (server, route) => (hop ? `${p.origin}/${route}` : p.url(server, route));
      sides.push([
        target.sse('legacy SSE relay', `${label} ${dist}`, url('everything-sse', 'sse'), !hop, p.child.pid),
        target.streamable('Streamable HTTP passthrough', `${label} ${dist}`, url('everything-http', 'mcp'), !hop, p.child.pid),
      ]);
    }
    const pct = (x) => `${x > 0 ? '+' : ''}${(x * 100).toFixed(1)} %`;
    for (let i = 0; i < 2; i++) {
      const pair = [sides[0][i], sides[1][i]];
      for (const t of pair) {
        await t.open();
        await t.call(true);
        t.samples = [];
      }
      for (let r = 1; r <= repeats; r++) {
        for (const t of r % 2 ? pair : [...pair].reverse()) t.samples.push((await B.measure(t)).cpuMs);
        log(`round ${r} ${pair[0].path}: A ${pair[0].samples[r - 1].toFixed(1)} ms, B ${pair[1].samples[r - 1].toFixed(1)} ms`);
      }
      for (const t of pair) {
        console.log(`${t.path}, ${t.label}: proxy CPU per event ${L.median(t.samples).toFixed(1)} ms (median), max ${Math.max(...t.samples).toFixed(1)} (${t.samples.map((x) => x.toFixed(1)).join(' / ')})`);
        await t.close();
      }
      const ratios = pair[1].samples.map((b, k) => b / pair[0].samples[k] - 1);
      console.log(`${pair[0].path}: B vs A, median of paired events: ${pct(L.median(ratios))}`);
    }
  } finally {
    await Promise.all(procs.map((stop) => stop()));
    await L.stopAll();
    L.agent.destroy();
  }
}

/**
 * Static token against OAuth access token, one build: two fronts with the same config (static
 * token and OAuth), loaded together. Which of two identical fronts is started first changes its
 * CPU per request by up to about 15 µs on this machine, the size of what is measured; so the
 * credentials cross over — in odd rounds front 1's clients send the static token and front 2's
 * the access token, in even rounds the reverse — and the mean of two consecutive rounds'
 * differences holds no front's bias. Every front holds sessions for both credentials (a session
 * belongs to the principal that opened it). The access token is verified at its first request
 * (warm-up) and served from the cache after that: the figure is the cached path's.
 */
async function staticVersusOAuth() {
  let up;
  let issuer;
  const fronts = [];
  try {
    if (kind === 'streamable') up = await L.startEverything('streamableHttp');
    if (kind === 'sse') up = await L.startEverything('sse');
    issuer = await L.startIssuer();
    const config = L.frontConfig({ httpOrigin: kind === 'streamable' ? up.origin : undefined, sseOrigin: kind === 'sse' ? up.origin : undefined, issuer });
    const server = { stdio: 'everything-stdio', streamable: 'everything-http', sse: 'everything-sse' }[kind];
    const route = kind === 'sse' ? 'sse' : 'mcp';
    const accessToken = await issuer.mint();
    const credentials = [
      { label: `static token (${L.TOKEN.length} characters)`, auth: true, runs: [] },
      { label: `OAuth access token (${accessToken.length} characters)`, auth: accessToken, runs: [] },
    ];
    // BENCH_OAUTH_STATIC=long: a static token as long as the access token, so that the difference
    // leaves out what any long header costs (parsing it, hashing the token).
    if (env.BENCH_OAUTH_STATIC === 'long') {
      const long = L.randomToken(accessToken.length);
      config.proxy.auth.tokens.long = long;
      credentials[0] = { label: `static token (${long.length} characters)`, auth: long, runs: [] };
    }
    for (const n of [1, 2]) {
      const front = await L.startFront(`oauth-${n}`, config, { logger, dist: distA });
      const url = front.url(server, route);
      const sessions = kind === 'sse' ? [] : await Promise.all(credentials.map((c) => openSessions(url, connections, c.auth)));
      fronts.push({ front, url, sessions });
    }
    const runOne = (f, c, seconds) =>
      kind === 'sse'
        ? D.sseLoad({ url: f.url, auth: c.auth, connections, duration: seconds })
        : D.streamableLoad({ url: f.url, auth: c.auth, sessions: f.sessions[credentials.indexOf(c)], duration: seconds });
    if (warmup > 0) for (const f of fronts) for (const c of credentials) await runOne(f, c, warmup);
    const measure = async (f, c, r) => {
      const watch = { proxy: f.front.child.pid };
      if (up) watch.upstream = up.child.pid;
      else watch.children = L.descendants([f.front.child.pid]);
      const res = await D.withCpu(watch, () => runOne(f, c, duration));
      res.proxyUs = ((res.cpuMs.proxy.user + res.cpuMs.proxy.sys) * 1000) / res.requests;
      c.runs.push(res);
      log(`round ${r} ${f.front.name}, ${c.label}: ${res.rps.toFixed(0)} req/s, p50 ${res.p50.toFixed(2)} ms, proxy ${res.proxyUs.toFixed(0)} µs/req, errors ${res.errors}`);
    };
    for (let r = 1; r <= rounds; r++) {
      const order = r % 2 ? credentials : [...credentials].reverse();
      await Promise.all(fronts.map((f, i) => measure(f, order[i], r)));
    }
    const us = (x) => `${x > 0 ? '+' : ''}${x.toFixed(1)} µs`;
    for (const c of credentials) {
      const m = (f) => L.median(c.runs.map(f));
      console.log(
        `${c.label}: ${m((r) => r.rps).toFixed(0)} req/s, p50 ${m((r) => r.p50).toFixed(2)} ms, proxy ${m((r) => r.proxyUs).toFixed(0)} µs/req ` +
          `(runs: ${c.runs.map((r) => r.proxyUs.toFixed(0)).join(' / ')}), errors ${c.runs.reduce((s, r) => s + r.errors, 0)}`,
      );
    }
    const differences = credentials[1].runs.map((o, i) => o.proxyUs - credentials[0].runs[i].proxyUs);
    console.log(`OAuth − static, per round (odd: OAuth on front 2, even: on front 1): ${differences.map(us).join(' / ')}`);
    // A round and the next, crossed over: the mean of their differences holds no front's bias.
    const crossed = [];
    for (let i = 0; i + 1 < differences.length; i += 2) crossed.push((differences[i] + differences[i + 1]) / 2);
    if (crossed.length > 0) {
      console.log(`OAuth − static, median of crossed-over pairs of rounds: proxy CPU per request ${us(L.median(crossed))} (pairs: ${crossed.map(us).join(' / ')})`);
    }
    for (const f of fronts) for (const [i, c] of credentials.entries()) for (const s of f.sessions[i] ?? []) await L.deleteSession(f.url, c.auth, s);
  } finally {
    await Promise.all(fronts.map((f) => f.front.stop()));
    await L.stopAll();
    await issuer?.stop();
    L.agent.destroy();
  }
}

async function main() {
  if (oauth) return staticVersusOAuth();
  if (kind === 'bigevent') return bigEvent();
  let up;
  const targets = [];
  try {
    if (kind === 'streamable') up = await L.startEverything('streamableHttp');
    if (kind === 'sse') up = await L.startEverything('sse');
    const config = L.frontConfig({ httpOrigin: kind === 'streamable' ? up.origin : undefined, sseOrigin: kind === 'sse' ? up.origin : undefined });
    const server = { stdio: 'everything-stdio', streamable: 'everything-http', sse: 'everything-sse' }[kind];
    const route = kind === 'sse' ? 'sse' : 'mcp';
    for (const [label, dist] of [
      ['A', distA],
      ['B', distB],
    ]) {
      const hop = dist === 'hop';
      const front = hop ? await L.startFloor('hop', { upstream: up.origin }) : await L.startFront(`compare-${label}`, config, { logger, dist });
      if (hop) front.stop = () => L.terminate(front.child, 3000);
      const t = { label: `${label} ${dist}`, front, auth: !hop, url: hop ? `${front.origin}/${route}` : front.url(server, route), runs: [] };
      if (kind !== 'sse') t.sessions = await openSessions(t.url, connections, t.auth);
      targets.push(t);
    }
    const runOne = (t, seconds) =>
      kind === 'sse'
        ? D.sseLoad({ url: t.url, auth: t.auth, connections, duration: seconds })
        : D.streamableLoad({ url: t.url, auth: t.auth, sessions: t.sessions, duration: seconds });
    for (const t of targets) if (warmup > 0) await runOne(t, warmup);
    const measure = async (t, r) => {
      const watch = { proxy: t.front.child.pid };
      if (up) watch.upstream = up.child.pid;
      else watch.children = L.descendants([t.front.child.pid]);
      const res = await D.withCpu(watch, () => runOne(t, duration));
      res.proxyUs = ((res.cpuMs.proxy.user + res.cpuMs.proxy.sys) * 1000) / res.requests;
      t.runs.push(res);
      log(`round ${r} ${t.label}: ${res.rps.toFixed(0)} req/s, p50 ${res.p50.toFixed(2)} ms, proxy ${res.proxyUs.toFixed(0)} µs/req`);
    };
    for (let r = 1; r <= rounds; r++) {
      if (together) await Promise.all(targets.map((t) => measure(t, r)));
      // A B, then B A: a machine that speeds up or slows down during the run favours neither.
      else for (const t of r % 2 ? targets : [...targets].reverse()) await measure(t, r);
    }
    for (const t of targets) {
      const m = (f) => L.median(t.runs.map(f));
      console.log(
        `${t.label}: ${m((r) => r.rps).toFixed(0)} req/s, p50 ${m((r) => r.p50).toFixed(2)} ms, proxy ${m((r) => r.proxyUs).toFixed(0)} µs/req ` +
          `(runs: ${t.runs.map((r) => r.proxyUs.toFixed(0)).join(' / ')}), errors ${t.runs.reduce((s, r) => s + r.errors, 0)}`,
      );
    }
    const [a, b] = targets.map((t) => L.median(t.runs.map((r) => r.proxyUs)));
    // Paired: each round's B against the same round's A, which ran next to it. The speed of a
    // shared VM drifts by tens of percent over minutes; within a round it mostly does not.
    const pct = (x) => `${x > 0 ? '+' : ''}${(x * 100).toFixed(1)} %`;
    const ratios = (f) => targets[1].runs.map((rb, i) => f(rb) / f(targets[0].runs[i]) - 1);
    console.log(`B vs A, medians: proxy CPU per request ${pct(b / a - 1)}, req/s ${pct(L.median(targets[1].runs.map((r) => r.rps)) / L.median(targets[0].runs.map((r) => r.rps)) - 1)}`);
    console.log(`B vs A, median of paired rounds: proxy CPU per request ${pct(L.median(ratios((r) => r.proxyUs)))}, req/s ${pct(L.median(ratios((r) => r.rps)))}`);
    const us = (x) => `${x > 0 ? '+' : ''}${x.toFixed(1)} µs`;
    const differences = targets[1].runs.map((rb, i) => rb.proxyUs - targets[0].runs[i].proxyUs);
    console.log(`B − A, median of paired rounds: proxy CPU per request ${us(L.median(differences))} (rounds: ${differences.map(us).join(' / ')})`);
    for (const t of targets) if (t.sessions) for (const s of t.sessions) await L.deleteSession(t.url, t.auth, s);
  } finally {
    await Promise.all(targets.map((t) => t.front.stop()));
    await L.stopAll();
    L.agent.destroy();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
