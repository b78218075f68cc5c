'use strict';
// The floors of this machine for any Node.js HTTP front end. PORT from the environment.
//
// FLOOR=http / FLOOR=express: a server that reads the request body and answers one fixed
// SSE-framed `echo` result in a single write, doing no other work (no auth, parsing or child
// process) — as bare node:http, and as an Express 5 middleware (`app.use(fn)`), the cost every
// Express-hosted middleware pays before its own code runs. What mcp-front and the peers reach on
// the same cores, with the same load generator, is bounded by these.
//
// FLOOR=hop (UPSTREAM=http://127.0.0.1:<port>): the floor of a proxy hop hosted in Express 5 — an
// Express middleware that sends every request on to UPSTREAM with `node:http` through a
// keep-alive agent (no socket cap, like mcp-front's), piping the body both ways: no auth, no
// parsing, no session bookkeeping, paths and query strings kept (so the legacy SSE `endpoint`
// event's relative path comes back through the hop). Hop-by-hop headers (RFC 9110 §7.6.1) are not
// forwarded; `Host` names the upstream. Event streams get Nagle off, and a GET stream its headers
// at once (it may stay silent); a POST's SSE answer takes its headers along with its first event.
const http = require('node:http');

const frame = Buffer.from(
  'event: message\ndata: ' +
    JSON.stringify({ jsonrpc: '2.0', id: 2, result: { content: [{ type: 'text', text: 'Echo: bench' }] } }) +
    '\n\n',
);

function answer(req, res) {
  req.resume();
  req.once('end', () => {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', 'Content-Length': frame.length });
    res.end(frame);
  });
}

function hopHandler(upstream) {
  const target = new URL(upstream);
  const agent = new http.Agent({ keepAlive: true });
  const hostname = target.hostname;
  const port = Number(target.port) || 80;
  const host = target.host;
  return function hop(req, res) {
    const headers = { ...req.headers, host };
    delete headers.connection;
    delete headers['keep-alive'];
    const up = http.request({ hostname, port, method: req.method, path: req.url, headers, agent });
    up.on('response', (upRes) => {
      const out = { ...upRes.headers };
      delete out.connection;
      delete out['keep-alive'];
      delete out['transfer-encoding'];
      res.writeHead(upRes.statusCode, upRes.statusMessage, out);
      if (String(out['content-type']).startsWith('text/event-stream')) {
        res.socket?.setNoDelay(true);
        if (req.method === 'GET') res.flushHeaders();
      }
      upRes.pipe(res);
    });
    up.on('error', () => {
      if (!res.headersSent) {
        res.writeHead(502, { 'Content-Type': 'text/plain' });
        res.end('bad gateway');
      } else res.destroy();
    });
    // A client that goes away (an SSE stream closed) ends the upstream request too.
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    req.pipe(up);
  };
}

let handler = answer;
if (process.env.FLOOR === 'hop') handler = hopHandler(process.env.UPSTREAM);
if (process.env.FLOOR === 'express' || process.env.FLOOR === 'hop') {
  const express = require('express');
  const app = express();
  const inner = handler;
  app.use(function floor(req, res) {
    inner(req, res);
  });
  handler = app;
}
const server = http.createServer(handler);
server.listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
