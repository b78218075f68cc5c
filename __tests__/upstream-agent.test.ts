// How mcp-front reaches remote upstreams: https URLs go over TLS on every path (passthrough and
// bridges), a connection that never completes fails with ETIMEDOUT (→ 504), and an idle
// connection is closed by the proxy before the upstream closes it under a request.
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { agentFor, IDLE_SOCKET_MS, upstreamRequest, withConnectTimeout } from '../lib/remote/upstream-agent';
import { startKeepAliveUpstream, type KeepAliveUpstream } from './fixtures/keep-alive-upstream';
import { connectClient, type ClientTransportKind } from './helpers/clients';
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

describe('idle upstream connections', () => {
  let upstream: KeepAliveUpstream;
  let front: Front;

  beforeAll(async () => {
    upstream = await startKeepAliveUpstream();
    front = await startFront(configWith({ modern: { url: upstream.url } }));
  });
  afterAll(async () => {
    await front?.close();
    await upstream?.close();
  });

  // The race behind a rare 502 "closed the connection": a request sent on a kept connection just as
  // the server's keep-alive timeout closes it. This upstream always loses it, so the proxy must not
  // keep an idle connection for that long, hint or no hint.
  it.each<[string, ClientTransportKind]>([
    ['a legacy SSE client bridged to it', 'sse'],
    ['a Streamable HTTP client passed through', 'streamable'],
  ])("%s: a request after the upstream's keep-alive timeout reaches it", async (_what, kind) => {
    const client = await connectClient(front.url, 'modern', kind, DEV_TOKEN);
    try {
      await upstream.settled();
      await expect(client.ping()).resolves.toEqual({});
      expect(upstream.resets).toBe(0);
    } finally {
      await client.close();
    }
  });

  /** Serves one answer with `headers` through the proxy's agent, then tells who closed the idle connection first. */
  async function whoClosesFirst(serverKeepAliveMs: number, headers: http.OutgoingHttpHeaders): Promise<{ hint: unknown; closedBy: 'proxy' | 'server' }> {
    const server = http.createServer((_req, res) => res.writeHead(200, headers).end('{}'));
    server.keepAliveTimeout = serverKeepAliveMs;
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const connection = once(server, 'connection') as Promise<[net.Socket]>;
      const req = upstreamRequest(new URL(`http://127.0.0.1:${(server.address() as net.AddressInfo).port}/`), { method: 'GET', headers: {} });
      req.end();
      const [res] = (await once(req, 'response')) as [http.IncomingMessage];
      res.resume();
      const [socket] = await connection;
      // The proxy's close arrives as the end of the stream; the server's own timeout destroys the socket.
      let ended = false;
      socket.once('end', () => (ended = true));
      await once(socket, 'close');
      return { hint: res.headers['keep-alive'], closedBy: ended ? 'proxy' : 'server' };
    } finally {
      server.close();
    }
  }

  it('closes an idle connection before a server that announces its keep-alive timeout', async () => {
    // Node's server announces `Keep-Alive: timeout=2` and closes after that; Node's agent alone ignores the hint.
    await expect(whoClosesFirst(2_000, { 'Content-Type': 'application/json' })).resolves.toEqual({ hint: 'timeout=2', closedBy: 'proxy' });
  });

  it("closes an idle connection before a server's unannounced 5 s keep-alive timeout", async () => {
    // `Connection` written by the server itself, as the MCP SDK's does on event streams: no hint.
    await expect(whoClosesFirst(5_000, { 'Content-Type': 'text/event-stream', Connection: 'keep-alive' })).resolves.toEqual({ hint: undefined, closedBy: 'proxy' });
  });

  it('puts no limit on a connection carrying a request: only an idle one in the pool has one', async () => {
    const server = http.createServer((_req, res) => res.end('{}'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const url = new URL(`http://127.0.0.1:${(server.address() as net.AddressInfo).port}/`);
    const seen: unknown[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const req = upstreamRequest(url, { method: 'GET', headers: {} });
        req.end();
        const [socket] = (await once(req, 'socket')) as [net.Socket];
        seen.push({ reused: req.reusedSocket, timeout: socket.timeout });
        const [res] = (await once(req, 'response')) as [http.IncomingMessage];
        res.resume();
        await once(res, 'end');
        // The socket goes back to the pool on a later tick.
        await new Promise((resolve) => setImmediate(resolve));
        seen.push({ pooled: agentFor(url).freeSockets[`${url.host}:`]?.map((s) => s.timeout) });
      }
    } finally {
      server.closeAllConnections();
      server.close();
    }
    expect(seen).toEqual([
      { reused: false, timeout: 0 },
      { pooled: [IDLE_SOCKET_MS] },
      { reused: true, timeout: 0 },
      { pooled: [IDLE_SOCKET_MS] },
    ]);
  });
});
