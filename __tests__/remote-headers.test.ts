// What crosses the proxy towards a remote upstream, observed by a small capturing upstream:
// headers stripped/injected/forwarded, paths, bodies refused before forwarding, upstream faults,
// and sessions closed by the router.
import { DEV_TOKEN, PROD_TOKEN, captureLogger, configWith, REFUSING_ORIGIN, startFront, type Front } from './helpers/servers';
import { startCapture, type CaptureServer, type Captured } from './fixtures/remote-capture';
import { errorBody, openEventStream, type EventStream } from './fixtures/remote-streams';
import type { McpFrontConfig } from '../lib/types';

const API_KEY = 'configured-upstream-key';
let cap: CaptureServer;
let config: McpFrontConfig;
/** Mounted under /gateway after express.json(). */
let gateway: Front;
/** Mounted at the root, body unparsed. */
let raw: Front;
const rawLog = captureLogger();

beforeAll(async () => {
  cap = await startCapture();
  config = configWith(
    {
      cap: { url: `${cap.origin}/upstream/mcp?tenant=t1`, headers: { 'X-API-Key': API_KEY } },
      capsse: { url: `${cap.origin}/legacy/sse`, headers: { 'X-API-Key': API_KEY } },
      credsse: { url: `${cap.origin.replace('http://', 'http://relay:p%40ss@')}/legacy/sse` },
      credhttp: { url: `${cap.origin.replace('http://', 'http://relay:p%40ss@')}/upstream/mcp` },
      abssse: { url: `${cap.origin}/absolute/sse` },
      slow: { url: `${cap.origin}/hang/mcp`, timeout: '300ms' },
      slowsse: { url: `${cap.origin}/hang/sse`, timeout: '300ms' },
      locked: { url: `${cap.origin}/locked/mcp` },
      lockedsse: { url: `${cap.origin}/locked/sse` },
      brokensse: { url: `${cap.origin}/broken/sse` },
      evilsse: { url: `${cap.origin}/evil/sse` },
      hanging: { url: `${cap.origin}/hang/long/mcp`, timeout: '30s' },
      down: { url: `${REFUSING_ORIGIN}/mcp` },
      downsse: { url: `${REFUSING_ORIGIN}/sse` },
    },
    { maxBodyBytes: 4096 },
  );
  gateway = await startFront(config, { mount: '/gateway', json: true });
  raw = await startFront(config, { logger: rawLog });
});

afterAll(async () => {
  await gateway?.close();
  await raw?.close();
  await cap?.close();
});

const auth = (token = DEV_TOKEN) => ({ Authorization: `Bearer ${token}` });
const jsonHeaders = (token = DEV_TOKEN) => ({ ...auth(token), 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' });
const initialize = (id = 1) => ({
  jsonrpc: '2.0',
  id,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1.0.0' } },
});
let marker = 0;
/** A request the capture log can tell apart from every other one. */
const toolCall = () => ({ jsonrpc: '2.0', id: `call-${++marker}`, method: 'tools/call', params: { name: 'echo', arguments: { message: 'hi' } } });
const sent = (body: object) => (entry: Captured) => entry.type === 'request' && entry.body === JSON.stringify(body);

test('Streamable HTTP: Authorization and Cookie stripped, configured headers injected, Mcp-* forwarded, path and query mapped', async () => {
  const body = toolCall();
  const res = await fetch(`${gateway.url}/cap/mcp?ignored=1`, {
    method: 'POST',
    headers: {
      ...jsonHeaders(),
      Cookie: 'session=browser-secret',
      'Proxy-Authorization': 'Basic c2VjcmV0',
      'X-Client-Header': 'not-for-upstream',
      'MCP-Protocol-Version': '2026-07-28',
      'Mcp-Method': 'tools/call',
      'Mcp-Name': 'echo',
      'Mcp-Param-Message': 'hi',
      'X-API-Key': 'client-tries-to-override',
    },
    body: JSON.stringify(body),
  });
  // A request without a session id that is not initialize (stateless revision) passes through.
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({ jsonrpc: '2.0', id: body.id, result: {} });
  expect(res.headers.get('x-upstream')).toBe('capture');
  expect(res.headers.get('access-control-allow-origin')).toBeNull();
  expect(res.headers.get('access-control-expose-headers')).toBeNull();

  const seen = await cap.waitFor(sent(body));
  expect(seen.method).toBe('POST');
  expect(seen.url).toBe('/upstream/mcp?tenant=t1');
  expect(seen.headers).toMatchObject({
    'x-api-key': API_KEY,
    'mcp-protocol-version': '2026-07-28',
    'mcp-method': 'tools/call',
    'mcp-name': 'echo',
    'mcp-param-message': 'hi',
    accept: 'application/json, text/event-stream',
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(JSON.stringify(body))),
    host: new URL(cap.origin).host,
  });
  for (const name of ['authorization', 'cookie', 'proxy-authorization', 'x-client-header']) expect(seen.headers[name]).toBeUndefined();
  expect(JSON.stringify(seen.headers)).not.toContain(DEV_TOKEN);
});

test('Streamable HTTP: the session an initialize opens belongs to its token until DELETE', async () => {
  const init = await fetch(`${raw.url}/cap/mcp`, { method: 'POST', headers: jsonHeaders(), body: JSON.stringify(initialize()) });
  expect(init.status).toBe(200);
  // The client gets an id of ours, never the upstream's; the upstream sees only its own.
  const id = init.headers.get('mcp-session-id')!;
  expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/);
  await init.text();

  const withSession = (token: string) => ({ ...jsonHeaders(token), 'Mcp-Session-Id': id, 'MCP-Protocol-Version': '2025-06-18' });
  const ownBody = toolCall();
  const own = await fetch(`${raw.url}/cap/mcp`, { method: 'POST', headers: withSession(DEV_TOKEN), body: JSON.stringify(ownBody) });
  expect(own.status).toBe(200);
  await own.text();
  const upstreamId = (await cap.waitFor(sent(ownBody))).headers['mcp-session-id'];
  expect(upstreamId).toMatch(/^capture-session-\d+$/);

  const before = cap.requests().length;
  const stolen = await fetch(`${raw.url}/cap/mcp`, { method: 'POST', headers: withSession(PROD_TOKEN), body: JSON.stringify(toolCall()) });
  expect(stolen.status).toBe(404);
  await stolen.text();

  const del = await fetch(`${raw.url}/cap/mcp`, { method: 'DELETE', headers: withSession(DEV_TOKEN) });
  expect(del.status).toBe(200);
  const deleted = await cap.waitFor((e) => e.method === 'DELETE' && e.headers['mcp-session-id'] === upstreamId);
  expect(deleted.headers['x-api-key']).toBe(API_KEY);
  expect(deleted.headers.authorization).toBeUndefined();
  // The stolen request never reached the upstream; the DELETE did.
  expect(cap.requests().slice(before).map((e) => e.method)).toEqual(['DELETE']);

  const after = await fetch(`${raw.url}/cap/mcp`, { method: 'POST', headers: withSession(DEV_TOKEN), body: JSON.stringify(toolCall()) });
  expect(after.status).toBe(404);
  await after.text();
});

test('legacy SSE: upstream sees no client credentials, client sees only our endpoint, messages are forwarded', async () => {
  const stream = await openEventStream(`${gateway.url}/capsse/sse`, { headers: { ...auth(), Cookie: 'session=browser-secret' } });
  try {
    expect(stream.status).toBe(200);
    const endpoint = await stream.next();
    expect(endpoint.event).toBe('endpoint');
    expect(endpoint.data).toMatch(/^\/gateway\/capsse\/message\?sessionId=[A-Za-z0-9_-]{43}$/);
    expect(endpoint.data).not.toContain('upstream-');

    const get = await cap.waitFor((e) => e.type === 'request' && e.method === 'GET' && e.url === '/legacy/sse');
    expect(get.headers['x-api-key']).toBe(API_KEY);
    expect(get.headers.authorization).toBeUndefined();
    expect(get.headers.cookie).toBeUndefined();

    const body = toolCall();
    const res = await fetch(gateway.origin + endpoint.data, { method: 'POST', headers: { ...jsonHeaders(), Cookie: 'a=b' }, body: JSON.stringify(body) });
    expect(res.status).toBe(202);
    expect(await res.text()).toBe('Accepted');
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    const forwarded = await cap.waitFor(sent(body));
    expect(forwarded.method).toBe('POST');
    expect(forwarded.url).toMatch(/^\/legacy\/messages\/\?session_id=upstream-\d+$/);
    expect(forwarded.headers['x-api-key']).toBe(API_KEY);
    expect(forwarded.headers.authorization).toBeUndefined();
    expect(forwarded.headers.cookie).toBeUndefined();

    const stolen = await fetch(gateway.origin + endpoint.data, { method: 'POST', headers: jsonHeaders(PROD_TOKEN), body: JSON.stringify(toolCall()) });
    expect(stolen.status).toBe(404);
    await stolen.text();

    // The client leaves: the upstream stream is closed, and the session is gone.
    stream.close();
    await cap.waitFor((e) => e.type === 'closed' && e.url === get.url && e.headers === get.headers);
    const late = await fetch(gateway.origin + endpoint.data, { method: 'POST', headers: jsonHeaders(), body: JSON.stringify(toolCall()) });
    expect(late.status).toBe(404);
    await late.text();
  } finally {
    stream.close();
    await stream.ended;
  }
});

test('Streamable HTTP: credentials in the server URL reach the upstream as Basic auth, as on every other route', async () => {
  const body = toolCall();
  const res = await fetch(`${raw.url}/credhttp/mcp`, { method: 'POST', headers: { ...jsonHeaders(), 'MCP-Protocol-Version': '2026-07-28' }, body: JSON.stringify(body) });
  expect(res.status).toBe(200);
  await res.text();
  const seen = await cap.waitFor(sent(body));
  expect(seen.headers.authorization).toBe(`Basic ${Buffer.from('relay:p@ss').toString('base64')}`);
  expect(seen.headers.host).toBe(new URL(cap.origin).host);
});

test('legacy SSE: credentials in the server URL reach the upstream as Basic auth, on the stream and on messages', async () => {
  const basic = `Basic ${Buffer.from('relay:p@ss').toString('base64')}`;
  const stream = await openEventStream(`${raw.url}/credsse/sse`, { headers: { ...auth(), 'Content-Type': 'text/plain', 'Mcp-Extra': 'x' } });
  try {
    const endpoint = await stream.next();
    expect(endpoint.event).toBe('endpoint');
    const get = await cap.waitFor((e) => e.type === 'request' && e.method === 'GET' && e.url === '/legacy/sse' && e.headers['mcp-extra'] === 'x');
    expect(get.headers.authorization).toBe(basic);
    expect(get.headers.host).toBe(new URL(cap.origin).host);
    // A GET has no body: the client's Content-Type is not forwarded; Mcp-* headers are.
    expect(get.headers['content-type']).toBeUndefined();
    expect(get.headers.accept).toBe('text/event-stream');

    const body = toolCall();
    const res = await fetch(raw.origin + endpoint.data, { method: 'POST', headers: jsonHeaders(), body: JSON.stringify(body) });
    expect(res.status).toBe(202);
    await res.text();
    const forwarded = await cap.waitFor(sent(body));
    expect(forwarded.url).toMatch(/^\/legacy\/messages\/\?session_id=upstream-\d+$/);
    expect(forwarded.headers.authorization).toBe(basic);
    expect(forwarded.headers['content-type']).toBe('application/json');
  } finally {
    stream.close();
    await stream.ended;
  }
});

test('Streamable HTTP: an upstream 404 for a session makes the proxy forget it', async () => {
  const init = await fetch(`${raw.url}/cap/mcp`, { method: 'POST', headers: jsonHeaders(), body: JSON.stringify(initialize()) });
  const id = init.headers.get('mcp-session-id')!;
  await init.text();
  const headers = { ...jsonHeaders(), 'Mcp-Session-Id': id };
  const expired = await fetch(`${raw.url}/cap/mcp`, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'test/expire' }) });
  expect(expired.status).toBe(404);
  await expired.text();
  const before = cap.requests().length;
  const next = await fetch(`${raw.url}/cap/mcp`, { method: 'POST', headers, body: JSON.stringify(toolCall()) });
  expect(next.status).toBe(404);
  await next.text();
  expect(cap.requests().length).toBe(before);
});

test('legacy SSE: an absolute same-origin endpoint works, and an upstream that ends its stream ends the session', async () => {
  const stream = await openEventStream(`${raw.url}/abssse/sse`, { headers: auth() });
  try {
    const endpoint = await stream.next();
    expect(endpoint.data).toMatch(/^\/abssse\/message\?sessionId=/);
    const body = { jsonrpc: '2.0', id: `hangup-${++marker}`, method: 'test/hangup' };
    const res = await fetch(raw.origin + endpoint.data, { method: 'POST', headers: jsonHeaders(), body: JSON.stringify(body) });
    expect(res.status).toBe(202);
    await res.text();
    expect((await cap.waitFor(sent(body))).url).toMatch(/^\/absolute\/messages\/\?session_id=upstream-\d+$/);
    await stream.ended;
    const late = await fetch(raw.origin + endpoint.data, { method: 'POST', headers: jsonHeaders(), body: JSON.stringify(toolCall()) });
    expect(late.status).toBe(404);
    await late.text();
  } finally {
    stream.close();
  }
});

describe('a client that leaves releases the upstream request', () => {
  test('Streamable HTTP, mid-stream', async () => {
    const earlier = new Set(cap.requests());
    const init = await fetch(`${raw.url}/cap/mcp`, { method: 'POST', headers: jsonHeaders(), body: JSON.stringify(initialize()) });
    const id = init.headers.get('mcp-session-id')!;
    await init.text();
    const stream = await openEventStream(`${raw.url}/cap/mcp`, { headers: { ...auth(), Accept: 'text/event-stream', 'Mcp-Session-Id': id } });
    await stream.next();
    // The upstream sees its own id, not the client's.
    const upstreamGet = await cap.waitFor((e) => !earlier.has(e) && e.type === 'request' && e.method === 'GET' && /^capture-session-\d+$/.test(String(e.headers['mcp-session-id'])));
    expect(upstreamGet.headers['mcp-session-id']).not.toBe(id);
    stream.close();
    await cap.waitFor((e) => e.type === 'closed' && e.headers === upstreamGet.headers);
  });

  test('Streamable HTTP, before the upstream answered', async () => {
    const body = toolCall();
    const controller = new AbortController();
    const pending = fetch(`${raw.url}/hanging/mcp`, { method: 'POST', headers: jsonHeaders(), body: JSON.stringify(body), signal: controller.signal });
    const seen = await cap.waitFor(sent(body));
    controller.abort();
    await expect(pending).rejects.toThrow();
    await cap.waitFor((e) => e.type === 'closed' && e.headers === seen.headers);
  });
});

describe('a body over proxy.maxBodyBytes is refused with 413 and never forwarded', () => {
  const big = () => ({ ...toolCall(), params: { name: 'echo', arguments: { message: 'x'.repeat(5000) } } });

  test.each([
    ['with express.json() before the router', () => gateway],
    ['with the body unparsed', () => raw],
  ])('/mcp %s', async (_how, front) => {
    const before = cap.requests().length;
    const res = await fetch(`${front().url}/cap/mcp`, { method: 'POST', headers: jsonHeaders(), body: JSON.stringify(big()) });
    expect(res.status).toBe(413);
    expect((await errorBody(res)).error.code).toBe(-32600);
    expect(cap.requests().length).toBe(before);
  });

  test('/message of a legacy session', async () => {
    const stream = await openEventStream(`${raw.url}/capsse/sse`, { headers: auth() });
    try {
      const endpoint = await stream.next();
      const before = cap.requests().length;
      const res = await fetch(raw.origin + endpoint.data, { method: 'POST', headers: jsonHeaders(), body: JSON.stringify(big()) });
      expect(res.status).toBe(413);
      await res.text();
      expect(cap.requests().length).toBe(before);
    } finally {
      stream.close();
      await stream.ended;
    }
  });
});

describe('upstream faults become JSON-RPC errors', () => {
  test.each([
    ['Streamable HTTP', 'down', 'POST', '/mcp'],
    ['legacy SSE', 'downsse', 'GET', '/sse'],
  ])('%s upstream refusing connections → 502', async (_kind, server, method, route) => {
    const res = await fetch(`${raw.url}/${server}${route}`, {
      method,
      headers: jsonHeaders(),
      body: method === 'POST' ? JSON.stringify(initialize(42)) : undefined,
    });
    expect(res.status).toBe(502);
    const body = await errorBody(res);
    expect(body).toEqual({ jsonrpc: '2.0', error: { code: -32000, message: expect.stringContaining(server) }, id: method === 'POST' ? 42 : null });
    // Sanitized: no address, port or system error text.
    expect(body.error.message).not.toMatch(/127\.0\.0\.1|ECONNREFUSED|\d{4,5}/);
    expect(rawLog.entries).toContainEqual({ level: 'warn', message: 'upstream error', fields: { server, code: 'ECONNREFUSED', status: 502 } });
    expect(rawLog.text()).not.toContain(DEV_TOKEN);
  });

  test.each([
    ['Streamable HTTP', 'slow', 'POST', '/mcp'],
    ['legacy SSE', 'slowsse', 'GET', '/sse'],
  ])('%s upstream that never answers within timeout → 504', async (_kind, server, method, route) => {
    const res = await fetch(`${raw.url}/${server}${route}`, {
      method,
      headers: jsonHeaders(),
      body: method === 'POST' ? JSON.stringify(initialize(43)) : undefined,
    });
    expect(res.status).toBe(504);
    expect((await errorBody(res)).error).toEqual({ code: -32000, message: expect.stringContaining('300 ms') });
  });

  test.each([
    ['Streamable HTTP', 'locked', 'POST', '/mcp'],
    ['legacy SSE', 'lockedsse', 'GET', '/sse'],
  ])("%s upstream refusing the proxy's credentials (401) → 502, its challenge not passed on", async (_kind, server, method, route) => {
    const res = await fetch(`${raw.url}/${server}${route}`, { method, headers: jsonHeaders(), body: method === 'POST' ? JSON.stringify(toolCall()) : undefined });
    expect(res.status).toBe(502);
    expect(res.headers.get('www-authenticate')).toBeNull();
    expect((await errorBody(res)).error.message).toContain('HTTP 401');
  });

  test.each([
    ['refusing connections', 'downsse', 502, 'is unreachable'],
    ['never answering within timeout', 'slowsse', 504, '300 ms'],
    ["refusing the proxy's credentials", 'lockedsse', 502, 'HTTP 401'],
    ['answering something else than an event stream', 'brokensse', 502, 'HTTP 500'],
  ])('a Streamable HTTP client bridged to a legacy SSE upstream %s (%s): initialize fails with %d', async (_what, server, status, message) => {
    const res = await fetch(`${raw.url}/${server}/mcp`, { method: 'POST', headers: jsonHeaders(), body: JSON.stringify(initialize(44)) });
    expect(res.status).toBe(status);
    expect((await errorBody(res)).error).toEqual({ code: -32000, message: expect.stringContaining(message) });
  });

  test('legacy SSE upstream answering something else than an event stream → 502', async () => {
    const res = await fetch(`${raw.url}/brokensse/sse`, { headers: auth() });
    expect(res.status).toBe(502);
    expect((await errorBody(res)).error).toEqual({ code: -32000, message: expect.stringContaining('HTTP 500') });
  });

  test('legacy SSE upstream pointing its endpoint at another origin: the stream ends, nothing is posted there', async () => {
    const stream = await openEventStream(`${raw.url}/evilsse/sse`, { headers: auth() });
    expect(stream.status).toBe(200);
    await stream.ended;
    await expect(stream.next()).rejects.toThrow('stream ended');
    expect(rawLog.entries).toContainEqual({ level: 'warn', message: 'upstream sent an unusable endpoint', fields: { server: 'evilsse' } });
  });

  test('a legacy SSE client bridged to a Streamable HTTP server: configured URL and headers, never the client credentials', async () => {
    const stream = await openEventStream(`${gateway.url}/cap/sse`, { headers: { ...auth(), Cookie: 'session=browser-secret' } });
    try {
      const endpoint = await stream.next();
      expect(endpoint.data).toMatch(/^\/gateway\/cap\/message\?sessionId=/);
      const body = initialize(44);
      const res = await fetch(gateway.origin + endpoint.data, { method: 'POST', headers: { ...jsonHeaders(), Cookie: 'session=browser-secret' }, body: JSON.stringify(body) });
      expect(res.status).toBe(202);
      await res.text();
      expect(JSON.parse((await stream.nextMatching((e) => e.event === 'message')).data)).toMatchObject({ id: 44, result: { serverInfo: { name: 'capture' } } });
      const upstream = await cap.waitFor(sent(body));
      expect(upstream.url).toBe('/upstream/mcp?tenant=t1');
      expect(upstream.headers['x-api-key']).toBe(API_KEY);
      expect(upstream.headers.authorization).toBeUndefined();
      expect(upstream.headers.cookie).toBeUndefined();
    } finally {
      stream.close();
      await stream.ended;
    }
  });
});

test('router.close() ends live streams and says DELETE upstream', async () => {
  const front = await startFront(config);
  const streams: EventStream[] = [];
  try {
    const init = await fetch(`${front.url}/cap/mcp`, { method: 'POST', headers: jsonHeaders(), body: JSON.stringify(initialize()) });
    const id = init.headers.get('mcp-session-id')!;
    await init.text();

    const get = await openEventStream(`${front.url}/cap/mcp`, {
      headers: { ...auth(), Accept: 'text/event-stream', 'Mcp-Session-Id': id, 'MCP-Protocol-Version': '2025-06-18', 'Last-Event-ID': 'evt-1' },
    });
    streams.push(get);
    expect(get.headers.get('x-accel-buffering')).toBe('no');
    // The upstream's first event arrives while its stream stays open: nothing is buffered.
    expect((await get.next()).id).toBe('evt-2');
    const upstreamGet = await cap.waitFor((e) => e.type === 'request' && e.method === 'GET' && e.headers['last-event-id'] === 'evt-1');
    const upstreamId = upstreamGet.headers['mcp-session-id'];
    expect(upstreamId).toMatch(/^capture-session-\d+$/);

    const legacy = await openEventStream(`${front.url}/capsse/sse`, { headers: auth() });
    streams.push(legacy);
    expect((await legacy.next()).event).toBe('endpoint');

    await front.router.close();
    await Promise.all([get.ended, legacy.ended]);
    const deleted = await cap.waitFor((e) => e.method === 'DELETE' && e.headers['mcp-session-id'] === upstreamId);
    expect(deleted.headers).toMatchObject({ 'x-api-key': API_KEY, 'mcp-protocol-version': '2025-06-18' });
    expect(deleted.headers.authorization).toBeUndefined();
    await cap.waitFor((e) => e.type === 'closed' && e.headers === upstreamGet.headers);
  } finally {
    for (const s of streams) s.close();
    await front.close();
  }
});
