'use strict';
// An Express app that already has its own routes and adds MCP servers under /mcp-gateway.
// Inside this repository `require('mcp-front')` resolves to the built package (dist/) through
// the package's own name; in your app it is the installed dependency.
const http = require('node:http');
const path = require('node:path');
const express = require('express');
const { mcpFront, loadConfig } = require('mcp-front');

/**
 * Starts the app on `port` (0 = any free port).
 * `options.env` is where `{"$env": …}` is looked up (default process.env); `options.logger` is
 * passed to mcp-front (default: one line per event on stderr).
 */
async function start(port = 3000, options = {}) {
  const env = options.env || process.env;
  const app = express();

  // The host app's own routes, untouched by the gateway.
  app.get('/', (_req, res) => res.type('text').send('Hello from the existing app. MCP servers: /mcp-gateway\n'));
  app.get('/api/hello', (_req, res) => res.json({ hello: 'world' }));

  // Everything under /mcp-gateway needs `Authorization: Bearer <token>`, except /health.
  // loadConfig throws a ConfigError listing every problem, before anything listens.
  const router = mcpFront(loadConfig(path.join(__dirname, 'config.json'), env), { env, logger: options.logger });
  app.use('/mcp-gateway', router);

  const server = http.createServer(app);
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const url = `http://127.0.0.1:${server.address().port}`;

  async function close() {
    server.close();
    await router.close(); // ends MCP sessions and stops the spawned servers
    server.closeAllConnections();
  }
  return { app, server, router, url, close };
}

module.exports = { start };

if (require.main === module) {
  if (!process.env.GATEWAY_TOKEN) {
    process.stderr.write('Set GATEWAY_TOKEN, e.g.: GATEWAY_TOKEN=$(node dist/cli.js generate-token) node examples/existing-app/server.js\n');
    process.exit(1);
  }
  start(Number(process.env.PORT || 3000)).then(
    ({ url, close }) => {
      process.stdout.write(`existing app on ${url}; MCP: ${url}/mcp-gateway/everything/mcp (and /sse)\n`);
      const stop = () => close().then(() => process.exit(0));
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    },
    (err) => {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    },
  );
}
