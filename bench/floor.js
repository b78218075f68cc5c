'use strict';
// The floors of this machine for any Node.js HTTP front end: a server that reads the request body
// and answers one fixed SSE-framed `echo` result in a single write, doing no other work (no auth,
// parsing or child process). FLOOR=http: bare node:http. FLOOR=express: the same handler as an
// Express 5 middleware (`app.use(fn)`), the cost every Express-hosted middleware pays before its
// own code runs. What mcp-front and the peers reach on the same cores, with the same load
// generator, is bounded by these. PORT from the environment.
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

let handler = answer;
if (process.env.FLOOR === 'express') {
  const express = require('express');
  const app = express();
  app.use(function floor(req, res) {
    answer(req, res);
  });
  handler = app;
}
const server = http.createServer(handler);
server.listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
