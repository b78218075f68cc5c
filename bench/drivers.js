'use strict';
// Load drivers. Each runs for a fixed duration against 127.0.0.1 and returns
// { requests, errors, seconds, rps, p50, p99 } with latencies in milliseconds (sub-millisecond
// resolution: autocannon's own histogram rounds to whole milliseconds, so its per-response times
// are collected here instead).
const fs = require('node:fs');
const http = require('node:http');
const { spawn } = require('node:child_process');
const { performance } = require('node:perf_hooks');
const autocannon = require('autocannon');
const {
  EVERYTHING,
  TOKEN,
  agent,
  descendants,
  echoMessage,
  exitWithin,
  initializeMessage,
  initializedMessage,
  openSse,
  postMessage,
  sleep,
  streamableHeaders,
  summarize,
  terminate,
  track,
} = require('./lib');

/**
 * CPU time (ms) used so far, { user, sys }, by a pid or summed over a list of pids, from
 * /proc/<pid>/stat (utime, stime: clock ticks, 100 per second on Linux).
 */
function cpuMs(pid) {
  if (Array.isArray(pid)) {
    return pid.map(cpuMs).reduce((a, b) => ({ user: a.user + (b.user || 0), sys: a.sys + (b.sys || 0) }), { user: 0, sys: 0 });
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(fields[11]) * 10, sys: Number(fields[12]) * 10 };
  } catch {
    return { user: NaN, sys: NaN };
  }
}

/** Busy CPU time of the whole machine (ms, all cores), from the `cpu` line of /proc/stat. */
function machineBusyMs() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: everything but idle and iowait.
  return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) * 10;
}

/**
 * CPU time (ms) of this process, every descendant alive now, and the children it has reaped
 * (cutime + cstime: a raw stdio child that starts and ends within a run).
 */
function ourTreeMs() {
  const c = cpuMs([process.pid, ...descendants([process.pid])]);
  let reaped = 0;
  try {
    const stat = fs.readFileSync(`/proc/${process.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    reaped = (Number(fields[13]) + Number(fields[14])) * 10;
  } catch {
    /* keep 0 */
  }
  return c.user + c.sys + reaped;
}

/**
 * Runs `fn` and measures the CPU the `watch` processes (name → pid or pids) spent meanwhile:
 * result.cpuMs[name] = { user, sys } in milliseconds.
 */
async function withCpu(watch, fn) {
  const before = Object.fromEntries(Object.entries(watch).map(([k, pid]) => [k, cpuMs(pid)]));
  const machine0 = machineBusyMs();
  const ours0 = ourTreeMs();
  const t0 = performance.now();
  const result = await fn();
  // CPU that processes outside this benchmark took meanwhile (other work on a shared machine).
  const elapsed = performance.now() - t0;
  result.otherCores = (machineBusyMs() - machine0 - (ourTreeMs() - ours0)) / elapsed;
  result.cpuMs = {
    ...result.cpuMs,
    ...Object.fromEntries(
      Object.entries(watch).map(([k, pid]) => {
        const now = cpuMs(pid);
        return [k, { user: now.user - before[k].user, sys: now.sys - before[k].sys }];
      }),
    ),
  };
  return result;
}

/**
 * Streamable HTTP `tools/call echo` with autocannon: connection i uses session i (sessions were
 * initialized beforehand), one request in flight per connection. Every request has an id of its
 * own (autocannon's `[<id>]`, 27 characters): an id may not be reused within a session while its
 * request waits (MCP Base Protocol), and the requests autocannon abandons at the end of a run stay
 * waiting — with one fixed id, every later request of the session would be refused by mcp-front
 * itself, never reaching the server.
 */
async function streamableLoad({ url, auth, sessions, duration, message = echoMessage(2) }) {
  const latencies = [];
  let next = 0;
  const body = JSON.stringify({ ...message, id: '[<id>]' });
  const instance = autocannon({
    url,
    method: 'POST',
    connections: sessions.length,
    pipelining: 1,
    duration,
    body,
    idReplacement: true,
    headers: streamableHeaders(auth, sessions[0]),
    setupClient(client) {
      client.setHeaders(streamableHeaders(auth, sessions[next++ % sessions.length]));
    },
  });
  instance.on('response', (_client, status, _bytes, ms) => {
    if (status >= 200 && status < 300) latencies.push(ms);
  });
  const result = await instance;
  const seconds = result.duration;
  const { p50, p99 } = summarize(latencies);
  const errors = result.errors + result.timeouts + result.non2xx;
  return { requests: result['2xx'], errors, seconds, rps: result['2xx'] / seconds, p50, p99 };
}

/**
 * Legacy HTTP+SSE: `connections` streams, each initialized, then a closed loop per stream: POST
 * `tools/call echo` to the message endpoint (answered 202), wait for the response event on the
 * stream; latency is POST start → response event. autocannon cannot see the stream, hence this.
 */
async function sseLoad({ url, auth, connections, duration }) {
  const conns = [];
  try {
    for (let i = 0; i < connections; i++) {
      const waiters = new Map();
      const conn = await openSse(url, auth, (msg) => {
        const waiter = waiters.get(msg.id);
        if (waiter) {
          waiters.delete(msg.id);
          waiter(msg);
        }
      });
      conn.waiters = waiters;
      conns.push(conn);
      const init = answerOf(conn, 0, 10000);
      const status = await postMessage(conn.endpoint, auth, initializeMessage(0));
      if (status !== 202 || !(await init.promise)?.msg.result) throw new Error(`legacy initialize via ${url} failed (${status})`);
      await postMessage(conn.endpoint, auth, initializedMessage);
    }

    const latencies = [];
    let requests = 0;
    let errors = 0;
    let stop = false;
    let nextId = 1000;
    const loop = async (conn) => {
      while (!stop && !conn.closed) {
        const id = nextId++;
        const start = performance.now();
        const answer = answerOf(conn, id, 10000);
        let status;
        try {
          status = await postMessage(conn.endpoint, auth, echoMessage(id));
        } catch {
          status = 0;
        }
        if (status !== 202) {
          answer.cancel();
          errors++;
          await sleep(10);
          continue;
        }
        const got = await answer.promise;
        if (!got || !got.msg.result) {
          errors++;
          continue;
        }
        latencies.push(got.at - start);
        requests++;
      }
    };
    const t0 = performance.now();
    const timer = setTimeout(() => {
      stop = true;
    }, duration * 1000);
    await Promise.all(conns.map(loop));
    clearTimeout(timer);
    const seconds = (performance.now() - t0) / 1000;
    const { p50, p99 } = summarize(latencies);
    return { requests, errors, seconds, rps: requests / seconds, p50, p99 };
  } finally {
    for (const conn of conns) conn.close();
  }
}

/** A response with this id on this stream: resolves { msg, at } or null after `ms`. */
function answerOf(conn, id, ms) {
  let timer;
  const promise = new Promise((resolve) => {
    timer = setTimeout(() => {
      conn.waiters.delete(id);
      resolve(null);
    }, ms);
    conn.waiters.set(id, (msg) => {
      clearTimeout(timer);
      resolve({ msg, at: performance.now() });
    });
  });
  return {
    promise,
    cancel() {
      clearTimeout(timer);
      conn.waiters.delete(id);
    },
  };
}

/** A stdio child driven directly: newline-delimited JSON-RPC on its stdin/stdout. */
function spawnRawChild() {
  const child = spawn(process.execPath, [EVERYTHING, 'stdio'], { env: { PATH: process.env.PATH }, stdio: ['pipe', 'pipe', 'pipe'] });
  const entry = track('raw-stdio', child, () => stopRawChild(child));
  child.stderr.resume();
  child.stdin.on('error', () => undefined);
  const handlers = new Map();
  let buffer = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk) => {
    buffer += chunk;
    let nl;
    while ((nl = buffer.indexOf('\n')) !== -1) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (!line.startsWith('{')) continue;
      const msg = JSON.parse(line);
      const handler = handlers.get(msg.id);
      if (handler) {
        handlers.delete(msg.id);
        handler(msg);
      }
    }
  });
  const call = (message) =>
    new Promise((resolve) => {
      handlers.set(message.id, resolve);
      child.stdin.write(JSON.stringify(message) + '\n');
    });
  return { child, entry, handlers, call, notify: (message) => child.stdin.write(JSON.stringify(message) + '\n') };
}

async function stopRawChild(child) {
  child.stdin.end();
  if (await exitWithin(child, 3000)) return;
  await terminate(child, 2000);
}

/**
 * The limit: the child's own stdio speed. One child, `window` echo requests in flight
 * (pipelined), each answer triggering the next.
 */
async function rawStdioLoad({ duration, window }) {
  const raw = spawnRawChild();
  try {
    const init = await raw.call(initializeMessage(0));
    if (!init.result) throw new Error('raw stdio initialize failed');
    raw.notify(initializedMessage);
    const latencies = [];
    let requests = 0;
    let errors = 0;
    let nextId = 1000;
    let stop = false;
    let inFlight = 0;
    let resolveDone;
    const done = new Promise((resolve) => {
      resolveDone = resolve;
    });
    const send = () => {
      const id = nextId++;
      const start = performance.now();
      inFlight++;
      raw.handlers.set(id, (msg) => {
        inFlight--;
        if (msg.result) {
          latencies.push(performance.now() - start);
          requests++;
        } else errors++;
        if (!stop) send();
        else if (inFlight === 0) resolveDone();
      });
      raw.child.stdin.write(JSON.stringify(echoMessage(id)) + '\n');
    };
    const t0 = performance.now();
    const cpu0 = cpuMs(raw.child.pid);
    for (let i = 0; i < window; i++) send();
    await sleep(duration * 1000);
    stop = true;
    await Promise.race([done, sleep(5000)]);
    const seconds = (performance.now() - t0) / 1000;
    const cpu1 = cpuMs(raw.child.pid);
    const { p50, p99 } = summarize(latencies);
    const children = { user: cpu1.user - cpu0.user, sys: cpu1.sys - cpu0.sys };
    return { requests, errors, seconds, rps: requests / seconds, p50, p99, cpuMs: { children } };
  } finally {
    await stopRawChild(raw.child);
  }
}

/** Spawn + initialize over raw stdio: the child's own start-up (ms). */
async function rawStartup() {
  const t0 = performance.now();
  const raw = spawnRawChild();
  try {
    const init = await raw.call(initializeMessage(0));
    if (!init.result) throw new Error('raw stdio initialize failed');
    return performance.now() - t0;
  } finally {
    await stopRawChild(raw.child);
  }
}

// --- one big event (the `bigevent` case) -------------------------------------------------------

/**
 * CPU time (ns, user + kernel) of every thread of a process so far, from
 * /proc/<pid>/task/<tid>/schedstat (time on CPU, nanoseconds): /proc/<pid>/stat counts 10 ms
 * ticks, too coarse for one event. The GC helper threads are counted; threads are long-lived in
 * Node, so none is lost between two samples.
 */
function cpuNs(pid) {
  let total = 0;
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      /* a thread that just ended */
    }
  }
  return total;
}

/**
 * Splits an SSE byte stream into events ("\n\n"-terminated, as the proxies here write them)
 * without decoding it: `onEvent({ size, text })`, `text` only when the event is at most
 * `keepLimit` bytes or `keepAll` is set (the big event is then kept whole, for one check).
 */
function eventSplitter(onEvent, keepLimit = 65536) {
  let parts = [];
  let size = 0;
  let prevNl = false;
  const keeps = () => splitter.keepAll || size <= keepLimit;
  const splitter = (chunk) => {
    let start = 0;
    for (;;) {
      let end;
      if (start === 0 && prevNl && size > 0 && chunk.length > 0 && chunk[0] === 0x0a) end = 1;
      else {
        const i = chunk.indexOf('\n\n', start);
        if (i === -1) break;
        end = i + 2;
      }
      const piece = chunk.subarray(start, end);
      size += piece.length;
      if (keeps()) parts.push(piece);
      const text = keeps() ? Buffer.concat(parts).toString('utf8') : undefined;
      const done = size;
      parts = [];
      size = 0;
      start = end;
      onEvent({ size: done, text });
    }
    const rest = chunk.subarray(start);
    if (rest.length > 0) {
      size += rest.length;
      if (keeps()) parts.push(rest);
      else parts = [];
    }
    prevNl = chunk.length > 0 && chunk[chunk.length - 1] === 0x0a;
  };
  splitter.keepAll = false;
  return splitter;
}

/** `event:` and the JSON of `data:` of one SSE event's text. */
function parseEvent(text) {
  let event = 'message';
  const data = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('event:')) event = line.slice(6).trim();
    else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
  }
  return { event, data: data.join('\n') };
}

/** Checks that a relayed big event is the JSON-RPC response to `id` with `textBytes` of text. */
function checkBigEvent(text, id, textBytes) {
  const { event, data } = parseEvent(text);
  const msg = event === 'message' ? JSON.parse(data) : undefined;
  const got = msg?.result?.content?.[0]?.text?.length;
  if (msg?.id !== id || got !== textBytes) throw new Error(`big event: expected the answer to ${id} with ${textBytes} bytes of text, got id ${msg?.id}, ${got} bytes`);
}

/**
 * Streamable HTTP: one POST `tools/call`, answered by one SSE event of at least `minBytes`.
 * Resolves once the whole response is read: { bytes, eventBytes }.
 */
function bigEventStreamable({ url, auth, sessionId, id, minBytes, check }) {
  return new Promise((resolve, reject) => {
    const payload = Buffer.from(JSON.stringify(echoMessage(id)));
    const req = http.request(url, { method: 'POST', agent, headers: { ...streamableHeaders(auth, sessionId), 'content-length': payload.length } });
    req.setTimeout(60000, () => req.destroy(new Error(`timeout: big event at ${url}`)));
    req.once('error', reject);
    req.once('response', (res) => {
      let bytes = 0;
      let big;
      const split = eventSplitter((e) => {
        if (e.size >= minBytes) big = e;
      });
      split.keepAll = Boolean(check);
      res.on('data', (chunk) => {
        bytes += chunk.length;
        split(chunk);
      });
      res.once('error', reject);
      res.once('end', () => {
        if (res.statusCode !== 200 || !big) return reject(new Error(`big event at ${url}: status ${res.statusCode}, ${bytes} bytes, no event ≥ ${minBytes} bytes`));
        try {
          if (check) check(big.text);
        } catch (err) {
          return reject(err);
        }
        resolve({ bytes, eventBytes: big.size });
      });
    });
    req.end(payload);
  });
}

/**
 * Legacy HTTP+SSE: a stream, initialized, on which `call(id, minBytes, check)` POSTs a
 * `tools/call` and resolves once an event of at least `minBytes` has arrived whole.
 */
async function bigEventSseClient(url, auth) {
  const waiters = [];
  let endpoint;
  let endpointReady;
  const ready = new Promise((resolve, reject) => {
    endpointReady = { resolve, reject };
  });
  const split = eventSplitter((e) => {
    if (e.text !== undefined && endpoint === undefined) {
      const { event, data } = parseEvent(e.text);
      if (event === 'endpoint') {
        endpoint = new URL(data, url).href;
        endpointReady.resolve();
        return;
      }
    }
    const w = waiters[0];
    if (w && w.accepts(e)) {
      waiters.shift();
      w.resolve(e);
    }
  });
  const headers = { accept: 'text/event-stream' };
  if (auth) headers.authorization = `Bearer ${TOKEN}`;
  const req = http.request(url, { method: 'GET', headers, agent: false });
  req.once('error', (err) => endpointReady.reject(err));
  req.once('response', (res) => {
    if (res.statusCode !== 200) {
      res.resume();
      endpointReady.reject(new Error(`GET ${url}: ${res.statusCode}`));
      return;
    }
    res.on('data', split);
    res.on('error', () => undefined);
  });
  req.end();
  await ready;
  const next = (accepts, what) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${what} on ${url}`)), 60000);
      waiters.push({
        accepts,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e);
        },
      });
    });
  // The answer to `initialize`: a message event (not a keep-alive comment).
  const initialized = next((e) => e.text !== undefined && /^data:/m.test(e.text), 'initialize answer');
  if ((await postMessage(endpoint, auth, initializeMessage(0))) !== 202) throw new Error(`legacy initialize via ${url} failed`);
  if (!JSON.parse(parseEvent((await initialized).text).data).result) throw new Error(`legacy initialize via ${url}: no result`);
  await postMessage(endpoint, auth, initializedMessage);
  return {
    async call(id, minBytes, check) {
      split.keepAll = Boolean(check);
      const got = next((e) => e.size >= minBytes, `event ≥ ${minBytes} bytes`);
      const status = await postMessage(endpoint, auth, echoMessage(id));
      if (status !== 202) throw new Error(`POST ${endpoint}: ${status}`);
      const e = await got;
      if (check) check(e.text);
      return { eventBytes: e.size };
    },
    close() {
      req.destroy();
    },
  };
}

module.exports = { cpuMs, cpuNs, checkBigEvent, bigEventStreamable, bigEventSseClient, withCpu, streamableLoad, sseLoad, rawStdioLoad, rawStartup };
