// CONTRACT §2: reload() validates first, swaps at once, and revokes removed tokens' sessions.
import request from 'supertest';
import { ConfigError, mcpFront } from '../lib';
import type { McpFrontConfig } from '../lib/types';
import { openEventStream } from './fixtures/remote-streams';
import { connectClient } from './helpers/clients';
import { captureLogger, DEV_TOKEN, PROD_TOKEN, startEverything, startFront, type Front, type Upstream } from './helpers/servers';

const NEW_TOKEN = 'rotated-token-abcdefghijklmnopqrstuv';

describe('reload()', () => {
  let sse: Upstream;
  let streamable: Upstream;
  let front: Front;
  const logger = captureLogger();

  const config = (tokens: Record<string, string>, servers?: McpFrontConfig['mcpServers']): McpFrontConfig => ({
    version: '1.0',
    proxy: { name: 'Reload Proxy', auth: { kind: 'bearer_token', tokens } },
    mcpServers: servers ?? {
      legacy: { url: `${sse.origin}/sse` },
      modern: { url: `${streamable.origin}/mcp` },
    },
  });

  beforeAll(async () => {
    [sse, streamable] = await Promise.all([startEverything('sse'), startEverything('streamableHttp')]);
  });
  afterAll(async () => {
    await Promise.all([sse.close(), streamable.close()]);
  });
  beforeEach(async () => {
    logger.entries.splice(0);
    front = await startFront(config({ dev: DEV_TOKEN, prod: PROD_TOKEN }), { logger });
  });
  afterEach(() => front.close());

  const status = async (path: string, token: string) =>
    (
      await request(front.url)
        .post(path)
        .set('Authorization', `Bearer ${token}`)
        .set('Content-Type', 'application/json')
        .set('Accept', 'application/json, text/event-stream')
        .send({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } })
    ).status;

  it('rejects an invalid config with ConfigError and keeps the old one in force', async () => {
    const bad = config({ dev: DEV_TOKEN }, { legacy: { url: `${sse.origin}/sse`, authTokens: ['nobody'] } });
    await expect(front.router.reload(bad)).rejects.toBeInstanceOf(ConfigError);
    await expect(front.router.reload(bad)).rejects.toThrow(/mcpServers\.legacy\.authTokens\[0\]/);
    expect(await status('/modern/mcp', PROD_TOKEN)).toBe(200);
  });

  it('makes a new token work at once and a removed token fail at once (rotation)', async () => {
    expect(await status('/modern/mcp', NEW_TOKEN)).toBe(401);
    await front.router.reload(config({ dev: DEV_TOKEN, prod: PROD_TOKEN, next: NEW_TOKEN }));
    expect(await status('/modern/mcp', NEW_TOKEN)).toBe(200);
    expect(await status('/modern/mcp', PROD_TOKEN)).toBe(200);
    await front.router.reload(config({ dev: DEV_TOKEN, next: NEW_TOKEN }));
    expect(await status('/modern/mcp', PROD_TOKEN)).toBe(401);
    expect(await status('/modern/mcp', NEW_TOKEN)).toBe(200);
    expect(logger.entries).toContainEqual({
      level: 'info',
      message: 'config reloaded',
      fields: expect.objectContaining({ tokens_removed: 'prod' }),
    });
    expect(logger.text()).not.toContain(PROD_TOKEN);
  });

  const rawSse = (token: string, server = 'legacy') => openEventStream(`${front.url}/${server}/sse`, { headers: { Authorization: `Bearer ${token}` } });
  const isEndpoint = (e: { event: string }) => e.event === 'endpoint';

  it('closes the live SSE stream and Streamable HTTP session of a removed token, and only those', async () => {
    const revokedSse = await rawSse(PROD_TOKEN);
    expect(revokedSse.status).toBe(200);
    await revokedSse.nextMatching(isEndpoint);
    // A Streamable HTTP session opened by hand, so that this test owns its one GET stream.
    const init = await request(front.url)
      .post('/modern/mcp')
      .set('Authorization', `Bearer ${PROD_TOKEN}`)
      .set('Content-Type', 'application/json')
      .set('Accept', 'application/json, text/event-stream')
      .send({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } });
    const sessionId = init.headers['mcp-session-id'];
    expect(sessionId).toEqual(expect.any(String));
    const revokedGet = await openEventStream(`${front.url}/modern/mcp`, { headers: { Authorization: `Bearer ${PROD_TOKEN}`, Accept: 'text/event-stream', 'Mcp-Session-Id': sessionId } });
    expect(revokedGet.status).toBe(200);
    const survivor = await connectClient(front.url, 'legacy', 'sse', DEV_TOKEN);
    try {
      await front.router.reload(config({ dev: DEV_TOKEN }));
      await Promise.all([revokedSse.ended, revokedGet.ended]);
      // The revoked Streamable HTTP session is gone: its id now answers 404.
      const res = await request(front.url)
        .post('/modern/mcp')
        .set('Authorization', `Bearer ${DEV_TOKEN}`)
        .set('Mcp-Session-Id', sessionId)
        .set('Content-Type', 'application/json')
        .set('Accept', 'application/json, text/event-stream')
        .send({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
      expect(res.status).toBe(404);
      const echoed = await survivor.callTool({ name: 'echo', arguments: { message: 'still here' } });
      expect(JSON.stringify(echoed)).toContain('still here');
    } finally {
      revokedSse.close();
      revokedGet.close();
      await survivor.close();
    }
  });

  it('closes sessions of a token that is no longer allowed on the server', async () => {
    const stream = await rawSse(PROD_TOKEN);
    await stream.nextMatching(isEndpoint);
    await front.router.reload(
      config({ dev: DEV_TOKEN, prod: PROD_TOKEN }, { legacy: { url: `${sse.origin}/sse`, authTokens: ['dev'] }, modern: { url: `${streamable.origin}/mcp` } }),
    );
    await stream.ended;
    expect(await status('/modern/mcp', PROD_TOKEN)).toBe(200);
  });

  it('removing a server ends its sessions and answers 404', async () => {
    const stream = await rawSse(DEV_TOKEN);
    await stream.nextMatching(isEndpoint);
    await front.router.reload(config({ dev: DEV_TOKEN, prod: PROD_TOKEN }, { modern: { url: `${streamable.origin}/mcp` } }));
    await stream.ended;
    const res = await request(front.url).get('/legacy/sse').set('Authorization', `Bearer ${DEV_TOKEN}`);
    expect(res.status).toBe(404);
    expect(logger.entries).toContainEqual({ level: 'info', message: 'config reloaded', fields: expect.objectContaining({ servers_removed: 'legacy' }) });
  });

  it('a server whose upstream changed gets a new transport; an unchanged one keeps its sessions', async () => {
    const changed = await rawSse(DEV_TOKEN);
    await changed.nextMatching(isEndpoint);
    const kept = await connectClient(front.url, 'modern', 'streamable', DEV_TOKEN);
    try {
      await front.router.reload(
        config({ dev: DEV_TOKEN, prod: PROD_TOKEN }, { legacy: { url: `${sse.origin}/sse?v=2` }, modern: { url: `${streamable.origin}/mcp`, authTokens: ['dev'] } }),
      );
      await changed.ended;
      expect(logger.entries).toContainEqual({ level: 'info', message: 'config reloaded', fields: expect.objectContaining({ servers_changed: 'legacy' }) });
      // Only authTokens changed for `modern`: its session goes on.
      expect(JSON.stringify(await kept.callTool({ name: 'echo', arguments: { message: 'kept' } }))).toContain('kept');
    } finally {
      await kept.close();
    }
  });

  it('close() ends every session and refuses new requests', async () => {
    const stream = await rawSse(DEV_TOKEN);
    await stream.nextMatching(isEndpoint);
    await front.router.close();
    await stream.ended;
    expect(await status('/modern/mcp', DEV_TOKEN)).toBe(503);
    await expect(front.router.reload(config({ dev: DEV_TOKEN }))).rejects.toThrow(/closed/);
  });
});

describe('token warnings', () => {
  it('are logged once at start and once more on reload only when new, without values', async () => {
    const logger = captureLogger();
    const weak = 'dev-token-123';
    const base = (tokens: Record<string, string>): McpFrontConfig => ({
      proxy: { auth: { kind: 'bearer_token', tokens } },
      mcpServers: {},
    });
    const router = mcpFront(base({ dev: weak, prod: PROD_TOKEN }), { logger, env: {} });
    try {
      const codes = () => logger.entries.filter((e) => e.level === 'warn').map((e) => `${e.fields.code}:${e.fields.token}`);
      expect(codes()).toEqual(['token_too_short:dev']);
      await router.reload(base({ dev: weak, prod: PROD_TOKEN, ci: 'x'.repeat(30) }));
      expect(codes()).toEqual(['token_too_short:dev', 'token_low_variety:ci']);
      expect(logger.text()).not.toContain(weak);
      expect(logger.text()).not.toContain('x'.repeat(30));
    } finally {
      await router.close();
    }
  });
});
