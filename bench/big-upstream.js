'use strict';
// A purpose-built upstream for the `bigevent` case: every JSON-RPC request other than
// `initialize` is answered with ONE `message` event whose data is a valid JSON-RPC response to
// that request's id, carrying BIG_BYTES (default 8 MiB) of JSON text in one `text` content
// item — what server-everything cannot be made to send. Both remote transports:
//
// - Streamable HTTP (MCP 2025-06-18 §Transports): POST /mcp. `initialize` → JSON answer with an
//   `Mcp-Session-Id`; notifications and responses → 202; any other request → `text/event-stream`
//   with the one big event, then the end of the response. DELETE /mcp → 200. GET /mcp → 405.
// - Legacy HTTP+SSE (MCP 2024-11-05): GET /sse → a stream whose first event is `endpoint`
//   (a relative path, /message?sessionId=…); POST /message?sessionId=… → 202, and the answer
//   goes out on that stream (`initialize` a small one, any other request the big one).
//
// The big text is ASCII without characters that JSON escapes; the event is written in one
// `write` (chunked, no Content-Length), as an SDK server would. PORT from the environment.
const crypto = require('node:crypto');
const http = require('node:http');

const BIG_BYTES = Number(process.env.BIG_BYTES || 8 * 1024 * 1024);
const PROTOCOL = '2025-06-18';

// The data line of the event is exactly BIG_BYTES long for a one-digit id.
const head = (id) => `event: message\ndata: {"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":{"content":[{"type":"text","text":"`;
const TAIL = Buffer.from('"}]}}\n\n');
const envelope = `{"jsonrpc":"2.0","id":0,"result":{"content":[{"type":"text","text":"` + '"}]}}';
const pattern = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore. ';
/** Characters of text in the answer, so that its JSON is `bytes` long (for a one-digit id). */
const textBytesFor = (bytes) => bytes - envelope.length;
/** Built when the server starts, not when the case's driver requires textBytesFor. */
let TEXT;

function bigFrame(res, id) {
  res.write(head(id));
  res.write(TEXT);
  res.write(TAIL);
}

const initializeResult = {
  protocolVersion: PROTOCOL,
  capabilities: { tools: {} },
  serverInfo: { name: 'bench-big-upstream', version: '1.0.0' },
};

function readJson(req, done) {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let msg;
    try {
      msg = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      msg = undefined;
    }
    done(msg);
  });
}

const isRequest = (m) => m && typeof m.method === 'string' && m.id !== undefined && m.id !== null;

/** Legacy streams by session id. */
const streams = new Map();

function handle(req, res) {
  const url = new URL(req.url, 'http://localhost');
  if (url.pathname === '/mcp') {
    if (req.method === 'DELETE') return res.writeHead(200).end();
    if (req.method !== 'POST') return res.writeHead(405, { Allow: 'POST, DELETE' }).end();
    return readJson(req, (msg) => {
      if (!isRequest(msg)) return res.writeHead(msg ? 202 : 400).end();
      if (msg.method === 'initialize') {
        const body = JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: initializeResult });
        return res
          .writeHead(200, { 'Content-Type': 'application/json', 'Mcp-Session-Id': crypto.randomUUID(), 'Content-Length': Buffer.byteLength(body) })
          .end(body);
      }
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
      bigFrame(res, msg.id);
      res.end();
    });
  }
  if (url.pathname === '/sse' && req.method === 'GET') {
    const id = crypto.randomUUID();
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
    res.write(`event: endpoint\ndata: /message?sessionId=${id}\n\n`);
    streams.set(id, res);
    res.on('close', () => streams.delete(id));
    return;
  }
  if (url.pathname === '/message' && req.method === 'POST') {
    const stream = streams.get(url.searchParams.get('sessionId'));
    if (!stream) return res.writeHead(404).end('no such session');
    return readJson(req, (msg) => {
      if (!msg) return res.writeHead(400).end('bad JSON');
      res.writeHead(202).end('Accepted');
      if (!isRequest(msg)) return;
      if (msg.method === 'initialize') {
        stream.write(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: initializeResult })}\n\n`);
      } else bigFrame(stream, msg.id);
    });
  }
  res.writeHead(404).end();
}

module.exports = { textBytesFor };

if (require.main === module) {
  const textLength = textBytesFor(BIG_BYTES);
  TEXT = Buffer.from(pattern.repeat(Math.ceil(textLength / pattern.length)).slice(0, textLength));
  const server = http.createServer(handle);
  server.listen(Number(process.env.PORT), '127.0.0.1');
  process.on('SIGTERM', () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}
