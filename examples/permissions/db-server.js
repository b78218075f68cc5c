#!/usr/bin/env node
'use strict';
// A stand-in for a database MCP server over stdio, without the SDK: tools `query`,
// `list_tables` and `drop_table`, each answering with its name and arguments.
const TOOLS = ['query', 'list_tables', 'drop_table'];
const send = (m) => process.stdout.write(JSON.stringify(m) + '\n');
let buffer = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  buffer += chunk;
  for (let nl = buffer.indexOf('\n'); nl !== -1; nl = buffer.indexOf('\n')) {
    const line = buffer.slice(0, nl);
    buffer = buffer.slice(nl + 1);
    if (line.trim() === '') continue;
    const { id, method, params } = JSON.parse(line);
    if (method === 'initialize') {
      send({ jsonrpc: '2.0', id, result: { protocolVersion: params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: 'db', version: '1.0.0' } } });
    } else if (method === 'tools/list') {
      send({ jsonrpc: '2.0', id, result: { tools: TOOLS.map((name) => ({ name, inputSchema: { type: 'object' } })) } });
    } else if (method === 'tools/call' && TOOLS.includes(params.name)) {
      send({ jsonrpc: '2.0', id, result: { content: [{ type: 'text', text: `${params.name} ${JSON.stringify(params.arguments ?? {})}` }] } });
    } else if (method === 'tools/call') {
      send({ jsonrpc: '2.0', id, error: { code: -32602, message: `Unknown tool: ${params.name}` } });
    } else if (id !== undefined && method !== undefined) {
      send({ jsonrpc: '2.0', id, error: { code: -32601, message: `Method not found: ${method}` } });
    }
  }
});
process.stdin.on('end', () => process.exit(0));
