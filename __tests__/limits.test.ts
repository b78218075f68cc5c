// Limits per token (README: Limits per token) against real servers: JSON-RPC requests per window
// (429 + Retry-After + a JSON-RPC error body on every route, notifications not counted) and live
// sessions per token across every server of the instance; reload applies at once.
import path from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { connectClient, INITIALIZE, postModern } from './helpers/clients';
import { captureLogger, EVERYTHING, startFront, type Front } from './helpers/servers';
import { startCapture, type CaptureServer } from './fixtures/remote-capture';
import { openEventStream, type EventStream } from './fixtures/remote-streams';
import type { McpFrontConfig, TokenLimits } from '../lib/types';

const STDIO_SERVER = path.join(__dirname, 'fixtures', 'stdio-server.js');
// One token per test, so that their counts do not mix.
const TOKENS = { http: 'token-http-0123456789abcdef', legacy: 'token-legacy-0123456789abcd', stdio: 'token-stdio-0123456789abcde', sessions: 'token-sessions-0123456789ab', free: 'token-free-0123456789abcdef', other: 'token-other-0123456789abcde' };

let front: Front;
let capture: CaptureServer;
const logger = captureLogger();

function config(limits: Record<string, TokenLimits>): McpFrontConfig {
  return {
    proxy: { auth: { kind: 'bearer_token', tokens: TOKENS }, limits },
    mcpServers: {
      capture: { url: `${capture.origin}/mcp` },
      'capture-sse': { url: `${capture.origin}/legacy/sse` },
      stdio: { command: process.execPath, args: [STDIO_SERVER, '--modern'] },
      everything: { command: process.execPath, args: [EVERYTHING, 'stdio'] },
    },
  };
}
const LIMITS: Record<string, TokenLimits> = {
  '*': { requests: { max: 3, window: '1h' } },
  sessions: { maxSessions: 2, requests: { max: 1000, window: '1h' } },
  free: { requests: { max: 1000, window: '1h' } },
};

beforeAll(async () => {
  capture = await startCapture();
  front = await startFront(config(LIMITS), { logger });
});
afterAll(async () => {
  await front?.close();
  await capture?.close();
});

const headers = (token: string, sessionId?: string) => ({
  Authorization: `Bearer ${token}`,
  'Content-Type': 'application/json',
  Accept: 'application/json, text/event-stream',
  'MCP-Protocol-Version': '2025-06-18',
  ...(sessionId ? { 'Mcp-Session-Id': sessionId } : {}),
});
const ping = (id: number) => ({ jsonrpc: '2.0', id, method: 'ping' });
const NOTE = { jsonrpc: '2.0', method: 'notifications/initialized' };

async function expectLimited(res: Response, id: unknown): Promise<void> {
  expect(res.status).toBe(429);
  const retryAfter = res.headers.get('retry-after')!;
  expect(retryAfter).toMatch(/^[1-9]\d*$/);
  expect(Number(retryAfter)).toBeLessThanOrEqual(3600);
  expect(await res.json()).toEqual({ jsonrpc: '2.0', id, error: { code: -32000, message: expect.stringContaining('Too Many Requests') } });
}

describe('requests per window', () => {
  it('Streamable HTTP passthrough: the fourth request gets 429, notifications are not counted, nothing more is forwarded', async () => {
    const post = (body: unknown, sessionId?: string) => fetch(`${front.url}/capture/mcp`, { method: 'POST', headers: headers(TOKENS.http, sessionId), body: JSON.stringify(body) });
    const init = await post(INITIALIZE);
    expect(init.status).toBe(200);
    const sessionId = init.headers.get('mcp-session-id')!;
    await init.text();
    for (let i = 0; i < 5; i++) expect((await post(NOTE, sessionId)).status).toBe(202);
    for (const id of [2, 3]) {
      const res = await post(ping(id), sessionId);
      expect(res.status).toBe(200);
      await res.text();
    }
    const before = capture.requests().length;
    await expectLimited(await post(ping(4), sessionId), 4);
    expect(capture.requests().length).toBe(before);
    expect(logger.entries).toContainEqual({ level: 'warn', message: 'request limit reached', fields: expect.objectContaining({ token: 'http', max: 3 }) });
  });

  it('legacy SSE POST /message: 429 for the POST itself', async () => {
    const stream: EventStream = await openEventStream(`${front.url}/capture-sse/sse`, { headers: { Authorization: `Bearer ${TOKENS.legacy}` } });
    try {
      const endpoint = await stream.next();
      const post = (body: unknown) => fetch(front.origin + endpoint.data, { method: 'POST', headers: headers(TOKENS.legacy), body: JSON.stringify(body) });
      for (const id of [1, 2, 3]) {
        const res = await post(ping(id));
        expect(res.status).toBe(202);
        await res.text();
      }
      await expectLimited(await post(ping(4)), 4);
    } finally {
      stream.close();
      await stream.ended;
    }
  });

  it('stdio session: initialize counts, and a limited batch gets one error per request', async () => {
    const post = (body: unknown, sessionId?: string) => fetch(`${front.url}/stdio/mcp`, { method: 'POST', headers: headers(TOKENS.stdio, sessionId), body: JSON.stringify(body) });
    const init = await post(INITIALIZE);
    const sessionId = init.headers.get('mcp-session-id')!;
    await init.text();
    // initialize was the first; the batch's third request is the fourth.
    const res = await post([ping(2), ping(3), ping(4)], sessionId);
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
    expect(((await res.json()) as { id: number }[]).map((a) => a.id)).toEqual([2, 3, 4]);
  });

  it('a token under its own entry is not limited by "*"; reload lowers it for the next request', async () => {
    const client = await connectClient(front.url, 'everything', 'streamable', TOKENS.free);
    try {
      for (let i = 0; i < 5; i++) await client.ping();
      await front.router.reload(config({ ...LIMITS, free: { requests: { max: 1, window: '1h' } } }));
      await expect(client.ping()).rejects.toThrow(/429|Too Many Requests/);
    } finally {
      await client.close().catch(() => undefined);
      await front.router.reload(config(LIMITS));
    }
  });
});

describe('maxSessions per token across servers', () => {
  it('a third session on any server gets 429 with Retry-After; a slot frees when one ends', async () => {
    const opened: Client[] = [];
    try {
      opened.push(await connectClient(front.url, 'everything', 'streamable', TOKENS.sessions));
      const init = await fetch(`${front.url}/capture/mcp`, { method: 'POST', headers: headers(TOKENS.sessions), body: JSON.stringify(INITIALIZE) });
      expect(init.status).toBe(200);
      const captureSession = init.headers.get('mcp-session-id')!;
      await init.text();

      // Every kind of opening is refused: a Streamable initialize (stdio and passthrough), a legacy
      // SSE stream (stdio and passthrough), a stateless 2026-07-28 child.
      for (const server of ['stdio', 'capture']) {
        const res = await fetch(`${front.url}/${server}/mcp`, { method: 'POST', headers: headers(TOKENS.sessions), body: JSON.stringify(INITIALIZE) });
        expect(res.status).toBe(429);
        expect(res.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
        expect(await res.json()).toMatchObject({ jsonrpc: '2.0', error: { code: -32000, message: expect.stringContaining('maximum of 2 sessions') } });
      }
      for (const server of ['stdio', 'capture-sse']) {
        const res = await fetch(`${front.url}/${server}/sse`, { headers: { Authorization: `Bearer ${TOKENS.sessions}`, Accept: 'text/event-stream' } });
        expect(res.status).toBe(429);
        expect(res.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
        await res.text();
      }
      const stateless = await postModern(`${front.url}/stdio/mcp`, TOKENS.sessions, 9, 'tools/list');
      expect(stateless.status).toBe(429);
      await stateless.text();
      // Another token is not affected.
      const other = await connectClient(front.url, 'everything', 'sse', TOKENS.other);
      await other.close();

      const deleted = await fetch(`${front.url}/capture/mcp`, { method: 'DELETE', headers: headers(TOKENS.sessions, captureSession) });
      await deleted.text();
      opened.push(await connectClient(front.url, 'stdio', 'sse', TOKENS.sessions));
    } finally {
      await Promise.all(opened.map((c) => c.close()));
    }
  });
});
