// CONTRACT §5, §7 for stdio servers: failures reach the client promptly as JSON-RPC errors, never
// as a hang; the proxy keeps serving everyone else; bad input and unknown sessions are refused.
import { realpathSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { MAX_LINE_BYTES } from '../lib/stdio/line-reader';
import { SseParser, type SseEvent } from '../lib/wire/sse';
import { connectClient, type ClientTransportKind, INITIALIZE, textOf } from './helpers/clients';
import { captureLogger, configWith, DEV_TOKEN, PROD_TOKEN, startFront, type Front } from './helpers/servers';

const FIXTURE = path.join(__dirname, 'fixtures', 'stdio-server.js');
const KINDS: ClientTransportKind[] = ['sse', 'streamable'];
/**
 * A server that cannot start gets an error, never a hang. A hang detector, not a speed target:
 * below the SDK client's own 60 s request timeout, which would otherwise turn a hang into an error.
 */
const PROMPT = 30_000;

describe('stdio faults and refusals', () => {
  let front: Front;
  const logger = captureLogger();
  const clients: Client[] = [];

  beforeAll(async () => {
    front = await startFront(
      configWith(
        {
          fixture: { command: process.execPath, args: [FIXTURE] },
          missing: { command: 'mcp-front-test-no-such-command', args: [] },
          early: { command: process.execPath, args: [FIXTURE, '--exit-at-start=3'] },
          // Long enough for a child to start and answer initialize on a busy machine: only `hang` outlasts it.
          slow: { command: process.execPath, args: [FIXTURE], timeout: '3s' },
          mute: { command: process.execPath, args: [FIXTURE, '--mute'], timeout: '300ms' },
          rooted: { command: process.execPath, args: [FIXTURE], cwd: os.tmpdir() },
          lost: { command: process.execPath, args: [FIXTURE], cwd: path.join(os.tmpdir(), 'mcp-front-no-such-dir') },
        },
        { maxBodyBytes: 64 * 1024 },
      ),
      { logger },
    );
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });
  afterAll(() => front.close());

  const connect = async (server: string, kind: ClientTransportKind, token = DEV_TOKEN) => {
    const client = await connectClient(front.url, server, kind, token);
    clients.push(client);
    return client;
  };
  const errorsLogged = (message: string, server: string) => logger.entries.filter((e) => e.level === 'error' && e.message === message && e.fields.server === server);

  /** A Streamable HTTP POST with the headers an SDK client sends. */
  const post = (body: unknown, headers: Record<string, string> = {}, token = DEV_TOKEN, server = 'fixture') =>
    fetch(`${front.url}/${server}/mcp`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  /** A raw Streamable session: its id. */
  const initialize = async (server = 'fixture'): Promise<string> => {
    const res = await post(INITIALIZE, {}, DEV_TOKEN, server);
    expect(res.status).toBe(200);
    await res.text();
    const id = res.headers.get('mcp-session-id')!;
    expect((await post({ jsonrpc: '2.0', method: 'notifications/initialized' }, { 'Mcp-Session-Id': id }, DEV_TOKEN, server)).status).toBe(202);
    return id;
  };

  /** The events of an SSE body (a POST stream that ends after its answers). */
  const eventsOf = async (res: Response): Promise<SseEvent[]> => {
    const events: SseEvent[] = [];
    new SseParser((e) => e.event && events.push(e)).push(await res.text());
    return events;
  };

  /** A raw legacy SSE session: its message endpoint and its events as they arrive. */
  const openLegacy = async () => {
    const controller = new AbortController();
    const res = await fetch(`${front.url}/fixture/sse`, { headers: { Authorization: `Bearer ${DEV_TOKEN}` }, signal: controller.signal });
    expect(res.status).toBe(200);
    const waiting: ((e: SseEvent) => void)[] = [];
    const backlog: SseEvent[] = [];
    const parser = new SseParser((e) => {
      if (!e.event) return;
      const next = waiting.shift();
      if (next) next(e);
      else backlog.push(e);
    });
    const reader = res.body!.getReader();
    void (async () => {
      for (;;) {
        const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
        if (done) return;
        parser.push(Buffer.from(value!));
      }
    })();
    const nextEvent = () => new Promise<SseEvent>((resolve) => (backlog.length ? resolve(backlog.shift()!) : waiting.push(resolve)));
    const endpoint = (await nextEvent()).data;
    return { endpoint: new URL(endpoint, front.origin).href, nextEvent, close: () => controller.abort() };
  };

  describe.each(KINDS)('over %s', (kind) => {
    it(
      'answers a command that does not exist with an error, at once',
      async () => {
        await expect(connect('missing', kind)).rejects.toThrow(/failed to start \(ENOENT\)|502/);
        expect(errorsLogged('stdio server failed to start', 'missing').at(-1)?.fields.error).toBe('ENOENT');
      },
      PROMPT,
    );

    it(
      'answers a server that exits at start with an error, and logs its exit code',
      async () => {
        await expect(connect('early', kind)).rejects.toThrow();
        expect(errorsLogged('stdio server exited', 'early').at(-1)?.fields).toMatchObject({ code: 3, signal: null });
      },
      PROMPT,
    );

    it('fails the pending request of a server that dies mid-session; other sessions go on', async () => {
      const doomed = await connect('fixture', kind);
      const survivor = await connect('fixture', kind === 'sse' ? 'streamable' : 'sse');
      await expect(doomed.callTool({ name: 'crash', arguments: {} })).rejects.toThrow(/exited \(code 5\)/);
      expect(errorsLogged('stdio server exited', 'fixture').at(-1)?.fields).toMatchObject({ code: 5 });
      expect(textOf(await survivor.callTool({ name: 'echo', arguments: { message: 'still here' } }))).toBe('still here');
    });

    it('relays a multi-megabyte result (one stdout line across many chunks)', async () => {
      const client = await connect('fixture', kind);
      const text = textOf(await client.callTool({ name: 'big', arguments: { bytes: 5 * 1024 * 1024 } }));
      expect(text.length).toBe(5 * 1024 * 1024);
      expect(/^x+$/.test(text)).toBe(true);
    });

    it("answers 404 for another token's session, even one allowed on the server", async () => {
      const client = await connect('fixture', kind);
      if (kind === 'streamable') {
        const id = (client.transport as StreamableHTTPClientTransport).sessionId!;
        expect((await post({ jsonrpc: '2.0', id: 9, method: 'tools/list' }, { 'Mcp-Session-Id': id }, PROD_TOKEN)).status).toBe(404);
        const get = await fetch(`${front.url}/fixture/mcp`, { headers: { Authorization: `Bearer ${PROD_TOKEN}`, 'Mcp-Session-Id': id } });
        expect(get.status).toBe(404);
        const del = await fetch(`${front.url}/fixture/mcp`, { method: 'DELETE', headers: { Authorization: `Bearer ${PROD_TOKEN}`, 'Mcp-Session-Id': id } });
        expect(del.status).toBe(404);
      } else {
        const legacy = await openLegacy();
        const res = await fetch(legacy.endpoint, {
          method: 'POST',
          headers: { Authorization: `Bearer ${PROD_TOKEN}`, 'Content-Type': 'application/json' },
          body: JSON.stringify(INITIALIZE),
        });
        expect(res.status).toBe(404);
        legacy.close();
      }
      // The owner is unaffected.
      expect(textOf(await client.callTool({ name: 'echo', arguments: { message: 'mine' } }))).toBe('mine');
    });
  });

  it.each(KINDS)('fails the handshake of a server that never answers initialize (timeout) over %s', async (kind) => {
    await expect(connect('mute', kind)).rejects.toThrow(/initialize|504|Gateway Timeout/);
  });

  it('answers 504 when the server does not start answering a request within its timeout', async () => {
    const id = await initialize('slow');
    const res = await post({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'hang', arguments: {} } }, { 'Mcp-Session-Id': id }, DEV_TOKEN, 'slow');
    expect(res.status).toBe(504);
    expect(await res.json()).toMatchObject({ jsonrpc: '2.0', id: 7, error: { code: -32000, message: expect.stringMatching(/did not answer/) } });
    // The session goes on.
    const ping = await post({ jsonrpc: '2.0', id: 8, method: 'ping' }, { 'Mcp-Session-Id': id }, DEV_TOKEN, 'slow');
    expect(ping.status).toBe(200);
    expect(JSON.parse((await eventsOf(ping))[0].data)).toMatchObject({ id: 8, result: {} });
  });

  it('ends a session whose server writes a line that never ends, with a JSON-RPC error', async () => {
    const client = await connect('fixture', 'streamable');
    await expect(client.callTool({ name: 'flood', arguments: { bytes: 2 * MAX_LINE_BYTES } })).rejects.toThrow(/line over the size limit/);
    expect(errorsLogged('stdio server output line too long', 'fixture').at(-1)?.fields).toMatchObject({ limit: MAX_LINE_BYTES });
    expect(textOf(await (await connect('fixture', 'streamable')).callTool({ name: 'echo', arguments: { message: 'next' } }))).toBe('next');
  });

  it('starts the server in its configured cwd, and says so when that directory is missing', async () => {
    const client = await connect('rooted', 'streamable');
    const { cwd } = JSON.parse(textOf(await client.callTool({ name: 'pid', arguments: {} }))) as { cwd: string };
    expect(realpathSync(cwd)).toBe(realpathSync(os.tmpdir()));
    await expect(connect('lost', 'streamable')).rejects.toThrow(/cwd does not exist/);
  });

  it('keeps serving other servers after a start failure', async () => {
    await expect(connect('missing', 'streamable')).rejects.toThrow();
    const client = await connect('fixture', 'streamable');
    expect((await client.listTools()).tools.map((t) => t.name)).toContain('echo');
  });

  it('answers a server that exits before initialize with 502 and a JSON-RPC error naming the exit code', async () => {
    const res = await fetch(`${front.url}/early/mcp`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${DEV_TOKEN}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
      body: JSON.stringify(INITIALIZE),
    });
    expect(res.status).toBe(502);
    expect(res.headers.get('mcp-session-id')).toBeNull();
    expect(await res.json()).toMatchObject({ jsonrpc: '2.0', id: 1, error: { code: -32000, message: expect.stringMatching(/exited \(code 3\)/) } });
  });

  describe('message routing', () => {
    const call = (id: number) => ({
      jsonrpc: '2.0',
      id,
      method: 'tools/call',
      params: { name: 'progress', arguments: { steps: 3 }, _meta: { progressToken: `token-${id}` } },
    });

    it('relays every message of a legacy session in order on its stream', async () => {
      const legacy = await openLegacy();
      const send = (message: unknown) =>
        fetch(legacy.endpoint, { method: 'POST', headers: { Authorization: `Bearer ${DEV_TOKEN}`, 'Content-Type': 'application/json' }, body: JSON.stringify(message) });
      expect((await send(INITIALIZE)).status).toBe(202);
      await legacy.nextEvent();
      expect((await send(call(5))).status).toBe(202);
      const kinds: string[] = [];
      for (let i = 0; i < 5; i++) {
        const m = JSON.parse((await legacy.nextEvent()).data);
        kinds.push(m.method === 'notifications/progress' ? `progress ${m.params.progress}` : (m.method ?? `result ${m.id}`));
      }
      expect(kinds).toEqual(['progress 1', 'progress 2', 'progress 3', 'notifications/message', 'result 5']);
      legacy.close();
    });

    it("puts a Streamable request's progress on its own POST stream, other server messages on the GET stream", async () => {
      const id = await initialize();
      const controller = new AbortController();
      const get = await fetch(`${front.url}/fixture/mcp`, {
        headers: { Authorization: `Bearer ${DEV_TOKEN}`, Accept: 'text/event-stream', 'Mcp-Session-Id': id },
        signal: controller.signal,
      });
      const logged = new Promise<SseEvent>((resolve) => {
        const parser = new SseParser((e) => e.event === 'message' && resolve(e));
        const reader = get.body!.getReader();
        void reader.read().then(function pump({ value, done }): unknown {
          if (done) return undefined;
          parser.push(Buffer.from(value));
          return reader.read().then(pump, () => undefined);
        }, () => undefined);
      });
      // Two concurrent requests of one session: each stream gets its own progress and result only.
      const [a, b] = await Promise.all([post(call(1), { 'Mcp-Session-Id': id }), post(call(2), { 'Mcp-Session-Id': id })]);
      for (const [res, rid] of [[a, 1], [b, 2]] as const) {
        const messages = (await eventsOf(res)).map((e) => JSON.parse(e.data));
        expect(messages.map((m) => m.params?.progressToken ?? m.id)).toEqual([`token-${rid}`, `token-${rid}`, `token-${rid}`, rid]);
      }
      expect(JSON.parse((await logged).data)).toMatchObject({ method: 'notifications/message', params: { data: 'progress done' } });
      controller.abort();
    });
  });

  describe('Streamable HTTP refusals', () => {
    it('refuses malformed JSON with 400 / -32700, with or without a session', async () => {
      const without = await post('{"jsonrpc": "2.0", "id": 1, "method": ');
      expect(without.status).toBe(400);
      expect(await without.json()).toMatchObject({ error: { code: -32700 } });
      const id = await initialize();
      const within = await post('not json', { 'Mcp-Session-Id': id });
      expect(within.status).toBe(400);
      expect(await within.json()).toMatchObject({ error: { code: -32700 } });
    });

    it('refuses a valid JSON body that is not JSON-RPC with 400 / -32600', async () => {
      const res = await post({ hello: 'world' });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: { code: -32600 } });
    });

    it('refuses a body over proxy.maxBodyBytes with 413', async () => {
      const id = await initialize();
      const res = await post({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { message: 'x'.repeat(100 * 1024) } } }, { 'Mcp-Session-Id': id });
      expect(res.status).toBe(413);
    });

    it('answers 400 for a non-initialize request without a session id, 404 for an unknown one', async () => {
      const missing = await post({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
      expect(missing.status).toBe(400);
      expect(await missing.json()).toMatchObject({ jsonrpc: '2.0', error: { code: -32600 } });
      const unknown = await post({ jsonrpc: '2.0', id: 2, method: 'tools/list' }, { 'Mcp-Session-Id': 'no-such-session' });
      expect(unknown.status).toBe(404);
      const get = await fetch(`${front.url}/fixture/mcp`, { headers: { Authorization: `Bearer ${DEV_TOKEN}` } });
      expect(get.status).toBe(400);
    });

    it('allows one GET stream per session (a second is 409)', async () => {
      const id = await initialize();
      const headers = { Authorization: `Bearer ${DEV_TOKEN}`, Accept: 'text/event-stream', 'Mcp-Session-Id': id };
      const controller = new AbortController();
      const first = await fetch(`${front.url}/fixture/mcp`, { headers, signal: controller.signal });
      expect(first.status).toBe(200);
      expect(first.headers.get('content-type')).toMatch(/text\/event-stream/);
      const second = await fetch(`${front.url}/fixture/mcp`, { headers });
      expect(second.status).toBe(409);
      controller.abort();
      const del = await fetch(`${front.url}/fixture/mcp`, { method: 'DELETE', headers });
      expect(del.status).toBe(204);
    });

    it('answers with JSON when the client does not accept an event stream, and batches as arrays', async () => {
      const init = await post(INITIALIZE, { Accept: 'application/json' });
      expect(init.status).toBe(200);
      expect(init.headers.get('content-type')).toMatch(/application\/json/);
      const id = init.headers.get('mcp-session-id')!;
      expect(await init.json()).toMatchObject({ jsonrpc: '2.0', id: 1, result: { serverInfo: { name: 'stdio-fixture' } } });

      const batch = await post(
        [
          { jsonrpc: '2.0', id: 'a', method: 'tools/call', params: { name: 'echo', arguments: { message: 'first' } } },
          { jsonrpc: '2.0', id: 'b', method: 'tools/call', params: { name: 'echo', arguments: { message: 'second' } } },
        ],
        { Accept: 'application/json', 'Mcp-Session-Id': id },
      );
      expect(batch.status).toBe(200);
      const answers = (await batch.json()) as { id: string; result: unknown }[];
      expect(Object.fromEntries(answers.map((a) => [a.id, textOf(a.result)]))).toEqual({ a: 'first', b: 'second' });
    });

    it('streams the answers of a batch on one event stream, then ends it', async () => {
      const id = await initialize();
      const res = await post(
        [
          { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { message: 'one' } } },
          { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 99 } },
          { jsonrpc: '2.0', id: 2, method: 'ping' },
        ],
        { 'Mcp-Session-Id': id },
      );
      expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
      const events = await eventsOf(res);
      expect(events.map((e) => JSON.parse(e.data).id).sort()).toEqual([1, 2]);
    });

    it('accepts notifications and responses with 202', async () => {
      const id = await initialize();
      const res = await post({ jsonrpc: '2.0', id: 'server-1', result: {} }, { 'Mcp-Session-Id': id });
      expect(res.status).toBe(202);
    });
  });

  describe('legacy SSE refusals', () => {
    it('refuses malformed JSON with 400 / -32700 and answers well-formed messages with 202', async () => {
      const legacy = await openLegacy();
      const send = (body: string) =>
        fetch(legacy.endpoint, { method: 'POST', headers: { Authorization: `Bearer ${DEV_TOKEN}`, 'Content-Type': 'application/json' }, body });
      const bad = await send('{"jsonrpc":');
      expect(bad.status).toBe(400);
      expect(await bad.json()).toMatchObject({ error: { code: -32700 } });
      // A pretty-printed body (newlines) still reaches the child as one line.
      const good = await send(JSON.stringify(INITIALIZE, null, 2));
      expect(good.status).toBe(202);
      expect(JSON.parse((await legacy.nextEvent()).data)).toMatchObject({ id: 1, result: { serverInfo: { name: 'stdio-fixture' } } });
      legacy.close();
    });

    it('answers 400 without a sessionId and 404 for an unknown one', async () => {
      const headers = { Authorization: `Bearer ${DEV_TOKEN}`, 'Content-Type': 'application/json' };
      const body = JSON.stringify(INITIALIZE);
      expect((await fetch(`${front.url}/fixture/message`, { method: 'POST', headers, body })).status).toBe(400);
      expect((await fetch(`${front.url}/fixture/message?sessionId=nope`, { method: 'POST', headers, body })).status).toBe(404);
    });
  });
});
