// The message pipeline's seam, on every route: a hook refuses a request (it never reaches the
// server, the client gets the JSON-RPC error the way the route answers), replaces an answer
// (JSON and SSE-streamed alike), and observes answers and failures with their durations.
import { once } from 'node:events';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { connectClient, INITIALIZE, type ClientTransportKind, postModern } from './helpers/clients';
import { captureLogger, configWith, DEV_TOKEN, EVERYTHING, startEverything, startFront, type Front, type Upstream } from './helpers/servers';
import { startBridgeUpstream, type BridgeUpstream } from './fixtures/bridge-upstream';
import { startCapture, type CaptureServer } from './fixtures/remote-capture';
import { openEventStream, type EventStream } from './fixtures/remote-streams';
import type { Exchange, FailureOutcome, PipelineHook, UpstreamErrorInfo } from '../lib/pipeline/hooks';
import type { McpFrontOptions } from '../lib/types';

const STDIO_SERVER = path.join(__dirname, 'fixtures', 'stdio-server.js');
const REPLACED = { tools: [{ name: 'replaced-by-hook', inputSchema: { type: 'object' } }] };

/** Refuses `tools/call` of `echo`, replaces every `tools/list` answer, records what it sees. */
function testHook() {
  const answered: { method: string; server: string; durationMs: number }[] = [];
  const failed: { method: string; server: string; outcome: FailureOutcome; durationMs: number }[] = [];
  const upstreamErrors: UpstreamErrorInfo[] = [];
  const hook: PipelineHook = {
    request(ex: Exchange) {
      if (ex.method === 'tools/call' && ex.params?.name === 'echo') return { code: -32602, message: 'Unknown tool: echo' };
      if (ex.method === 'test/limited') return { code: -32000, message: 'Too Many Requests', status: 429, headers: { 'Retry-After': '7' } };
      return undefined;
    },
    answer(ex, response, durationMs) {
      answered.push({ method: ex.method, server: ex.server, durationMs });
      if (ex.method === 'tools/list') return { jsonrpc: '2.0', id: response.id, result: REPLACED };
      return undefined;
    },
    failed(ex, outcome, durationMs) {
      failed.push({ method: ex.method, server: ex.server, outcome, durationMs });
    },
    upstreamError(info) {
      upstreamErrors.push(info);
    },
  };
  return { hook, answered, failed, upstreamErrors };
}

let front: Front;
let bridge: BridgeUpstream;
let capture: CaptureServer;
let everythingHttp: Upstream;
let everythingSse: Upstream;
let streamed: http.Server;

/**
 * An upstream whose answers are event streams of unknown length, written event by event: a
 * notification, then (in a later write) the response, with a comment and an event id.
 */
async function startStreamedUpstream(): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const msg = JSON.parse(Buffer.concat(chunks).toString()) as { id: number; method: string };
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.write(': ping\n\nevent: message\ndata: {"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"first"}}\n\n');
      setImmediate(() => res.end(`id: e-2\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { tools: [] } })}\n\n`));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}
const logger = captureLogger();
const seen = testHook();

beforeAll(async () => {
  [bridge, capture, everythingHttp, everythingSse, streamed] = await Promise.all([
    startBridgeUpstream(),
    startCapture(),
    startEverything('streamableHttp'),
    startEverything('sse'),
    startStreamedUpstream(),
  ]);
  const options = { logger, hooks: [seen.hook] } as McpFrontOptions;
  front = await startFront(
    configWith({
      stdio: { command: process.execPath, args: [STDIO_SERVER, '--modern'], timeout: '5s' },
      everything: { command: process.execPath, args: [EVERYTHING, 'stdio'] },
      'remote-http': { url: `${everythingHttp.origin}/mcp` },
      'remote-sse': { url: `${everythingSse.origin}/sse` },
      'bridge-legacy': { url: `${bridge.origin}/legacy/sse` },
      'bridge-modern': { url: `${bridge.origin}/modern/mcp` },
      capture: { url: `${capture.origin}/mcp` },
      'capture-sse': { url: `${capture.origin}/legacy/sse` },
      hang: { url: `${capture.origin}/hang/mcp`, timeout: '300ms' },
      mute: { command: process.execPath, args: [STDIO_SERVER, '--mute'], timeout: '300ms' },
      streamed: { url: `http://127.0.0.1:${(streamed.address() as net.AddressInfo).port}/mcp` },
    }),
    options,
  );
});

afterAll(async () => {
  await front?.close();
  streamed?.closeAllConnections();
  await Promise.all([bridge?.close(), capture?.close(), everythingHttp?.close(), everythingSse?.close(), new Promise((resolve) => streamed?.close(resolve))]);
});

const headers = (sessionId?: string) => ({
  Authorization: `Bearer ${DEV_TOKEN}`,
  'Content-Type': 'application/json',
  Accept: 'application/json, text/event-stream',
  'MCP-Protocol-Version': '2025-06-18',
  ...(sessionId ? { 'Mcp-Session-Id': sessionId } : {}),
});
const post = (server: string, body: unknown, sessionId?: string) =>
  fetch(`${front.url}/${server}/mcp`, { method: 'POST', headers: headers(sessionId), body: JSON.stringify(body) });
const echoCall = (id: number) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { message: 'must not arrive' } } });

/** Every route an SDK client can use, with the server side behind it. */
const SDK_ROUTES: [string, ClientTransportKind, string][] = [
  ['everything', 'sse', 'stdio session, legacy SSE client'],
  ['everything', 'streamable', 'stdio session, Streamable HTTP client'],
  ['remote-http', 'streamable', 'Streamable HTTP passthrough (SSE-streamed answers)'],
  ['remote-sse', 'sse', 'legacy SSE passthrough'],
  ['bridge-modern', 'sse', 'bridge: legacy SSE client → Streamable HTTP upstream'],
  ['bridge-legacy', 'streamable', 'bridge: Streamable HTTP client → legacy SSE upstream'],
];

describe.each(SDK_ROUTES)('%s over %s (%s)', (server, kind) => {
  let client: Client;
  beforeAll(async () => {
    client = await connectClient(front.url, server, kind, DEV_TOKEN);
  });
  afterAll(async () => {
    await client?.close();
  });

  it('refuses tools/call of echo with the hook’s JSON-RPC error', async () => {
    await expect(client.callTool({ name: 'echo', arguments: { message: 'must not arrive' } })).rejects.toMatchObject({ code: -32602, message: expect.stringContaining('Unknown tool: echo') });
  });

  it('replaces the tools/list answer', async () => {
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(['replaced-by-hook']);
  });
});

describe('the refused request never reaches the upstream', () => {
  it('on both bridges', async () => {
    for (const [server, kind] of [
      ['bridge-modern', 'sse'],
      ['bridge-legacy', 'streamable'],
    ] as const) {
      const client = await connectClient(front.url, server, kind, DEV_TOKEN);
      try {
        await expect(client.callTool({ name: 'echo', arguments: {} })).rejects.toMatchObject({ code: -32602 });
        // A request after it is answered: had the refused one been forwarded, it would be logged before.
        await client.listTools();
      } finally {
        await client.close();
      }
    }
    const bodies = bridge.log.filter((e) => e.type === 'request').map((e) => e.body);
    expect(bodies.some((b) => b.includes('"tools/list"'))).toBe(true);
    expect(bodies.some((b) => b.includes('"tools/call"'))).toBe(false);
  });

  it('on the Streamable HTTP passthrough: a batch with one refused request and one forwarded notification', async () => {
    const init = await post('capture', INITIALIZE);
    expect(init.status).toBe(200);
    const sessionId = init.headers.get('mcp-session-id')!;
    await init.text();
    const batch = [echoCall(2), { jsonrpc: '2.0', method: 'notifications/initialized' }];
    const res = await post('capture', batch, sessionId);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual([{ jsonrpc: '2.0', id: 2, error: { code: -32602, message: 'Unknown tool: echo' } }]);
    const forwarded = await capture.waitFor((e) => e.type === 'request' && e.body.includes('notifications/initialized'));
    // Rebuilt without the refused entry, still a batch.
    expect(JSON.parse(forwarded.body)).toEqual([{ jsonrpc: '2.0', method: 'notifications/initialized' }]);
    expect(capture.requests().some((e) => e.body.includes('"echo"'))).toBe(false);
  });

  it('on the Streamable HTTP passthrough: a request refused alone is answered without the upstream', async () => {
    const before = capture.requests().length;
    const res = await post('capture', echoCall(3));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ jsonrpc: '2.0', id: 3, error: { code: -32602, message: 'Unknown tool: echo' } });
    expect(capture.requests().length).toBe(before);
  });

  it('on the legacy SSE passthrough: 202 for the POST, the error on the session’s stream', async () => {
    const stream: EventStream = await openEventStream(`${front.url}/capture-sse/sse`, { headers: { Authorization: `Bearer ${DEV_TOKEN}` } });
    try {
      const endpoint = await stream.next();
      expect(endpoint.event).toBe('endpoint');
      const res = await fetch(front.origin + endpoint.data, { method: 'POST', headers: headers(), body: JSON.stringify(echoCall(4)) });
      expect(res.status).toBe(202);
      await res.text();
      const event = await stream.nextMatching((e) => e.event === 'message');
      expect(JSON.parse(event.data)).toEqual({ jsonrpc: '2.0', id: 4, error: { code: -32602, message: 'Unknown tool: echo' } });
      expect(capture.requests().some((e) => e.body.includes('"echo"'))).toBe(false);
    } finally {
      stream.close();
      await stream.ended;
    }
  });
});

describe('Streamable HTTP passthrough, an event stream of unknown length', () => {
  it('replaces the response event, and passes the notification, comment and event id through', async () => {
    const res = await post('streamed', { jsonrpc: '2.0', id: 11, method: 'tools/list' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const text = await res.text();
    expect(text).toBe(
      ': ping\n\n' +
        'data: {"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"first"}}\n\n' +
        `id: e-2\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: 11, result: REPLACED })}\n\n`,
    );
  });
});

describe('stdio', () => {
  it('Streamable HTTP: a batch with one refused and one forwarded request gets both answers, the forwarded one replaced', async () => {
    const init = await post('stdio', INITIALIZE);
    expect(init.status).toBe(200);
    const sessionId = init.headers.get('mcp-session-id')!;
    await init.text();
    const res = await fetch(`${front.url}/stdio/mcp`, {
      method: 'POST',
      headers: { ...headers(sessionId), Accept: 'application/json' },
      body: JSON.stringify([echoCall(5), { jsonrpc: '2.0', id: 6, method: 'tools/list' }]),
    });
    expect(res.status).toBe(200);
    const answers = (await res.json()) as { id: number }[];
    expect(answers.sort((a, b) => a.id - b.id)).toEqual([
      { jsonrpc: '2.0', id: 5, error: { code: -32602, message: 'Unknown tool: echo' } },
      { jsonrpc: '2.0', id: 6, result: REPLACED },
    ]);
  });

  it('stateless 2026-07-28: refused and replaced in the POST’s own answer', async () => {
    const modern = (id: number, method: string, params: Record<string, unknown>, name?: string) =>
      postModern(`${front.url}/stdio/mcp`, DEV_TOKEN, id, method, params, { name });
    const refused = await modern(7, 'tools/call', { name: 'echo', arguments: { message: 'x' } }, 'echo');
    expect(refused.status).toBe(200);
    expect(await refused.json()).toEqual({ jsonrpc: '2.0', id: 7, error: { code: -32602, message: 'Unknown tool: echo' } });
    const listed = await modern(8, 'tools/list', {});
    expect(listed.status).toBe(200);
    expect(await listed.json()).toEqual({ jsonrpc: '2.0', id: 8, result: REPLACED });
    expect(seen.answered).toContainEqual(expect.objectContaining({ method: 'tools/list', server: 'stdio' }));
  });

  it('a request the server never answers is failed as a timeout, once, and logged as before', async () => {
    const init = await post('stdio', INITIALIZE);
    const sessionId = init.headers.get('mcp-session-id')!;
    await init.text();
    const res = await post('stdio', { jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'hang', arguments: {} } }, sessionId);
    expect(res.status).toBe(504);
    await res.text();
    const timeouts = seen.failed.filter((f) => f.server === 'stdio' && f.outcome === 'timeout');
    expect(timeouts).toHaveLength(1);
    expect(timeouts[0].method).toBe('tools/call');
    expect(timeouts[0].durationMs).toBeGreaterThan(0);
    expect(logger.entries.filter((e) => e.message === 'stdio server timed out' && e.fields.server === 'stdio')).toHaveLength(1);
  });
});

describe('observing', () => {
  it('answer gets every answered request with its duration', async () => {
    const before = seen.answered.length;
    const init = await post('capture', INITIALIZE);
    expect(init.status).toBe(200);
    await init.text();
    const mine = seen.answered.slice(before).filter((a) => a.server === 'capture');
    expect(mine).toEqual([expect.objectContaining({ method: 'initialize' })]);
    expect(mine[0].durationMs).toBeGreaterThanOrEqual(0);
  });

  it('failed(timeout) on the Streamable HTTP passthrough, with its duration', async () => {
    const res = await post('hang', INITIALIZE);
    expect(res.status).toBe(504);
    await res.text();
    const timeouts = seen.failed.filter((f) => f.server === 'hang');
    expect(timeouts).toEqual([expect.objectContaining({ method: 'initialize', outcome: 'timeout' })]);
    expect(timeouts[0].durationMs).toBeGreaterThan(0);
    // The upstream failure itself reaches the hooks, and the default module logs it as before.
    expect(seen.upstreamErrors).toContainEqual({ server: 'hang', code: 'UPSTREAM_TIMEOUT', status: 504 });
    expect(logger.entries).toContainEqual({ level: 'warn', message: 'upstream error', fields: { server: 'hang', code: 'UPSTREAM_TIMEOUT', status: 504 } });
  });
});

describe('legacy SSE client, a stdio server that never answers initialize', () => {
  it('the initialize is failed as a timeout and logged as before', async () => {
    const stream: EventStream = await openEventStream(`${front.url}/mute/sse`, { headers: { Authorization: `Bearer ${DEV_TOKEN}` } });
    try {
      const endpoint = await stream.next();
      const res = await fetch(front.origin + endpoint.data, { method: 'POST', headers: headers(), body: JSON.stringify(INITIALIZE) });
      expect(res.status).toBe(202);
      await res.text();
      // The session ends with the timeout: its stream ends.
      await stream.ended;
    } finally {
      stream.close();
    }
    expect(seen.failed.filter((f) => f.server === 'mute')).toEqual([expect.objectContaining({ method: 'initialize', outcome: 'timeout' })]);
    expect(logger.entries.filter((e) => e.message === 'stdio server did not answer initialize' && e.fields.server === 'mute')).toHaveLength(1);
  });
});

describe('a verdict with a status answers the whole HTTP request', () => {
  it.each([['capture'], ['stdio']])('%s: 429 with Retry-After and the JSON-RPC error, nothing forwarded', async (server) => {
    const init = await post(server, INITIALIZE);
    const sessionId = init.headers.get('mcp-session-id')!;
    await init.text();
    const before = capture.requests().length;
    const res = await post(server, { jsonrpc: '2.0', id: 12, method: 'test/limited' }, sessionId);
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('7');
    expect(await res.json()).toEqual({ jsonrpc: '2.0', id: 12, error: { code: -32000, message: 'Too Many Requests' } });
    expect(capture.requests().length).toBe(before);
  });

  it('a batch gets one error per request', async () => {
    const res = await post('capture', [{ jsonrpc: '2.0', id: 13, method: 'tools/list' }, { jsonrpc: '2.0', id: 14, method: 'test/limited' }]);
    expect(res.status).toBe(429);
    expect(await res.json()).toEqual([13, 14].map((id) => ({ jsonrpc: '2.0', id, error: { code: -32000, message: 'Too Many Requests' } })));
  });
});
