'use strict';
// A stdio MCP server for the aggregate cases (bench/aggregate.js): `TOOLS` tools (default 100),
// each with a description and a small input schema, and a `tools/list` answered after
// `LIST_DELAY_MS` (default 0), as a server that asks a backend for its tools would. `tools/call`
// of any of its tools echoes `message`. Newline-delimited JSON-RPC on stdin/stdout (MCP stdio
// transport), no SDK: its own cost stays small and fixed next to the proxy's.
const readline = require('node:readline');

const count = Number(process.env.TOOLS ?? 100);
const delayMs = Number(process.env.LIST_DELAY_MS ?? 0);
const name = process.env.SERVER_NAME ?? 'bench-tools';

const tools = Array.from({ length: count }, (_, i) => ({
  name: i === 0 ? 'echo' : `tool-${String(i).padStart(3, '0')}`,
  description: `Tool ${i} of ${name}: echoes its message back, for the aggregate benchmark.`,
  inputSchema: {
    type: 'object',
    properties: { message: { type: 'string', description: 'What to echo' }, times: { type: 'integer', minimum: 1 } },
    required: ['message'],
  },
}));
const toolNames = new Set(tools.map((t) => t.name));

const write = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);
const result = (id, value) => write({ jsonrpc: '2.0', id, result: value });

function handle(msg) {
  if (msg.id === undefined || msg.id === null || msg.method === undefined) return; // notifications, answers
  const { id, method, params } = msg;
  if (method === 'initialize') {
    return result(id, { protocolVersion: params?.protocolVersion ?? '2025-06-18', capabilities: { tools: {} }, serverInfo: { name, version: '1.0.0' } });
  }
  if (method === 'ping') return result(id, {});
  if (method === 'tools/list') {
    if (delayMs > 0) return void setTimeout(() => result(id, { tools }), delayMs);
    return result(id, { tools });
  }
  if (method === 'tools/call' && toolNames.has(params?.name)) {
    return result(id, { content: [{ type: 'text', text: `Echo: ${params?.arguments?.message ?? ''}` }] });
  }
  write({ jsonrpc: '2.0', id, error: { code: -32601, message: `Method not found: ${method}` } });
}

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() === '') return;
  try {
    handle(JSON.parse(line));
  } catch {
    /* not JSON: ignored, as a server would */
  }
});
process.stdin.on('end', () => process.exit(0));
