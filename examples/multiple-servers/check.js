'use strict';
// Starts mcp-front on config.json (port 0) with three fresh tokens and tries every token on every
// server: prints the permission matrix and exits 0 when it is the one the config describes.
// Token values are never printed.
const crypto = require('node:crypto');
const http = require('node:http');
const path = require('node:path');
const express = require('express');
const { mcpFront, loadConfig } = require('mcp-front');

const EXPECTED = {
  'db-read': { admin: 200, readonly: 200, files: 200 },
  'db-write': { admin: 200, readonly: 403, files: 403 },
  files: { admin: 200, readonly: 403, files: 200 },
};

const tokens = {
  admin: crypto.randomBytes(32).toString('base64url'),
  readonly: crypto.randomBytes(32).toString('base64url'),
  files: crypto.randomBytes(32).toString('base64url'),
};
const env = { ADMIN_TOKEN: tokens.admin, READONLY_TOKEN: tokens.readonly, FILES_TOKEN: tokens.files };

/** POSTs an initialize as `token` to `server`; ends the session it opened, if any. */
async function tryServer(base, server, token) {
  const url = `${base}/${server}/mcp`;
  const res = await fetch(url, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'check.js', version: '1.0.0' } },
    }),
  });
  await res.text();
  const session = res.headers.get('mcp-session-id');
  if (session) {
    await fetch(url, { method: 'DELETE', headers: { Authorization: `Bearer ${token}`, 'Mcp-Session-Id': session } }).then((r) => r.text());
  }
  return res.status;
}

async function main() {
  // Logs (auth successful / auth failed …) go to stderr; pass `{ env, logger }` to route them elsewhere.
  const router = mcpFront(loadConfig(path.join(__dirname, 'config.json'), env), { env });
  const server = http.createServer(express().use(router));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}`;

  let wrong = 0;
  const names = Object.keys(tokens);
  console.log(`server      ${names.map((n) => n.padEnd(9)).join('')}`);
  try {
    for (const [serverName, row] of Object.entries(EXPECTED)) {
      const cells = [];
      for (const name of names) {
        const status = await tryServer(base, serverName, tokens[name]);
        if (status !== row[name]) wrong++;
        cells.push(`${status}${status === row[name] ? '' : '!'}`.padEnd(9));
      }
      console.log(`${serverName.padEnd(12)}${cells.join('')}`);
    }
  } finally {
    await router.close();
    server.closeAllConnections();
    server.close();
  }
  if (wrong > 0) {
    console.log(`${wrong} answer(s) marked ! differ from the configured permissions`);
    process.exitCode = 1;
  } else {
    console.log('every token reaches exactly the servers its authTokens allow');
  }
}

main().catch((err) => {
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
});
