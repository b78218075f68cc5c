'use strict';
// `npm start`: mcp-front in front of the MCP reference server (server-everything, over stdio) on
// 127.0.0.1, with a fresh random token, printing everything needed to try it.
const crypto = require('node:crypto');
const http = require('node:http');
const path = require('node:path');
const express = require('express');
const { mcpFront } = require('../../dist');

// server-everything's bin is an ES module; its package.json is requirable and sits next to dist/.
const EVERYTHING = path.join(
  path.dirname(require.resolve('@modelcontextprotocol/server-everything/package.json')),
  'dist',
  'index.js',
);
const HOST = '127.0.0.1';
const PORT = Number(process.env.PORT || 8080);

const token = crypto.randomBytes(32).toString('base64url');

const config = {
  version: '1.0',
  proxy: {
    name: 'mcp-front demo',
    auth: { kind: 'bearer_token', tokens: { demo: { $env: 'MCP_FRONT_DEMO_TOKEN' } } },
  },
  mcpServers: {
    // process.execPath rather than "node": the same Node that runs the demo, whatever PATH says.
    everything: { command: process.execPath, args: [EVERYTHING, 'stdio'] },
  },
};

// The token reaches the config through `$env`, from this object rather than process.env, so the
// spawned server never sees it (it gets a minimal environment anyway).
const router = mcpFront(config, { env: { MCP_FRONT_DEMO_TOKEN: token } });
const app = express();
app.use(router);
const server = http.createServer(app);

function listen(port) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, HOST, () => {
      server.off('error', reject);
      resolve(server.address().port);
    });
  });
}

function banner(port) {
  const base = `http://${HOST}:${port}`;
  const initialize = JSON.stringify({
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'curl', version: '1.0.0' } },
  });
  return [
    '',
    'mcp-front demo: server-everything (stdio) behind a bearer token',
    '',
    `  Streamable HTTP  ${base}/everything/mcp`,
    `  SSE              ${base}/everything/sse`,
    `  Health           ${base}/health`,
    `  Token            ${token}`,
    '',
    'Try it:',
    '',
    `  curl -i ${base}/everything/mcp \\`,
    `    -H 'Authorization: Bearer ${token}' \\`,
    `    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \\`,
    `    -d '${initialize}'`,
    '',
    '  (without the Authorization header: 401)',
    '',
    '  npx @modelcontextprotocol/inspector --cli ' +
      `${base}/everything/mcp --transport http --header 'Authorization: Bearer ${token}' --method tools/list`,
    '',
    '  (or run `npx @modelcontextprotocol/inspector` for its web UI: transport "Streamable HTTP",',
    `   URL ${base}/everything/mcp, header Authorization = Bearer <token>; the Inspector needs Node 22)`,
    '',
    'Ctrl-C stops the demo.',
    '',
  ].join('\n');
}

async function main() {
  let port;
  try {
    port = await listen(PORT);
  } catch (err) {
    if (err.code !== 'EADDRINUSE') throw err;
    process.stderr.write(`port ${PORT} is taken; using a free one\n`);
    port = await listen(0);
  }
  process.stdout.write(banner(port) + '\n');
}

let stopping = false;
async function shutdown() {
  if (stopping) process.exit(1); // a second Ctrl-C: now
  stopping = true;
  const force = setTimeout(() => process.exit(1), 10_000);
  server.close();
  await router.close(); // ends sessions, stops the server-everything processes
  server.closeAllConnections();
  clearTimeout(force);
  process.exit(0);
}
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);

main().catch((err) => {
  process.stderr.write(`demo failed: ${err.message}\n`);
  process.exit(1);
});
