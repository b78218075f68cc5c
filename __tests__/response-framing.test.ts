// How answers leave the proxy (bench/README.md "Optimisations"): a POST completed by one message is
// one write with Content-Length; anything longer streams, progress first; a GET stream gets its
// headers before any message and keep-alive comments while idle.
import { once } from 'node:events';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { DEV_TOKEN, EVERYTHING, configWith, startFront, type Front } from './helpers/servers';
import { openEventStream } from './fixtures/remote-streams';

const servers = { everything: { command: process.execPath, args: [EVERYTHING, 'stdio'] } };
/** A server that never writes unprompted (the reference server queues list_changed at start). */
const silent = { everything: { command: process.execPath, args: [path.join(__dirname, 'fixtures', 'stdio-server.js')] } };
/** Keep-alive comments every 200 ms. */
let front: Front;
/** Keep-alive comments a day apart, and a server that says nothing: a stream's first bytes never come. */
let quiet: Front;

beforeAll(async () => {
  [front, quiet] = await Promise.all([startFront(configWith(servers, { keepAlive: '200ms' })), startFront(configWith(silent, { keepAlive: '24h' }))]);
});

afterAll(async () => {
  await front?.close();
  await quiet?.close();
});

let base = () => front.url;
const url = () => `${base()}/everything/mcp`;

function headers(sessionId?: string, accept = 'application/json, text/event-stream'): Record<string, string> {
  const h: Record<string, string> = {
    Authorization: `Bearer ${DEV_TOKEN}`,
    'Content-Type': 'application/json',
    Accept: accept,
    'MCP-Protocol-Version': '2025-06-18',
  };
  if (sessionId !== undefined) h['Mcp-Session-Id'] = sessionId;
  return h;
}

async function openSession(): Promise<string> {
  const init = await fetch(url(), {
    method: 'POST',
    headers: headers(),
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'framing', version: '1.0.0' } },
    }),
  });
  expect(init.status).toBe(200);
  // The initialize answer is a single message too: one body with its length.
  expect(init.headers.get('content-length')).toMatch(/^\d+$/);
  await init.text();
  const id = init.headers.get('mcp-session-id')!;
  const ack = await fetch(url(), { method: 'POST', headers: headers(id), body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) });
  expect(ack.status).toBe(202);
  await ack.text();
  return id;
}

async function closeSession(id: string): Promise<void> {
  await (await fetch(url(), { method: 'DELETE', headers: headers(id) })).text();
}

const echo = (id: number, message: string) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { message } } });

test('a POST answered by one message: one SSE event with Content-Length, not a chunked stream', async () => {
  const session = await openSession();
  // Server-initiated messages (list_changed) go to the GET stream, not onto the echo's answer.
  const get = await openEventStream(url(), { headers: headers(session) });
  try {
    const res = await fetch(url(), { method: 'POST', headers: headers(session), body: JSON.stringify(echo(1, 'one write')) });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    expect(res.headers.get('transfer-encoding')).toBeNull();
    const body = await res.text();
    expect(Number(res.headers.get('content-length'))).toBe(Buffer.byteLength(body));
    expect(body).toMatch(/^event: message\ndata: \{.*\}\n\n$/);
    expect(JSON.parse(body.slice('event: message\ndata: '.length))).toMatchObject({ id: 1, result: { content: [{ text: 'Echo: one write' }] } });
  } finally {
    get.close();
    await get.ended;
    await closeSession(session);
  }
});

test('a client that takes only JSON gets a JSON body with Content-Length', async () => {
  const session = await openSession();
  try {
    const res = await fetch(url(), { method: 'POST', headers: headers(session, 'application/json'), body: JSON.stringify(echo(2, 'json')) });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    const body = await res.text();
    expect(Number(res.headers.get('content-length'))).toBe(Buffer.byteLength(body));
    expect(JSON.parse(body)).toMatchObject({ id: 2, result: { content: [{ text: 'Echo: json' }] } });
  } finally {
    await closeSession(session);
  }
});

test('a POST with progress streams: progress events first, then the result, then the end', async () => {
  const session = await openSession();
  try {
    const stream = await openEventStream(url(), {
      method: 'POST',
      headers: headers(session),
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 3,
        method: 'tools/call',
        params: { name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 2 }, _meta: { progressToken: 'p3' } },
      }),
    });
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-length')).toBeNull();
    const kinds: string[] = [];
    for (;;) {
      const event = await stream.nextMatching((e) => e.event === 'message');
      const message = JSON.parse(event.data) as { id?: number; method?: string };
      // Server-initiated messages (list_changed) may share this stream: only ours are counted.
      if (message.method === undefined || message.method === 'notifications/progress') kinds.push(message.method ?? `response ${message.id}`);
      if (message.id === 3) break;
    }
    expect(kinds).toEqual(['notifications/progress', 'notifications/progress', 'response 3']);
    await stream.ended;
  } finally {
    await closeSession(session);
  }
});

test('a GET stream gets its headers before any message, then keep-alive comments', async () => {
  const session = await openSession();
  try {
    const stream = await openEventStream(url(), { headers: headers(session) });
    try {
      expect(stream.status).toBe(200);
      expect(stream.headers.get('content-type')).toBe('text/event-stream');
      const comment = await stream.nextMatching((e) => e.event === '');
      expect(comment.data).toBe('keepalive');
    } finally {
      stream.close();
      await stream.ended;
    }
  } finally {
    await closeSession(session);
  }
});

test('a silent GET stream does not wait for its first write to send its headers', async () => {
  base = () => quiet.url;
  try {
    const session = await openSession();
    try {
      // Resolves when the headers arrive. Without a flush they would wait for the first write: a
      // keep-alive a day away, and the test would fail on jest's timeout.
      const stream = await openEventStream(url(), { headers: headers(session) });
      stream.close();
      await stream.ended;
      expect(stream.status).toBe(200);
      expect(stream.headers.get('content-type')).toBe('text/event-stream');
    } finally {
      await closeSession(session);
    }
  } finally {
    base = () => front.url;
  }
});

// With the audit on (the default) the answer is read event by event; with it off and the server
// known up, it is piped unread (README: Performance): both ways must get the headers out.
describe.each([
  ['answers read (audit on)', true],
  ['answers piped unread (audit off)', false],
])('Streamable HTTP passthrough, %s', (_name, audit) => {
  /** An upstream whose POST answer is an event stream that stays silent until the test calls `speak`. */
  let speak: () => void = () => {};
  let upstream: http.Server;
  let proxy: Front;

  beforeAll(async () => {
    upstream = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
        res.flushHeaders();
        speak = () => res.end('event: message\ndata: {"jsonrpc":"2.0","id":9,"result":{}}\n\n');
      });
    });
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    const { port } = upstream.address() as net.AddressInfo;
    proxy = await startFront(configWith({ slow: { url: `http://127.0.0.1:${port}/mcp` } }, { audit }));
  });

  afterAll(async () => {
    await proxy?.close();
    upstream?.closeAllConnections();
    await new Promise((resolve) => upstream?.close(resolve));
  });

  test('a POST whose event stream starts late (a long tool call) still gets its headers at once', async () => {
    // Twice: the first answer tells the health module the server is up, after which nothing but
    // the audit reads the second one.
    for (let round = 0; round < 2; round++) {
      // Resolves when the headers arrive, while the upstream is still silent: had they waited for the
      // first event, they would never come (it is sent only after), and the test would fail on jest's timeout.
      const stream = await openEventStream(`${proxy.url}/slow/mcp`, {
        method: 'POST',
        headers: headers(),
        body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'slow', arguments: {} } }),
      });
      expect(stream.status).toBe(200);
      expect(stream.headers.get('content-type')).toBe('text/event-stream');
      speak();
      const event = await stream.next();
      expect(JSON.parse(event.data)).toEqual({ jsonrpc: '2.0', id: 9, result: {} });
      await stream.ended;
    }
  });
});
