// reload() revokes a token everywhere, including its streams and requests that are still starting:
// a legacy SSE stream waiting for its upstream's `endpoint` event, a Streamable HTTP `initialize`
// waiting for its answer, a stateless 2026-07-28 request waiting for the server's era, and a
// bridged or stdio session whose server side is still starting.
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { inFlightCount, liveSessionCount } from '../lib/mcp-front';
import type { McpFrontConfig } from '../lib/types';
import { openEventStream } from './fixtures/remote-streams';
import { INITIALIZE, postModern } from './helpers/clients';
import { captureLogger, DEV_TOKEN, PROD_TOKEN, signalProcess, startFront, waitFor, type Front } from './helpers/servers';

const STATELESS_CHILD = path.join(__dirname, 'fixtures', 'stateless-stdio-child.js');

/** A request the upstream holds: `release()` sends its answer. */
interface Held {
  url: string;
  release(): void;
}

/**
 * An upstream that answers nothing until the test releases it: `GET /sse` sends its headers at
 * once and its `endpoint` event on release, `GET /sse-quiet` sends nothing before release, and a
 * `POST /mcp` `initialize` is answered on release with session `up-1`. DELETEs are recorded.
 */
async function startHeldUpstream() {
  const arrivals: Held[] = [];
  const waiters: Array<(h: Held) => void> = [];
  const arrive = (held: Held) => {
    const waiter = waiters.shift();
    if (waiter) waiter(held);
    else arrivals.push(held);
  };
  const deletes: string[] = [];
  let deleted: (id: string) => void = () => undefined;
  const endpoint = 'event: endpoint\ndata: /messages?sessionId=up-1\n\n';
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/sse') {
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
      res.flushHeaders();
      arrive({ url: req.url, release: () => res.write(endpoint) });
    } else if (req.method === 'GET' && req.url === '/sse-quiet') {
      arrive({
        url: req.url,
        release: () => {
          res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
          res.write(endpoint);
        },
      });
    } else if (req.method === 'POST') {
      req.resume();
      req.on('end', () =>
        arrive({
          url: req.url ?? '',
          release: () => {
            const body = JSON.stringify({ jsonrpc: '2.0', id: 1, result: { protocolVersion: '2025-06-18', capabilities: {}, serverInfo: { name: 'held', version: '1' } } });
            res.writeHead(200, { 'Content-Type': 'application/json', 'Mcp-Session-Id': 'up-1' }).end(body);
          },
        }),
      );
    } else if (req.method === 'DELETE') {
      const id = String(req.headers['mcp-session-id']);
      deletes.push(id);
      res.writeHead(200).end();
      deleted(id);
    } else {
      res.writeHead(404).end();
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    deletes,
    /** The next request to arrive (already arrived ones first). */
    nextArrival: () => new Promise<Held>((resolve) => (arrivals.length ? resolve(arrivals.shift()!) : waiters.push(resolve))),
    nextDelete: () => new Promise<string>((resolve) => (deleted = resolve)),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('reload() revokes what is still starting', () => {
  let upstream: Awaited<ReturnType<typeof startHeldUpstream>>;
  let front: Front;
  let holdDir: string;
  const logger = captureLogger();

  const config = (tokens: Record<string, string>): McpFrontConfig => ({
    version: '1.0',
    proxy: { name: 'Inflight Proxy', auth: { kind: 'bearer_token', tokens } },
    mcpServers: {
      legacy: { url: `${upstream.origin}/sse`, transportType: 'sse' },
      quiet: { url: `${upstream.origin}/sse-quiet`, transportType: 'sse' },
      modern: { url: `${upstream.origin}/mcp`, transportType: 'streamable-http' },
      stateless: { command: process.execPath, args: [STATELESS_CHILD, `--hold-discover=${holdDir}`] },
    },
  });
  const both = () => config({ dev: DEV_TOKEN, prod: PROD_TOKEN });
  const revokeProd = () => front.router.reload(config({ dev: DEV_TOKEN }));

  beforeAll(async () => {
    upstream = await startHeldUpstream();
    holdDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-front-inflight-'));
  });
  afterAll(async () => {
    await upstream.close();
    fs.rmSync(holdDir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    logger.entries.splice(0);
    fs.rmSync(path.join(holdDir, 'held'), { force: true });
    front = await startFront(both(), { logger });
  });
  afterEach(() => front.close());

  const initialize = (server: string, token: string, headers: Record<string, string> = {}) =>
    fetch(`${front.url}/${server}/mcp`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', ...headers },
      body: JSON.stringify(INITIALIZE),
    });

  it('ends a legacy SSE stream whose endpoint event had not arrived, and no session appears when it does', async () => {
    const stream = await openEventStream(`${front.url}/legacy/sse`, { headers: { Authorization: `Bearer ${PROD_TOKEN}` } });
    expect(stream.status).toBe(200);
    const held = await upstream.nextArrival();

    await revokeProd();
    held.release();
    // The stream ends without an endpoint: nothing was left to relay it.
    await expect(stream.next()).rejects.toThrow('stream ended');
    await stream.ended;
    expect(liveSessionCount(front.router)).toBe(0);
    expect(inFlightCount(front.router)).toBe(0);
  });

  it('answers a legacy SSE stream whose upstream had not answered yet with 403', async () => {
    const opening = fetch(`${front.url}/quiet/sse`, { headers: { Authorization: `Bearer ${PROD_TOKEN}` } });
    const held = await upstream.nextArrival();

    await revokeProd();
    const res = await opening;
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ jsonrpc: '2.0', error: { code: -32000, message: expect.stringMatching(/revoked/) } });
    held.release();
    expect(liveSessionCount(front.router)).toBe(0);
    expect(inFlightCount(front.router)).toBe(0);
  });

  it('answers an initialize in flight with 403, deletes the session the upstream opens for it, and never knows its id', async () => {
    const initializing = initialize('modern', PROD_TOKEN);
    const held = await upstream.nextArrival();

    await revokeProd();
    const res = await initializing;
    expect(res.status).toBe(403);
    expect(res.headers.get('mcp-session-id')).toBeNull();
    expect(await res.json()).toMatchObject({ jsonrpc: '2.0', id: 1, error: { message: expect.stringMatching(/revoked/) } });

    const deleted = upstream.nextDelete();
    held.release();
    expect(await deleted).toBe('up-1');
    expect(liveSessionCount(front.router)).toBe(0);
    expect(inFlightCount(front.router)).toBe(0);

    // Even with the token back, the upstream's id is no session of this proxy.
    await front.router.reload(both());
    const reuse = await fetch(`${front.url}/modern/mcp`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${PROD_TOKEN}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', 'Mcp-Session-Id': 'up-1' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
    });
    expect(reuse.status).toBe(404);
  });

  it('answers an initialize bridged to a legacy upstream whose stream is still starting with 403', async () => {
    // A Streamable HTTP client of a legacy SSE upstream: its session starts once the upstream's
    // `endpoint` event arrives, which the upstream holds.
    const initializing = initialize('legacy', PROD_TOKEN);
    const held = await upstream.nextArrival();
    expect(held.url).toBe('/sse');

    await revokeProd();
    const res = await initializing;
    expect(res.status).toBe(403);
    expect(res.headers.get('mcp-session-id')).toBeNull();
    held.release();
    await waitFor(() => liveSessionCount(front.router) === 0, 'the bridged session to end');
    expect(inFlightCount(front.router)).toBe(0);
  });

  const modern = (token: string, id: number) =>
    postModern(`${front.url}/stateless/mcp`, token, id, 'tools/call', { name: 'echo', arguments: { message: `from ${token === DEV_TOKEN ? 'dev' : 'prod'}` } });
  /** Waits until a child holds its `server/discover`, then lets it answer. */
  const releaseDiscover = async () => {
    const held = path.join(holdDir, 'held');
    await waitFor(() => fs.existsSync(held), 'a child to hold server/discover');
    const pid = Number(fs.readFileSync(held, 'utf8'));
    fs.rmSync(held);
    signalProcess(pid, 'SIGUSR2');
  };
  const startedBy = () => logger.entries.filter((e) => e.message === 'session started' && e.fields.upstream === 'stdio').map((e) => e.fields.token);

  it('answers a stateless 2026-07-28 request waiting for the era with 403, and spawns nothing for its token', async () => {
    // dev's request starts the era's discovery; prod's waits for the same one.
    const devAnswer = modern(DEV_TOKEN, 1);
    await waitFor(() => startedBy().length === 1, 'the discovery child to start');
    const prodAnswer = modern(PROD_TOKEN, 2);
    await waitFor(() => inFlightCount(front.router) === 2, 'both requests to wait for the era');

    await revokeProd();
    const prod = await prodAnswer;
    expect(prod.status).toBe(403);
    expect(await prod.json()).toMatchObject({ id: 2, error: { message: expect.stringMatching(/revoked/) } });

    await releaseDiscover();
    const dev = await devAnswer;
    expect(dev.status).toBe(200);
    expect(await dev.json()).toMatchObject({ id: 1, result: { content: [{ text: 'from dev' }] } });
    // One child, dev's: none was spawned for the revoked token.
    expect(startedBy()).toEqual(['dev']);
    expect(liveSessionCount(front.router)).toBe(1);
    expect(inFlightCount(front.router)).toBe(0);
  });

  it('lets a request that waited on a revoked token’s discovery ask again with its own child', async () => {
    const prodAnswer = modern(PROD_TOKEN, 1);
    await waitFor(() => startedBy().length === 1, 'the discovery child to start');
    const devAnswer = modern(DEV_TOKEN, 2);
    await waitFor(() => inFlightCount(front.router) === 2, 'both requests to wait for the era');
    await waitFor(() => fs.existsSync(path.join(holdDir, 'held')), 'prod’s child to hold server/discover');
    fs.rmSync(path.join(holdDir, 'held'));

    await revokeProd();
    expect((await prodAnswer).status).toBe(403);
    await releaseDiscover();
    const dev = await devAnswer;
    expect(dev.status).toBe(200);
    expect(await dev.json()).toMatchObject({ id: 2, result: { content: [{ text: 'from dev' }] } });
    expect(startedBy()).toEqual(['prod', 'dev']);
    expect(liveSessionCount(front.router)).toBe(1);
  });

  it('close() answers what is still starting at once', async () => {
    const opening = fetch(`${front.url}/quiet/sse`, { headers: { Authorization: `Bearer ${PROD_TOKEN}` } });
    await upstream.nextArrival();
    const initializing = initialize('modern', DEV_TOKEN);
    await upstream.nextArrival();
    await front.router.close();
    expect((await opening).status).toBe(503);
    expect((await initializing).status).toBe(503);
    expect(inFlightCount(front.router)).toBe(0);
  });

});
