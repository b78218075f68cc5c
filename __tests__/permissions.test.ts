// Permissions per token (README: Permissions per token) on every route, against real servers:
// list answers filtered (JSON and SSE-streamed), uses refused with -32602 and never forwarded,
// the log line, batches entry by entry, the 2026-07-28 stateless requests, and reload applying
// to the next message of a live session.
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import path from 'node:path';
import { connectClient, INITIALIZE, textOf, type ClientTransportKind, postModern } from './helpers/clients';
import { captureLogger, DEV_TOKEN, EVERYTHING, PROD_TOKEN, startEverything, startFront, type Front, type Upstream } from './helpers/servers';
import { startBridgeUpstream, type BridgeUpstream } from './fixtures/bridge-upstream';
import { startCapture, type CaptureServer } from './fixtures/remote-capture';
import { openEventStream, type EventStream } from './fixtures/remote-streams';
import type { McpFrontConfig, ServerPermissions } from '../lib/types';

const STDIO_SERVER = path.join(__dirname, 'fixtures', 'stdio-server.js');

/** What `dev` may use on the reference server; `prod` has no entry and no `"*"`: unrestricted. */
const DEV_ON_EVERYTHING: ServerPermissions = {
  tools: ['get-sum', 'get-tiny-*'],
  prompts: ['simple-prompt'],
  resources: ['demo://resource/static/document/*', 'demo://resource/dynamic/text/{resourceId}'],
};

let front: Front;
let bridge: BridgeUpstream;
let capture: CaptureServer;
let everythingHttp: Upstream;
let everythingSse: Upstream;
const logger = captureLogger();

function config(devTools: string[] = ['pid']): McpFrontConfig {
  const devOnly = (p: ServerPermissions) => ({ dev: p });
  return {
    proxy: { name: 'Test Proxy', auth: { kind: 'bearer_token', tokens: { dev: DEV_TOKEN, prod: PROD_TOKEN } } },
    mcpServers: {
      everything: { command: process.execPath, args: [EVERYTHING, 'stdio'], permissions: devOnly(DEV_ON_EVERYTHING) },
      'remote-http': { url: `${everythingHttp.origin}/mcp`, permissions: devOnly(DEV_ON_EVERYTHING) },
      'remote-sse': { url: `${everythingSse.origin}/sse`, permissions: devOnly(DEV_ON_EVERYTHING) },
      'bridge-legacy': { url: `${bridge.origin}/legacy/sse`, permissions: devOnly({ tools: ['get-sum'] }) },
      'bridge-modern': { url: `${bridge.origin}/modern/mcp`, permissions: devOnly({ tools: ['get-sum'] }) },
      capture: { url: `${capture.origin}/mcp`, permissions: { '*': { tools: ['get-sum'], prompts: [], resources: [] } } },
      'capture-sse': { url: `${capture.origin}/legacy/sse`, permissions: { '*': { tools: ['get-sum'] } } },
      stdio: { command: process.execPath, args: [STDIO_SERVER, '--modern'], permissions: { '*': { tools: devTools } } },
    },
  };
}

beforeAll(async () => {
  [bridge, capture, everythingHttp, everythingSse] = await Promise.all([startBridgeUpstream(), startCapture(), startEverything('streamableHttp'), startEverything('sse')]);
  front = await startFront(config(), { logger });
});

afterAll(async () => {
  await front?.close();
  await Promise.all([bridge?.close(), capture?.close(), everythingHttp?.close(), everythingSse?.close()]);
});

const headers = (sessionId?: string, token = DEV_TOKEN) => ({
  Authorization: `Bearer ${token}`,
  'Content-Type': 'application/json',
  Accept: 'application/json, text/event-stream',
  'MCP-Protocol-Version': '2025-06-18',
  ...(sessionId ? { 'Mcp-Session-Id': sessionId } : {}),
});
const post = (server: string, body: unknown, sessionId?: string) =>
  fetch(`${front.url}/${server}/mcp`, { method: 'POST', headers: headers(sessionId), body: typeof body === 'string' ? body : JSON.stringify(body) });
const call = (id: number, name: unknown) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {} } });
const unknownTool = (id: number, name: string) => ({ jsonrpc: '2.0', id, error: { code: -32602, message: `Unknown tool: ${name}` } });

const matches = (patterns: string[], name: string) => patterns.some((p) => new RegExp(`^${p.split('*').map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`).test(name));

/** Every route an SDK client can use to the reference server. */
const EVERYTHING_ROUTES: [string, ClientTransportKind, string][] = [
  ['everything', 'sse', 'stdio session, legacy SSE client'],
  ['everything', 'streamable', 'stdio session, Streamable HTTP client'],
  ['remote-http', 'streamable', 'Streamable HTTP passthrough (SSE-streamed answers)'],
  ['remote-sse', 'sse', 'legacy SSE passthrough'],
];

describe.each(EVERYTHING_ROUTES)('%s over %s (%s)', (server, kind) => {
  let dev: Client;
  let prod: Client;
  beforeAll(async () => {
    [dev, prod] = await Promise.all([connectClient(front.url, server, kind, DEV_TOKEN), connectClient(front.url, server, kind, PROD_TOKEN)]);
  });
  afterAll(async () => {
    await Promise.all([dev?.close(), prod?.close()]);
  });

  it('tools/list loses what the token may not use, and only that', async () => {
    const [mine, all] = await Promise.all([dev.listTools(), prod.listTools()]);
    const allowed = all.tools.filter((t) => matches(DEV_ON_EVERYTHING.tools!, t.name));
    expect(allowed.length).toBeGreaterThan(1);
    expect(allowed.length).toBeLessThan(all.tools.length);
    // Every other field of each entry untouched, in the server's order.
    expect(mine.tools).toEqual(allowed);
  });

  it('prompts/list, resources/list and resources/templates/list alike', async () => {
    const [prompts, allPrompts] = await Promise.all([dev.listPrompts(), prod.listPrompts()]);
    expect(prompts.prompts).toEqual(allPrompts.prompts.filter((p) => p.name === 'simple-prompt'));
    expect(prompts.prompts).toHaveLength(1);
    const [resources, allResources] = await Promise.all([dev.listResources(), prod.listResources()]);
    const keep = allResources.resources.filter((r) => r.uri.startsWith('demo://resource/static/document/'));
    expect(keep.length).toBeGreaterThan(0);
    expect(resources.resources).toEqual(keep);
    expect(resources.nextCursor).toEqual(allResources.nextCursor);
    const [templates, allTemplates] = await Promise.all([dev.listResourceTemplates(), prod.listResourceTemplates()]);
    expect(allTemplates.resourceTemplates.length).toBeGreaterThan(1);
    expect(templates.resourceTemplates.map((t) => t.uriTemplate)).toEqual(['demo://resource/dynamic/text/{resourceId}']);
  });

  it('uses: allowed ones answered by the server, the others refused with -32602 whether they exist or not', async () => {
    expect(textOf(await dev.callTool({ name: 'get-sum', arguments: { a: 2, b: 3 } }))).toContain('5');
    for (const name of ['echo', 'Get-sum', 'get-sum ', 'no-such-tool']) {
      await expect(dev.callTool({ name, arguments: { message: 'x' } })).rejects.toMatchObject({ code: -32602, message: expect.stringContaining(`Unknown tool: ${name}`) });
    }
    await expect(dev.getPrompt({ name: 'args-prompt', arguments: { city: 'x' } })).rejects.toMatchObject({ code: -32602, message: expect.stringContaining('Unknown prompt: args-prompt') });
    // A template allows its own text, not the URIs it expands to.
    await expect(dev.readResource({ uri: 'demo://resource/dynamic/text/1' })).rejects.toMatchObject({ code: -32602, message: expect.stringContaining('Unknown resource: demo://resource/dynamic/text/1') });
    await expect(dev.subscribeResource({ uri: 'demo://resource/dynamic/text/1' })).rejects.toMatchObject({ code: -32602 });
    await expect(dev.complete({ ref: { type: 'ref/prompt', name: 'completable-prompt' }, argument: { name: 'department', value: 'E' } })).rejects.toMatchObject({ code: -32602, message: expect.stringContaining('Unknown prompt: completable-prompt') });
    // The unrestricted token is untouched.
    expect(textOf(await prod.callTool({ name: 'echo', arguments: { message: 'hello' } }))).toContain('hello');
  });
});

describe('the refused use never reaches the server', () => {
  it.each([
    ['bridge-modern', 'sse'],
    ['bridge-legacy', 'streamable'],
  ] as const)('bridge %s, %s client', async (server, kind) => {
    const client = await connectClient(front.url, server, kind, DEV_TOKEN);
    try {
      await expect(client.callTool({ name: 'echo', arguments: {} })).rejects.toMatchObject({ code: -32602, message: expect.stringContaining('Unknown tool: echo') });
      // Answered after it: had the refused call been forwarded, it would be logged before.
      await client.callTool({ name: 'get-sum', arguments: {} });
    } finally {
      await client.close();
    }
    const bodies = bridge.log.filter((e) => e.type === 'request').map((e) => e.body);
    expect(bodies.some((b) => b.includes('"get-sum"'))).toBe(true);
    expect(bodies.some((b) => b.includes('"echo"'))).toBe(false);
  });

  it('Streamable HTTP passthrough: a batch is decided entry by entry', async () => {
    const logged = logger.entries.length;
    const init = await post('capture', INITIALIZE);
    const sessionId = init.headers.get('mcp-session-id')!;
    await init.text();
    const batch = [call(2, 'echo'), call(3, 'get-sum'), { jsonrpc: '2.0', id: 4, method: 'prompts/get', params: { name: 'p' } }, { jsonrpc: '2.0', id: 5, method: 'resources/read', params: { uri: 'file:///etc/passwd' } }];
    const res = await post('capture', batch, sessionId);
    expect(res.status).toBe(200);
    // (The recording upstream answers a batch with one message; only the proxy's own answers are checked.)
    const answers = (await res.json()) as { id: number }[];
    expect(answers.filter((a) => a.id !== undefined).sort((a, b) => a.id - b.id)).toEqual([
      unknownTool(2, 'echo'),
      { jsonrpc: '2.0', id: 4, error: { code: -32602, message: 'Unknown prompt: p' } },
      { jsonrpc: '2.0', id: 5, error: { code: -32602, message: 'Unknown resource: file:///etc/passwd' } },
    ]);
    const forwarded = capture.requests().filter((e) => e.body.includes('get-sum'));
    expect(forwarded.map((e) => JSON.parse(e.body))).toEqual([[call(3, 'get-sum')]]);
    expect(capture.requests().some((e) => /echo|passwd|"p"/.test(e.body))).toBe(false);
    // One summary line for the batch: the first refusal's fields, and how many there were.
    const denied = logger.entries.slice(logged).filter((e) => e.message === 'permission denied');
    expect(denied).toEqual([{ level: 'warn', message: 'permission denied', fields: { token: 'dev', server: 'capture', method: 'tools/call', name: 'echo', count: 3, batch: 4 } }]);
    expect(logger.text()).not.toContain(DEV_TOKEN);
  });

  it('a name that is not a string is refused', async () => {
    const res = await post('capture', call(6, ['get-sum']));
    expect(await res.json()).toEqual(unknownTool(6, '["get-sum"]'));
  });

  it('legacy SSE passthrough: 202 for the POST, the error on the stream', async () => {
    const stream: EventStream = await openEventStream(`${front.url}/capture-sse/sse`, { headers: { Authorization: `Bearer ${DEV_TOKEN}` } });
    try {
      const endpoint = await stream.next();
      const res = await fetch(front.origin + endpoint.data, { method: 'POST', headers: headers(), body: JSON.stringify(call(7, 'echo')) });
      expect(res.status).toBe(202);
      await res.text();
      const event = await stream.nextMatching((e) => e.event === 'message');
      expect(JSON.parse(event.data)).toEqual(unknownTool(7, 'echo'));
      expect(capture.requests().some((e) => e.body.includes('"echo"'))).toBe(false);
    } finally {
      stream.close();
      await stream.ended;
    }
  });
});

describe('stateless 2026-07-28 requests', () => {
  const modern = (id: number, method: string, params: Record<string, unknown>, name?: string, body?: string) =>
    postModern(`${front.url}/stdio/mcp`, DEV_TOKEN, id, method, params, { name, body });

  it('the body decides: refused, allowed, and the list filtered', async () => {
    const refused = await modern(1, 'tools/call', { name: 'echo', arguments: { message: 'x' } }, 'echo');
    expect(refused.status).toBe(200);
    expect(await refused.json()).toEqual(unknownTool(1, 'echo'));
    const allowed = await modern(2, 'tools/call', { name: 'pid', arguments: {} }, 'pid');
    expect(allowed.status).toBe(200);
    expect(((await allowed.json()) as { result: unknown }).result).toBeDefined();
    const listed = await modern(3, 'tools/list', {});
    expect(((await listed.json()) as { result: { tools: { name: string }[] } }).result.tools.map((t) => t.name)).toEqual(['pid']);
  });

  it.each([
    ['an allowed header over a refused body', 'pid', 'echo'],
    ['a refused header over an allowed body', 'echo', 'pid'],
  ])('an Mcp-Name header that disagrees with the body is refused (400, -32020): %s', async (_what, header, bodyName) => {
    const res = await modern(4, 'tools/call', { name: bodyName, arguments: {} }, header);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: number } }).error.code).toBe(-32020);
  });
});

describe('reload', () => {
  it('new permissions apply to the next message of a live session', async () => {
    const client = await connectClient(front.url, 'stdio', 'streamable', DEV_TOKEN);
    try {
      expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['pid']);
      await expect(client.callTool({ name: 'echo', arguments: { message: 'x' } })).rejects.toMatchObject({ code: -32602 });
      await front.router.reload(config(['echo']));
      expect(textOf(await client.callTool({ name: 'echo', arguments: { message: 'now allowed' } }))).toBe('now allowed');
      await expect(client.callTool({ name: 'pid', arguments: {} })).rejects.toMatchObject({ code: -32602, message: expect.stringContaining('Unknown tool: pid') });
      expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['echo']);
    } finally {
      await client.close();
      await front.router.reload(config());
    }
  });
});
