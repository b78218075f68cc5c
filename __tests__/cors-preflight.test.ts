// Browser preflights: the headers the MCP transports and W3C Trace Context / Baggage define are
// allowed (Mcp-Param-* included, names compared case-insensitively), anything else is not.
// The same in a real browser: __tests__/browser/preflight.browser.test.ts (npm run test:browser).
import request from 'supertest';
import { configWith, startFront, startJsonRpcUpstream, type Front, type JsonRpcUpstream } from './helpers/servers';

const APP = 'https://app.example';
let upstream: JsonRpcUpstream;
let front: Front;

beforeAll(async () => {
  upstream = await startJsonRpcUpstream();
  front = await startFront(configWith({ up: { url: upstream.url } }, { cors: { allowedOrigins: [APP] } }));
});

afterAll(async () => {
  await front?.close();
  await upstream?.close();
});

/** The preflight's answer, with the allowed headers as a lower-case list. */
async function preflight(requestHeaders: string) {
  const res = await request(front.url)
    .options('/up/mcp')
    .set('Origin', APP)
    .set('Access-Control-Request-Method', 'POST')
    .set('Access-Control-Request-Headers', requestHeaders);
  const allowed = String(res.headers['access-control-allow-headers'] ?? '')
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter(Boolean);
  return { res, allowed };
}

test('allows the trace-context headers and the 2026-07-28 Mcp-* headers a browser client sends', async () => {
  const wanted = ['authorization', 'content-type', 'accept', 'mcp-protocol-version', 'mcp-method', 'mcp-name', 'mcp-param-foo', 'mcp-param-region', 'traceparent', 'tracestate', 'baggage'];
  const { res, allowed } = await preflight(wanted.join(','));
  expect(res.status).toBe(204);
  expect(res.headers['access-control-allow-origin']).toBe(APP);
  expect(allowed).toEqual(expect.arrayContaining(wanted));
  expect(res.headers.vary).toMatch(/Access-Control-Request-Headers/);
});

test('compares the requested names case-insensitively', async () => {
  const { allowed } = await preflight('TRACEPARENT , Mcp-Param-Tenant_Id,BAGGAGE');
  expect(allowed).toEqual(expect.arrayContaining(['traceparent', 'mcp-param-tenant_id', 'baggage']));
});

test('allows nothing else: unknown headers and look-alikes are left out', async () => {
  const { res, allowed } = await preflight('x-evil, mcp-param-foo, x-mcp-param-foo, mcp-param-, mcp-parameter, cookie');
  expect(res.status).toBe(204);
  expect(allowed).toContain('mcp-param-foo');
  for (const h of ['x-evil', 'x-mcp-param-foo', 'mcp-param-', 'mcp-parameter', 'cookie']) expect(allowed).not.toContain(h);
});

test('without Access-Control-Request-Headers the fixed list is answered', async () => {
  const res = await request(front.url).options('/up/mcp').set('Origin', APP).set('Access-Control-Request-Method', 'GET');
  expect(res.status).toBe(204);
  expect(res.headers['access-control-allow-headers']).toContain('traceparent');
});
