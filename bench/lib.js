'use strict';
// Shared pieces of the benchmark: process bookkeeping (every process we start is stopped by pid,
// never by name), the reference server, mcp-front hosts, the peers, small HTTP/MCP clients and
// statistics. Every connection targets 127.0.0.1.
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { spawn, fork } = require('node:child_process');
const { once } = require('node:events');

const ROOT = path.resolve(__dirname, '..');
const EVERYTHING = path.join(path.dirname(require.resolve('@modelcontextprotocol/server-everything/package.json')), 'dist', 'index.js');
const PROTOCOL = '2025-06-18';
const HOST = '127.0.0.1';
/** `length` random base64url characters. */
const randomToken = (length) => crypto.randomBytes(Math.ceil((length * 3) / 4)).toString('base64url').slice(0, length);
/** A random token: the token warnings of mcp-front stay quiet and nothing secret is reused. */
const TOKEN = randomToken(43);
/** A second token, for configs where another token has rules of its own. */
const OTHER_TOKEN = crypto.randomBytes(32).toString('base64url');
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-front-bench-'));
// Logs of the processes started here: kept until this process ends, whoever requires this file.
process.once('exit', () => fs.rmSync(TMP, { recursive: true, force: true }));

// --- processes -------------------------------------------------------------------------------

/** Every process started here: { name, child, stop() }. */
const started = new Set();

function track(name, child, stop) {
  const entry = { name, child, stop };
  started.add(entry);
  child.once('exit', () => started.delete(entry));
  return entry;
}

function exited(child) {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Waits for a child's exit, at most `ms`; true when it exited. */
async function exitWithin(child, ms) {
  if (exited(child)) return true;
  let timer;
  const timeout = new Promise((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const done = once(child, 'exit').then(() => true);
  const result = await Promise.race([done, timeout]);
  clearTimeout(timer);
  return result;
}

/** SIGTERM, then SIGKILL after `graceMs`, to this pid only (or its process group when it leads one). */
async function terminate(child, graceMs = 8000, group = false) {
  if (exited(child)) return;
  const signal = (sig) => {
    try {
      if (group) process.kill(-child.pid, sig);
      else child.kill(sig);
    } catch {
      /* already gone */
    }
  };
  signal('SIGTERM');
  if (await exitWithin(child, graceMs)) return;
  signal('SIGKILL');
  await exitWithin(child, 2000);
}

/** pid → { ppid, comm } for every process, from /proc. */
function processTable() {
  const table = new Map();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const fields = stat.slice(close + 2).split(' ');
      table.set(Number(name), { ppid: Number(fields[1]), comm: stat.slice(stat.indexOf('(') + 1, close) });
    } catch {
      /* gone meanwhile */
    }
  }
  return table;
}

/** Every descendant pid of `roots` (children, grandchildren, …). */
function descendants(roots) {
  const table = processTable();
  const children = new Map();
  for (const [pid, { ppid }] of table) {
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(pid);
  }
  const out = [];
  const queue = [...roots];
  while (queue.length) {
    const pid = queue.shift();
    for (const c of children.get(pid) ?? []) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Stops everything this run started: each entry's own graceful stop, then any descendant that
 * outlived its parent is killed by pid. Returns the pids that had to be killed that way.
 */
async function stopAll() {
  const roots = [...started].map((e) => e.child.pid).filter(Boolean);
  const tree = descendants(roots);
  await Promise.all([...started].map((e) => e.stop().catch(() => undefined)));
  const survivors = [];
  for (let i = 0; i < 40; i++) {
    const left = tree.filter(alive);
    if (left.length === 0) break;
    await sleep(100);
  }
  for (const pid of tree.filter(alive)) {
    survivors.push(pid);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  return survivors;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, HOST, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Polls until something accepts TCP connections on the port (bounded). */
async function waitForPort(port, child, ms = 20000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (child && exited(child)) throw new Error(`process exited (${child.exitCode ?? child.signalCode}) before listening on ${port}`);
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, HOST);
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`nothing listening on ${HOST}:${port} after ${ms} ms`);
}

/** stderr (and stdout when asked) of a process go to a file, read only when something fails. */
function logFile(name) {
  const file = path.join(TMP, `${name}.log`);
  return { file, fd: fs.openSync(file, 'w') };
}

function tail(file, lines = 20) {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

// --- the reference server and the peers ----------------------------------------------------------

/** server-everything in `sse` or `streamableHttp` mode (stdout discarded: it logs every request). */
async function startEverything(mode) {
  const port = await freePort();
  const log = logFile(`everything-${mode}`);
  const child = spawn(process.execPath, [EVERYTHING, mode], {
    env: { PATH: process.env.PATH, PORT: String(port) },
    stdio: ['ignore', 'ignore', log.fd],
  });
  fs.closeSync(log.fd);
  track(`everything-${mode}`, child, () => terminate(child, 2000));
  try {
    await waitForPort(port, child);
  } catch (err) {
    throw new Error(`${err.message}\n${tail(log.file)}`);
  }
  return { origin: `http://${HOST}:${port}`, port, child, log: log.file };
}

/** supergateway, stdio → Streamable HTTP, stateful (one child per session, as mcp-front). */
async function startSupergateway() {
  const port = await freePort();
  const log = logFile('supergateway');
  const bin = path.join(ROOT, 'node_modules', 'supergateway', 'dist', 'index.js');
  const child = spawn(
    process.execPath,
    [bin, '--stdio', `${process.execPath} ${EVERYTHING} stdio`, '--outputTransport', 'streamableHttp', '--stateful', '--port', String(port), '--logLevel', 'none'],
    // stdin ignored: supergateway stops when a pipe on its stdin closes (its README).
    { env: { ...process.env }, stdio: ['ignore', log.fd, log.fd], detached: true },
  );
  fs.closeSync(log.fd);
  // It stops its own children on SIGTERM; the group signal catches a child it would miss.
  track('supergateway', child, () => terminate(child, 8000, true));
  try {
    await waitForPort(port, child);
  } catch (err) {
    throw new Error(`${err.message}\n${tail(log.file)}`);
  }
  return { url: `http://${HOST}:${port}/mcp`, child, log: log.file };
}

/** mcp-proxy, Streamable HTTP only (one shared child for every session: its design). */
async function startMcpProxy() {
  const port = await freePort();
  const log = logFile('mcp-proxy');
  const bin = path.join(ROOT, 'node_modules', 'mcp-proxy', 'dist', 'bin', 'mcp-proxy.mjs');
  const child = spawn(process.execPath, [bin, '--port', String(port), '--host', HOST, '--server', 'stream', '--', process.execPath, EVERYTHING, 'stdio'], {
    env: { ...process.env },
    stdio: ['ignore', log.fd, log.fd],
    detached: true,
  });
  fs.closeSync(log.fd);
  track('mcp-proxy', child, () => terminate(child, 8000, true));
  try {
    await waitForPort(port, child);
  } catch (err) {
    throw new Error(`${err.message}\n${tail(log.file)}`);
  }
  return { url: `http://${HOST}:${port}/mcp`, child, log: log.file };
}

/**
 * bench/floor.js, `kind` 'http' or 'express': a fixed SSE answer and no other work (the machine's
 * floor); 'hop' with `upstream` (an origin): a bare proxy hop in Express in front of it.
 */
async function startFloor(kind = 'http', { upstream } = {}) {
  const port = await freePort();
  const log = logFile(`floor-${kind}-${port}`);
  const child = spawn(process.execPath, [path.join(__dirname, 'floor.js')], {
    env: { PATH: process.env.PATH, PORT: String(port), FLOOR: kind, ...(upstream ? { UPSTREAM: upstream } : {}) },
    stdio: ['ignore', log.fd, log.fd],
  });
  fs.closeSync(log.fd);
  track(`floor-${kind}`, child, () => terminate(child, 3000));
  await waitForPort(port, child);
  const origin = `http://${HOST}:${port}`;
  return { origin, url: `${origin}/mcp`, child, log: log.file };
}

/** bench/big-upstream.js: answers every request with one `bytes`-long event (the `bigevent` case). */
async function startBigUpstream(bytes) {
  const port = await freePort();
  const log = logFile('big-upstream');
  const child = spawn(process.execPath, [path.join(__dirname, 'big-upstream.js')], {
    env: { PATH: process.env.PATH, PORT: String(port), BIG_BYTES: String(bytes) },
    stdio: ['ignore', log.fd, log.fd],
  });
  fs.closeSync(log.fd);
  track('big-upstream', child, () => terminate(child, 3000));
  await waitForPort(port, child);
  return { origin: `http://${HOST}:${port}`, child, log: log.file };
}

// --- mcp-front host ------------------------------------------------------------------------------

/**
 * The front's config: the static token `bench`; with `issuer` (startIssuer), OAuth too, whose
 * principal `bench-oauth` is every token of that issuer for `OAUTH_AUDIENCE` with `OAUTH_SCOPE`.
 */
function frontConfig({ httpOrigin, sseOrigin, issuer }) {
  const mcpServers = {
    'everything-stdio': { command: process.execPath, args: [EVERYTHING, 'stdio'], maxSessions: 200 },
  };
  if (httpOrigin) mcpServers['everything-http'] = { url: `${httpOrigin}/mcp` };
  if (sseOrigin) mcpServers['everything-sse'] = { url: `${sseOrigin}/sse` };
  const auth = { kind: 'bearer_token', tokens: { bench: TOKEN } };
  if (issuer === undefined) return { version: '1.0', proxy: { name: 'Bench', auth }, mcpServers };
  auth.oauth = {
    issuer: issuer.issuer,
    // A fixed audience (as Keycloak or Auth0 issue): the resource URLs hold the front's port,
    // which is chosen after the config is written.
    audiences: [OAUTH_AUDIENCE],
    scopes: [OAUTH_SCOPE],
    principals: { 'bench-oauth': { claims: { email: '*@bench.example', email_verified: true } } },
  };
  return { version: '1.0', proxy: { name: 'Bench', publicUrl: `http://${HOST}`, auth }, mcpServers };
}

// --- an OAuth authorization server, as little of one as mcp-front needs ---------------------------

const OAUTH_AUDIENCE = 'mcp-front-bench';
const OAUTH_SCOPE = 'mcp:tools';

/**
 * The part of an authorization server a resource server talks to: OpenID Connect discovery and
 * the key set (RFC 7517), on 127.0.0.1, in this process (it answers a few requests at the front's
 * start, none under load). `mint()` signs an RS256 access token (RFC 9068) valid for two hours,
 * longer than any run, so that the front verifies it once and then serves it from its cache.
 */
async function startIssuer() {
  const jose = await import('jose');
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = `bench-${crypto.randomBytes(4).toString('hex')}`;
  const jwks = JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' }] });
  const server = http.createServer((req, res) => {
    const body =
      req.url === '/.well-known/openid-configuration' ? JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks`, id_token_signing_alg_values_supported: ['RS256'] }) : req.url === '/jwks' ? jwks : undefined;
    res.writeHead(body === undefined ? 404 : 200, { 'content-type': 'application/json' }).end(body ?? '{"error":"not_found"}');
  });
  server.listen(0, HOST);
  await once(server, 'listening');
  const issuer = `http://${HOST}:${server.address().port}`;
  return {
    issuer,
    mint: (claims = {}) =>
      new jose.SignJWT({ scope: OAUTH_SCOPE, email: 'bench@bench.example', email_verified: true, ...claims })
        .setProtectedHeader({ alg: 'RS256', kid, typ: 'at+jwt' })
        .setIssuer(issuer)
        .setAudience(OAUTH_AUDIENCE)
        .setSubject('bench-user')
        .setIssuedAt()
        .setExpirationTime('2h')
        .sign(privateKey),
    stop: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * mcp-front in a host Express app, in its own process (bench/front.js) so that it has its own
 * event loop. `logger`: 'default' (one line per request on stderr, here a file) or 'noop'.
 * `profile`: a directory for `--cpu-prof`.
 */
async function startFront(name, config, { logger = 'default', profile, execArgv: extraArgs = [], dist, env: extraEnv = {} } = {}) {
  const log = logFile(`front-${name}`);
  const execArgv = ['--expose-gc', ...extraArgs];
  if (profile) execArgv.push('--cpu-prof', `--cpu-prof-dir=${profile}`, `--cpu-prof-name=front-${name}.cpuprofile`);
  const child = fork(path.join(__dirname, 'front.js'), [], {
    execArgv,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      BENCH_FRONT_CONFIG: JSON.stringify(config),
      BENCH_FRONT_LOGGER: logger,
      ...extraEnv,
      // A build outside the repository still finds the repository's dependencies.
      ...(dist ? { BENCH_FRONT_DIST: path.resolve(dist), NODE_PATH: path.join(ROOT, 'node_modules') } : {}),
    },
    stdio: ['ignore', log.fd, log.fd, 'ipc'],
  });
  fs.closeSync(log.fd);
  let seq = 0;
  const pending = new Map();
  child.on('message', (msg) => {
    const waiter = pending.get(msg.id);
    if (waiter) {
      pending.delete(msg.id);
      waiter(msg);
    }
  });
  const ask = (type, ms = 30000) =>
    new Promise((resolve, reject) => {
      const id = ++seq;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`front ${name}: no answer to ${type}`));
      }, ms);
      pending.set(id, (msg) => {
        clearTimeout(timer);
        resolve(msg);
      });
      child.send({ type, id });
    });
  const stop = async () => {
    if (exited(child)) return;
    // A graceful close: router.close() stops the stdio children, and --cpu-prof writes on exit.
    try {
      if (child.connected) await ask('close', 15000);
    } catch {
      /* fall through to signals */
    }
    if (!(await exitWithin(child, 5000))) await terminate(child, 3000);
  };
  track(`front-${name}`, child, stop);
  const ready = await Promise.race([
    once(child, 'message').then(([msg]) => msg),
    once(child, 'exit').then(() => {
      throw new Error(`front ${name} exited before listening:\n${tail(log.file)}`);
    }),
  ]);
  const origin = `http://${HOST}:${ready.port}`;
  return {
    name,
    origin,
    url: (server, route) => `${origin}/${server}/${route}`,
    child,
    log: log.file,
    /** process.memoryUsage() after two full GCs, plus PSS from smaps_rollup. */
    memory: () => ask('mem'),
    stop,
  };
}

// --- HTTP and MCP --------------------------------------------------------------------------------

/** A keep-alive agent for the benchmark's own requests (never capped: SSE streams hold sockets). */
const agent = new http.Agent({ keepAlive: true });

/** One request, whole answer buffered. */
function request(url, { method = 'POST', headers = {}, body, timeoutMs = 30000 } = {}) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const req = http.request(url, { method, agent, headers: payload ? { ...headers, 'content-length': payload.length } : headers });
    const timer = setTimeout(() => req.destroy(new Error(`timeout: ${method} ${url}`)), timeoutMs);
    req.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.once('response', (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.once('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
      });
      res.once('error', reject);
    });
    req.end(payload);
  });
}

/** JSON-RPC messages of a Streamable HTTP answer, JSON or SSE-framed. */
function messagesOf(answer) {
  const type = String(answer.headers['content-type'] ?? '');
  if (type.includes('text/event-stream')) {
    const out = [];
    for (const block of answer.body.split(/\r?\n\r?\n/)) {
      const data = block
        .split(/\r?\n/)
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).replace(/^ /, ''))
        .join('\n');
      if (data) out.push(JSON.parse(data));
    }
    return out;
  }
  return answer.body ? [].concat(JSON.parse(answer.body)) : [];
}

const initializeMessage = (id = 0) => ({
  jsonrpc: '2.0',
  id,
  method: 'initialize',
  params: { protocolVersion: PROTOCOL, capabilities: {}, clientInfo: { name: 'mcp-front-bench', version: '1.0.0' } },
});
const initializedMessage = { jsonrpc: '2.0', method: 'notifications/initialized' };
const echoMessage = (id, message = 'bench') => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { message } } });

/** The `Authorization` of a target: `auth` is false (none), true (the static `TOKEN`) or a token to send (an OAuth access token). */
function authorization(auth) {
  return `Bearer ${auth === true ? TOKEN : auth}`;
}

function streamableHeaders(auth, sessionId) {
  const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  if (auth) headers.authorization = authorization(auth);
  if (sessionId) {
    headers['mcp-session-id'] = sessionId;
    headers['mcp-protocol-version'] = PROTOCOL;
  }
  return headers;
}

/** initialize + notifications/initialized over Streamable HTTP; returns the session id. */
async function openStreamableSession(url, auth) {
  const init = await request(url, { headers: streamableHeaders(auth), body: initializeMessage() });
  const sessionId = init.headers['mcp-session-id'];
  const answer = init.status === 200 ? messagesOf(init).find((m) => m.id === 0) : undefined;
  if (!sessionId || !answer?.result) throw new Error(`initialize at ${url} failed: ${init.status} ${init.body.slice(0, 300)}`);
  const note = await request(url, { headers: streamableHeaders(auth, sessionId), body: initializedMessage });
  if (note.status !== 202 && note.status !== 200) throw new Error(`notifications/initialized at ${url}: ${note.status} ${note.body.slice(0, 200)}`);
  return sessionId;
}

/** One echo call, checked: the load is only meaningful when it is answered correctly. */
async function checkEcho(url, auth, sessionId) {
  const answer = await request(url, { headers: streamableHeaders(auth, sessionId), body: echoMessage(1, 'check') });
  const reply = answer.status === 200 ? messagesOf(answer).find((m) => m.id === 1) : undefined;
  const text = reply?.result?.content?.[0]?.text ?? '';
  if (!text.includes('check')) throw new Error(`echo at ${url} failed: ${answer.status} ${answer.body.slice(0, 300)}`);
}

async function deleteSession(url, auth, sessionId) {
  try {
    await request(url, { method: 'DELETE', headers: streamableHeaders(auth, sessionId), timeoutMs: 5000 });
  } catch {
    /* best effort */
  }
}

// --- legacy SSE client --------------------------------------------------------------------------------

/**
 * A legacy HTTP+SSE client connection: GET the stream, wait for `endpoint`, then hand every
 * JSON-RPC message of the stream to `onMessage`. `close()` destroys the stream.
 */
function openSse(url, auth, onMessage) {
  return new Promise((resolve, reject) => {
    const headers = { accept: 'text/event-stream' };
    if (auth) headers.authorization = authorization(auth);
    // No agent: a stream owns its socket for its whole life.
    const req = http.request(url, { method: 'GET', headers, agent: false });
    const timer = setTimeout(() => req.destroy(new Error(`no endpoint event from ${url}`)), 30000);
    let settled = false;
    req.once('error', (err) => {
      clearTimeout(timer);
      if (!settled) reject(err);
    });
    req.once('response', (res) => {
      if (res.statusCode !== 200) {
        clearTimeout(timer);
        settled = true;
        res.resume();
        reject(new Error(`GET ${url}: ${res.statusCode}`));
        return;
      }
      res.setEncoding('utf8');
      let buffer = '';
      const conn = {
        endpoint: undefined,
        closed: false,
        close() {
          conn.closed = true;
          req.destroy();
        },
      };
      res.on('close', () => {
        conn.closed = true;
      });
      res.on('error', () => undefined);
      res.on('data', (chunk) => {
        buffer += chunk;
        let end;
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let event = 'message';
          let data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data += (data ? '\n' : '') + line.slice(5).replace(/^ /, '');
          }
          if (event === 'endpoint') {
            conn.endpoint = new URL(data, url).href;
            clearTimeout(timer);
            settled = true;
            resolve(conn);
          } else if (event === 'message' && data) {
            onMessage(JSON.parse(data));
          }
        }
      });
    });
    req.end();
  });
}

/** POST a message to a legacy session's endpoint; resolves with the status (202 expected). */
function postMessage(endpoint, auth, message) {
  return new Promise((resolve, reject) => {
    const payload = Buffer.from(JSON.stringify(message));
    const headers = { 'content-type': 'application/json', 'content-length': payload.length };
    if (auth) headers.authorization = authorization(auth);
    const req = http.request(endpoint, { method: 'POST', agent, headers });
    req.once('error', reject);
    req.once('response', (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode));
      res.once('error', reject);
    });
    req.end(payload);
  });
}

// --- statistics ------------------------------------------------------------------------------------

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

function summarize(latencies) {
  const sorted = Float64Array.from(latencies).sort();
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), count: sorted.length };
}

function median(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** RSS and PSS (kB) of a pid, from /proc. PSS shares the node binary's pages fairly between processes. */
function procMemory(pid) {
  const out = { rssKb: NaN, pssKb: NaN };
  try {
    const text = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    out.rssKb = Number(/^Rss:\s+(\d+)/m.exec(text)?.[1]);
    out.pssKb = Number(/^Pss:\s+(\d+)/m.exec(text)?.[1]);
  } catch {
    /* gone */
  }
  return out;
}

module.exports = {
  ROOT,
  EVERYTHING,
  PROTOCOL,
  HOST,
  TOKEN,
  TMP,
  agent,
  checkEcho,
  deleteSession,
  descendants,
  echoMessage,
  exited,
  exitWithin,
  freePort,
  frontConfig,
  OTHER_TOKEN,
  initializeMessage,
  initializedMessage,
  median,
  messagesOf,
  openSse,
  openStreamableSession,
  postMessage,
  procMemory,
  randomToken,
  request,
  sleep,
  startEverything,
  startBigUpstream,
  startFloor,
  startFront,
  startIssuer,
  startMcpProxy,
  startSupergateway,
  started,
  stopAll,
  streamableHeaders,
  summarize,
  tail,
  terminate,
  track,
};
