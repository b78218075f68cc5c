// CONTRACT §4: every server is reachable on both routes, whatever its upstream transport. The SDK
// clients through the bridges to the reference server (Streamable HTTP client → legacy SSE
// upstream, legacy SSE client → Streamable HTTP upstream), then what a recording upstream sees:
// headers, session ids, how the upstream side ends, faults, revocation.
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CreateMessageRequestSchema, ElicitRequestSchema, LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { liveSessionCount } from '../lib/mcp-front';
import type { McpFrontConfig } from '../lib/types';
import { connectClient, type ClientTransportKind, type ConnectOptions, textOf } from './helpers/clients';
import { DEV_TOKEN, PROD_TOKEN, captureLogger, configWith, REFUSING_ORIGIN, startEverything, startFront, type Front, type Upstream } from './helpers/servers';
import { startBridgeUpstream, type BridgeUpstream, type Seen } from './fixtures/bridge-upstream';
import { errorBody, openEventStream, type EventStream } from './fixtures/remote-streams';

describe.each<[string, 'sse' | 'streamableHttp', string, ClientTransportKind]>([
  ['Streamable HTTP client → legacy SSE upstream', 'sse', '/sse', 'streamable'],
  ['legacy SSE client → Streamable HTTP upstream', 'streamableHttp', '/mcp', 'sse'],
])('%s (reference server)', (_title, mode, path, kind) => {
  let upstream: Upstream;
  let front: Front;
  const clients: Client[] = [];

  beforeAll(async () => {
    upstream = await startEverything(mode);
    front = await startFront(configWith({ everything: { url: `${upstream.origin}${path}` } }));
  });
  afterEach(async () => {
    await Promise.allSettled(clients.splice(0).map((c) => c.close()));
  });
  afterAll(async () => {
    await front?.close();
    await upstream?.close();
  });

  const connect = async (options: ConnectOptions = {}, token = DEV_TOKEN) => {
    const client = await connectClient(front.url, 'everything', kind, token, options);
    clients.push(client);
    return client;
  };

  it('relays round trips: tools/list, echo, get-sum', async () => {
    const client = await connect();
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining(['echo', 'get-sum', 'trigger-long-running-operation']));
    expect(textOf(await client.callTool({ name: 'echo', arguments: { message: `bridged ${kind}` } }))).toBe(`Echo: bridged ${kind}`);
    expect(textOf(await client.callTool({ name: 'get-sum', arguments: { a: 40, b: 2 } }))).toBe('The sum of 40 and 2 is 42.');
  });

  it('streams progress notifications before the result', async () => {
    const client = await connect();
    const seen: Array<{ progress: number; settled: boolean }> = [];
    let settled = false;
    const result = await client
      .callTool({ name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 3 } }, undefined, {
        onprogress: (p) => seen.push({ progress: p.progress, settled }),
      })
      .finally(() => (settled = true));
    expect(textOf(result)).toContain('Long running operation completed');
    // The SDK's SSE client may drop the last progress when it shares a chunk with the result
    // (FIELD-NOTES; it does so without a proxy too): the first two prove nothing is buffered.
    expect(seen.slice(0, 2)).toEqual([
      { progress: 1, settled: false },
      { progress: 2, settled: false },
    ]);
    // The Streamable HTTP client handles a stream's events in order: it gets every one.
    if (kind === 'streamable') expect(seen.map((s) => s.progress)).toEqual([1, 2, 3]);
  });

  it("relays a server's sampling request to the client and its answer back", async () => {
    const client = await connect({ capabilities: { sampling: {} } });
    const prompts: string[] = [];
    client.setRequestHandler(CreateMessageRequestSchema, async (request) => {
      prompts.push(JSON.stringify(request.params.messages[0].content));
      return { model: 'bridge-test-model', role: 'assistant', content: { type: 'text', text: `sampled via ${kind}` } };
    });
    const result = await client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'what is 6x7?', maxTokens: 5 } });
    expect(prompts).toEqual([expect.stringContaining('what is 6x7?')]);
    expect(textOf(result)).toContain('bridge-test-model');
    expect(textOf(result)).toContain(`sampled via ${kind}`);
  });

  it("relays a server's elicitation request to the client and the user's answer back", async () => {
    const client = await connect({ capabilities: { elicitation: {} } });
    const asked: string[] = [];
    client.setRequestHandler(ElicitRequestSchema, async (request) => {
      asked.push(request.params.message);
      return { action: 'decline' };
    });
    const result = await client.callTool({ name: 'trigger-elicitation-request', arguments: {} });
    expect(asked).toHaveLength(1);
    expect(textOf(result)).toContain('declined');
  });

  it('relays server-initiated notifications (logging)', async () => {
    const client = await connect();
    const logged = new Promise<{ level: string }>((resolve) => {
      client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => resolve(n.params));
    });
    await client.callTool({ name: 'toggle-simulated-logging', arguments: {} });
    expect((await logged).level).toEqual(expect.any(String));
  });

  it('binds the session to its token: another token gets 404', async () => {
    const auth = (token: string) => ({ Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' });
    const toolsList = JSON.stringify({ jsonrpc: '2.0', id: 99, method: 'tools/list' });
    if (kind === 'streamable') {
      const client = await connect();
      const id = (client.transport as StreamableHTTPClientTransport).sessionId!;
      const post = (token: string) => fetch(`${front.url}/everything/mcp`, { method: 'POST', headers: { ...auth(token), 'Mcp-Session-Id': id }, body: toolsList });
      const stolen = await post(PROD_TOKEN);
      expect(stolen.status).toBe(404);
      expect(await errorBody(stolen)).toEqual({ jsonrpc: '2.0', error: { code: -32000, message: expect.any(String) }, id: null });
      const own = await post(DEV_TOKEN);
      expect(own.status).toBe(200);
      expect(await own.text()).toContain('get-sum');
      return;
    }
    const stream = await openEventStream(`${front.url}/everything/sse`, { headers: { Authorization: `Bearer ${DEV_TOKEN}` } });
    try {
      const endpoint = await stream.next();
      expect(endpoint.data).toMatch(/^\/everything\/message\?sessionId=[A-Za-z0-9_-]{43}$/);
      const stolen = await fetch(front.origin + endpoint.data, { method: 'POST', headers: auth(PROD_TOKEN), body: toolsList });
      expect(stolen.status).toBe(404);
      expect(await errorBody(stolen)).toEqual({ jsonrpc: '2.0', error: { code: -32000, message: expect.any(String) }, id: null });
    } finally {
      stream.close();
      await stream.ended;
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Seen from the upstream

const API_KEY = 'bridge-upstream-key';
const initialize = (id: number | string = 1, protocolVersion = '2025-06-18') => ({
  jsonrpc: '2.0',
  id,
  method: 'initialize',
  params: { protocolVersion, capabilities: {}, clientInfo: { name: 'raw', version: '1.0.0' } },
});
const clientHeaders = (token = DEV_TOKEN) => ({
  Authorization: `Bearer ${token}`,
  Cookie: 'session=browser-secret',
  'Content-Type': 'application/json',
  // JSON answers keep these raw tests short; SDK clients above take event streams.
  Accept: 'application/json',
});

describe('bridges, seen from a recording upstream', () => {
  let up: BridgeUpstream;
  let front: Front;
  let config: McpFrontConfig;
  const logger = captureLogger();
  const streams: EventStream[] = [];

  beforeAll(async () => {
    up = await startBridgeUpstream();
    config = configWith({
      legacy: { url: `${up.origin}/legacy/sse`, headers: { 'X-API-Key': API_KEY } },
      modern: { url: `${up.origin}/modern/mcp`, headers: { 'X-API-Key': API_KEY } },
      slowsse: { url: `${up.origin}/hang/sse`, timeout: '300ms' },
      slow: { url: `${up.origin}/hang/mcp`, timeout: '300ms' },
      downsse: { url: `${REFUSING_ORIGIN}/sse` },
      down: { url: `${REFUSING_ORIGIN}/mcp` },
    });
    front = await startFront(config, { logger });
  });
  afterEach(async () => {
    for (const s of streams.splice(0)) {
      s.close();
      await s.ended;
    }
  });
  afterAll(async () => {
    await front?.close();
    await up?.close();
  });

  const mcpPost = (server: string, body: object, sessionId?: string, token = DEV_TOKEN) =>
    fetch(`${front.url}/${server}/mcp`, {
      method: 'POST',
      headers: { ...clientHeaders(token), ...(sessionId ? { 'Mcp-Session-Id': sessionId } : {}) },
      body: JSON.stringify(body),
    });
  const legacyPost = (endpoint: string, body: object, token = DEV_TOKEN) =>
    fetch(front.origin + endpoint, { method: 'POST', headers: clientHeaders(token), body: JSON.stringify(body) });
  const openLegacy = async (server: string, token = DEV_TOKEN) => {
    const stream = await openEventStream(`${front.url}/${server}/sse`, { headers: clientHeaders(token) });
    streams.push(stream);
    expect(stream.status).toBe(200);
    const endpoint = await stream.next();
    expect(endpoint.event).toBe('endpoint');
    return { stream, endpoint: endpoint.data };
  };
  const nextMessage = async (stream: EventStream) => JSON.parse((await stream.nextMatching((e) => e.event === 'message')).data);
  const withoutClientCredentials = (entry: Seen) => {
    expect(entry.headers['x-api-key']).toBe(API_KEY);
    expect(entry.headers.authorization).toBeUndefined();
    expect(entry.headers.cookie).toBeUndefined();
  };

  describe('Streamable HTTP client → legacy SSE upstream', () => {
    it('opens the upstream stream and posts to its endpoint with the configured headers only; DELETE closes the upstream stream', async () => {
      const before = up.log.length;
      const init = await mcpPost('legacy', initialize(1));
      expect(init.status).toBe(200);
      const id = init.headers.get('mcp-session-id')!;
      expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(await init.json()).toMatchObject({ jsonrpc: '2.0', id: 1, result: { serverInfo: { name: 'bridge-upstream' } } });

      const [stream, posted] = up.log.slice(before).filter((e) => e.type === 'request');
      expect(stream).toMatchObject({ method: 'GET', path: '/legacy/sse' });
      expect(stream.headers.accept).toBe('text/event-stream');
      withoutClientCredentials(stream);
      expect(posted).toMatchObject({ method: 'POST', path: '/legacy/messages', body: JSON.stringify(initialize(1)) });
      withoutClientCredentials(posted);

      // Notifications are accepted once the upstream took them; requests are answered from its stream.
      expect((await mcpPost('legacy', { jsonrpc: '2.0', method: 'notifications/initialized' }, id)).status).toBe(202);
      const list = await mcpPost('legacy', { jsonrpc: '2.0', id: 2, method: 'tools/list' }, id);
      expect(await list.json()).toEqual({ jsonrpc: '2.0', id: 2, result: {} });
      expect((await mcpPost('legacy', { jsonrpc: '2.0', id: 3, method: 'tools/list' }, id, PROD_TOKEN)).status).toBe(404);

      const deleted = await fetch(`${front.url}/legacy/mcp`, { method: 'DELETE', headers: { ...clientHeaders(), 'Mcp-Session-Id': id } });
      expect(deleted.status).toBe(204);
      await up.waitFor((e) => e.type === 'closed' && e.headers === stream.headers);
      const after = await mcpPost('legacy', { jsonrpc: '2.0', id: 4, method: 'tools/list' }, id);
      expect(after.status).toBe(404);
      await after.body?.cancel();
    });

    it('ends the session when the upstream ends its stream: the pending request gets an error, later requests 404', async () => {
      const init = await mcpPost('legacy', initialize(1));
      const id = init.headers.get('mcp-session-id')!;
      await init.json();
      const get = await openEventStream(`${front.url}/legacy/mcp`, { headers: { ...clientHeaders(), Accept: 'text/event-stream', 'Mcp-Session-Id': id } });
      streams.push(get);
      expect(get.status).toBe(200);

      const hangup = await mcpPost('legacy', { jsonrpc: '2.0', id: 2, method: 'test/hangup' }, id);
      expect(hangup.status).toBe(502);
      expect(await hangup.json()).toEqual({ jsonrpc: '2.0', id: 2, error: { code: -32000, message: expect.stringContaining('ended the session') } });
      await get.ended;
      const after = await mcpPost('legacy', { jsonrpc: '2.0', id: 3, method: 'tools/list' }, id);
      expect(after.status).toBe(404);
      await after.body?.cancel();
    });
  });

  describe('legacy SSE client → Streamable HTTP upstream', () => {
    it('sends the upstream session id and negotiated version, relays every server message, and DELETEs upstream when the client goes', async () => {
      const before = up.log.length;
      const { stream, endpoint } = await openLegacy('modern');
      expect(endpoint).toMatch(/^\/modern\/message\?sessionId=[A-Za-z0-9_-]{43}$/);

      const init = await legacyPost(endpoint, initialize(1, '2024-11-05'));
      expect(init.status).toBe(202);
      await init.text();
      expect(await nextMessage(stream)).toMatchObject({ id: 1, result: { protocolVersion: '2025-06-18' } });
      const upstreamInit = up.log.slice(before).find((e) => e.type === 'request' && e.method === 'POST')!;
      withoutClientCredentials(upstreamInit);
      expect(upstreamInit.headers.accept).toBe('application/json, text/event-stream');
      expect(upstreamInit.headers['mcp-session-id']).toBeUndefined();

      const initialized = await legacyPost(endpoint, { jsonrpc: '2.0', method: 'notifications/initialized' });
      expect(initialized.status).toBe(202);
      await initialized.text();
      const upstreamGet = await up.waitFor((e) => e.type === 'request' && e.method === 'GET' && e.path === '/modern/mcp' && up.log.indexOf(e) >= before);
      const sessionId = upstreamGet.headers['mcp-session-id'];
      expect(sessionId).toMatch(/^modern-\d+$/);
      expect(upstreamGet.headers['mcp-protocol-version']).toBe('2025-06-18');
      withoutClientCredentials(upstreamGet);
      // What the upstream initiates on its standalone stream reaches the client's stream.
      expect(await nextMessage(stream)).toMatchObject({ method: 'notifications/message', params: { data: 'hello from GET' } });

      const list = await legacyPost(endpoint, { jsonrpc: '2.0', id: 2, method: 'tools/list' });
      expect(list.status).toBe(202);
      await list.text();
      expect(await nextMessage(stream)).toEqual({ jsonrpc: '2.0', id: 2, result: {} });
      const upstreamList = up.log.find((e) => e.type === 'request' && e.body.includes('"id":2') && e.headers['mcp-session-id'] === sessionId)!;
      expect(upstreamList.headers['mcp-protocol-version']).toBe('2025-06-18');

      stream.close();
      const deleted = await up.waitFor((e) => e.method === 'DELETE' && e.headers['mcp-session-id'] === sessionId);
      expect(deleted.headers['mcp-protocol-version']).toBe('2025-06-18');
      withoutClientCredentials(deleted);
      await up.waitFor((e) => e.type === 'closed' && e.headers === upstreamGet.headers);
      const after = await legacyPost(endpoint, { jsonrpc: '2.0', id: 3, method: 'tools/list' });
      expect(after.status).toBe(404);
      await after.body?.cancel();
    });

    it('ends the session when the upstream forgets it (404): that POST gets 404 and the stream ends', async () => {
      const { stream, endpoint } = await openLegacy('modern');
      await (await legacyPost(endpoint, initialize(1))).text();
      await nextMessage(stream);
      const expired = await legacyPost(endpoint, { jsonrpc: '2.0', id: 2, method: 'test/expire' });
      expect(expired.status).toBe(404);
      await expired.body?.cancel();
      await stream.ended;
      const after = await legacyPost(endpoint, { jsonrpc: '2.0', id: 3, method: 'tools/list' });
      expect(after.status).toBe(404);
      await after.body?.cancel();
    });
  });

  it('passes on an upstream 4xx for a message with its JSON-RPC error; a 5xx becomes 502 without its text', async () => {
    const { stream, endpoint } = await openLegacy('modern');
    await (await legacyPost(endpoint, initialize(1))).text();
    await nextMessage(stream);
    const invalid = await legacyPost(endpoint, { jsonrpc: '2.0', id: 2, method: 'test/invalid' });
    expect(invalid.status).toBe(400);
    expect(await invalid.json()).toEqual({ jsonrpc: '2.0', id: 2, error: { code: -32602, message: expect.stringContaining('bad params') } });
    const crash = await legacyPost(endpoint, { jsonrpc: '2.0', id: 3, method: 'test/crash' });
    expect(crash.status).toBe(502);
    const body = await crash.json();
    expect(body).toEqual({ jsonrpc: '2.0', id: 3, error: { code: -32000, message: expect.stringContaining('HTTP 500') } });
    expect(JSON.stringify(body)).not.toContain('/internal/paths');
    // The session goes on.
    expect((await legacyPost(endpoint, { jsonrpc: '2.0', id: 4, method: 'tools/list' })).status).toBe(202);
    expect(await nextMessage(stream)).toEqual({ jsonrpc: '2.0', id: 4, result: {} });
  });

  describe('upstream faults', () => {
    it.each([
      ['legacy SSE upstream refusing connections', 'downsse', 502, /unreachable/],
      ['legacy SSE upstream that never answers', 'slowsse', 504, /300 ms/],
      ['Streamable HTTP upstream refusing connections', 'down', 502, /unreachable/],
      ['Streamable HTTP upstream that never answers', 'slow', 504, /300 ms/],
    ])('%s (%s) → %d with a JSON-RPC error for the initialize', async (_what, server, status, message) => {
      let res: Response;
      if (server === 'downsse' || server === 'slowsse') {
        res = await mcpPost(server, initialize(7));
      } else {
        const { endpoint } = await openLegacy(server);
        res = await legacyPost(endpoint, initialize(7));
      }
      expect(res.status).toBe(status);
      expect(await res.json()).toEqual({ jsonrpc: '2.0', id: 7, error: { code: -32000, message: expect.stringMatching(message) } });
    });
  });

  it('reload() revoking a token closes its bridged sessions on both sides', async () => {
    const own = await startFront(config, { logger: captureLogger() });
    try {
      const before = up.log.length;
      const init = await fetch(`${own.url}/legacy/mcp`, { method: 'POST', headers: clientHeaders(), body: JSON.stringify(initialize(1)) });
      const id = init.headers.get('mcp-session-id')!;
      await init.json();
      const get = await openEventStream(`${own.url}/legacy/mcp`, { headers: { ...clientHeaders(), Accept: 'text/event-stream', 'Mcp-Session-Id': id } });
      streams.push(get);
      const legacy = await openEventStream(`${own.url}/modern/sse`, { headers: clientHeaders() });
      streams.push(legacy);
      const endpoint = (await legacy.next()).data;
      await (await fetch(own.origin + endpoint, { method: 'POST', headers: clientHeaders(), body: JSON.stringify(initialize(1)) })).text();
      await legacy.nextMatching((e) => e.event === 'message');
      const initialized = { jsonrpc: '2.0', method: 'notifications/initialized' };
      await (await fetch(own.origin + endpoint, { method: 'POST', headers: clientHeaders(), body: JSON.stringify(initialized) })).text();
      expect(liveSessionCount(own.router)).toBe(2);
      const upstreamStream = up.log.slice(before).find((e) => e.type === 'request' && e.path === '/legacy/sse')!;
      const upstreamGet = up.log.slice(before).find((e) => e.type === 'request' && e.method === 'GET' && e.path === '/modern/mcp')!;

      const { dev: _removed, ...rest } = config.proxy.auth.tokens!;
      await own.router.reload({ ...config, proxy: { ...config.proxy, auth: { kind: 'bearer_token', tokens: rest } } });
      expect(liveSessionCount(own.router)).toBe(0);
      await Promise.all([get.ended, legacy.ended]);
      await up.waitFor((e) => e.type === 'closed' && e.headers === upstreamStream.headers);
      await up.waitFor((e) => e.method === 'DELETE' && e.headers['mcp-session-id'] === upstreamGet.headers['mcp-session-id']);
      await up.waitFor((e) => e.type === 'closed' && e.headers === upstreamGet.headers);
    } finally {
      await own.close();
    }
  });
});
