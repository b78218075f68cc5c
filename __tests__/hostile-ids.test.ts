// Bodies that are JSON but not JSON-RPC 2.0, on every route a client body enters: an id that is
// not a string, number or null (JSON-RPC 2.0 §4: an Invalid Request), above all one nested so
// deep that writing it back out overflows the stack. Each gets `400` with `-32600` before anything
// remembers it or sends it on, and every session, the one that carried it included, goes on.
import path from 'node:path';
import { startBridgeUpstream, type BridgeUpstream } from './fixtures/bridge-upstream';
import { openEventStream, type EventStream } from './fixtures/remote-streams';
import { connectClient, INITIALIZE, textOf } from './helpers/clients';
import { captureLogger, configWith, DEV_TOKEN, startFront, waitFor, type Front } from './helpers/servers';

const STDIO_SERVER = path.join(__dirname, 'fixtures', 'stdio-server.js');
/** About 12 KB of JSON: `JSON.parse` takes it, `JSON.stringify` runs out of stack on it. */
const DEEP = '['.repeat(6000) + ']'.repeat(6000);
/** On every hostile body, so that the upstream's log proves none of them reached it. */
const MARK = '"x-hostile":1';

const HOSTILE: [string, string][] = [
  ['an id nested 6,000 deep', `{"jsonrpc":"2.0","id":${DEEP},"method":"tools/list",${MARK}}`],
  ['an object id', `{"jsonrpc":"2.0","id":{"a":1},"method":"tools/list",${MARK}}`],
  ['an empty object id', `{"jsonrpc":"2.0","id":{},"method":"tools/list",${MARK}}`],
  ['an array id', `{"jsonrpc":"2.0","id":[1],"method":"tools/list",${MARK}}`],
  ['a boolean id', `{"jsonrpc":"2.0","id":true,"method":"tools/list",${MARK}}`],
  ['a batch with one deep id', `[{"jsonrpc":"2.0","id":1,"method":"ping",${MARK}},{"jsonrpc":"2.0","id":${DEEP},"method":"ping"}]`],
  ['a response with a deep id', `{"jsonrpc":"2.0","id":${DEEP},"result":{},${MARK}}`],
  ['a response with an object id', `{"jsonrpc":"2.0","id":{},"error":{"code":1,"message":"x"},${MARK}}`],
  ['a method that is not a string', `{"jsonrpc":"2.0","id":1,"method":5,${MARK}}`],
  ['jsonrpc "1.0"', `{"jsonrpc":"1.0","id":1,"method":"tools/list",${MARK}}`],
];

const MODERN_HEADERS = { 'MCP-Protocol-Version': '2026-07-28', 'Mcp-Method': 'tools/list' };
const MODERN_META = '"params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}},';

const headers = (extra: Record<string, string> = {}) => ({
  Authorization: `Bearer ${DEV_TOKEN}`,
  'Content-Type': 'application/json',
  Accept: 'application/json, text/event-stream',
  ...extra,
});

describe.each([
  ['a bare app', false],
  ['an app that runs express.json() first', true],
])('hostile JSON-RPC bodies, %s', (_what, json) => {
  let up: BridgeUpstream;
  let front: Front;
  const streams: EventStream[] = [];
  /** Streamable sessions by route: `Mcp-Session-Id`. */
  const sessionIds: Record<string, string> = {};
  /** Legacy SSE sessions by route: the stream and the message URL it announced. */
  const legacy: Record<string, { stream: EventStream; url: string }> = {};

  const post = (url: string, body: string, extra: Record<string, string> = {}) => fetch(url, { method: 'POST', headers: headers(extra), body });
  const initialize = async (server: string): Promise<string> => {
    const res = await post(`${front.url}/${server}/mcp`, JSON.stringify(INITIALIZE));
    expect(res.status).toBe(200);
    await res.text();
    return res.headers.get('mcp-session-id')!;
  };
  const openLegacy = async (server: string) => {
    const stream = await openEventStream(`${front.url}/${server}/sse`, { headers: headers() });
    streams.push(stream);
    expect(stream.status).toBe(200);
    const endpoint = await stream.next();
    expect(endpoint.event).toBe('endpoint');
    return { stream, url: front.origin + endpoint.data };
  };

  beforeAll(async () => {
    up = await startBridgeUpstream();
    front = await startFront(
      configWith({
        stdio: { command: process.execPath, args: [STDIO_SERVER] },
        modern: { url: `${up.origin}/modern/mcp` },
        legacy: { url: `${up.origin}/legacy/sse` },
      }),
      { json },
    );
    sessionIds.stdio = await initialize('stdio');
    sessionIds.modern = await initialize('modern');
    sessionIds.legacy = await initialize('legacy');
    legacy.stdio = await openLegacy('stdio');
    legacy.modern = await openLegacy('modern');
    legacy.legacy = await openLegacy('legacy');
  });

  afterAll(async () => {
    for (const s of streams) s.close();
    await Promise.all(streams.map((s) => s.ended));
    await front?.close();
    await up?.close();
  });

  /** Every route a client body enters, as [name, url, extra headers, body prefix]. */
  const routes = (): [string, () => string, () => Record<string, string>, string][] => [
    ['stdio server, Streamable HTTP, initialize (no session)', () => `${front.url}/stdio/mcp`, () => ({}), ''],
    ['stdio server, Streamable HTTP, in a session', () => `${front.url}/stdio/mcp`, () => ({ 'Mcp-Session-Id': sessionIds.stdio }), ''],
    ['stdio server, 2026-07-28 stateless request', () => `${front.url}/stdio/mcp`, () => MODERN_HEADERS, MODERN_META],
    ['stdio server, legacy SSE message', () => legacy.stdio.url, () => ({}), ''],
    ['Streamable HTTP passthrough, no session', () => `${front.url}/modern/mcp`, () => ({}), ''],
    ['Streamable HTTP passthrough, in a session', () => `${front.url}/modern/mcp`, () => ({ 'Mcp-Session-Id': sessionIds.modern }), ''],
    ['Streamable HTTP upstream bridged to a legacy SSE client', () => legacy.modern.url, () => ({}), ''],
    ['legacy SSE passthrough message', () => legacy.legacy.url, () => ({}), ''],
    ['legacy SSE upstream bridged to Streamable HTTP, no session', () => `${front.url}/legacy/mcp`, () => ({}), ''],
    ['legacy SSE upstream bridged to Streamable HTTP, in a session', () => `${front.url}/legacy/mcp`, () => ({ 'Mcp-Session-Id': sessionIds.legacy }), ''],
  ];

  describe.each(routes())('%s', (_route, url, extra, prefix) => {
    it.each(HOSTILE)('refuses %s with 400 and -32600', async (_body, body) => {
      // The route's own fields go first in the message (the batch keeps its entries as they are).
      const sent = prefix && body.startsWith('{') ? `{${prefix}${body.slice(1)}` : body;
      const res = await post(url(), sent, extra());
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await res.json()).toEqual({ jsonrpc: '2.0', id: null, error: { code: -32600, message: expect.stringMatching(/^Invalid Request/) } });
    });
  });

  it('sent none of them upstream', () => {
    expect(up.log.filter((e) => e.body.includes(MARK))).toEqual([]);
  });

  it('keeps every session working, the ones that carried them included, and ends them cleanly', async () => {
    const ping = (id: number) => JSON.stringify({ jsonrpc: '2.0', id, method: 'ping' });
    for (const server of ['stdio', 'modern', 'legacy']) {
      const res = await post(`${front.url}/${server}/mcp`, ping(7), { 'Mcp-Session-Id': sessionIds[server] });
      expect(res.status).toBe(200);
      expect(await res.text()).toMatch(/"id":7/);
    }
    for (const server of ['stdio', 'modern', 'legacy']) {
      const { stream, url } = legacy[server];
      const res = await post(url, ping(8));
      expect(res.status).toBe(202);
      await res.text();
      const answer = await stream.nextMatching((e) => e.event === 'message');
      expect(JSON.parse(answer.data)).toMatchObject({ jsonrpc: '2.0', id: 8 });
    }

    // Ending the sessions is where a kept id would be answered for (DELETE, disconnect).
    for (const server of ['stdio', 'modern', 'legacy']) {
      const res = await fetch(`${front.url}/${server}/mcp`, { method: 'DELETE', headers: headers({ 'Mcp-Session-Id': sessionIds[server] }) });
      expect(res.status).toBeLessThan(300);
      await res.text();
    }
    for (const s of streams) s.close();
    await Promise.all(streams.map((s) => s.ended));

    // And a new session of the SDK client gets the server as before.
    const client = await connectClient(front.url, 'stdio', 'streamable', DEV_TOKEN);
    try {
      const result = await client.callTool({ name: 'echo', arguments: { message: 'still here' } });
      expect(textOf(result)).toBe('still here');
    } finally {
      await client.close();
    }
  });
});

// The other direction: a server whose output cannot be written back out (a message nested too
// deep for `JSON.stringify`). Relaying it fails inside an event handler, where a throw would end
// the process; it ends that one session instead, with an error for its client and an ERROR line.
describe('server output the proxy cannot relay', () => {
  let up: BridgeUpstream;
  let front: Front;
  const logger = captureLogger();
  const streams: EventStream[] = [];
  /** A 2026-07-28 stdio server that answers every request with a result nested 6,000 deep. */
  const DEEP_CHILD = `
    const deep = '['.repeat(6000) + ']'.repeat(6000);
    let buffer = '';
    process.stdin.on('data', (chunk) => {
      buffer += chunk;
      for (let nl = buffer.indexOf('\\n'); nl !== -1; nl = buffer.indexOf('\\n')) {
        const m = JSON.parse(buffer.slice(0, nl));
        buffer = buffer.slice(nl + 1);
        if (m.id === undefined) continue;
        if (m.method === 'server/discover') {
          process.stdout.write(JSON.stringify({ jsonrpc: '2.0', id: m.id, result: { supportedVersions: ['2026-07-28'] } }) + '\\n');
        } else {
          process.stdout.write('{"jsonrpc":"2.0","id":' + JSON.stringify(m.id) + ',"result":{"data":' + deep + '}}\\n');
        }
      }
    });
    process.stdin.on('end', () => process.exit(0));
  `;

  const post = (url: string, body: object, extra: Record<string, string> = {}) => fetch(url, { method: 'POST', headers: headers(extra), body: JSON.stringify(body) });
  const failures = () => logger.entries.filter((e) => e.level === 'error' && / session failed$/.test(e.message));

  beforeAll(async () => {
    up = await startBridgeUpstream();
    front = await startFront(
      configWith({
        stdio: { command: process.execPath, args: [STDIO_SERVER] },
        deep: { command: process.execPath, args: ['-e', DEEP_CHILD] },
        modern: { url: `${up.origin}/modern/mcp` },
        legacy: { url: `${up.origin}/legacy/sse` },
      }),
      { logger },
    );
  });
  afterEach(async () => {
    for (const s of streams.splice(0)) s.close();
    // Every other server still serves a new session.
    const client = await connectClient(front.url, 'stdio', 'streamable', DEV_TOKEN);
    try {
      expect(textOf(await client.callTool({ name: 'echo', arguments: { message: 'still here' } }))).toBe('still here');
    } finally {
      await client.close();
    }
  });
  afterAll(async () => {
    await front?.close();
    await up?.close();
  });

  it('a legacy SSE upstream, bridged to a Streamable HTTP client: the pending request gets 502, the session ends', async () => {
    logger.entries.splice(0);
    const init = await post(`${front.url}/legacy/mcp`, INITIALIZE);
    expect(init.status).toBe(200);
    await init.text();
    const session = init.headers.get('mcp-session-id')!;
    const res = await post(`${front.url}/legacy/mcp`, { jsonrpc: '2.0', id: 2, method: 'test/unrelayable' }, { 'Mcp-Session-Id': session });
    expect(res.status).toBe(502);
    expect(await res.json()).toMatchObject({ jsonrpc: '2.0', id: 2, error: { code: -32000 } });
    expect(failures()).toEqual([expect.objectContaining({ fields: expect.objectContaining({ server: 'legacy', where: 'server message', error: 'RangeError' }) })]);
    const after = await post(`${front.url}/legacy/mcp`, { jsonrpc: '2.0', id: 3, method: 'ping' }, { 'Mcp-Session-Id': session });
    expect(after.status).toBe(404);
    await after.text();
  });

  it('a Streamable HTTP upstream, bridged to a legacy SSE client: the pending request gets an error on the stream, which ends', async () => {
    logger.entries.splice(0);
    const stream = await openEventStream(`${front.url}/modern/sse`, { headers: headers() });
    streams.push(stream);
    const endpoint = front.origin + (await stream.nextMatching((e) => e.event === 'endpoint')).data;
    expect((await post(endpoint, INITIALIZE)).status).toBe(202);
    expect(JSON.parse((await stream.nextMatching((e) => e.event === 'message')).data)).toMatchObject({ id: 1, result: {} });
    const accepted = await post(endpoint, { jsonrpc: '2.0', id: 2, method: 'test/unrelayable' });
    expect(accepted.status).toBe(202);
    await accepted.text();
    expect(JSON.parse((await stream.nextMatching((e) => e.event === 'message')).data)).toMatchObject({ jsonrpc: '2.0', id: 2, error: { code: -32000 } });
    await stream.ended;
    expect(failures()).toEqual([expect.objectContaining({ fields: expect.objectContaining({ server: 'modern', where: 'server message', error: 'RangeError' }) })]);
  });

  it('a 2026-07-28 stdio server answering a stateless request: 502 for it, its child stopped', async () => {
    logger.entries.splice(0);
    const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} };
    const res = await post(`${front.url}/deep/mcp`, { jsonrpc: '2.0', id: 5, method: 'tools/list', params: { _meta: meta } }, MODERN_HEADERS);
    expect(res.status).toBe(502);
    expect(await res.json()).toMatchObject({ jsonrpc: '2.0', id: 5, error: { code: -32000 } });
    expect(failures()).toEqual([expect.objectContaining({ fields: expect.objectContaining({ server: 'deep', transport: 'stateless', where: 'server output', error: 'RangeError' }) })]);
    await waitFor(() => logger.entries.some((e) => e.message === 'session ended' && e.fields.upstream === 'stdio' && e.fields.server === 'deep'), 'the stateless child to end');
  });
});
