// Routable session ids (README: Running several instances): with an instance id, every session id
// a client receives begins with `<instanceId>.`, for every server kind and both transports, and a
// remote Streamable HTTP passthrough session gets an id of ours, mapped to the upstream's.
import { once } from 'node:events';
import http from 'node:http';
import type net from 'node:net';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { connectClient, INITIALIZE, type ClientTransportKind } from './helpers/clients';
import { captureLogger, configWith, DEV_TOKEN, EVERYTHING, PROD_TOKEN, startEverything, startFront, waitFor, type Front, type Upstream } from './helpers/servers';
import { startBridgeUpstream, type BridgeUpstream } from './fixtures/bridge-upstream';
import type { McpFrontConfig } from '../lib/types';

/** The id the SDK client was given: `Mcp-Session-Id`, or the `sessionId` of the legacy endpoint. */
function sessionIdOf(client: Client, kind: ClientTransportKind): string {
  const transport = client.transport as unknown as StreamableHTTPClientTransport & { _endpoint?: URL };
  if (kind === 'streamable') return transport.sessionId!;
  return transport._endpoint!.searchParams.get('sessionId')!;
}

/**
 * An upstream that gives every `initialize` the same `Mcp-Session-Id` (a broken or hostile one)
 * and records the session ids it is sent.
 */
async function startOneIdUpstream(): Promise<{ url: string; seen: (string | undefined)[]; close(): Promise<void> }> {
  const seen: (string | undefined)[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push(req.headers['mcp-session-id'] as string | undefined);
      if (req.method !== 'POST') {
        res.writeHead(405).end();
        return;
      }
      const msg = JSON.parse(Buffer.concat(chunks).toString()) as { id?: number; method: string };
      if (msg.id === undefined) {
        res.writeHead(202).end();
        return;
      }
      const result = msg.method === 'initialize' ? { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'one-id', version: '1' } } : { tools: [] };
      res.writeHead(200, { 'Content-Type': 'application/json', 'Mcp-Session-Id': 'the-only-upstream-id' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result }));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/mcp`,
    seen,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

let front: Front;
let bridge: BridgeUpstream;
let everythingHttp: Upstream;
let everythingSse: Upstream;
let oneId: Awaited<ReturnType<typeof startOneIdUpstream>>;
const logger = captureLogger();
let config: McpFrontConfig;

beforeAll(async () => {
  [bridge, everythingHttp, everythingSse, oneId] = await Promise.all([startBridgeUpstream(), startEverything('streamableHttp'), startEverything('sse'), startOneIdUpstream()]);
  config = configWith(
    {
      everything: { command: process.execPath, args: [EVERYTHING, 'stdio'] },
      'remote-http': { url: `${everythingHttp.origin}/mcp` },
      'remote-sse': { url: `${everythingSse.origin}/sse` },
      'bridge-legacy': { url: `${bridge.origin}/legacy/sse` },
      'bridge-modern': { url: `${bridge.origin}/modern/mcp` },
      'one-id': { url: oneId.url },
    },
    { instanceId: 'alpha' },
  );
  front = await startFront(config, { logger });
});

afterAll(async () => {
  await front?.close();
  await Promise.all([bridge?.close(), everythingHttp?.close(), everythingSse?.close(), oneId?.close()]);
});

const ROUTES: [string, ClientTransportKind, string][] = [
  ['everything', 'sse', 'stdio session, legacy SSE client'],
  ['everything', 'streamable', 'stdio session, Streamable HTTP client'],
  ['remote-http', 'streamable', 'Streamable HTTP passthrough'],
  ['remote-http', 'sse', 'bridge: legacy SSE client → Streamable HTTP upstream (everything)'],
  ['remote-sse', 'sse', 'legacy SSE passthrough'],
  ['remote-sse', 'streamable', 'bridge: Streamable HTTP client → legacy SSE upstream (everything)'],
  ['bridge-modern', 'sse', 'bridge: legacy SSE client → Streamable HTTP upstream'],
  ['bridge-legacy', 'streamable', 'bridge: Streamable HTTP client → legacy SSE upstream'],
];

describe.each(ROUTES)('%s over %s (%s)', (server, kind) => {
  it('hands out `<instanceId>.<random>` and serves the session under it', async () => {
    const client = await connectClient(front.url, server, kind, DEV_TOKEN);
    try {
      const id = sessionIdOf(client, kind);
      expect(id).toMatch(/^alpha\.[A-Za-z0-9_-]{43}$/);
      await expect(client.ping()).resolves.toBeDefined();
    } finally {
      await client.close();
    }
  });
});

describe('remote Streamable HTTP passthrough', () => {
  it('an upstream that gives two tokens one id: the first keeps its session, the second gets none, and the upstream id is never shown', async () => {
    const init = (token: string) =>
      fetch(`${front.url}/one-id/mcp`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
        body: JSON.stringify(INITIALIZE),
      });
    const first = await init(DEV_TOKEN);
    expect(first.status).toBe(200);
    const ours = first.headers.get('mcp-session-id')!;
    expect(ours).toMatch(/^alpha\./);
    expect(await first.text()).not.toContain('the-only-upstream-id');

    const second = await init(PROD_TOKEN);
    expect(second.status).toBe(200);
    expect(second.headers.get('mcp-session-id')).toBeNull();
    await second.text();
    await waitFor(() => logger.text().includes('upstream reused a session id'), 'the warning');

    // The first token's requests reach the upstream under the upstream's id.
    const before = oneId.seen.length;
    const list = await fetch(`${front.url}/one-id/mcp`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${DEV_TOKEN}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', 'Mcp-Session-Id': ours, 'MCP-Protocol-Version': '2025-06-18' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
    });
    expect(list.status).toBe(200);
    expect(list.headers.get('mcp-session-id')).toBe(ours);
    await list.text();
    expect(oneId.seen.slice(before)).toEqual(['the-only-upstream-id']);

    // The second token cannot use the first one's id.
    const stolen = await fetch(`${front.url}/one-id/mcp`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${PROD_TOKEN}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', 'Mcp-Session-Id': ours },
      body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/list' }),
    });
    expect(stolen.status).toBe(404);
    await stolen.text();

    const del = await fetch(`${front.url}/one-id/mcp`, { method: 'DELETE', headers: { Authorization: `Bearer ${DEV_TOKEN}`, 'Mcp-Session-Id': ours } });
    await del.text();
    expect(oneId.seen.at(-1)).toBe('the-only-upstream-id');
  });
});

describe('reload', () => {
  it('a new instance id applies to new sessions; live ones keep theirs', async () => {
    const before = await connectClient(front.url, 'everything', 'streamable', DEV_TOKEN);
    try {
      expect(sessionIdOf(before, 'streamable')).toMatch(/^alpha\./);
      await front.router.reload({ ...config, proxy: { ...config.proxy, instanceId: 'beta' } });
      const after = await connectClient(front.url, 'remote-http', 'streamable', DEV_TOKEN);
      try {
        expect(sessionIdOf(after, 'streamable')).toMatch(/^beta\./);
      } finally {
        await after.close();
      }
      expect((await before.listTools()).tools.length).toBeGreaterThan(0);
      await front.router.reload({ ...config, proxy: { ...config.proxy, instanceId: undefined } });
      const plain = await connectClient(front.url, 'everything', 'sse', DEV_TOKEN);
      try {
        expect(sessionIdOf(plain, 'sse')).toMatch(/^[A-Za-z0-9_-]{43}$/);
      } finally {
        await plain.close();
      }
    } finally {
      await before.close();
      await front.router.reload(config);
    }
  });
});
