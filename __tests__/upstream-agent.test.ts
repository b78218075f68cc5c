// How mcp-front reaches remote upstreams: https URLs go over TLS on every path (passthrough and
// bridges), and a connection that never completes fails with ETIMEDOUT (→ 504).
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { withConnectTimeout } from '../lib/remote/upstream-agent';
import { captureLogger, configWith, DEV_TOKEN, startFront, type Front } from './helpers/servers';

describe('https upstreams', () => {
  let dir: string;
  let upstream: https.Server;
  let front: Front;
  const logger = captureLogger();

  beforeAll(async () => {
    // A self-signed certificate: the handshake happens (proving TLS is used) and then fails
    // verification, as it must for a certificate nobody vouches for.
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-front-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'), '-subj', '/CN=localhost', '-days', '1'], { stdio: 'ignore' });
    upstream = https.createServer({ key: fs.readFileSync(path.join(dir, 'key.pem')), cert: fs.readFileSync(path.join(dir, 'cert.pem')) }, (_req, res) => res.end());
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    const origin = `https://127.0.0.1:${(upstream.address() as net.AddressInfo).port}`;
    front = await startFront(configWith({ legacy: { url: `${origin}/sse` }, modern: { url: `${origin}/mcp` } }), { logger });
  });
  afterAll(async () => {
    await front.close();
    upstream.closeAllConnections();
    await new Promise<void>((r) => upstream.close(() => r()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const INITIALIZE = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } });
  const headers = { Authorization: `Bearer ${DEV_TOKEN}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' };

  it.each([
    ['legacy SSE passthrough', 'GET', '/legacy/sse'],
    ['Streamable client bridged to a legacy SSE upstream', 'POST', '/legacy/mcp'],
    ['Streamable HTTP passthrough', 'POST', '/modern/mcp'],
  ])('%s speaks TLS to the upstream', async (_what, method, route) => {
    logger.entries.splice(0);
    const res = await fetch(front.url + route, { method, headers, body: method === 'POST' ? INITIALIZE : undefined });
    expect(res.status).toBe(502);
    await res.text();
    const codes = logger.entries.filter((e) => e.message === 'upstream error').map((e) => e.fields.code);
    // A certificate error, not ERR_INVALID_PROTOCOL (an https URL handed to http.request).
    expect(codes).toEqual([expect.stringMatching(/CERT|SELF_SIGNED/)]);
  });
});

describe('connect timeout', () => {
  it('destroys a socket still connecting after the limit with ETIMEDOUT', async () => {
    const socket = new net.Socket();
    Object.defineProperty(socket, 'connecting', { value: true });
    withConnectTimeout(socket, 20);
    const [err] = (await once(socket, 'error')) as [NodeJS.ErrnoException];
    expect(err.code).toBe('ETIMEDOUT');
    expect(socket.destroyed).toBe(true);
  });

  it('leaves a connected socket alone, its timer cleared', async () => {
    const held: net.Socket[] = [];
    const server = net.createServer((s) => held.push(s));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    // The connect timer runs on a fake clock, so that a busy machine's pause before the 'connect'
    // event cannot fire it, and the clock can then be moved past it at once.
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    try {
      const socket = withConnectTimeout(net.connect((server.address() as net.AddressInfo).port, '127.0.0.1'), 20);
      const errors: string[] = [];
      socket.on('error', (err: NodeJS.ErrnoException) => errors.push(err.code ?? err.message));
      await once(socket, 'connect');
      jest.advanceTimersByTime(1_000);
      // A destroy's 'error' is emitted on the next tick: let it come before looking.
      await new Promise((resolve) => setImmediate(resolve));
      expect(errors).toEqual([]);
      expect(socket.destroyed).toBe(false);
      socket.destroy();
    } finally {
      jest.useRealTimers();
      for (const s of held) s.destroy();
      server.close();
    }
  });
});
