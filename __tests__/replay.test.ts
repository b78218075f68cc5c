// Every answer a client receives passes the answer step of the request it answers, whichever
// stream brings it (MCP Streamable HTTP §Resumability and Redelivery): a POST's own stream, a GET
// stream that resumes it, or a replay. A replayed answer to a request that was already answered
// (the reference server replays every event after `Last-Event-ID`) must never reach a restricted
// token unfiltered: it answers nothing pending, so it is dropped and logged. An answer that a
// resumed GET stream brings for a request still pending is filtered like any other.
import { once } from 'node:events';
import http from 'node:http';
import type net from 'node:net';
import { INITIALIZE } from './helpers/clients';
import { captureLogger, configWith, DEV_TOKEN, startEverything, startFront, waitFor, type Front, type Upstream } from './helpers/servers';
import { openEventStream, type EventStream } from './fixtures/remote-streams';
import type { SseEvent } from '../lib/wire/sse';

/** The dev token may use one tool of each server; list answers must show that one only. */
const ONLY_ECHO = { dev: { tools: ['echo'] } };
const TOOLS = ['echo', 'secret-tool'];

/**
 * An upstream that does what MCP 2025-11-25 allows: it answers a POST's stream with an event id
 * and `retry` only, then closes it (SSE polling); the client resumes with `GET` and
 * `Last-Event-ID`, and the answer to the pending `tools/list` comes on that stream.
 */
async function startPollingUpstream(): Promise<{ origin: string; close(): Promise<void> }> {
  const pending: { id: unknown }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'DELETE') return void res.writeHead(200).end();
      if (req.method === 'GET') {
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        for (const p of pending.splice(0)) {
          res.write(`id: answer-${String(p.id)}\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: p.id, result: { tools: TOOLS.map((name) => ({ name, inputSchema: { type: 'object' } })) } })}\n\n`);
        }
        return;
      }
      const msg = JSON.parse(Buffer.concat(chunks).toString()) as { id?: unknown; method: string };
      if (msg.method === 'initialize') {
        const result = { protocolVersion: '2025-11-25', capabilities: { tools: {} }, serverInfo: { name: 'polling', version: '1' } };
        res.writeHead(200, { 'Content-Type': 'application/json', 'Mcp-Session-Id': 'polling-1' }).end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result }));
        return;
      }
      if (msg.id === undefined) return void res.writeHead(202).end();
      pending.push({ id: msg.id });
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.end(`id: prime-${String(msg.id)}\nretry: 10\ndata: \n\n`);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    origin: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

let everything: Upstream;
let polling: Awaited<ReturnType<typeof startPollingUpstream>>;
let front: Front;
const logger = captureLogger();
const streams: EventStream[] = [];

beforeAll(async () => {
  [everything, polling] = await Promise.all([startEverything('streamableHttp'), startPollingUpstream()]);
  front = await startFront(
    configWith({
      everything: { url: `${everything.origin}/mcp`, permissions: ONLY_ECHO },
      polling: { url: `${polling.origin}/mcp`, permissions: ONLY_ECHO },
    }),
    { logger },
  );
});

afterAll(async () => {
  for (const s of streams) s.close();
  await front?.close();
  await Promise.all([everything?.close(), polling?.close()]);
});

const headers = (sessionId?: string, extra: Record<string, string> = {}) => ({
  Authorization: `Bearer ${DEV_TOKEN}`,
  'Content-Type': 'application/json',
  Accept: 'application/json, text/event-stream',
  'MCP-Protocol-Version': '2025-11-25',
  ...(sessionId === undefined ? {} : { 'Mcp-Session-Id': sessionId }),
  ...extra,
});

/** A POST whose answer is read as events (an event stream) or as one JSON event. */
async function post(server: string, body: unknown, sessionId?: string): Promise<{ res: Response; events: SseEvent[] }> {
  const stream = await openEventStream(`${front.url}/${server}/mcp`, { method: 'POST', headers: headers(sessionId), body: JSON.stringify(body) });
  streams.push(stream);
  const events: SseEvent[] = [];
  if (stream.headers.get('content-type')?.startsWith('text/event-stream')) {
    for (;;) {
      const event = await stream.next().catch(() => undefined);
      if (event === undefined) break;
      events.push(event);
    }
  }
  return { res: { status: stream.status, headers: stream.headers } as Response, events };
}

const toolsOf = (event: SseEvent): string[] | undefined => {
  if (event.event !== 'message' || event.data === '') return undefined;
  const message = JSON.parse(event.data) as { result?: { tools?: { name: string }[] } };
  return message.result?.tools?.map((t) => t.name);
};

async function initialize(server: string): Promise<{ sessionId: string }> {
  const { res } = await post(server, { ...INITIALIZE, params: { ...INITIALIZE.params, protocolVersion: '2025-11-25' } });
  expect(res.status).toBe(200);
  const sessionId = res.headers.get('mcp-session-id')!;
  const initialized = await fetch(`${front.url}/${server}/mcp`, { method: 'POST', headers: headers(sessionId), body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) });
  expect(initialized.status).toBe(202);
  return { sessionId };
}

it('a replay of an answered tools/list (the reference server, Last-Event-ID) is dropped, never relayed unfiltered', async () => {
  const { sessionId } = await initialize('everything');
  const listed = await post('everything', { jsonrpc: '2.0', id: 2, method: 'tools/list' }, sessionId);
  const first = listed.events.map(toolsOf).find((t) => t !== undefined);
  // Filtered on its own stream.
  expect(first).toEqual(['echo']);
  // The reference server gives every event an id and first primes a stream with an empty event
  // (MCP 2025-11-25): the replay after the priming event is the tools/list answer.
  const lastEventId = listed.events.find((e) => e.id !== undefined && toolsOf(e) === undefined)?.id;
  expect(lastEventId).toBeDefined();

  const logged = logger.entries.length;
  const replay = await openEventStream(`${front.url}/everything/mcp`, { headers: headers(sessionId, { 'Last-Event-ID': lastEventId! }) });
  streams.push(replay);
  expect(replay.status).toBe(200);
  // Whichever comes first: the replayed answer on the stream (the bug), or the proxy dropping it.
  const outcome = await Promise.race([
    replay.nextMatching((e) => toolsOf(e) !== undefined).then((e) => ({ relayed: toolsOf(e) })),
    waitFor(() => logger.entries.slice(logged).some((e) => e.message === 'dropped an answer to no pending request'), 'the dropped answer').then(() => ({ relayed: undefined })),
  ]);
  expect(outcome.relayed).toBeUndefined();
  expect(logger.entries.slice(logged)).toContainEqual({ level: 'warn', message: 'dropped an answer to no pending request', fields: { server: 'everything', token: 'dev', id: '2' } });
  replay.close();
  await replay.ended;
});

it('an answer that a resumed GET stream brings for a pending request is filtered and audited like any answer', async () => {
  const { sessionId } = await initialize('polling');
  const logged = logger.entries.length;
  // The upstream closes the POST's stream with nothing but an event id: the request stays pending.
  const primed = await post('polling', { jsonrpc: '2.0', id: 5, method: 'tools/list' }, sessionId);
  expect(primed.res.status).toBe(200);
  expect(primed.events.map(toolsOf).filter((t) => t !== undefined)).toEqual([]);

  const resumed = await openEventStream(`${front.url}/polling/mcp`, { headers: headers(sessionId, { 'Last-Event-ID': 'prime-5' }) });
  streams.push(resumed);
  expect(resumed.status).toBe(200);
  const answer = await resumed.nextMatching((e) => toolsOf(e) !== undefined);
  expect(toolsOf(answer)).toEqual(['echo']);
  // Its event id still reaches the client, for a later resumption.
  expect(answer.id).toBe('answer-5');
  await waitFor(() => logger.entries.slice(logged).some((e) => e.message === 'mcp request' && e.fields.method === 'tools/list'), 'the audit line');
  expect(logger.entries.slice(logged)).toContainEqual({
    level: 'info',
    message: 'mcp request',
    fields: expect.objectContaining({ token: 'dev', server: 'polling', method: 'tools/list', outcome: 'ok' }),
  });
  resumed.close();
  await resumed.ended;
});
