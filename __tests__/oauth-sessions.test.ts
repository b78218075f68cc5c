// OAuth 2.1 sessions and streams (README: OAuth 2.1): a session belongs to the principal and the
// user (`iss` + `sub`); a stream ends when its token expires; the authorization server going away
// costs nothing that the cached keys can verify, and never a 401; reload() revokes a removed or
// narrowed principal's sessions at once. Against a real authorization server
// (fixtures/oidc-provider.mjs) and real upstreams (the stdio fixture, server-everything).
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { CLOCK_TOLERANCE_S } from '../lib/auth/oauth/verifier';
import type { McpFrontConfig } from '../lib/types';
import { openEventStream, type EventStream } from './fixtures/remote-streams';
import { INITIALIZE } from './helpers/clients';
import { INTROSPECTION_CLIENT, startAuthorizationServer, type AuthorizationServer } from './helpers/oauth';
import { bearer, challengeParams, listTools, nowSeconds, oauthConfig, openSession, postMcp, PRINCIPALS, stdioServer } from './helpers/oauth-front';
import { captureLogger, PATIENCE_MS, startEverything, startFront, waitFor, type Front, type Upstream } from './helpers/servers';

/** A legacy SSE session opened by hand: its stream and the message URL its `endpoint` event gave. */
async function openLegacy(url: string, token: string): Promise<{ stream: EventStream; endpoint: string }> {
  const stream = await openEventStream(url, { headers: bearer(token) });
  if (stream.status !== 200) throw new Error(`GET ${url}: ${stream.status}`);
  const endpoint = new URL((await stream.nextMatching((e) => e.event === 'endpoint')).data, url).href;
  return { stream, endpoint };
}

/** POSTs one message to a legacy message URL; its status. */
async function postMessage(endpoint: string, token: string, message: object): Promise<number> {
  const res = await fetch(endpoint, { method: 'POST', headers: { ...bearer(token), 'Content-Type': 'application/json' }, body: JSON.stringify(message) });
  await res.arrayBuffer();
  return res.status;
}

/** Resolves with the time a stream ended; rejects after PATIENCE_MS (a hang detector). */
function endOf(stream: EventStream, what: string): Promise<number> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not end`)), PATIENCE_MS);
  });
  return Promise.race([stream.ended.then(() => Date.now()), deadline]).finally(() => clearTimeout(timer));
}

const hasId = (id: number) => (e: { data: string }) => e.data.includes(`"id":${id}`);

/**
 * A Streamable HTTP upstream that answers POSTs at once (`initialize` with a session id) and holds
 * each GET stream, headers unsent, until `release()`: a stream that starts when the test says.
 */
async function startLateStreams(): Promise<{ url: string; arrived: Promise<void>; release(): void; close(): Promise<void> }> {
  const held: http.ServerResponse[] = [];
  let arrive = () => {};
  const arrived = new Promise<void>((resolve) => (arrive = resolve));
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      if (req.method === 'GET') {
        held.push(res);
        return arrive();
      }
      if (req.method !== 'POST' || !body.includes('"id"')) return void res.writeHead(req.method === 'POST' ? 202 : 200).end();
      const { id, method } = JSON.parse(body) as { id: number; method: string };
      const result = method === 'initialize' ? { protocolVersion: '2025-06-18', capabilities: {}, serverInfo: { name: 'late', version: '1' } } : {};
      res.writeHead(200, { 'Content-Type': 'application/json', ...(method === 'initialize' ? { 'Mcp-Session-Id': 'late-1' } : {}) });
      res.end(JSON.stringify({ jsonrpc: '2.0', id, result }));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`,
    arrived,
    release: () => {
      for (const res of held.splice(0)) res.writeHead(200, { 'Content-Type': 'text/event-stream' }).write(': open\n\n');
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('OAuth sessions and streams', () => {
  let as: AuthorizationServer;
  let everythingHttp: Upstream;
  let everythingSse: Upstream;
  let late: Awaited<ReturnType<typeof startLateStreams>>;
  let front: Front;
  let publicUrl: string;
  const logger = captureLogger();
  const servers = (): McpFrontConfig['mcpServers'] => ({
    s: stdioServer(),
    // Only the reload tests open sessions here: what a reload closes is theirs alone.
    r: stdioServer(),
    h: { url: `${everythingHttp.origin}/mcp` },
    l: { url: `${everythingSse.origin}/sse` },
    late: { url: late.url },
  });
  const config = (principals = PRINCIPALS) => oauthConfig(as, publicUrl, servers(), { oauth: { principals } });

  beforeAll(async () => {
    [as, everythingHttp, everythingSse, late] = await Promise.all([startAuthorizationServer(), startEverything('streamableHttp'), startEverything('sse'), startLateStreams()]);
    front = await startFront(
      (url) => {
        publicUrl = url;
        return config();
      },
      { logger },
    );
  });
  afterAll(async () => {
    await front?.close();
    await Promise.all([as?.stop(), everythingHttp?.close(), everythingSse?.close(), late?.close()]);
  });

  const resource = (server: string, route: 'mcp' | 'sse') => `${publicUrl}/${server}/${route}`;
  /** A token of the `staff` principal for user `sub`, for both routes of `server`; each call a new token. */
  let serial = 0;
  const userToken = (sub: string, server: string, claims: Record<string, unknown> = {}) =>
    as.mint({ sub, aud: [resource(server, 'mcp'), resource(server, 'sse')], scope: 'mcp:tools', email: `${sub}@acme.com`, email_verified: true, jti: `t${++serial}`, ...claims });

  describe('a session belongs to the principal and the user (iss + sub)', () => {
    test.each([['s'], ['h']])('Streamable HTTP (%s): another user of the same principal gets 404; a refreshed token of the same user keeps it', async (server) => {
      const url = resource(server, 'mcp');
      const first = await userToken('alice', server);
      const sessionId = await openSession(url, first);
      expect((await listTools(url, first, sessionId)).status).toBe(200);

      const bob = await userToken('bob', server);
      const stolen = await listTools(url, bob, sessionId, 3);
      expect(stolen.status).toBe(404);
      const refreshed = await userToken('alice', server);
      expect(refreshed).not.toBe(first);
      expect((await listTools(url, refreshed, sessionId, 4)).status).toBe(200);
      // Bob's own session is his alone, the other way round too.
      const bobs = await openSession(url, bob);
      expect((await listTools(url, refreshed, bobs, 5)).status).toBe(404);
    });

    test.each([['s'], ['l']])('legacy SSE (%s): the message route of a session is 404 for another user, and the same user with a refreshed token is answered on the stream', async (server) => {
      const first = await userToken('alice', server);
      const { stream, endpoint } = await openLegacy(resource(server, 'sse'), first);
      try {
        expect(await postMessage(endpoint, first, INITIALIZE)).toBe(202);
        await stream.nextMatching(hasId(1));
        expect(await postMessage(endpoint, first, { jsonrpc: '2.0', method: 'notifications/initialized' })).toBe(202);

        expect(await postMessage(endpoint, await userToken('bob', server), { jsonrpc: '2.0', id: 6, method: 'tools/list' })).toBe(404);
        expect(await postMessage(endpoint, await userToken('alice', server), { jsonrpc: '2.0', id: 7, method: 'tools/list' })).toBe(202);
        expect((await stream.nextMatching((e) => e.event === 'message' && (hasId(6)(e) || hasId(7)(e)))).data).toContain('"tools"');
      } finally {
        stream.close();
      }
    });
  });

  test('a stream ends when the token it was opened with expires: GET streams (stdio, remote Streamable HTTP), legacy SSE streams (stdio, remote SSE), a POST answered as a stream; a stream of a longer-lived token stays; the sessions answer fresh tokens', async () => {
    // Sessions first (children start meanwhile), with tokens that last; then the streams, with
    // tokens that expired 54 s ago: accepted for the 60 s of clock skew allowed, so for 6 s more.
    const sessions = await Promise.all(['s', 'h'].map(async (server) => ({ server, url: resource(server, 'mcp'), sessionId: await openSession(resource(server, 'mcp'), await userToken('carol', server)) })));
    const lasting = await userToken('carol', 's');
    const control = await openLegacy(resource('s', 'sse'), lasting);
    const exp = nowSeconds() - (CLOCK_TOLERANCE_S - 6);
    const expiring = (server: string) => userToken('carol', server, { exp });
    const gets = await Promise.all(
      sessions.map(async ({ server, url, sessionId }) => ({
        server,
        stream: await openEventStream(url, { headers: { ...bearer(await expiring(server)), Accept: 'text/event-stream', 'Mcp-Session-Id': sessionId } }),
      })),
    );
    const legacy = await Promise.all(['s', 'l'].map(async (server) => ({ server, stream: await openEventStream(resource(server, 'sse'), { headers: bearer(await expiring(server)) }) })));
    // A POST answered as a stream: a tool that reports progress for 30 s.
    const longCall = {
      server: 'h (POST)',
      stream: await openEventStream(resource('h', 'mcp'), {
        method: 'POST',
        headers: { ...bearer(await expiring('h')), 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', 'Mcp-Session-Id': sessions[1].sessionId },
        body: JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'trigger-long-running-operation', arguments: { duration: 30, steps: 30 }, _meta: { progressToken: 'p' } } }),
      }),
    };
    const longCallEvents: string[] = [];
    void (async () => {
      for (;;) longCallEvents.push((await longCall.stream.next()).data);
    })().catch(() => undefined);
    try {
      for (const { stream } of [...gets, ...legacy, longCall]) {
        expect(stream.status).toBe(200);
        expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/);
      }
      const ends = await Promise.all([...gets, ...legacy, longCall].map(({ server, stream }) => endOf(stream, `a stream on ${server}`)));
      // Not before the token stopped being accepted (a stream that ended for another reason, or
      // at once, could): a stream lives as long as requests with its token would be answered.
      for (const endedAt of ends) expect(endedAt).toBeGreaterThanOrEqual((exp + CLOCK_TOLERANCE_S) * 1000 - 50);
      const late = await postMcp(resource('h', 'mcp'), await expiring('h'));
      expect(late.status).toBe(401);
      expect(challengeParams(late.headers.get('www-authenticate')).error_description).toBe('the token has expired');
      // The tool's stream was cut, not finished: its result never came.
      expect(longCallEvents.filter((data) => data.includes('"id":5'))).toEqual([]);
      // The stream of a token that has not expired is still there: it carries an answer.
      expect(await postMessage(control.endpoint, lasting, INITIALIZE)).toBe(202);
      await control.stream.nextMatching(hasId(1));
      // A Streamable HTTP session outlives the token: a fresh one of the same user goes on with it.
      for (const { server, url, sessionId } of sessions) expect((await listTools(url, await userToken('carol', server), sessionId, 9)).status).toBe(200);
    } finally {
      control.stream.close();
      for (const { stream } of [...gets, ...legacy, longCall]) stream.close();
    }
  });

  test('a stream whose upstream starts answering only after the token expired ends then', async () => {
    const url = resource('late', 'mcp');
    const sessionId = await openSession(url, await userToken('carol', 'late'));
    const exp = nowSeconds() - (CLOCK_TOLERANCE_S - 2);
    const opening = openEventStream(url, { headers: { ...bearer(await userToken('carol', 'late', { exp })), Accept: 'text/event-stream', 'Mcp-Session-Id': sessionId } });
    await late.arrived;
    // No event says that a token stopped being accepted: the clock does.
    await waitFor(() => Date.now() > (exp + CLOCK_TOLERANCE_S) * 1000, 'the token to expire');
    late.release();
    const stream = await opening;
    expect(stream.status).toBe(200);
    await endOf(stream, 'the GET stream');
  });

  describe('reload()', () => {
    /** Live sessions of a user on `r`: a Streamable HTTP session with its GET stream, and a legacy SSE session. */
    async function liveSessions(token: () => Promise<string>) {
      const url = resource('r', 'mcp');
      const sessionId = await openSession(url, await token());
      const get = await openEventStream(url, { headers: { ...bearer(await token()), Accept: 'text/event-stream', 'Mcp-Session-Id': sessionId } });
      expect(get.status).toBe(200);
      const legacy = await openLegacy(resource('r', 'sse'), await token());
      expect(await postMessage(legacy.endpoint, await token(), INITIALIZE)).toBe(202);
      await legacy.stream.nextMatching(hasId(1));
      let ended = 0;
      void get.ended.then(() => ended++);
      void legacy.stream.ended.then(() => ended++);
      return {
        url,
        sessionId,
        get,
        legacy,
        ended: () => ended,
        close() {
          get.close();
          legacy.stream.close();
        },
      };
    }
    /** `session ended reason="token revoked"` lines of a principal (they name it, not the user) on `r`, by transport. */
    const revokedOn = (token: string) =>
      logger.entries
        .filter((e) => e.message === 'session ended' && e.fields.reason === 'token revoked' && e.fields.token === token && e.fields.server === 'r')
        .map((e) => e.fields.transport)
        .sort();

    beforeEach(() => {
      logger.entries.splice(0);
    });
    afterEach(() => front.router.reload(config()));

    test('adding a principal keeps live sessions; narrowing one closes its sessions and streams at once, and only those', async () => {
      const machineToken = await as.clientCredentialsToken(resource('r', 'mcp'), 'mcp:tools');
      const machineSession = await openSession(resource('r', 'mcp'), machineToken);
      const erin = await liveSessions(() => userToken('erin', 'r'));
      try {
        await front.router.reload(config({ ...PRINCIPALS, auditors: { claims: { groups: 'auditors' } } }));
        // Still open: the SSE stream carries an answer, the Streamable session answers.
        expect(await postMessage(erin.legacy.endpoint, await userToken('erin', 'r'), { jsonrpc: '2.0', id: 2, method: 'tools/list' })).toBe(202);
        await erin.legacy.stream.nextMatching(hasId(2));
        expect((await listTools(erin.url, await userToken('erin', 'r'), erin.sessionId)).status).toBe(200);
        expect(erin.ended()).toBe(0);
        expect(revokedOn('staff')).toEqual([]);

        // staff now means acme.org: erin's sessions (opened as acme.com staff) end.
        const narrowed = { ...PRINCIPALS, staff: { claims: { email: '*@acme.org', email_verified: true } } };
        await front.router.reload(config(narrowed));
        await Promise.all([endOf(erin.get, 'the GET stream'), endOf(erin.legacy.stream, 'the SSE stream')]);
        expect(revokedOn('staff')).toEqual(['sse', 'streamable']);
        expect(revokedOn('machines')).toEqual([]);
        // The session is gone, not merely refused: erin, now matching staff again, does not find it.
        const again = await userToken('erin', 'r', { email: 'erin@acme.org' });
        expect((await listTools(erin.url, again, erin.sessionId)).status).toBe(404);
        // The machines principal did not change: its session lives on.
        expect((await listTools(resource('r', 'mcp'), machineToken, machineSession)).status).toBe(200);
      } finally {
        erin.close();
      }
    });

    test('removing a principal closes its sessions and streams at once', async () => {
      const frank = await liveSessions(() => userToken('frank', 'r'));
      try {
        await front.router.reload(config({ machines: PRINCIPALS.machines }));
        await Promise.all([endOf(frank.get, 'the GET stream'), endOf(frank.legacy.stream, 'the SSE stream')]);
        expect(revokedOn('staff')).toEqual(['sse', 'streamable']);
        expect((await listTools(frank.url, await userToken('frank', 'r'), frank.sessionId)).status).toBe(403);
        // Back as it was: the session does not come back with the principal.
        await front.router.reload(config());
        expect((await listTools(frank.url, await userToken('frank', 'r'), frank.sessionId)).status).toBe(404);
      } finally {
        frank.close();
      }
    });
  });
});

describe('the authorization server stopped and restarted', () => {
  let as: AuthorizationServer;
  let front: Front;
  const logger = captureLogger();
  const registry = new Registry();

  beforeAll(async () => {
    as = await startAuthorizationServer();
    front = await startFront((url) => oauthConfig(as, url, { s: stdioServer() }, { oauth: { introspection: { ...INTROSPECTION_CLIENT } } }), { logger, metrics: registry });
  });
  afterAll(async () => {
    await front?.close();
    await as?.stop();
  });

  const unavailable = async () => {
    const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === 'mcp_front_auth_failures_total');
    return metric?.values.find((v) => v.labels.reason === 'issuer_unavailable')?.value;
  };

  test('verified tokens and cached keys keep working; a new opaque token gets 503 + Retry-After (never 401), one WARN; back after restart', async () => {
    const url = `${front.url}/s/mcp`;
    const verified = await as.clientCredentialsToken(url, 'mcp:tools');
    // An opaque token can only be verified by asking: once it works without, it is the cache.
    const introspected = await as.opaqueToken(url, 'mcp:tools');
    for (const token of [verified, introspected]) expect((await postMcp(url, token)).status).toBe(200);
    const opaque = await as.opaqueToken(url, 'mcp:tools');

    await as.stop();
    // Verified before: from the cache.
    for (const token of [verified, introspected]) expect((await postMcp(url, token)).status).toBe(200);
    // New, signed with the key already fetched.
    const fresh = await as.mint({ sub: 'gina', aud: url, scope: 'mcp:tools', email: 'gina@acme.com', email_verified: true });
    expect((await postMcp(url, fresh)).status).toBe(200);
    // Needs the authorization server: twice, one WARN.
    for (let i = 0; i < 2; i++) {
      const res = await postMcp(url, opaque);
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('5');
      expect(res.headers.get('www-authenticate')).toBeNull();
    }
    expect(await unavailable()).toBe(2);
    expect(logger.entries.filter((e) => e.message === 'auth failed').map((e) => e.fields.reason)).toEqual(['issuer_unavailable', 'issuer_unavailable']);
    expect(logger.entries.filter((e) => e.level === 'warn' && e.message === 'oauth issuer unavailable')).toEqual([
      { level: 'warn', message: 'oauth issuer unavailable', fields: expect.objectContaining({ issuer: as.issuer, error: 'ECONNREFUSED' }) },
    ]);

    await as.restart();
    // Opaque tokens issued before the restart are gone with it: a new one.
    const after = await as.opaqueToken(url, 'mcp:tools');
    expect((await postMcp(url, after)).status).toBe(200);
    expect((await postMcp(url, verified)).status).toBe(200);
    expect(logger.entries.filter((e) => e.message === 'oauth issuer available')).toEqual([
      { level: 'info', message: 'oauth issuer available', fields: expect.objectContaining({ issuer: as.issuer }) },
    ]);
    expect(logger.entries.filter((e) => e.message === 'oauth issuer unavailable')).toHaveLength(1);
  });
});
