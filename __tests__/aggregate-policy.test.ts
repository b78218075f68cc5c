// Aggregates (README: Aggregates) and the policies: who may open one and what each token sees
// there (the members' `authTokens` and `permissions`, on the members' own names), the limits
// counting a client's request and session once, audit lines and metrics naming the member and the
// aggregate, OAuth resource URLs and scopes of an aggregate, and session ids that are not the
// client's own. Real stdio members (the fixture), the official SDK client on both transports where
// it applies, raw HTTP where the exact status, headers or body is the point.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { Registry } from 'prom-client';
import { liveSessionCount } from '../lib/mcp-front';
import type { McpFrontConfig } from '../lib/types';
import { openEventStream, type EventStream } from './fixtures/remote-streams';
import { connectClient, INITIALIZE, textOf, type ClientTransportKind } from './helpers/clients';
import { startAuthorizationServer, type AuthorizationServer } from './helpers/oauth';
import { challengeParams, oauthConfig, postMcp, PROXY_NAME, stdioServer } from './helpers/oauth-front';
import { captureLogger, startFront, type Front } from './helpers/servers';

const FIXTURE = path.join(__dirname, 'fixtures', 'stdio-server.js');
/** The stdio fixture's tools, in its order. */
const FIXTURE_TOOLS = ['pid', 'crash', 'big', 'echo', 'hang', 'hold', 'fail', 'flood', 'unrelayable', 'progress'];
const KINDS: ClientTransportKind[] = ['streamable', 'sse'];
const prefixed = (prefix: string, names: string[] = FIXTURE_TOOLS) => names.map((n) => `${prefix}__${n}`);

/** One token per role, so that counts and sessions do not mix between tests. */
const TOKENS = {
  dev: 'tok-dev-0123456789abcdefghijk',
  prod: 'tok-prod-0123456789abcdefghij',
  ops: 'tok-ops-0123456789abcdefghijk',
  stranger: 'tok-stranger-0123456789abcdef',
  'lim-mcp': 'tok-lim-mcp-0123456789abcdefg',
  'lim-sse': 'tok-lim-sse-0123456789abcdefg',
  sess: 'tok-sess-0123456789abcdefghij',
};
type TokenName = keyof typeof TOKENS;
const LIMITED: TokenName[] = ['lim-mcp', 'lim-sse', 'sess'];

let scratch: string;
beforeAll(() => {
  scratch = mkdtempSync(path.join(tmpdir(), 'mcp-front-aggregate-policy-'));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/**
 * `a` for every token but the stranger; `b` not for `prod`, and `ops` narrowed there to `echo` and
 * `p*` (its own names); `c` beside them, so that a list fans out to three members; `other` only for
 * the stranger. `b` records every line it reads: the proof that a refused call never reached it.
 */
function policyConfig(record: string, overrides: { b?: Partial<Record<'authTokens', TokenName[]>> } = {}): McpFrontConfig {
  return {
    version: '1.0',
    proxy: {
      name: 'Policy Proxy',
      auth: { kind: 'bearer_token', tokens: TOKENS },
      limits: { 'lim-mcp': { requests: { max: 3, window: '1h' } }, 'lim-sse': { requests: { max: 3, window: '1h' } }, sess: { maxSessions: 2 } },
    },
    mcpServers: {
      a: { command: process.execPath, args: [FIXTURE], authTokens: ['dev', 'prod', 'ops', ...LIMITED] },
      b: {
        command: process.execPath,
        args: [FIXTURE, `--record=${record}`],
        authTokens: overrides.b?.authTokens ?? ['dev', 'ops', ...LIMITED],
        permissions: { ops: { tools: ['echo', 'p*'] } },
      },
      c: { command: process.execPath, args: [FIXTURE], authTokens: ['dev', 'ops', ...LIMITED] },
      other: { command: process.execPath, args: [FIXTURE], authTokens: ['stranger'] },
    },
    aggregates: {
      all: { servers: ['a', 'b', 'c'] },
      'ops-only': { servers: ['a', 'b'], authTokens: ['ops'] },
    },
  };
}

const headersOf = (token: TokenName, sessionId?: string): Record<string, string> => ({
  Authorization: `Bearer ${TOKENS[token]}`,
  'Content-Type': 'application/json',
  Accept: 'application/json, text/event-stream',
  ...(sessionId === undefined ? {} : { 'Mcp-Session-Id': sessionId, 'MCP-Protocol-Version': '2025-06-18' }),
});
const request = (id: number, method: string, params?: object) => ({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) });
const INITIALIZED = { jsonrpc: '2.0', method: 'notifications/initialized' };

/** The JSON-RPC answer of a Streamable HTTP POST, sent as JSON or as an event stream (the last message event). */
async function answerOf(res: Response): Promise<Record<string, unknown> | undefined> {
  const text = await res.text();
  if (text === '') return undefined;
  if (!(res.headers.get('content-type') ?? '').startsWith('text/event-stream')) return JSON.parse(text) as Record<string, unknown>;
  const data = text
    .split('\n\n')
    .map((event) => event.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('\n'))
    .filter((d) => d !== '');
  return JSON.parse(data.at(-1)!) as Record<string, unknown>;
}

/** A raw Streamable HTTP session of `token` at `/<server>/mcp`, and a way to send it one message and read the answer. */
async function rawSession(front: Front, server: string, token: TokenName) {
  const post = async (body: object, sessionId?: string) => {
    const res = await fetch(`${front.url}/${server}/mcp`, { method: 'POST', headers: headersOf(token, sessionId), body: JSON.stringify(body) });
    return { status: res.status, headers: res.headers, body: await answerOf(res) };
  };
  const init = await post(INITIALIZE);
  if (init.status !== 200) throw new Error(`initialize at ${server}: ${init.status} ${JSON.stringify(init.body)}`);
  const id = init.headers.get('mcp-session-id')!;
  expect((await post(INITIALIZED, id)).status).toBe(202);
  return { id, send: (body: object) => post(body, id) };
}

async function callError(client: Client, name: string): Promise<{ code: number; message: string; data: unknown }> {
  const err = await client.callTool({ name, arguments: {} }).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof McpError)) throw new Error(`expected a JSON-RPC error for ${name}, got ${String(err)}`);
  return { code: err.code, message: err.message, data: err.data };
}

/** Resolves with the fields of the next line `message` the logger receives (subscribe before acting). */
function nextLog(logger: ReturnType<typeof captureLogger>, message: string): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    const original = logger.info;
    logger.info = (m, fields) => {
      original(m, fields);
      if (m !== message) return;
      logger.info = original;
      resolve(fields ?? {});
    };
  });
}

/** `text` with every `from` read as `to`: two answers that differ only by the name the client sent compare equal. */
const renamed = (value: unknown, from: string, to: string) => JSON.parse(JSON.stringify(value).split(from).join(to)) as unknown;

describe('who sees what', () => {
  let front: Front;
  const logger = captureLogger();
  let record: string;

  beforeAll(async () => {
    record = path.join(scratch, 'b-who.jsonl');
    front = await startFront(policyConfig(record), { logger });
  });
  afterAll(() => front?.close());

  const recorded = () => {
    try {
      return readFileSync(record, 'utf8');
    } catch {
      return '';
    }
  };

  test.each(KINDS)('%s: a token allowed on member a only sees a alone; b’s prefix reads as no prefix at all', async (kind) => {
    const startsBefore = logger.entries.filter((e) => e.message === 'session started' && e.fields.server === 'all').length;
    const client = await connectClient(front.url, 'all', kind, TOKENS.prod);
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(prefixed('a'));
    // b and c were not even opened for it: the session holds a's child only.
    const started = logger.entries.filter((e) => e.message === 'session started' && e.fields.server === 'all').slice(startsBefore);
    expect(started).toHaveLength(1);
    expect(Object.keys(started[0].fields).filter((k) => k.endsWith('_pid'))).toEqual(['a_pid']);

    const other = await callError(client, 'b__echo');
    const none = await callError(client, 'zz__echo');
    expect(other).toEqual({ code: -32602, message: 'MCP error -32602: Unknown tool: b__echo', data: undefined });
    expect(renamed(other, 'b__echo', 'zz__echo')).toEqual(none);
    expect(textOf(await client.callTool({ name: 'a__echo', arguments: { message: 'mine' } }))).toBe('mine');
    await client.close();
  });

  test('the same, byte for byte on the wire, for tools, resources and completions', async () => {
    const { send } = await rawSession(front, 'all', 'prod');
    const pairs: [object, object, string, string][] = [
      [request(2, 'tools/call', { name: 'b__echo', arguments: {} }), request(2, 'tools/call', { name: 'zz__echo', arguments: {} }), 'b__echo', 'zz__echo'],
      [request(3, 'resources/read', { uri: 'b+file:///etc/passwd' }), request(3, 'resources/read', { uri: 'zz+file:///etc/passwd' }), 'b+file', 'zz+file'],
      [request(4, 'prompts/get', { name: 'b__p' }), request(4, 'prompts/get', { name: 'zz__p' }), 'b__p', 'zz__p'],
      [request(5, 'completion/complete', { ref: { type: 'ref/prompt', name: 'b__p' }, argument: { name: 'x', value: '' } }), request(5, 'completion/complete', { ref: { type: 'ref/prompt', name: 'zz__p' }, argument: { name: 'x', value: '' } }), 'b__p', 'zz__p'],
    ];
    for (const [forbidden, unknown, shown, other] of pairs) {
      const a = await send(forbidden);
      const b = await send(unknown);
      expect(a.status).toBe(200);
      expect(renamed(a.body, shown, other)).toEqual(b.body);
    }
    expect((await send(request(6, 'tools/call', { name: 'b__echo', arguments: {} }))).body).toEqual({ jsonrpc: '2.0', id: 6, error: { code: -32602, message: 'Unknown tool: b__echo' } });
    expect((await send(request(7, 'resources/read', { uri: 'b+file:///x' }))).body).toEqual({ jsonrpc: '2.0', id: 7, error: { code: -32602, message: 'Unknown resource: b+file:///x' } });
  });

  test('an aggregate’s authTokens: a token not listed gets 403 at initialize, on both routes', async () => {
    for (const token of ['dev', 'prod'] as TokenName[]) {
      const init = await fetch(`${front.url}/ops-only/mcp`, { method: 'POST', headers: headersOf(token), body: JSON.stringify(INITIALIZE) });
      expect(init.status).toBe(403);
      expect(init.headers.get('mcp-session-id')).toBeNull();
      expect(await init.json()).toEqual({ jsonrpc: '2.0', id: null, error: { code: -32000, message: expect.stringMatching(/^Forbidden/) } });
      const sse = await fetch(`${front.url}/ops-only/sse`, { headers: { Authorization: `Bearer ${TOKENS[token]}` } });
      expect(sse.status).toBe(403);
      await sse.arrayBuffer();
    }
    const ops = await connectClient(front.url, 'ops-only', 'streamable', TOKENS.ops);
    expect((await ops.listTools()).tools.map((t) => t.name)).toEqual([...prefixed('a'), ...prefixed('b', ['pid', 'echo', 'progress'])]);
    await ops.close();
  });

  test('authTokens omitted: every token allowed on at least one member, and no other', async () => {
    const refused = await fetch(`${front.url}/all/mcp`, { method: 'POST', headers: headersOf('stranger'), body: JSON.stringify(INITIALIZE) });
    expect(refused.status).toBe(403);
    await refused.arrayBuffer();
    // The stranger's own server is not a member: it still reaches it there.
    const own = await fetch(`${front.url}/other/mcp`, { method: 'POST', headers: headersOf('stranger'), body: JSON.stringify(INITIALIZE) });
    expect(own.status).toBe(200);
    await own.arrayBuffer();
    const prod = await fetch(`${front.url}/all/mcp`, { method: 'POST', headers: headersOf('prod'), body: JSON.stringify(INITIALIZE) });
    expect(prod.status).toBe(200);
    await prod.arrayBuffer();
  });

  test.each(KINDS)('%s: a member’s permissions apply on its own names — the list is filtered, a forbidden call reads as an unknown name and never reaches it', async (kind) => {
    const client = await connectClient(front.url, 'all', kind, TOKENS.ops);
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual([...prefixed('a'), ...prefixed('b', ['pid', 'echo', 'progress']), ...prefixed('c')]);
    const warned = logger.entries.length;
    const forbidden = await callError(client, 'b__big');
    expect(forbidden).toEqual({ code: -32602, message: 'MCP error -32602: Unknown tool: b__big', data: undefined });
    expect(renamed(forbidden, 'b__big', 'zz__big')).toEqual(await callError(client, 'zz__big'));
    expect(logger.entries.slice(warned).filter((e) => e.message === 'permission denied')).toEqual([
      { level: 'warn', message: 'permission denied', fields: expect.objectContaining({ token: 'ops', server: 'b', method: 'tools/call', name: 'big' }) },
    ]);
    expect(recorded()).not.toContain('"big"');
    expect(textOf(await client.callTool({ name: 'b__echo', arguments: { message: 'allowed' } }))).toBe('allowed');
    expect(recorded()).toContain('"echo"');
    await client.close();
  });
});

describe('a reload that takes a member away from a token', () => {
  let front: Front;
  let record: string;

  beforeAll(async () => {
    record = path.join(scratch, 'b-reload.jsonl');
    front = await startFront(policyConfig(record));
  });
  afterAll(() => front?.close());

  test.each(KINDS)('%s: the next list leaves it out, a call to it is an unknown tool, and the session goes on', async (kind) => {
    await front.router.reload(policyConfig(record));
    const client = await connectClient(front.url, 'all', kind, TOKENS.dev);
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual([...prefixed('a'), ...prefixed('b'), ...prefixed('c')]);
    const sessions = liveSessionCount(front.router);

    await front.router.reload(policyConfig(record, { b: { authTokens: ['ops'] } }));
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual([...prefixed('a'), ...prefixed('c')]);
    const gone = await callError(client, 'b__echo');
    expect(renamed(gone, 'b__echo', 'zz__echo')).toEqual(await callError(client, 'zz__echo'));
    expect(textOf(await client.callTool({ name: 'a__echo', arguments: { message: 'still open' } }))).toBe('still open');
    expect(liveSessionCount(front.router)).toBe(sessions);
    await client.close();
  });
});

describe('a reload that changes what an aggregate reaches', () => {
  let front: Front;
  let record: string;

  beforeAll(async () => {
    record = path.join(scratch, 'b-upstream.jsonl');
    front = await startFront(policyConfig(record));
  });
  afterAll(() => front?.close());

  test('a server outside the aggregate changed: its sessions go on; a member changed: they end', async () => {
    const client = await connectClient(front.url, 'all', 'streamable', TOKENS.dev);
    const sessionId = (client.transport as StreamableHTTPClientTransport).sessionId!;
    const base = policyConfig(record);
    // `other` is no member: the aggregate keeps its transport and its sessions.
    await front.router.reload({ ...base, mcpServers: { ...base.mcpServers, other: { ...base.mcpServers.other, env: { CHANGED: '1' } } } });
    expect(textOf(await client.callTool({ name: 'a__echo', arguments: { message: 'still open' } }))).toBe('still open');
    expect(liveSessionCount(front.router)).toBe(1);
    // Member `c` reaches its server another way: every session of the aggregate ends with the old transport.
    await front.router.reload({ ...base, mcpServers: { ...base.mcpServers, c: { ...base.mcpServers.c, env: { CHANGED: '1' } } } });
    expect(liveSessionCount(front.router)).toBe(0);
    const gone = await fetch(`${front.url}/all/mcp`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${TOKENS.dev}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', 'Mcp-Session-Id': sessionId },
      body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list' }),
    });
    expect(gone.status).toBe(404);
    await gone.arrayBuffer();
    await client.close();
  });
});

describe('limits count the client’s requests and sessions once', () => {
  let front: Front;
  const logger = captureLogger();

  beforeAll(async () => {
    front = await startFront(policyConfig(path.join(scratch, 'b-limits.jsonl')), { logger });
  });
  afterAll(() => front?.close());

  async function expectLimited(res: Response, id: unknown): Promise<void> {
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
    expect(await res.json()).toEqual({ jsonrpc: '2.0', id, error: { code: -32000, message: expect.stringContaining('Too Many Requests') } });
  }

  test('Streamable HTTP: initialize and two tools/list fanning out to three members are three requests; the fourth gets 429 with Retry-After', async () => {
    // Had each member request counted, initialize alone (three members) would have been over the limit.
    const { id, send } = await rawSession(front, 'all', 'lim-mcp');
    for (const n of [2, 3]) {
      const list = await send(request(n, 'tools/list'));
      expect(list.status).toBe(200);
      expect(((list.body!.result as { tools: { name: string }[] }).tools).map((t) => t.name)).toEqual([...prefixed('a'), ...prefixed('b'), ...prefixed('c')]);
    }
    await expectLimited(await fetch(`${front.url}/all/mcp`, { method: 'POST', headers: headersOf('lim-mcp', id), body: JSON.stringify(request(4, 'tools/list')) }), 4);
    expect(logger.entries).toContainEqual({ level: 'warn', message: 'request limit reached', fields: expect.objectContaining({ token: 'lim-mcp', max: 3 }) });
  });

  test('legacy SSE: the same on POST /message', async () => {
    let stream: EventStream | undefined;
    try {
      stream = await openEventStream(`${front.url}/all/sse`, { headers: { Authorization: `Bearer ${TOKENS['lim-sse']}` } });
      expect(stream.status).toBe(200);
      const endpoint = new URL((await stream.nextMatching((e) => e.event === 'endpoint')).data, front.url);
      const post = (body: object) => fetch(endpoint, { method: 'POST', headers: headersOf('lim-sse'), body: JSON.stringify(body) });
      const answered = async (id: number) => JSON.parse((await stream!.nextMatching((e) => e.event === 'message' && (JSON.parse(e.data) as { id?: number }).id === id)).data) as Record<string, unknown>;
      for (const body of [INITIALIZE, INITIALIZED, request(2, 'tools/list'), request(3, 'tools/list')]) {
        const res = await post(body);
        expect(res.status).toBe(202);
        await res.arrayBuffer();
        if ('id' in body) expect((await answered(body.id)).result).toBeDefined();
      }
      await expectLimited(await post(request(4, 'tools/list')), 4);
    } finally {
      stream?.close();
    }
  });

  test('maxSessions: an aggregate session is one session of its token, beside its sessions of servers', async () => {
    const aggregate = await connectClient(front.url, 'all', 'streamable', TOKENS.sess);
    const direct = await connectClient(front.url, 'a', 'streamable', TOKENS.sess);
    for (const server of ['all', 'a']) {
      const third = await fetch(`${front.url}/${server}/mcp`, { method: 'POST', headers: headersOf('sess'), body: JSON.stringify(INITIALIZE) });
      expect(third.status).toBe(429);
      expect(third.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
      expect(await third.json()).toEqual({ jsonrpc: '2.0', id: 1, error: { code: -32000, message: 'Too Many Requests: token "sess" has reached its maximum of 2 sessions' } });
    }
    const ended = nextLog(logger, 'session ended');
    await (aggregate.transport as StreamableHTTPClientTransport).terminateSession();
    await aggregate.close();
    // The ended one's slot is free again once its members are gone.
    expect((await ended).server).toBe('all');
    const again = await connectClient(front.url, 'all', 'streamable', TOKENS.sess);
    for (const c of [again, direct]) {
      await (c.transport as StreamableHTTPClientTransport).terminateSession();
      await c.close();
    }
  });
});

describe('audit lines and metrics of member requests', () => {
  let front: Front;
  const logger = captureLogger();
  const registry = new Registry();

  beforeAll(async () => {
    front = await startFront(policyConfig(path.join(scratch, 'b-obs.jsonl')), { logger, metrics: registry });
  });
  afterAll(() => front?.close());

  const series = async (name: string) => (await registry.getMetricsAsJSON()).find((m) => m.name === name)?.values ?? [];

  /** ops's list (three members), an allowed call and a forbidden one, through the aggregate. */
  async function traffic(): Promise<void> {
    const client = await connectClient(front.url, 'all', 'streamable', TOKENS.ops);
    await client.listTools();
    await client.callTool({ name: 'b__echo', arguments: { message: 'audited' } });
    await callError(client, 'b__big');
    await (client.transport as StreamableHTTPClientTransport).terminateSession();
    await client.close();
  }

  test('audit: one line per member request, server=<member> aggregate=<name>, with the member’s own names', async () => {
    const from = logger.entries.length;
    await traffic();
    const line = (server: string, method: string, outcome: string, name?: string) => ({
      level: 'info',
      message: 'mcp request',
      fields: { token: 'ops', sub: undefined, server, aggregate: 'all', method, name, outcome, duration_ms: expect.any(Number) },
    });
    const audit = logger.entries.slice(from).filter((e) => e.message === 'mcp request');
    // The list went to three members (as `initialize` did, left out here).
    expect(audit.filter((e) => e.fields.method !== 'initialize')).toHaveLength(5);
    expect(audit).toEqual(
      expect.arrayContaining([line('a', 'tools/list', 'ok'), line('b', 'tools/list', 'ok'), line('c', 'tools/list', 'ok'), line('b', 'tools/call', 'ok', 'echo'), line('b', 'tools/call', 'denied', 'big')]),
    );
  });

  test('metrics: the member as server, the aggregate as aggregate, the member’s own tool name', async () => {
    await traffic();
    const requests = await series('mcp_front_requests_total');
    const toolCalls = await series('mcp_front_tool_calls_total');
    expect(requests).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ labels: { server: 'b', aggregate: 'all', token: 'ops', method: 'tools/call', outcome: 'ok' } }),
        expect.objectContaining({ labels: { server: 'b', aggregate: 'all', token: 'ops', method: 'tools/call', outcome: 'denied' } }),
        expect.objectContaining({ labels: { server: 'c', aggregate: 'all', token: 'ops', method: 'tools/list', outcome: 'ok' } }),
      ]),
    );
    expect(toolCalls).toEqual(expect.arrayContaining([expect.objectContaining({ labels: { server: 'b', aggregate: 'all', token: 'ops', tool: 'echo', outcome: 'ok' } })]));
    // Nothing counted under the aggregate's name as if it were a server.
    expect([...requests, ...toolCalls].filter((v) => v.labels.server === 'all')).toEqual([]);
  });
});

describe('OAuth: an aggregate is a resource of its own', () => {
  let as: AuthorizationServer;
  let front: Front;
  let publicUrl: string;

  beforeAll(async () => {
    as = await startAuthorizationServer();
    front = await startFront((url) => {
      publicUrl = url;
      return {
        ...oauthConfig(as, url, { a: stdioServer(), b: stdioServer({ requiredScopes: ['mcp:b'] }) }),
        aggregates: { all: { servers: ['a', 'b'] } },
      };
    });
  });
  afterAll(async () => {
    await front?.close();
    await as?.stop();
  });

  const resource = (server: string, route: 'mcp' | 'sse' = 'mcp') => `${publicUrl}/${server}/${route}`;
  const metadata = (server: string, route: 'mcp' | 'sse' = 'mcp') => `${publicUrl}/.well-known/oauth-protected-resource/${server}/${route}`;
  /** A user of acme.com (principal `staff`). */
  const tokenFor = (aud: string, scope: string) => as.mint({ sub: 'user-a', aud, scope, email: 'a@acme.com', email_verified: true });

  test.each<['mcp' | 'sse']>([['mcp'], ['sse']])('RFC 9728 metadata at <publicUrl>/.well-known/oauth-protected-resource/<aggregate>/%s: its own resource, oauth.scopes plus every member’s', async (route) => {
    const res = await fetch(metadata('all', route));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      resource: resource('all', route),
      authorization_servers: [as.issuer],
      scopes_supported: ['mcp:tools', 'mcp:b'],
      bearer_methods_supported: ['header'],
      resource_name: `${PROXY_NAME}: all`,
    });
  });

  test('a 401 points at the aggregate’s metadata of the route asked, with its scopes — no token, or a token that is not one', async () => {
    for (const token of [undefined, 'not-a-token']) {
      const refused = await postMcp(resource('all'), token);
      expect(refused.status).toBe(401);
      expect(challengeParams(refused.headers.get('www-authenticate'))).toEqual(expect.objectContaining({ resource_metadata: metadata('all'), scope: 'mcp:tools mcp:b' }));
      const sse = await fetch(resource('all', 'sse'), token === undefined ? {} : { headers: { Authorization: `Bearer ${token}` } });
      await sse.arrayBuffer();
      expect(sse.status).toBe(401);
      expect(challengeParams(sse.headers.get('www-authenticate'))).toEqual(expect.objectContaining({ resource_metadata: metadata('all', 'sse'), scope: 'mcp:tools mcp:b' }));
    }
  });

  test('audience: a token for <publicUrl>/<aggregate>/mcp opens it; a member’s token does not, nor the aggregate’s the member', async () => {
    const forAggregate = await tokenFor(resource('all'), 'mcp:tools mcp:b');
    const opened = await fetch(resource('all'), { method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', Authorization: `Bearer ${forAggregate}` }, body: JSON.stringify(INITIALIZE) });
    expect(opened.status).toBe(200);
    expect(((await answerOf(opened))!.result as { serverInfo: { name: string } }).serverInfo.name).toBe('mcp-front/all');

    const forMember = await tokenFor(resource('a'), 'mcp:tools mcp:b');
    const wrong = await postMcp(resource('all'), forMember);
    expect(wrong.status).toBe(401);
    expect(challengeParams(wrong.headers.get('www-authenticate')).error).toBe('invalid_token');
    expect((await postMcp(resource('a'), forAggregate)).status).toBe(401);
  });

  test('scopes: without a member’s requiredScopes the aggregate answers 403 insufficient_scope, naming every scope it needs', async () => {
    const narrow = await tokenFor(resource('all'), 'mcp:tools');
    const refused = await postMcp(resource('all'), narrow);
    expect(refused.status).toBe(403);
    expect(challengeParams(refused.headers.get('www-authenticate'))).toEqual(expect.objectContaining({ error: 'insufficient_scope', scope: 'mcp:tools mcp:b', resource_metadata: metadata('all') }));
  });
});

describe('hostile session ids', () => {
  let front: Front;

  beforeAll(async () => {
    front = await startFront(policyConfig(path.join(scratch, 'b-hostile.jsonl')));
  });
  afterAll(() => front?.close());

  const expectGone = async (res: Response) => {
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ jsonrpc: '2.0', id: null, error: { code: -32000, message: expect.any(String) } });
  };

  test('another token’s aggregate session: 404 on POST, GET and DELETE, and the session goes on', async () => {
    const owner = await rawSession(front, 'all', 'dev');
    const url = `${front.url}/all/mcp`;
    await expectGone(await fetch(url, { method: 'POST', headers: headersOf('ops', owner.id), body: JSON.stringify(request(2, 'tools/list')) }));
    await expectGone(await fetch(url, { method: 'GET', headers: { ...headersOf('ops', owner.id), Accept: 'text/event-stream' } }));
    await expectGone(await fetch(url, { method: 'DELETE', headers: headersOf('ops', owner.id) }));
    const list = await owner.send(request(3, 'tools/list'));
    expect(list.status).toBe(200);
    expect(((list.body!.result as { tools: unknown[] }).tools)).toHaveLength(3 * FIXTURE_TOOLS.length);
  });

  test('a member’s own session id on the aggregate, and the aggregate’s on the member: 404 both ways, on both transports', async () => {
    const member = await rawSession(front, 'a', 'dev');
    const aggregate = await rawSession(front, 'all', 'dev');
    await expectGone(await fetch(`${front.url}/all/mcp`, { method: 'POST', headers: headersOf('dev', member.id), body: JSON.stringify(request(2, 'tools/list')) }));
    await expectGone(await fetch(`${front.url}/a/mcp`, { method: 'POST', headers: headersOf('dev', aggregate.id), body: JSON.stringify(request(2, 'tools/list')) }));

    const legacy = await openEventStream(`${front.url}/a/sse`, { headers: { Authorization: `Bearer ${TOKENS.dev}` } });
    try {
      const endpoint = new URL((await legacy.nextMatching((e) => e.event === 'endpoint')).data, front.url);
      const sessionId = endpoint.searchParams.get('sessionId')!;
      const res = await fetch(`${front.url}/all/message?sessionId=${encodeURIComponent(sessionId)}`, { method: 'POST', headers: headersOf('dev'), body: JSON.stringify(INITIALIZE) });
      await expectGone(res);
    } finally {
      legacy.close();
    }
    // Both sessions are untouched.
    expect((await member.send(request(3, 'tools/list'))).status).toBe(200);
    expect((await aggregate.send(request(3, 'tools/list'))).status).toBe(200);
  });
});
