'use strict';
// One big SSE event relayed (the `bigevent` case of bench/run.js, and `node bench/compare.js
// bigevent`): clients that ask bench/big-upstream.js for its big answer through a proxy, and the
// CPU the proxy process burns for one.
const { performance } = require('node:perf_hooks');
const L = require('./lib');
const D = require('./drivers');
const { textBytesFor } = require('./big-upstream');

/**
 * Target builders for events of `bytes` (the upstream's BIG_BYTES). A target: { path, label, pid,
 * open(), call(check), close() }; `call(true)` also checks the relayed event (the answer to its
 * request's id, every byte of text).
 */
function targets(bytes) {
  const minBytes = Math.floor(bytes * 0.9);
  let nextId = 1000;
  const checker = (id) => (text) => D.checkBigEvent(text, id, textBytesFor(bytes));
  return {
    /** Legacy HTTP+SSE: the event comes on the GET stream, after a POST to the endpoint. */
    sse: (path, label, url, auth, pid) => ({
      path,
      label,
      pid,
      async open() {
        this.client = await D.bigEventSseClient(url, auth);
      },
      call(check) {
        const id = nextId++;
        return this.client.call(id, minBytes, check && checker(id));
      },
      close() {
        this.client?.close();
      },
    }),
    /** Streamable HTTP: the event is the POST's `text/event-stream` answer, in a session. */
    streamable: (path, label, url, auth, pid) => ({
      path,
      label,
      pid,
      async open() {
        this.sessionId = await L.openStreamableSession(url, auth);
      },
      call(check) {
        const id = nextId++;
        return D.bigEventStreamable({ url, auth, sessionId: this.sessionId, id, minBytes, check: check && checker(id) });
      },
      async close() {
        if (this.sessionId) await L.deleteSession(url, auth, this.sessionId);
      },
    }),
  };
}

/**
 * One event through `t`: the CPU of every thread of the proxy process (D.cpuNs) from just before
 * the request until the client has read the whole event plus `settleMs` for deferred work (a GC of
 * the event's buffers), minus the process's idle CPU over the same time (measured over `settleMs`
 * just before). Returns { cpuMs, readMs, idleMsPerS, eventBytes }.
 */
async function measure(t, settleMs = 100) {
  await L.sleep(settleMs);
  const i0 = D.cpuNs(t.pid);
  await L.sleep(settleMs);
  const idleNsPerMs = (D.cpuNs(t.pid) - i0) / settleMs;
  const c0 = D.cpuNs(t.pid);
  const t0 = performance.now();
  const got = await t.call(false);
  const readMs = performance.now() - t0;
  await L.sleep(settleMs);
  const wall = performance.now() - t0;
  const cpuMs = Math.max(0, D.cpuNs(t.pid) - c0 - idleNsPerMs * wall) / 1e6;
  return { cpuMs, readMs, idleMsPerS: idleNsPerMs / 1000, eventBytes: got.eventBytes };
}

module.exports = { targets, measure };
