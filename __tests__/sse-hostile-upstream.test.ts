// Hostile upstreams: an upstream event stream is read by the rules a client reads it with (WHATWG
// HTML §9.2.6) and re-serialized, so no framing trick shows the client an event the proxy did not
// see; an event over `proxy.maxEventBytes` ends only its own session, logged and told.
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { connectClient, textOf, type ClientTransportKind } from './helpers/clients';
import { captureLogger, configWith, DEV_TOKEN, startFront, type Front } from './helpers/servers';

const LIMIT = 1024 * 1024;
const auth = { Authorization: `Bearer ${DEV_TOKEN}` };

interface ToolCall {
  id: number;
  params: { name: string; arguments?: Record<string, unknown> };
}

/** A tool result: the text, or `size` bytes of it for `huge`. */
function resultOf(call: ToolCall): string {
  const args = call.params.arguments ?? {};
  const text = call.params.name === 'huge' ? 'x'.repeat(Number(args.size)) : `Echo: ${String(args.message)}`;
  return JSON.stringify({ jsonrpc: '2.0', id: call.id, result: { content: [{ type: 'text', text }] } });
}

const initializeResult = (id: number, protocolVersion: string) =>
  JSON.stringify({ jsonrpc: '2.0', id, result: { protocolVersion, capabilities: { tools: {} }, serverInfo: { name: 'hostile', version: '1.0.0' } } });

/**
 * A legacy HTTP+SSE upstream (`/legacy/sse`, `/legacy/message`) whose `smuggle` tool answers with
 * an `endpoint` event ended by LF then CRLF, and a Streamable HTTP one (`/streamable/mcp`) whose
 * answers are event streams; on both, `huge` answers with an event of `size` bytes.
 */
async function startHostileUpstream() {
  const streams = new Map<string, http.ServerResponse>();
  const posts: string[] = [];
  let next = 0;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://upstream');
    if (req.method === 'GET' && url.pathname === '/legacy/sse') {
      const id = String(++next);
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.write(`event: endpoint\ndata: /legacy/message?sessionId=${id}\n\n`);
      streams.set(id, res);
      res.on('close', () => streams.delete(id));
      return;
    }
    if (req.method === 'GET' && url.pathname === '/framing/sse') {
      // Everything at once: the endpoint, then a block whose `\n\r\n` ends an `endpoint` event.
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.write('event: endpoint\ndata: /framing/message\n\n');
      res.write('event: endpoint\ndata: /evil\n\r\nevent: message\r\ndata: {"jsonrpc":"2.0","method":"notifications/message",\rdata: "params":{"level":"info","data":"after"}}\n\n');
      return;
    }
    if (req.method !== 'POST') {
      // No standalone GET stream (405); DELETE of a session is fine.
      req.resume();
      return void res.writeHead(req.method === 'GET' ? 405 : 200).end();
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      posts.push(url.pathname);
      const message = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id?: number; method: string; params: { protocolVersion?: string } };
      if (url.pathname === '/legacy/message') {
        const stream = streams.get(url.searchParams.get('sessionId') ?? '');
        if (!stream) return void res.writeHead(404).end();
        res.writeHead(202).end();
        if (message.id === undefined) return;
        if (message.method === 'initialize') stream.write(`event: message\ndata: ${initializeResult(message.id, '2024-11-05')}\n\n`);
        else if (message.method === 'tools/call' && (message as unknown as ToolCall).params.name === 'smuggle') {
          // Its own message URL again: harmless to the proxy, a 404 if the client posted there itself.
          stream.write(`event: endpoint\ndata: ${url.pathname}${url.search}\n\r\nevent: message\ndata: ${resultOf(message as unknown as ToolCall)}\n\n`);
        } else stream.write(`event: message\ndata: ${resultOf(message as unknown as ToolCall)}\n\n`);
        return;
      }
      if (url.pathname === '/streamable/mcp') {
        if (message.id === undefined) return void res.writeHead(202).end();
        const body =
          message.method === 'initialize' ? initializeResult(message.id, message.params.protocolVersion ?? '2025-06-18') : resultOf(message as unknown as ToolCall);
        res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Mcp-Session-Id': 'upstream-session' });
        res.end(`event: message\ndata: ${body}\n\n`);
        return;
      }
      res.writeHead(404).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    posts,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Reads an event stream as the SDK's client does: fetch, TextDecoderStream, eventsource-parser. */
async function readEvents(url: string, count: number): Promise<EventSourceMessage[]> {
  const controller = new AbortController();
  const res = await fetch(url, { headers: { ...auth, Accept: 'text/event-stream' }, signal: controller.signal });
  expect(res.status).toBe(200);
  const events: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (e) => events.push(e) });
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  try {
    while (events.length < count) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.feed(value);
    }
  } finally {
    controller.abort();
  }
  return events;
}

describe('hostile upstream event streams', () => {
  let upstream: Awaited<ReturnType<typeof startHostileUpstream>>;
  let front: Front;
  const logger = captureLogger();
  const clients: Client[] = [];

  beforeAll(async () => {
    upstream = await startHostileUpstream();
    const servers = {
      legacy: { url: `${upstream.origin}/legacy/sse` },
      framing: { url: `${upstream.origin}/framing/sse` },
      streamable: { url: `${upstream.origin}/streamable/mcp` },
    };
    front = await startFront(configWith(servers, { maxEventBytes: LIMIT }), { logger });
  });

  afterAll(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await front?.close();
    await upstream?.close();
  });

  async function connect(server: string, kind: ClientTransportKind): Promise<Client> {
    const client = await connectClient(front.url, server, kind, DEV_TOKEN);
    clients.push(client);
    return client;
  }

  test('an endpoint event ended by LF then CRLF never reaches the client; the events arrive re-serialized', async () => {
    const events = await readEvents(`${front.url}/framing/sse`, 2);
    expect(events.map((e) => e.event)).toEqual(['endpoint', 'message']);
    expect(events[0].data).toMatch(/^\/framing\/message\?sessionId=/);
    // Two data lines (the second after a bare CR) are one data, joined by LF.
    expect(events[1].data).toBe('{"jsonrpc":"2.0","method":"notifications/message",\n"params":{"level":"info","data":"after"}}');
  });

  test('a smuggled endpoint does not move the SDK client off the proxy', async () => {
    const client = await connect('legacy', 'sse');
    expect(textOf(await client.callTool({ name: 'smuggle', arguments: {} }))).toBe('Echo: undefined');
    // The client still posts to the proxy's own route, which still reaches the upstream session.
    expect(textOf(await client.callTool({ name: 'echo', arguments: { message: 'still here' } }))).toBe('Echo: still here');
  });

  test('an event just under the limit passes whole, on every path', async () => {
    const size = LIMIT - 1024;
    for (const [server, kind] of [
      ['legacy', 'sse'],
      ['legacy', 'streamable'],
      ['streamable', 'sse'],
    ] as const) {
      const client = await connect(server, kind);
      expect(textOf(await client.callTool({ name: 'huge', arguments: { size } }))).toHaveLength(size);
    }
  });

  test.each([
    ['legacy SSE relayed to an SSE client', 'legacy', 'sse'],
    ['legacy SSE bridged to a Streamable HTTP client', 'legacy', 'streamable'],
    ['Streamable HTTP bridged to an SSE client', 'streamable', 'sse'],
  ] as const)('an event over the limit ends its session with an error (%s); others keep answering', async (_what, server, kind) => {
    const bystander = await connect('legacy', 'sse');
    const client = await connect(server, kind);
    // A relayed stream has no pending ids to answer: its error comes without one, to onerror.
    const told = new Promise<string>((resolve) => {
      client.onerror = (err) => {
        if (err.message.includes('byte limit')) resolve(err.message);
      };
    });
    const before = logger.entries.length;
    const call = client.callTool({ name: 'huge', arguments: { size: 2 * LIMIT } });
    const outcome = await Promise.race([call.then(() => 'answered', (err: Error) => err.message), told]);
    expect(outcome).toContain(`over the ${LIMIT}-byte limit`);
    void call.catch(() => undefined);

    const logged = logger.entries.slice(before).filter((e) => e.message === 'upstream event too large');
    expect(logged).toEqual([{ level: 'error', message: 'upstream event too large', fields: { server, limit: LIMIT } }]);
    expect(logger.text()).not.toContain(DEV_TOKEN);

    expect(textOf(await bystander.callTool({ name: 'echo', arguments: { message: 'unaffected' } }))).toBe('Echo: unaffected');
    const health = await fetch(`${front.url}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok' });
  });
});
