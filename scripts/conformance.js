#!/usr/bin/env node
'use strict';
// TEST-ONLY HARNESS — never deploy this. It runs mcp-front in front of one Streamable HTTP
// upstream for the official MCP conformance runner, which cannot send an Authorization header:
// a tiny middleware in front of the router adds `Authorization: Bearer <token>` to requests that
// come from the loopback interface and carry none. Everything after that middleware is the real
// router, mounted the way a user mounts it (CONTRACT §2), so the verdicts measure mcp-front.
//
// Because of that middleware, anything on this machine reaches the upstream unauthenticated: the
// harness listens on 127.0.0.1 only, with a random token that is never printed.
//
//   node scripts/conformance.js --upstream http://127.0.0.1:3001/mcp [--port 0] [--name everything]
//
// Prints `mcp-front conformance harness listening on port N (POST http://127.0.0.1:N/<name>/mcp)`
// on stderr when ready; SIGTERM/SIGINT close the router and exit 0.
// MCP_FRONT_DIST: the compiled mcp-front to load (default: this checkout's dist/).
const crypto = require('node:crypto');
const http = require('node:http');
const path = require('node:path');
const express = require('express');
const { mcpFront } = require(process.env.MCP_FRONT_DIST || path.join(__dirname, '..', 'dist'));

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : process.argv[i + 1];
}

const upstream = arg('upstream');
if (!upstream) {
  process.stderr.write('usage: node scripts/conformance.js --upstream <streamable-http-url> [--port N] [--name NAME]\n');
  process.exit(2);
}
const port = Number(arg('port', '0'));
const name = arg('name', 'everything');
const token = crypto.randomBytes(32).toString('base64url');

const router = mcpFront(
  {
    version: '1.0',
    proxy: { name: 'conformance', auth: { kind: 'bearer_token', tokens: { conformance: token } } },
    mcpServers: { [name]: { url: upstream, transportType: 'streamable-http' } },
  },
  // Quiet: one "auth successful" line per request would drown the runner's output.
  { logger: { info() {}, debug() {}, warn: (m, f) => console.error('WARN', m, f), error: (m, f) => console.error('ERROR', m, f) } },
);

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

const app = express();
app.use(function injectTestToken(req, _res, next) {
  if (req.headers.authorization === undefined && LOOPBACK.has(req.socket.remoteAddress)) {
    req.headers.authorization = `Bearer ${token}`;
  }
  next();
});
app.use(router);

const server = http.createServer(app);
server.listen(port, '127.0.0.1', () => {
  const actual = server.address().port;
  process.stderr.write(`mcp-front conformance harness listening on port ${actual} (POST http://127.0.0.1:${actual}/${name}/mcp)\n`);
});

let closing = false;
async function shutdown() {
  if (closing) return;
  closing = true;
  try {
    await router.close();
  } finally {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  }
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
