'use strict';
// Starts mcp-front on config.json (port 0) with two fresh tokens and shows what each sees of the
// `database` server: its tools/list and the answer to each tool. Exits 0 when `db-read` may only
// `query` and `admin` may use everything. Token values are never printed. Run from the repository root.
const crypto = require('node:crypto');
const http = require('node:http');
const path = require('node:path');
const express = require('express');
const { mcpFront, loadConfig } = require('mcp-front');

const tokens = { admin: crypto.randomBytes(32).toString('base64url'), 'db-read': crypto.randomBytes(32).toString('base64url') };
const env = { ADMIN_TOKEN: tokens.admin, READONLY_TOKEN: tokens['db-read'] };
const EXPECTED = {
  admin: { list: 'query,list_tables,drop_table', query: 'ok', drop_table: 'ok' },
  'db-read': { list: 'query', query: 'ok', drop_table: 'Unknown tool: drop_table' },
};

/** One Streamable HTTP session as `token`: initialize, then each of `messages`, then DELETE. */
async function session(base, token, messages) {
  const url = `${base}/database/mcp`;
  const headers = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' };
  const post = async (body, sessionId) => {
    const res = await fetch(url, { method: 'POST', headers: { ...headers, ...(sessionId ? { 'Mcp-Session-Id': sessionId, 'MCP-Protocol-Version': '2025-06-18' } : {}) }, body: JSON.stringify(body) });
    const text = await res.text();
    const data = res.headers.get('content-type')?.startsWith('text/event-stream') ? text.split('\n').find((l) => l.startsWith('data: '))?.slice(6) : text;
    return { res, answer: data ? JSON.parse(data) : undefined };
  };
  const init = await post({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'check.js', version: '1.0.0' } } });
  const sessionId = init.res.headers.get('mcp-session-id');
  await post({ jsonrpc: '2.0', method: 'notifications/initialized' }, sessionId);
  const answers = [];
  for (const [i, m] of messages.entries()) answers.push((await post({ jsonrpc: '2.0', id: i + 1, ...m }, sessionId)).answer);
  await fetch(url, { method: 'DELETE', headers: { ...headers, 'Mcp-Session-Id': sessionId } }).then((r) => r.text());
  return answers;
}

async function main() {
  const router = mcpFront(loadConfig(path.join(__dirname, 'config.json'), env), { env });
  const server = http.createServer(express().use(router));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  let wrong = 0;
  try {
    for (const [name, want] of Object.entries(EXPECTED)) {
      const [list, query, drop] = await session(base, tokens[name], [
        { method: 'tools/list' },
        { method: 'tools/call', params: { name: 'query', arguments: { sql: 'select 1' } } },
        { method: 'tools/call', params: { name: 'drop_table', arguments: { table: 'users' } } },
      ]);
      const got = {
        list: list.result.tools.map((t) => t.name).join(','),
        query: query.result ? 'ok' : query.error.message,
        drop_table: drop.result ? 'ok' : drop.error.message,
      };
      for (const key of Object.keys(want)) if (got[key] !== want[key]) wrong++;
      console.log(`${name.padEnd(8)} tools/list: ${got.list.padEnd(30)} query: ${got.query.padEnd(4)} drop_table: ${got.drop_table}`);
    }
  } finally {
    await router.close();
    server.closeAllConnections();
    server.close();
  }
  if (wrong > 0) {
    console.log(`${wrong} answer(s) differ from the configured permissions`);
    process.exitCode = 1;
  } else {
    console.log('db-read may only query; admin may use every tool');
  }
}

main().catch((err) => {
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
});
