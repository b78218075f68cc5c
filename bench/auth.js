'use strict';
// `node bench/auth.js`: the CPU cost per request of authentication alone, in process, without
// HTTP (README: OAuth 2.1): what the router does between a request's `Authorization` header and
// its transport — `prove()`, `hold()` against the server, and for an access token the timer that
// ends a stream at its expiry. A static token, one as long as the access token, and an OAuth
// access token already verified (the cached path every request after a token's first takes);
// then a token's first request, whose signature is checked. Run after `npm run build`; figures
// are microseconds per request, medians of BENCH_ROUNDS rounds of BENCH_N requests.
const { EventEmitter } = require('node:events');
const { performance } = require('node:perf_hooks');
const { resolveConfig } = require('../dist/config');
const { authenticatorFor } = require('../dist/auth/authenticate');
const { endStreamAt } = require('../dist/auth/stream-deadlines');
const L = require('./lib');

const N = Number(process.env.BENCH_N || 200_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS || 5);
/** First verifications: each needs a token of its own, minted beforehand (about 1 ms each). */
const FIRST = Number(process.env.BENCH_FIRST || 500);
const noop = () => undefined;
const logger = { info: noop, warn: noop, error: noop, debug: noop };

/** One request's authentication as `authorizeAndDispatch`/`dispatch` in lib/mcp-front.ts do it. */
async function authenticate(auth, server, header) {
  let proof = auth.prove(header);
  if (proof instanceof Promise) proof = await proof;
  if (!proof.ok) throw new Error(`refused: ${proof.reason}`);
  const held = auth.hold(proof.credential, server);
  if (!held.ok) throw new Error(`refused: ${held.reason}`);
  if (held.principal.expiresAt !== undefined) {
    const res = new EventEmitter();
    endStreamAt(res, held.principal.expiresAt);
    res.emit('close');
  }
}

async function measure(auth, server, header) {
  const runs = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = performance.now();
    for (let i = 0; i < N; i++) await authenticate(auth, server, header);
    runs.push(((performance.now() - t0) * 1000) / N);
  }
  return L.median(runs);
}

async function main() {
  const issuer = await L.startIssuer();
  try {
    const accessToken = await issuer.mint();
    const long = L.randomToken(accessToken.length);
    const raw = L.frontConfig({ httpOrigin: 'http://127.0.0.1:9', issuer });
    raw.proxy.auth.tokens.long = long;
    const config = resolveConfig(raw, {});
    const auth = authenticatorFor(config, undefined, logger);
    const server = config.servers.get('everything-http');
    await authenticate(auth, server, `Bearer ${accessToken}`);

    const rows = [
      [`static token (${L.TOKEN.length} characters)`, await measure(auth, server, `Bearer ${L.TOKEN}`)],
      [`static token (${long.length} characters)`, await measure(auth, server, `Bearer ${long}`)],
      [`OAuth access token (${accessToken.length} characters), verified before`, await measure(auth, server, `Bearer ${accessToken}`)],
    ];
    const fresh = [];
    for (let i = 0; i < FIRST; i++) fresh.push(await issuer.mint({ jti: String(i) }));
    const t0 = performance.now();
    for (const token of fresh) await authenticate(auth, server, `Bearer ${token}`);
    rows.push([`OAuth access token, its first request (RS256 signature, ${FIRST} tokens)`, ((performance.now() - t0) * 1000) / FIRST]);
    auth.close();

    console.log(`| authentication of one request | µs (median of ${ROUNDS} × ${N}) |`);
    console.log('|---|---:|');
    for (const [label, us] of rows) console.log(`| ${label} | ${us.toFixed(2)} |`);
  } finally {
    await issuer.stop();
    await L.stopAll();
    L.agent.destroy();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
