// Issue 7, part 2: the stateless MCP revision 2026-07-28 through the remote Streamable HTTP
// passthrough. The upstream is a v2-SDK server (fixtures/v2-server.mjs, dual-era); the clients are
// the v2 SDK client pinned to 2026-07-28, raw fetch for what a client cannot be made to do, and —
// for the matrix at the end — the SDK 1.x client and the v2 client in its legacy and auto modes.
// Facts behind the assertions: docs/protocol-2026-07-28.md.
import path from 'node:path';
import { Client as V2Client, StreamableHTTPClientTransport as V2Transport } from '@modelcontextprotocol/client';
import type { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { liveSessionCount } from '../lib/mcp-front';
import { connectClient, textOf as text } from './helpers/clients';
import { DEV_TOKEN, PROD_TOKEN, configWith, startFront, startServerProcess, type Front, type Upstream } from './helpers/servers';

const FIXTURE = path.join(__dirname, 'fixtures', 'v2-server.mjs');
const MODERN = '2026-07-28';

/** The v2 fixture over Streamable HTTP on a free port; resolves on its "listening on port" line. */
const startV2Fixture = (env: Record<string, string> = {}) => startServerProcess([FIXTURE, 'http'], { PORT: '0', ...env }, /listening on port (\d+)/);

let upstream: Upstream;
let front: Front;
let parsedFront: Front;
const closers: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  upstream = await startV2Fixture();
  const servers = {
    v2: { url: `${upstream.origin}/mcp` },
    devonly: { url: `${upstream.origin}/mcp`, authTokens: ['dev'] },
  };
  front = await startFront(configWith(servers));
  // Host apps often run express.json() first: the proxy then re-serializes the parsed body, which
  // must still agree with the mirrored headers (-32020 otherwise).
  parsedFront = await startFront(configWith(servers), { json: true });
});

afterAll(async () => {
  await Promise.allSettled(closers.map((close) => close()));
  await front?.close();
  await parsedFront?.close();
  await upstream?.close();
});

// --- helpers ---------------------------------------------------------------------------------

type Negotiation = 'pinned' | 'auto' | 'legacy';

/** The v2 SDK client through the proxy, with a bearer token and an elicitation handler. */
async function connectV2(negotiation: Negotiation = 'pinned', token = DEV_TOKEN, base = front.url, server = 'v2'): Promise<V2Client> {
  const client = new V2Client(
    { name: 'mcp-front-test-v2', version: '1.0.0' },
    {
      capabilities: { elicitation: { form: {} } },
      ...(negotiation !== 'legacy' && { versionNegotiation: { mode: negotiation === 'pinned' ? { pin: MODERN } : 'auto' } }),
    },
  );
  client.setRequestHandler('elicitation/create', async () => ({ action: 'accept', content: { confirm: true } }));
  const transport = new V2Transport(new URL(`${base}/${server}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
  await client.connect(transport);
  closers.push(() => client.close());
  return client;
}

async function connectV1(token = DEV_TOKEN): Promise<V1Client> {
  const client = await connectClient(front.url, 'v2', 'streamable', token, { capabilities: { elicitation: {} } });
  closers.push(() => client.close());
  return client;
}

const envelope = (version = MODERN, capabilities: object = { elicitation: { form: {} } }) => ({
  'io.modelcontextprotocol/protocolVersion': version,
  'io.modelcontextprotocol/clientInfo': { name: 'raw-fetch', version: '1.0.0' },
  'io.modelcontextprotocol/clientCapabilities': capabilities,
});

interface RawRequest {
  id?: number | string;
  method: string;
  params?: Record<string, unknown>;
  /** Mirrored headers; defaults derived from the body as a conforming client would. */
  headers?: Record<string, string | undefined>;
  token?: string | null;
  base?: string;
  server?: string;
}

/** A raw 2026-07-28 POST: body with the `_meta` envelope, and the mirrored headers. */
async function modern(req: RawRequest): Promise<{ status: number; headers: Headers; messages: Array<Record<string, any>> }> {
  const { id = 1, method, params = {}, token = DEV_TOKEN, base = front.url, server = 'v2' } = req;
  const meta: Record<string, unknown> = { ...envelope(), ...(params._meta as object) };
  const body = { jsonrpc: '2.0', id, method, params: { ...params, _meta: meta } };
  const name = (params.name ?? params.uri) as string | undefined;
  const headers: Record<string, string | undefined> = {
    'Content-Type': 'application/json',
    Accept: 'application/json, text/event-stream',
    'MCP-Protocol-Version': String(meta['io.modelcontextprotocol/protocolVersion']),
    'Mcp-Method': method,
    ...(name !== undefined && { 'Mcp-Name': name }),
    ...(token !== null && { Authorization: `Bearer ${token}` }),
    ...req.headers,
  };
  const response = await fetch(`${base}/${server}/mcp`, {
    method: 'POST',
    headers: Object.fromEntries(Object.entries(headers).filter((e): e is [string, string] => e[1] !== undefined)),
    body: JSON.stringify(body),
  });
  const raw = await response.text();
  const messages = /text\/event-stream/.test(response.headers.get('content-type') ?? '')
    ? raw
        .split(/\r?\n/)
        .filter((line) => line.startsWith('data:'))
        .map((line) => JSON.parse(line.slice(5)))
    : raw
      ? [JSON.parse(raw)]
      : [];
  return { status: response.status, headers: response.headers, messages };
}

interface Seen {
  httpMethod: string;
  method?: string;
  headers: Record<string, string>;
}

/** What the fixture received (its own introspection route, outside MCP). */
async function seenUpstream(): Promise<Seen[]> {
  return (await (await fetch(`${upstream.origin}/seen`)).json()) as Seen[];
}

// --- the v2 client, pinned to 2026-07-28 ------------------------------------------------------

describe('v2 client pinned to 2026-07-28 through the passthrough', () => {
  test('connects with server/discover, without initialize or a session', async () => {
    const before = (await seenUpstream()).length;
    const client = await connectV2('pinned');
    expect(client.getNegotiatedProtocolVersion()).toBe(MODERN);
    expect(client.getServerVersion()?.name).toBe('v2-fixture');
    const sent = (await seenUpstream()).slice(before);
    expect(sent.map((s) => s.method)).toEqual(['server/discover']);
    expect(sent[0].headers['mcp-session-id']).toBeUndefined();
    expect(liveSessionCount(front.router)).toBe(0);
  });

  test('tools/list and tools/call echo', async () => {
    const client = await connectV2('pinned');
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(['confirm', 'count', 'echo']);
    expect(text(await client.callTool({ name: 'echo', arguments: { message: 'stateless through the front' } }))).toBe(
      'Echo: stateless through the front',
    );
  });

  test('progress notifications arrive on the request’s own stream before the result', async () => {
    const client = await connectV2('pinned');
    const progress: number[] = [];
    const result = await client.callTool({ name: 'count', arguments: { steps: 3 } }, { onprogress: (p) => progress.push(p.progress) });
    expect(progress).toEqual([1, 2, 3]);
    expect(text(result)).toBe('counted to 3');
  });

  test('an input_required result is fulfilled by the client and retried, through the proxy', async () => {
    const client = await connectV2('pinned');
    const before = (await seenUpstream()).length;
    expect(text(await client.callTool({ name: 'confirm', arguments: { action: 'deploy' } }))).toBe('deploy: confirmed');
    // Two independent POSTs: the first answered input_required, the retry carried the answer.
    const calls = (await seenUpstream()).slice(before).filter((s) => s.method === 'tools/call');
    expect(calls).toHaveLength(2);
    expect(liveSessionCount(front.router)).toBe(0);
  });

  test('the mirrored headers reach the upstream; Authorization does not', async () => {
    const client = await connectV2('pinned');
    const before = (await seenUpstream()).length;
    await client.callTool({ name: 'echo', arguments: { message: 'headers' } });
    const [call] = (await seenUpstream()).slice(before).filter((s) => s.method === 'tools/call');
    expect(call.headers).toEqual({ 'mcp-protocol-version': MODERN, 'mcp-method': 'tools/call', 'mcp-name': 'echo' });
  });
});

// --- raw requests: what the client does not show ------------------------------------------------

describe('raw 2026-07-28 requests through the passthrough', () => {
  test('server/discover: supported versions, capabilities, serverInfo, resultType', async () => {
    const { status, headers, messages } = await modern({ id: 'd1', method: 'server/discover' });
    expect(status).toBe(200);
    expect(headers.get('mcp-session-id')).toBeNull();
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatchObject({
      jsonrpc: '2.0',
      id: 'd1',
      result: {
        resultType: 'complete',
        supportedVersions: expect.arrayContaining([MODERN]),
        capabilities: { tools: expect.any(Object) },
        _meta: { 'io.modelcontextprotocol/serverInfo': { name: 'v2-fixture', version: '1.0.0' } },
      },
    });
  });

  test('input_required round trip by hand: inputRequests + requestState, retried on a new id', async () => {
    const first = await modern({ id: 10, method: 'tools/call', params: { name: 'confirm', arguments: { action: 'drop table' } } });
    expect(first.status).toBe(200);
    const asked = first.messages[0].result;
    expect(asked.resultType).toBe('input_required');
    expect(asked.inputRequests.confirm.method).toBe('elicitation/create');
    expect(typeof asked.requestState).toBe('string');

    const retry = await modern({
      id: 11,
      method: 'tools/call',
      params: {
        name: 'confirm',
        arguments: { action: 'drop table' },
        inputResponses: { confirm: { action: 'accept', content: { confirm: true } } },
        requestState: asked.requestState,
      },
    });
    expect(retry.messages[0]).toMatchObject({ id: 11, result: { resultType: 'complete', content: [{ type: 'text', text: 'drop table: confirmed' }] } });
  });

  test('progress by hand: an SSE response with notifications/progress for our token, then the result', async () => {
    const { status, headers, messages } = await modern({
      id: 12,
      method: 'tools/call',
      params: { name: 'count', arguments: { steps: 2 }, _meta: { progressToken: 'tok-1' } },
    });
    expect(status).toBe(200);
    expect(headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(headers.get('x-accel-buffering')).toBe('no');
    expect(messages.map((m) => m.method ?? `result:${m.id}`)).toEqual(['notifications/progress', 'notifications/progress', 'result:12']);
    expect(messages[0].params).toMatchObject({ progressToken: 'tok-1', progress: 1, total: 2 });
  });

  test('an unsupported version gets the upstream’s 400 -32022 naming the supported versions', async () => {
    const { status, messages } = await modern({ id: 13, method: 'tools/list', params: { _meta: envelope('2099-01-01') } });
    expect(status).toBe(400);
    expect(messages[0]).toMatchObject({ id: 13, error: { code: -32022, data: { supported: [MODERN], requested: '2099-01-01' } } });
  });

  test('a header/body mismatch gets 400 -32020 from the proxy, which never forwards it', async () => {
    const { status, messages } = await modern({
      id: 14,
      method: 'tools/call',
      params: { name: 'echo', arguments: { message: 'x' } },
      headers: { 'Mcp-Name': 'not-echo' },
    });
    expect(status).toBe(400);
    expect(messages[0]).toMatchObject({ id: 14, error: { code: -32020 } });
  });

  test('a missing Mcp-Method header gets 400 -32020 from the proxy', async () => {
    const { status, messages } = await modern({ id: 15, method: 'tools/list', headers: { 'Mcp-Method': undefined } });
    expect(status).toBe(400);
    expect(messages[0].error.code).toBe(-32020);
  });

  test('with express.json() before the router, the re-serialized body still matches its headers', async () => {
    const name = 'ünïcode tool name'; // not header-safe: carried base64-encoded in Mcp-Name
    const encoded = `=?base64?${Buffer.from(name).toString('base64')}?=`;
    const ok = await modern({ base: parsedFront.url, id: 16, method: 'tools/call', params: { name: 'echo', arguments: { message: 'ä€😀' } } });
    expect(text(ok.messages[0].result)).toBe('Echo: ä€😀');
    const unknownTool = await modern({ base: parsedFront.url, id: 17, method: 'tools/call', params: { name, arguments: {} }, headers: { 'Mcp-Name': encoded } });
    // Past header validation (no -32020): the tool simply does not exist.
    expect(JSON.stringify(unknownTool.messages[0])).not.toContain('-32020');
  });

  test('Mcp-Param-* headers reach the upstream; Authorization and Cookie do not', async () => {
    const before = (await seenUpstream()).length;
    const { status } = await modern({ id: 18, method: 'tools/list', headers: { 'Mcp-Param-Region': 'us-west1', Cookie: 'sid=secret' } });
    expect(status).toBe(200);
    const [list] = (await seenUpstream()).slice(before);
    expect(list.headers).toEqual({ 'mcp-protocol-version': MODERN, 'mcp-method': 'tools/list', 'mcp-param-region': 'us-west1' });
  });

  test('GET on the endpoint: the upstream’s 405 passes through (no GET stream in 2026-07-28)', async () => {
    const response = await fetch(`${front.url}/v2/mcp`, { headers: { Authorization: `Bearer ${DEV_TOKEN}`, Accept: 'text/event-stream' } });
    expect(response.status).toBe(405);
    await response.body?.cancel();
  });
});

// --- authentication per request ----------------------------------------------------------------

describe('authentication and authorization on every stateless request', () => {
  test.each([
    { what: 'no token', token: null, status: 401 },
    { what: 'a wrong token', token: 'not-a-configured-token', status: 401 },
  ])('$what → $status with WWW-Authenticate, upstream untouched', async ({ token, status }) => {
    const before = (await seenUpstream()).length;
    const { status: got, headers, messages } = await modern({ id: 20, method: 'server/discover', token });
    expect(got).toBe(status);
    expect(headers.get('www-authenticate')).toMatch(/^Bearer realm="Test Proxy"/);
    expect(messages[0].error).toBeDefined();
    expect((await seenUpstream()).length).toBe(before);
  });

  test('a valid token that the server does not allow → 403, upstream untouched', async () => {
    const before = (await seenUpstream()).length;
    const denied = await modern({ id: 21, method: 'tools/call', params: { name: 'echo', arguments: { message: 'x' } }, token: PROD_TOKEN, server: 'devonly' });
    expect(denied.status).toBe(403);
    expect((await seenUpstream()).length).toBe(before);
    const allowed = await modern({ id: 22, method: 'tools/call', params: { name: 'echo', arguments: { message: 'x' } }, token: DEV_TOKEN, server: 'devonly' });
    expect(allowed.status).toBe(200);
  });

  test('the v2 client with a wrong token fails at connect (the discover probe gets 401)', async () => {
    await expect(connectV2('pinned', 'not-a-configured-token')).rejects.toThrow();
  });

  test('the token is checked on each request: two tokens interleave with no session to bind to', async () => {
    for (let i = 0; i < 3; i++) {
      for (const token of [DEV_TOKEN, PROD_TOKEN]) {
        const { status, headers } = await modern({ id: 30 + i, method: 'tools/call', params: { name: 'echo', arguments: { message: `${i}` } }, token });
        expect(status).toBe(200);
        expect(headers.get('mcp-session-id')).toBeNull();
      }
    }
    expect(liveSessionCount(front.router)).toBe(0);
  });
});

// --- the matrix: every client generation against the dual-era v2 server -------------------------

// The v2 server's 2025 leg is the SDK's stateless fallback: `initialize` is answered without an
// Mcp-Session-Id, GET/DELETE get 405. Push-style elicitation/sampling (2025) cannot work there —
// the client's answer arrives as a new POST on a fresh instance — so `confirm` is modern-only here.
describe('client matrix against the v2 fixture through the passthrough', () => {
  type Op = 'list' | 'echo' | 'progress';
  interface Driver {
    listNames(): Promise<string[]>;
    echo(message: string): Promise<string>;
    progress(): Promise<number[]>;
    era: string;
  }
  const drivers: Record<string, () => Promise<Driver>> = {
    'SDK 1.x client (2025-11-25)': async () => {
      const c = await connectV1();
      return {
        era: 'legacy',
        listNames: async () => (await c.listTools()).tools.map((t) => t.name),
        echo: async (message) => text(await c.callTool({ name: 'echo', arguments: { message } })),
        progress: async () => {
          const seen: number[] = [];
          await c.callTool({ name: 'count', arguments: { steps: 2 } }, undefined, { onprogress: (p) => seen.push(p.progress) });
          return seen;
        },
      };
    },
    ...Object.fromEntries(
      (['legacy', 'auto', 'pinned'] as const).map((mode) => [
        `v2 client, versionNegotiation ${mode}`,
        async (): Promise<Driver> => {
          const c = await connectV2(mode);
          return {
            era: c.getNegotiatedProtocolVersion() === MODERN ? 'modern' : 'legacy',
            listNames: async () => (await c.listTools()).tools.map((t) => t.name),
            echo: async (message) => text(await c.callTool({ name: 'echo', arguments: { message } })),
            progress: async () => {
              const seen: number[] = [];
              await c.callTool({ name: 'count', arguments: { steps: 2 } }, { onprogress: (p) => seen.push(p.progress) });
              return seen;
            },
          };
        },
      ]),
    ),
  };
  const expectedEra: Record<string, string> = {
    'SDK 1.x client (2025-11-25)': 'legacy',
    'v2 client, versionNegotiation legacy': 'legacy',
    'v2 client, versionNegotiation auto': 'modern',
    'v2 client, versionNegotiation pinned': 'modern',
  };
  const ops: Op[] = ['list', 'echo', 'progress'];

  describe.each(Object.keys(drivers))('%s', (name) => {
    let driver: Driver;
    beforeAll(async () => {
      driver = await drivers[name]();
    });

    test(`negotiates the ${expectedEra[name]} era`, () => {
      expect(driver.era).toBe(expectedEra[name]);
    });

    test.each(ops)('%s', async (op) => {
      if (op === 'list') expect((await driver.listNames()).sort()).toEqual(['confirm', 'count', 'echo']);
      if (op === 'echo') expect(await driver.echo(`matrix ${name}`)).toBe(`Echo: matrix ${name}`);
      if (op === 'progress') expect(await driver.progress()).toEqual([1, 2]);
    });
  });

  test('no client left a session bound at the proxy (the upstream issues none)', () => {
    expect(liveSessionCount(front.router)).toBe(0);
  });
});
