// A remote Streamable HTTP server (the reference server) behind mcp-front, driven by the SDK
// client: round trips, streamed progress, server-to-client requests, session ownership.
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CreateMessageRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { connectClient, type ConnectOptions, textOf as text } from './helpers/clients';
import { DEV_TOKEN, PROD_TOKEN, configWith, startEverything, startFront, type Front, type Upstream } from './helpers/servers';
import { errorBody, openEventStream } from './fixtures/remote-streams';

let upstream: Upstream;
let front: Front;
const clients: Client[] = [];

beforeAll(async () => {
  upstream = await startEverything('streamableHttp');
  front = await startFront(configWith({ everything: { url: `${upstream.origin}/mcp` } }));
});

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await front?.close();
  await upstream?.close();
});

async function connect(token = DEV_TOKEN, options: ConnectOptions = {}): Promise<Client> {
  const client = await connectClient(front.url, 'everything', 'streamable', token, options);
  clients.push(client);
  return client;
}

function sessionOf(client: Client): string {
  const id = (client.transport as StreamableHTTPClientTransport).sessionId;
  if (!id) throw new Error('no session id');
  return id;
}

/** A raw Streamable HTTP POST, as a client that holds (or guesses) a session id. */
function post(token: string, sessionId: string | undefined, message: object): Promise<Response> {
  const headers: Record<string, string> = {
    Authorization: `Bearer ${token}`,
    'Content-Type': 'application/json',
    Accept: 'application/json, text/event-stream',
    'MCP-Protocol-Version': '2025-06-18',
  };
  if (sessionId !== undefined) headers['Mcp-Session-Id'] = sessionId;
  return fetch(`${front.url}/everything/mcp`, { method: 'POST', headers, body: JSON.stringify(message) });
}

const toolsList = { jsonrpc: '2.0', id: 7, method: 'tools/list' };

test('initialize, tools/list, tools/call echo and get-sum round-trip', async () => {
  const client = await connect();
  expect(client.getServerVersion()?.name).toBeTruthy();
  const { tools } = await client.listTools();
  expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining(['echo', 'get-sum']));
  expect(text(await client.callTool({ name: 'echo', arguments: { message: 'through the front' } }))).toBe('Echo: through the front');
  expect(text(await client.callTool({ name: 'get-sum', arguments: { a: 2, b: 3 } }))).toBe('The sum of 2 and 3 is 5.');
});

test('progress notifications stream through before the result', async () => {
  const client = await connect();
  const progress: number[] = [];
  const result = await client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 3 } }, undefined, {
    onprogress: (p) => progress.push(p.progress),
  });
  // The SDK drops progress for a request that has already been answered: all three arrived first.
  expect(progress).toEqual([1, 2, 3]);
  expect(text(result)).toContain('Long running operation completed');
});

test("a server's sampling request is answered by the client through the proxy", async () => {
  const client = await connect(DEV_TOKEN, { capabilities: { sampling: {} } });
  const prompts: string[] = [];
  client.setRequestHandler(CreateMessageRequestSchema, async (request) => {
    const content = request.params.messages[0]?.content as { text?: string };
    prompts.push(content.text ?? '');
    return { model: 'proxy-test-model', role: 'assistant', content: { type: 'text', text: 'sampled answer' } };
  });
  const result = await client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'ping', maxTokens: 5 } });
  expect(prompts).toEqual([expect.stringContaining('ping')]);
  expect(text(result)).toContain('proxy-test-model');
  expect(text(result)).toContain('sampled answer');
});

test("a session belongs to its token: another token, an unknown id and a deleted session get 404", async () => {
  const client = await connect();
  const id = sessionOf(client);

  const own = await post(DEV_TOKEN, id, toolsList);
  expect(own.status).toBe(200);
  expect(await own.text()).toContain('echo');

  const stolen = await post(PROD_TOKEN, id, toolsList);
  expect(stolen.status).toBe(404);
  expect(await errorBody(stolen)).toEqual({ jsonrpc: '2.0', error: { code: -32000, message: expect.any(String) }, id: null });

  const unknown = await post(DEV_TOKEN, 'not-a-session-of-anyone', toolsList);
  expect(unknown.status).toBe(404);
  await unknown.body?.cancel();

  await (client.transport as StreamableHTTPClientTransport).terminateSession();
  const afterDelete = await post(DEV_TOKEN, id, toolsList);
  expect(afterDelete.status).toBe(404);
  await afterDelete.body?.cancel();
});

test('the standalone GET stream is an unbuffered event stream', async () => {
  const init = await post(DEV_TOKEN, undefined, {
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1.0.0' } },
  });
  expect(init.status).toBe(200);
  const id = init.headers.get('mcp-session-id');
  expect(id).toBeTruthy();
  // The upstream's CORS headers never reach the client: the router owns CORS.
  expect(init.headers.get('access-control-expose-headers')).toBeNull();
  await init.text();
  const initialized = await post(DEV_TOKEN, id!, { jsonrpc: '2.0', method: 'notifications/initialized' });
  expect(initialized.status).toBe(202);
  await initialized.text();

  const stream = await openEventStream(`${front.url}/everything/mcp`, {
    headers: { Authorization: `Bearer ${DEV_TOKEN}`, Accept: 'text/event-stream', 'Mcp-Session-Id': id!, 'MCP-Protocol-Version': '2025-06-18' },
  });
  try {
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(stream.headers.get('x-accel-buffering')).toBe('no');
  } finally {
    stream.close();
    await stream.ended;
  }
});

test('a legacy SSE client reaches the Streamable HTTP server on /sse too (bridged), its endpoint on our own route', async () => {
  const stream = await openEventStream(`${front.url}/everything/sse`, { headers: { Authorization: `Bearer ${DEV_TOKEN}` } });
  try {
    expect(stream.status).toBe(200);
    expect((await stream.next()).data).toMatch(/^\/everything\/message\?sessionId=[A-Za-z0-9_-]{43}$/);
  } finally {
    stream.close();
    await stream.ended;
  }
  const client = await connectClient(front.url, 'everything', 'sse', DEV_TOKEN);
  clients.push(client);
  expect(text(await client.callTool({ name: 'echo', arguments: { message: 'bridged' } }))).toBe('Echo: bridged');
});
