// How answers leave the proxy (bench/README.md "Optimisations"): a POST completed by one message is
// one write with Content-Length; anything longer streams, progress first; a GET stream gets its
// headers before any message and keep-alive comments while idle.
import { once } from 'node:events';
import http from 'node:http';
import type net from 'node:net';
import { DEV_TOKEN, EVERYTHING, configWith, startFront, type Front } from './helpers/servers';
import { openEventStream } from './fixtures/remote-streams';

const servers = { everything: { command: process.execPath, args: [EVERYTHING, 'stdio'] } };
/** Keep-alive comments every 200 ms. */
let front: Front;
/** Keep-alive comments every 30 s: a stream's first bytes cannot be one. */
let quiet: Front;

beforeAll(async () => {
  [front, quiet] = await Promise.all([startFront(configWith(servers, { keepAlive: '200ms' })), startFront(configWith(servers, { keepAlive: '30s' }))]);
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
      // The first GET stream takes what the server queued meanwhile (list_changed).
      const first = await openEventStream(url(), { headers: headers(session) });
      await first.next();
      first.close();
      await first.ended;
      let stream;
      let started = 0;
      for (let attempt = 0; ; attempt++) {
        started = Date.now();
        stream = await openEventStream(url(), { headers: headers(session) });
        // 409 until the proxy has seen the first stream close.
        if (stream.status !== 409 || attempt === 50) break;
        stream.close();
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      stream.close();
      await stream.ended;
      expect(stream.status).toBe(200);
      // Without a flush the headers would wait for the first keep-alive, 30 s away.
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      await closeSession(session);
    }
  } finally {
    base = () => front.url;
  }
});

describe('Streamable HTTP passthrough', () => {
  /** An upstream whose POST answer is an event stream that stays silent for `SILENCE_MS`. */
  const SILENCE_MS = 3000;
  let upstream: http.Server;
  let proxy: Front;

  beforeAll(async () => {
    upstream = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
        res.flushHeaders();
        const timer = setTimeout(() => res.end('event: message\ndata: {"jsonrpc":"2.0","id":9,"result":{}}\n\n'), SILENCE_MS);
        res.once('close', () => clearTimeout(timer));
      });
    });
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    const { port } = upstream.address() as net.AddressInfo;
    proxy = await startFront(configWith({ slow: { url: `http://127.0.0.1:${port}/mcp` } }));
  });

  afterAll(async () => {
    await proxy?.close();
    upstream?.closeAllConnections();
    await new Promise((resolve) => upstream?.close(resolve));
  });

  test('a POST whose event stream starts late (a long tool call) still gets its headers at once', async () => {
    const started = Date.now();
    const stream = await openEventStream(`${proxy.url}/slow/mcp`, {
      method: 'POST',
      headers: headers(),
      body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'slow', arguments: {} } }),
    });
    const headersAfter = Date.now() - started;
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toBe('text/event-stream');
    // The headers did not wait for the first event.
    expect(headersAfter).toBeLessThan(SILENCE_MS - 1000);
    const event = await stream.next();
    expect(JSON.parse(event.data)).toEqual({ jsonrpc: '2.0', id: 9, result: {} });
    expect(Date.now() - started).toBeGreaterThanOrEqual(SILENCE_MS - 50);
    await stream.ended;
  });
});
