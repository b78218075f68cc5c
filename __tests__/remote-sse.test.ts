// A remote legacy HTTP+SSE server (the reference server) behind mcp-front: the SDK client over
// the relayed stream, our own endpoint and session ids, express.json() and a mount path.
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { CreateMessageRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { connectClient, type ConnectOptions, textOf as text } from './helpers/clients';
import { DEV_TOKEN, PROD_TOKEN, configWith, startEverything, startFront, type Front, type Upstream } from './helpers/servers';
import { errorBody, openEventStream } from './fixtures/remote-streams';

let upstream: Upstream;
/** Mounted at the root, nothing in front. */
let front: Front;
/** Mounted under /gateway after express.json(), with a short keep-alive interval. */
let gateway: Front;
const clients: Client[] = [];

beforeAll(async () => {
  upstream = await startEverything('sse');
  const servers = { everything: { url: `${upstream.origin}/sse` } };
  front = await startFront(configWith(servers));
  gateway = await startFront(configWith(servers, { keepAlive: '200ms' }), { mount: '/gateway', json: true });
});

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await front?.close();
  await gateway?.close();
  await upstream?.close();
});

async function connect(base: string, token = DEV_TOKEN, options: ConnectOptions = {}): Promise<Client> {
  const client = await connectClient(base, 'everything', 'sse', token, options);
  clients.push(client);
  return client;
}

function postMessage(url: string, token: string, message: object): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(message),
  });
}

const initialize = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2024-11-05', capabilities: {}, clientInfo: { name: 'raw', version: '1.0.0' } },
};

test.each([
  ['at the root', () => front.url],
  ['under /gateway after express.json()', () => gateway.url],
])('initialize, tools/list, echo and get-sum round-trip %s', async (_where, base) => {
  const client = await connect(base());
  const { tools } = await client.listTools();
  expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining(['echo', 'get-sum']));
  expect(text(await client.callTool({ name: 'echo', arguments: { message: 'legacy' } }))).toBe('Echo: legacy');
  expect(text(await client.callTool({ name: 'get-sum', arguments: { a: 40, b: 2 } }))).toBe('The sum of 40 and 2 is 42.');
});

test('progress notifications stream through while the call is running', async () => {
  const client = await connect(gateway.url);
  const seen: Array<{ progress: number; settled: boolean }> = [];
  let settled = false;
  const call = client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 3 } }, undefined, {
    onprogress: (p) => seen.push({ progress: p.progress, settled }),
  });
  const result = await call.finally(() => (settled = true));
  // The SDK's SSEClientTransport dispatches a chunk's events synchronously but progress in a
  // microtask: the last progress, sent just before the result, is dropped by the client even
  // without a proxy (measured: 8 of 8 direct runs). Steps 1 and 2 prove the stream is unbuffered.
  expect(seen.slice(0, 2)).toEqual([
    { progress: 1, settled: false },
    { progress: 2, settled: false },
  ]);
  expect(text(result)).toContain('Long running operation completed');
});

test("a server's sampling request is answered by the client through the proxy", async () => {
  const client = await connect(front.url, DEV_TOKEN, { capabilities: { sampling: {} } });
  client.setRequestHandler(CreateMessageRequestSchema, async () => ({
    model: 'proxy-test-model',
    role: 'assistant',
    content: { type: 'text', text: 'sampled answer' },
  }));
  const result = await client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'ping', maxTokens: 5 } });
  expect(text(result)).toContain('proxy-test-model');
});

test('the endpoint event names our own message route under the mount path, and the session is bound to its token', async () => {
  const stream = await openEventStream(`${gateway.url}/everything/sse`, { headers: { Authorization: `Bearer ${DEV_TOKEN}` } });
  try {
    expect(stream.status).toBe(200);
    expect(stream.headers.get('x-accel-buffering')).toBe('no');
    const endpoint = await stream.next();
    expect(endpoint.event).toBe('endpoint');
    expect(endpoint.data).toMatch(/^\/gateway\/everything\/message\?sessionId=[A-Za-z0-9_-]{43}$/);
    const messageUrl = gateway.origin + endpoint.data;

    const stolen = await postMessage(messageUrl, PROD_TOKEN, initialize);
    expect(stolen.status).toBe(404);
    expect(await errorBody(stolen)).toEqual({ jsonrpc: '2.0', error: { code: -32000, message: expect.any(String) }, id: null });
    const unknown = await postMessage(`${gateway.url}/everything/message?sessionId=made-up`, DEV_TOKEN, initialize);
    expect(unknown.status).toBe(404);
    await unknown.body?.cancel();

    // The upstream's answer passes back as it is (202), minus its CORS headers.
    const own = await postMessage(messageUrl, DEV_TOKEN, initialize);
    expect(own.status).toBe(202);
    expect(own.headers.get('access-control-allow-origin')).toBeNull();
    await own.text();
    const answer = await stream.nextMatching((e) => e.event === 'message');
    expect(JSON.parse(answer.data)).toMatchObject({ jsonrpc: '2.0', id: 1, result: { serverInfo: expect.any(Object) } });

    // Idle stream: our keep-alive comment (200 ms in this config) arrives.
    const comment = await stream.nextMatching((e) => e.event === '' && e.data.includes('keepalive'));
    expect(comment.data).toBe('keepalive');
  } finally {
    stream.close();
    await stream.ended;
  }
});

test('a Streamable HTTP client reaches the legacy server on /mcp too, under a mount path after express.json() (bridged)', async () => {
  const client = await connectClient(gateway.url, 'everything', 'streamable', DEV_TOKEN);
  clients.push(client);
  expect(text(await client.callTool({ name: 'echo', arguments: { message: 'bridged' } }))).toBe('Echo: bridged');
});

test('a message without sessionId answers 400', async () => {
  const res = await postMessage(`${front.url}/everything/message`, DEV_TOKEN, initialize);
  expect(res.status).toBe(400);
  expect((await errorBody(res)).error.code).toBe(-32600);
});
