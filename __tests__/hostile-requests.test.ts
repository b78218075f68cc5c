// Hostile clients, on every route a client body enters: one id per request in a session (a second
// use while the first waits, or in the same batch, is -32600 and never forwarded), a null id is an
// Invalid Request that still counts against the request limit, `proxy.maxBatch` and one summary
// WARN per refused batch, a large batch decided in slices, and `Mcp-Method`/`Mcp-Name` held to the
// body before any policy (MCP 2026-07-28, Streamable HTTP §Request Metadata). Every token is
// restricted (README: Permissions per token), so each case also shows the permission model holds;
// the upstreams answer literally and record everything that reaches them.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { SseParser } from '../lib/wire/sse';
import type { PipelineHook } from '../lib/pipeline/hooks';
import type { McpFrontConfig, McpFrontOptions } from '../lib/types';
import { startLiteralUpstream, type LiteralUpstream } from './fixtures/literal-upstream';
import { openEventStream } from './fixtures/remote-streams';
import { INITIALIZE } from './helpers/clients';
import { captureLogger, configWith, DEV_TOKEN, PROD_TOKEN, startFront, waitFor, type Front } from './helpers/servers';

const STDIO_SERVER = path.join(__dirname, 'fixtures', 'stdio-server.js');
const META = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} };
/** What every token may call; both servers also offer tools it may not (`secret`, `get-sum`, `pid`, …). */
const ALLOWED = ['echo', 'hold'];

type Server = 'stdio' | 'http' | 'sse';
type Kind = 'streamable' | 'sse' | 'stateless' | 'sessionless';
const ROUTES: [string, Server, Kind][] = [
  ['stdio server, Streamable HTTP client (bridged)', 'stdio', 'streamable'],
  ['stdio server, legacy SSE client (bridged)', 'stdio', 'sse'],
  ['Streamable HTTP server, Streamable HTTP client (passthrough)', 'http', 'streamable'],
  ['Streamable HTTP server, legacy SSE client (bridged)', 'http', 'sse'],
  ['legacy SSE server, legacy SSE client (relay)', 'sse', 'sse'],
  ['legacy SSE server, Streamable HTTP client (bridged)', 'sse', 'streamable'],
  ['stdio server (--modern), 2026-07-28 stateless request', 'stdio', 'stateless'],
  ['Streamable HTTP server, 2026-07-28 stateless request (passthrough)', 'http', 'stateless'],
  ['Streamable HTTP server, no session (passthrough)', 'http', 'sessionless'],
];
const IN_SESSION = ROUTES.filter(([, , kind]) => kind === 'streamable' || kind === 'sse');
/** 2026-07-28 requests cannot be batched. */
const BATCHING = ROUTES.filter(([, , kind]) => kind !== 'stateless');
/** One token per route for the request limit, so that their counts do not mix. */
const LIMITED: Record<string, string> = Object.fromEntries(ROUTES.map((_, i) => [`limited-${i}`, `limited-token-${i}-0123456789abcdefghij`]));
const LIMIT = 4;

interface Msg {
  jsonrpc?: string;
  id?: unknown;
  method?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: { code: number; message: string };
}
interface Reply {
  status: number;
  headers: Headers;
  messages: Msg[];
}
/** One client of one route. */
interface Conn {
  /** A request as the route sends it: with the 2026-07-28 `_meta` envelope on stateless routes. */
  req(id: unknown, method: string, params?: Record<string, unknown>): Msg;
  /**
   * POSTs `body` (exactly these bytes) and gives its answers: the HTTP response's, or when an SSE
   * client's POST got `202`, one answer on the session's stream for each request it carried.
   */
  post(body: unknown, headers?: Record<string, string | undefined>): Promise<Reply>;
  close(): Promise<void>;
}

let upstream: LiteralUpstream;
let recordDir: string;
let front: Front;
const logger = captureLogger();
const registry = new Registry();

function config(extra: Partial<McpFrontConfig['proxy']> = {}): McpFrontConfig {
  const permissions = { '*': { tools: ALLOWED } };
  return configWith(
    {
      stdio: { command: process.execPath, args: [STDIO_SERVER, '--modern', `--record=${path.join(recordDir, 'stdio.log')}`], permissions },
      http: { url: `${upstream.origin}/mcp`, permissions },
      sse: { url: `${upstream.origin}/sse`, permissions },
    },
    {
      auth: { kind: 'bearer_token', tokens: { dev: DEV_TOKEN, prod: PROD_TOKEN, ...LIMITED } },
      limits: Object.fromEntries(Object.keys(LIMITED).map((name) => [name, { requests: { max: LIMIT, window: '1h' } }])),
      ...extra,
    },
  );
}

beforeAll(async () => {
  recordDir = mkdtempSync(path.join(os.tmpdir(), 'hostile-requests-'));
  upstream = await startLiteralUpstream();
  front = await startFront(config(), { logger, metrics: registry });
});
afterAll(async () => {
  await front?.close();
  await upstream?.close();
  rmSync(recordDir, { recursive: true, force: true });
});

/** Whether the string `tag` reached `server` in anything it was sent. */
function reached(server: Server, tag: string): boolean {
  const text = JSON.stringify(tag);
  if (server !== 'stdio') return upstream.bodies.some((b) => b.includes(text));
  try {
    return readFileSync(path.join(recordDir, 'stdio.log'), 'utf8').includes(text);
  } catch {
    return false;
  }
}

const flat = (value: unknown): Msg[] => (Array.isArray(value) ? value : [value]) as Msg[];
const requestIds = (body: unknown): unknown[] => flat(typeof body === 'string' ? JSON.parse(body) : body).filter((m) => m.method !== undefined && m.id !== undefined).map((m) => m.id);

/** The JSON-RPC messages of a response: a JSON body or an event stream, batches flattened. */
async function messagesOf(res: Response): Promise<Msg[]> {
  const text = await res.text();
  if (!/^text\/event-stream/.test(res.headers.get('content-type') ?? '')) return text === '' ? [] : flat(JSON.parse(text));
  const out: Msg[] = [];
  new SseParser((e) => e.event === 'message' && out.push(...flat(JSON.parse(e.data)))).push(text);
  return out;
}

/**
 * A legacy SSE session's stream, read into answers by id. A POST registers what it waits for
 * before it is sent, and an answer goes to the latest POST waiting for its id: the proxy answers
 * a refused request on the stream at once, possibly before the POST's `202`, while an earlier
 * request with the same id may still be waiting for the server.
 */
async function openInbox(url: string, headers: Record<string, string>) {
  const stream = await openEventStream(url, { headers });
  expect(stream.status).toBe(200);
  const endpoint = await stream.next();
  expect(endpoint.event).toBe('endpoint');
  const early: Msg[] = [];
  const waiting: { id: unknown; resolve: (m: Msg) => void }[] = [];
  void (async () => {
    for (;;) {
      const event = await stream.next().catch(() => undefined);
      if (event === undefined) return;
      if (event.event !== 'message') continue;
      for (const m of flat(JSON.parse(event.data))) {
        if (m.method !== undefined) continue;
        let i = waiting.length - 1;
        while (i >= 0 && !Object.is(waiting[i].id, m.id)) i--;
        if (i === -1) early.push(m);
        else waiting.splice(i, 1)[0].resolve(m);
      }
    }
  })();
  const take = (id: unknown) => {
    const i = early.findIndex((m) => Object.is(m.id, id));
    if (i !== -1) return { answer: Promise.resolve(early.splice(i, 1)[0]), cancel: () => undefined };
    const waiter = { id, resolve: (_m: Msg) => undefined as void };
    const answer = new Promise<Msg>((resolve) => (waiter.resolve = resolve));
    waiting.push(waiter);
    return { answer, cancel: () => waiting.includes(waiter) && waiting.splice(waiting.indexOf(waiter), 1) };
  };
  return { endpoint: endpoint.data, take, close: () => (stream.close(), stream.ended) };
}

async function connect(at: Front, server: Server, kind: Kind, token: string): Promise<Conn> {
  const base: Record<string, string> = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' };
  base['MCP-Protocol-Version'] = kind === 'stateless' ? '2026-07-28' : '2025-06-18';
  const inbox = kind === 'sse' ? await openInbox(`${at.url}/${server}/sse`, base) : undefined;
  const url = inbox ? at.origin + inbox.endpoint : `${at.url}/${server}/mcp`;
  /** The headers a 2026-07-28 request must carry, mirrored from its body. */
  const mirrored = (body: unknown): Record<string, string> => {
    if (kind !== 'stateless' || typeof body !== 'object' || Array.isArray(body)) return {};
    const m = body as Msg;
    return { 'Mcp-Method': m.method!, ...(m.method === 'tools/call' ? { 'Mcp-Name': String(m.params?.name) } : {}) };
  };
  const conn: Conn = {
    req: (id, method, params = {}) => ({ jsonrpc: '2.0', id, method, params: kind === 'stateless' ? { ...params, _meta: META } : params }),
    async post(body, extra = {}) {
      const headers: Record<string, string | undefined> = { ...base, ...mirrored(body), ...extra };
      for (const [name, value] of Object.entries(headers)) if (value === undefined) delete headers[name];
      const answers = inbox ? requestIds(body).map(inbox.take) : [];
      const res = await fetch(url, { method: 'POST', headers: headers as Record<string, string>, body: typeof body === 'string' ? body : JSON.stringify(body) });
      if (!inbox || res.status !== 202) {
        for (const a of answers) a.cancel();
        return { status: res.status, headers: res.headers, messages: await messagesOf(res) };
      }
      await res.text();
      return { status: 202, headers: res.headers, messages: await Promise.all(answers.map((a) => a.answer)) };
    },
    async close() {
      if (inbox) return void (await inbox.close());
      if (base['Mcp-Session-Id']) await (await fetch(url, { method: 'DELETE', headers: base })).text();
    },
  };
  if (kind === 'streamable' || kind === 'sse') {
    const init = await conn.post({ ...INITIALIZE, id: 'init' });
    expect(init.messages).toEqual([expect.objectContaining({ id: 'init', result: expect.anything() })]);
    if (kind === 'streamable') base['Mcp-Session-Id'] = init.headers.get('mcp-session-id')!;
  }
  return conn;
}

/** The status of a POST whose requests were answered (SSE clients: `202`, the answers on the stream). */
const answered = (kind: Kind) => (kind === 'sse' ? 202 : 200);
const invalid = (id: unknown, message: string | RegExp) => ({ jsonrpc: '2.0', id, error: { code: -32600, message: typeof message === 'string' ? message : expect.stringMatching(message) } });
const idInUse = (id: number) => invalid(id, `Invalid Request: request id ${id} is already in use in this session`);
const toolNames = (m: Msg | undefined) => (m?.result?.tools as { name: string }[] | undefined)?.map((t) => t.name);
/** Answered after everything sent before it on this route: anything forwarded earlier has reached the server. */
async function fence(conn: Conn, id: string): Promise<void> {
  expect((await conn.post(conn.req(id, 'ping'))).messages).toEqual([{ jsonrpc: '2.0', id, result: {} }]);
}
/** Audit lines (`mcp request`) of `server` and token `dev` logged since `mark`, as `name outcome`. */
const auditSince = (mark: number, server: Server, method: string) =>
  logger.entries.slice(mark).filter((e) => e.message === 'mcp request' && e.fields.server === server && e.fields.token === 'dev' && e.fields.method === method).map((e) => `${e.fields.name} ${e.fields.outcome}`);

async function toolCalls(labels: Record<string, string>): Promise<number> {
  const metric = (await (registry.getSingleMetric('mcp_front_tool_calls_total') as { get(): Promise<{ values: { value: number; labels: Record<string, unknown> }[] }> }).get()).values;
  return metric.filter((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want)).reduce((sum, v) => sum + v.value, 0);
}

describe.each(ROUTES.map((r, i) => [...r, i] as const))('%s', (_route, server, kind, n) => {
  let conn: Conn;
  beforeAll(async () => {
    conn = await connect(front, server, kind, DEV_TOKEN);
  });
  afterAll(() => conn?.close());

  it('a request with a null id is -32600, and never reaches a server that would run it', async () => {
    const tag = `null-id-${n}`;
    const reply = await conn.post(conn.req(null, 'tools/call', { name: 'echo', arguments: { message: tag } }));
    expect(reply.status).toBe(answered(kind));
    expect(reply.messages).toEqual([invalid(null, /^Invalid Request: a request id must be a string or a number/)]);
    await fence(conn, `fence-null-${n}`);
    expect(reached(server, tag)).toBe(false);
  });

  it.each([
    ['an Mcp-Name of an allowed tool over a call of a forbidden one', { name: 'secret' }, { 'Mcp-Method': 'tools/call', 'Mcp-Name': 'echo' }, false],
    ['an Mcp-Method that names another method', { name: 'echo' }, { 'Mcp-Method': 'tools/list', 'Mcp-Name': undefined }, false],
    ['an Mcp-Name on a method without a name', undefined, { 'Mcp-Method': 'ping', 'Mcp-Name': 'ping' }, false],
    ['Mcp-Method on a batch', undefined, { 'Mcp-Method': 'ping' }, true],
  ])('%s: 400 with -32020 and the request id, before the permission check, never forwarded', async (what, call, headers, batch) => {
    const tag = `header-${n}-${what.replace(/\W+/g, '-')}`;
    const one = call ? conn.req(21, 'tools/call', { ...call, arguments: { message: tag } }) : conn.req(21, 'ping', { tag });
    const reply = await conn.post(batch ? [one, conn.req(22, 'ping')] : one, headers);
    expect(reply.status).toBe(400);
    expect(reply.messages).toEqual([{ jsonrpc: '2.0', id: batch ? null : 21, error: { code: -32020, message: expect.stringMatching(/^Header mismatch: /) } }]);
    await fence(conn, `fence-${tag}`);
    expect(reached(server, tag)).toBe(false);
  });

  it('a batch over proxy.maxBatch (1000) is 400 before any work: nothing decided, logged or forwarded', async () => {
    const mark = logger.entries.length;
    const tag = `over-max-${n}`;
    const batch = Array.from({ length: 1001 }, (_, i) => conn.req(1000 + i, 'tools/call', { name: 'secret', arguments: { message: tag } }));
    const reply = await conn.post(batch);
    expect(reply.status).toBe(400);
    expect(reply.messages).toEqual([invalid(null, 'Invalid Request: a batch of 1001 messages is over the limit of 1000 (proxy.maxBatch)')]);
    expect(logger.entries.slice(mark).filter((e) => e.message === 'mcp request' || e.message === 'permission denied')).toEqual([]);
    await fence(conn, `fence-max-${n}`);
    expect(reached(server, tag)).toBe(false);
  });

  it('null ids count against proxy.limits like any request: the request after them gets 429 with Retry-After', async () => {
    const limited = await connect(front, server, kind, LIMITED[`limited-${n}`]);
    try {
      const opening = kind === 'streamable' || kind === 'sse' ? 1 : 0;
      for (let i = opening; i < LIMIT; i++) {
        const reply = await limited.post(limited.req(null, 'tools/call', { name: 'echo', arguments: { message: `limited-${n}` } }));
        expect(reply.messages).toEqual([invalid(null, /^Invalid Request/)]);
      }
      const over = await limited.post(limited.req(31, 'ping'));
      expect(over.status).toBe(429);
      expect(over.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
      expect(over.messages).toEqual([{ jsonrpc: '2.0', id: 31, error: { code: -32000, message: expect.stringContaining('Too Many Requests') } }]);
      expect(reached(server, `limited-${n}`)).toBe(false);
    } finally {
      await limited.close();
    }
  });
});

describe.each(BATCHING.map((r, i) => [...r, i] as const))('%s, batches', (_route, server, kind, n) => {
  let conn: Conn;
  beforeAll(async () => {
    conn = await connect(front, server, kind, DEV_TOKEN);
  });
  afterAll(() => conn?.close());

  it('[tools/list id 7, ping id 7]: the list is the filtered one, the ping -32600 and never forwarded', async () => {
    const tag = `twin-${n}`;
    const reply = await conn.post([conn.req(7, 'tools/list'), conn.req(7, 'ping', { tag })]);
    expect(reply.status).toBe(answered(kind));
    expect(reply.messages).toHaveLength(2);
    const list = reply.messages.find((m) => m.result !== undefined);
    expect(list?.id).toBe(7);
    expect(toolNames(list)).toEqual(ALLOWED);
    expect(reply.messages.find((m) => m.error !== undefined)).toEqual(idInUse(7));
    await fence(conn, `fence-twin-${n}`);
    expect(reached(server, tag)).toBe(false);
  });

  it('a batch of proxy.maxBatch with 999 refused calls: each answered, ONE permission WARN with count= and batch=', async () => {
    const mark = logger.entries.length;
    const [tag, refusedTag] = [`max-ok-${n}`, `max-refused-${n}`];
    const batch = Array.from({ length: 1000 }, (_, i) =>
      conn.req(2000 + i, 'tools/call', { name: i === 0 ? 'echo' : i === 1 ? 'secret' : 'get-sum', arguments: { message: i === 0 ? tag : refusedTag } }),
    );
    const reply = await conn.post(batch);
    expect(reply.status).toBe(answered(kind));
    expect(reply.messages).toHaveLength(1000);
    expect(reply.messages.filter((m) => m.error?.code === -32602)).toHaveLength(999);
    expect(reply.messages.find((m) => m.result !== undefined)).toEqual({ jsonrpc: '2.0', id: 2000, result: { content: [{ type: 'text', text: server === 'stdio' ? tag : 'echo' }] } });
    const denied = logger.entries.slice(mark).filter((e) => e.message === 'permission denied');
    expect(denied).toEqual([{ level: 'warn', message: 'permission denied', fields: { token: 'dev', server, method: 'tools/call', name: 'secret', count: 999, batch: 1000 } }]);
    expect(reached(server, tag)).toBe(true);
    expect(reached(server, refusedTag)).toBe(false);
  });
});

describe.each(IN_SESSION.map((r, i) => [...r, i] as const))('%s, an id already in flight', (_route, server, kind, n) => {
  let conn: Conn;
  beforeAll(async () => {
    conn = await connect(front, server, kind, DEV_TOKEN);
  });
  afterAll(() => conn?.close());

  it('a second request with the id of one still waiting is -32600, never forwarded; the first keeps its answer, audit line and metric', async () => {
    const mark = logger.entries.length;
    const hold = { tool: 'hold', server, token: 'dev', outcome: 'ok' };
    const before = await toolCalls(hold);
    const [heldTag, reuseTag] = [`held-${n}`, `reuse-${n}`];
    const held = conn.post(conn.req(9, 'tools/call', { name: 'hold', arguments: { message: heldTag } }));
    await waitFor(() => reached(server, heldTag), 'the held call to reach the server');

    const reuse = await conn.post(conn.req(9, 'tools/call', { name: 'echo', arguments: { message: reuseTag } }));
    expect(reuse.status).toBe(answered(kind));
    expect(reuse.messages).toEqual([idInUse(9)]);

    expect((await conn.post(conn.req(10, 'test/release'))).messages).toEqual([{ jsonrpc: '2.0', id: 10, result: {} }]);
    expect((await held).messages).toEqual([{ jsonrpc: '2.0', id: 9, result: { content: [{ type: 'text', text: 'held' }] } }]);
    expect(reached(server, reuseTag)).toBe(false);
    expect(auditSince(mark, server, 'tools/call')).toEqual(['echo denied', 'hold ok']);
    expect(await toolCalls(hold)).toBe(before + 1);
    // Answered, the id is free again.
    expect((await conn.post(conn.req(9, 'ping'))).messages).toEqual([{ jsonrpc: '2.0', id: 9, result: {} }]);
  });
});

describe.each(ROUTES.filter(([, , kind]) => kind === 'stateless'))('%s, one id in two requests', (_route, server, kind) => {
  it('each stateless request is its own exchange: both are answered, both lists filtered', async () => {
    const conn = await connect(front, server, kind, DEV_TOKEN);
    const replies = await Promise.all([conn.post(conn.req(5, 'tools/list')), conn.post(conn.req(5, 'tools/list'))]);
    for (const reply of replies) {
      expect(reply.messages).toHaveLength(1);
      expect(reply.messages[0].id).toBe(5);
      expect(toolNames(reply.messages[0])).toEqual(ALLOWED);
    }
  });
});

describe('a large batch is decided in slices', () => {
  let big: Front;
  const bigLogger = captureLogger();
  let started!: () => void;
  const deciding = new Promise<void>((resolve) => (started = resolve));
  /** Says when the proxy has begun refusing the batch's entries. */
  const signal: PipelineHook = { refused: (ex) => ex.token === 'dev' && started() };
  const SIZE = 100_000;

  beforeAll(async () => {
    big = await startFront(config({ maxBatch: 200_000 }), { logger: bigLogger, hooks: [signal] } as McpFrontOptions);
  });
  afterAll(() => big?.close());

  it('another token’s ping on another server is answered before a batch of 100,000 refused calls is', async () => {
    const other = await connect(big, 'stdio', 'streamable', PROD_TOKEN);
    try {
      const body = `[${Array.from({ length: SIZE }, (_, i) => `{"jsonrpc":"2.0","id":${i},"method":"tools/call","params":{"name":"secret"}}`).join(',')}]`;
      const headers = { Authorization: `Bearer ${DEV_TOKEN}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', 'MCP-Protocol-Version': '2025-06-18' };
      const order: string[] = [];
      const batch = fetch(`${big.url}/http/mcp`, { method: 'POST', headers, body }).then((res) => (order.push('batch'), res));
      await deciding;
      const ping = other.post(other.req(1, 'ping')).then((reply) => (order.push('ping'), reply));
      const [res, pong] = await Promise.all([batch, ping]);
      expect(order).toEqual(['ping', 'batch']);
      expect(pong.messages).toEqual([{ jsonrpc: '2.0', id: 1, result: {} }]);
      expect(res.status).toBe(200);
      const answers = (await res.json()) as Msg[];
      expect(answers).toHaveLength(SIZE);
      expect(answers[SIZE - 1]).toEqual({ jsonrpc: '2.0', id: SIZE - 1, error: { code: -32602, message: 'Unknown tool: secret' } });
      expect(bigLogger.entries.filter((e) => e.message === 'permission denied')).toEqual([
        { level: 'warn', message: 'permission denied', fields: { token: 'dev', server: 'http', method: 'tools/call', name: 'secret', count: SIZE, batch: SIZE } },
      ]);
    } finally {
      await other.close();
    }
  });
});
