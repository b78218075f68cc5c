// OAuth 2.1 at the router (README: OAuth 2.1): every refusal with its exact status, challenge
// (RFC 6750 §3, RFC 9728 §5.1), JSON body, log line and metric; opaque tokens by introspection
// (RFC 7662); static tokens beside access tokens; `/health` and CORS with OAuth; and no token
// value in a log line or an upstream request. Against a real authorization server
// (fixtures/oidc-provider.mjs).
import { Registry } from 'prom-client';
import type { McpFrontOptions } from '../lib/types';
import { openEventStream } from './fixtures/remote-streams';
import { startCapture, type CaptureServer } from './fixtures/remote-capture';
import { INITIALIZE } from './helpers/clients';
import { INTROSPECTION_CLIENT, startAuthorizationServer, type AuthorizationServer } from './helpers/oauth';
import { bearer, challengeParams, nowSeconds, oauthConfig, postMcp, PROXY_NAME, stdioServer, type Answer } from './helpers/oauth-front';
import { captureLogger, DEV_TOKEN, REFUSING_ORIGIN, startFront, type Front } from './helpers/servers';

/** An audience the authorization server could issue for every server at once (`oauth.audiences`). */
const SHARED_AUDIENCE = 'https://shared.example.com/mcp';
const APP_ORIGIN = 'https://app.example.com';

async function authFailures(registry: Registry): Promise<Record<string, number>> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === 'mcp_front_auth_failures_total');
  return Object.fromEntries((metric?.values ?? []).map((v) => [String(v.labels.reason), v.value]));
}

const errorBody = (message: string) => ({ jsonrpc: '2.0', error: { code: -32000, message }, id: null });

describe('OAuth 2.1 at the router', () => {
  let as: AuthorizationServer;
  let front: Front;
  const logger = captureLogger();
  const registry = new Registry();

  beforeAll(async () => {
    as = await startAuthorizationServer();
    front = await startFront(
      (url) =>
        oauthConfig(
          as,
          url,
          { a: stdioServer(), b: stdioServer(), m: stdioServer({ authTokens: ['machines', 'dev'] }) },
          {
            tokens: { dev: DEV_TOKEN },
            oauth: { introspection: { ...INTROSPECTION_CLIENT }, audiences: [SHARED_AUDIENCE] },
            proxy: { cors: { allowedOrigins: [APP_ORIGIN] }, metrics: { authTokens: ['machines'] } },
          },
        ),
      // `serveMetrics`: GET /metrics as the standalone command serves it.
      { logger, metrics: registry, serveMetrics: true } as McpFrontOptions,
    );
  });
  afterAll(async () => {
    await front?.close();
    await as?.stop();
  });

  const resource = (server: string, route: 'mcp' | 'sse' = 'mcp') => `${front.url}/${server}/${route}`;
  const metadata = (server: string, route: 'mcp' | 'sse' = 'mcp') => `${front.url}/.well-known/oauth-protected-resource/${server}/${route}`;
  /** A user of acme.com (principal `staff`), minted with the authorization server's key. */
  const staffToken = (claims: Record<string, unknown> = {}, options?: Parameters<AuthorizationServer['mint']>[1]) =>
    as.mint({ sub: 'user-a', aud: resource('a'), scope: 'mcp:tools', email: 'a@acme.com', email_verified: true, ...claims }, options);

  describe('refusals: status, WWW-Authenticate, body, log line and metric', () => {
    interface Refusal {
      token: () => Promise<string | undefined>;
      server?: string;
      status: 401 | 403;
      /** The challenge's `error` and `error_description`; `null`: a challenge without; `undefined`: no challenge at all. */
      challenge: { error: string; error_description?: string; scope?: string } | null | undefined;
      message: string;
      reason: string;
    }
    const invalid = { error: 'invalid_token', error_description: 'the token is not valid' };
    const cases: Record<string, Refusal> = {
      'no token': { token: async () => undefined, status: 401, challenge: null, message: 'Unauthorized: a bearer token is required', reason: 'missing_token' },
      'a token for server a used at server b': {
        token: () => as.clientCredentialsToken(resource('a'), 'mcp:tools'),
        server: 'b',
        status: 401,
        challenge: { error: 'invalid_token', error_description: 'the token is not meant for this server' },
        message: 'Unauthorized: the token is not meant for this server',
        reason: 'wrong_audience',
      },
      'another issuer': { token: () => staffToken({ iss: 'https://evil.example.com' }), status: 401, challenge: invalid, message: 'Unauthorized: the token is not valid', reason: 'invalid_token' },
      expired: {
        token: () => staffToken({ exp: nowSeconds() - 3600 }),
        status: 401,
        challenge: { error: 'invalid_token', error_description: 'the token has expired' },
        message: 'Unauthorized: the token has expired',
        reason: 'expired',
      },
      'alg none': { token: () => staffToken({}, { key: 'none' }), status: 401, challenge: invalid, message: 'Unauthorized: the token is not valid', reason: 'invalid_token' },
      'HMAC signed with the public key': {
        token: () => staffToken({}, { key: 'hmac-public-key' }),
        status: 401,
        challenge: invalid,
        message: 'Unauthorized: the token is not valid',
        reason: 'invalid_token',
      },
      'an unknown kid': { token: () => staffToken({}, { header: { kid: 'no-such-key' } }), status: 401, challenge: invalid, message: 'Unauthorized: the token is not valid', reason: 'invalid_token' },
      '4096 characters of garbage (introspected, inactive)': { token: async () => 'Z'.repeat(4096), status: 401, challenge: invalid, message: 'Unauthorized: the token is not valid', reason: 'invalid_token' },
      '4096 characters of JWT-shaped garbage': {
        token: async () => `${'e'.repeat(2000)}.${'f'.repeat(2000)}.${'g'.repeat(94)}`,
        status: 401,
        challenge: invalid,
        message: 'Unauthorized: the token is not valid',
        reason: 'invalid_token',
      },
      '4097 characters': {
        token: async () => 'Z'.repeat(4097),
        status: 401,
        challenge: { error: 'invalid_token', error_description: 'malformed Authorization header' },
        message: 'Unauthorized: malformed Authorization header',
        reason: 'malformed_header',
      },
      'a valid token matching no principal': {
        token: () => staffToken({ sub: 'user-x', email: 'x@elsewhere.com' }),
        status: 403,
        challenge: undefined,
        message: 'Forbidden: the access token matches no principal of this proxy',
        reason: 'no_principal',
      },
      "a principal not in the server's authTokens": {
        token: () => staffToken({ aud: resource('m') }),
        server: 'm',
        status: 403,
        challenge: undefined,
        message: 'Forbidden: token "staff" may not use server "m"',
        reason: 'forbidden',
      },
      'a token without the required scope': {
        token: () => staffToken({ scope: 'openid' }),
        status: 403,
        challenge: { error: 'insufficient_scope', scope: 'mcp:tools' },
        message: 'Forbidden: the access token lacks a scope server "a" requires (mcp:tools)',
        reason: 'insufficient_scope',
      },
    };

    test.each(Object.entries(cases))('%s', async (_name, c) => {
      const server = c.server ?? 'a';
      const token = await c.token();
      const logged = logger.entries.length;
      const before = await authFailures(registry);
      const res = await postMcp(resource(server), token);

      expect(res.status).toBe(c.status);
      expect(res.body).toEqual(errorBody(c.message));
      const header = res.headers.get('www-authenticate');
      if (c.challenge === undefined) {
        expect(header).toBeNull();
      } else {
        const expected: Record<string, string> = { realm: PROXY_NAME, ...c.challenge, resource_metadata: metadata(server), scope: 'mcp:tools' };
        expect(challengeParams(header)).toEqual(expected);
        // RFC 6750 §3.1: no error code when no token was sent (clients take it as "log in").
        if (c.challenge === null) expect(header).not.toContain('error=');
      }
      const lines = logger.entries.slice(logged).filter((e) => e.message === 'auth failed');
      expect(lines).toEqual([{ level: 'warn', message: 'auth failed', fields: expect.objectContaining({ reason: c.reason, server }) }]);
      const after = await authFailures(registry);
      expect(after[c.reason]).toBe((before[c.reason] ?? 0) + 1);
      const others = Object.keys(after).filter((r) => r !== c.reason);
      expect(Object.fromEntries(others.map((r) => [r, after[r]]))).toEqual(Object.fromEntries(others.map((r) => [r, before[r] ?? 0])));
    });

    test('the legacy routes point to the /sse metadata', async () => {
      const stream = await fetch(resource('a', 'sse'), { headers: { Accept: 'text/event-stream' } });
      await stream.arrayBuffer();
      expect(stream.status).toBe(401);
      expect(challengeParams(stream.headers.get('www-authenticate')).resource_metadata).toBe(metadata('a', 'sse'));
      const message = await fetch(`${front.url}/a/message?sessionId=x`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
      await message.arrayBuffer();
      expect(message.status).toBe(401);
      expect(challengeParams(message.headers.get('www-authenticate')).resource_metadata).toBe(metadata('a', 'sse'));
    });

    test("a token for a server's /mcp resource is valid on its /sse route; an oauth.audiences entry is valid on every server", async () => {
      const forA = await as.clientCredentialsToken(resource('a'), 'mcp:tools');
      const stream = await openEventStream(resource('a', 'sse'), { headers: bearer(forA) });
      try {
        expect(stream.status).toBe(200);
        expect((await stream.nextMatching((e) => e.event === 'endpoint')).data).toMatch(/^\/a\/message\?sessionId=/);
      } finally {
        stream.close();
      }
      const shared = await as.clientCredentialsToken(SHARED_AUDIENCE, 'mcp:tools');
      expect((await postMcp(resource('a'), shared)).status).toBe(200);
      expect((await postMcp(resource('b'), shared)).status).toBe(200);
    });
  });

  describe('opaque tokens (RFC 7662 introspection)', () => {
    test('an active token is accepted; a revoked one is refused (each token new: answers are cached up to 60 s)', async () => {
      const active = await as.opaqueToken(resource('a'), 'mcp:tools');
      expect(active.split('.')).toHaveLength(1);
      const ok = await postMcp(resource('a'), active);
      expect(ok.status).toBe(200);
      expect(logger.entries).toContainEqual({ level: 'info', message: 'auth successful', fields: expect.objectContaining({ token: 'machines', server: 'a' }) });

      const revoked = await as.opaqueToken(resource('a'), 'mcp:tools');
      await as.revoke(revoked);
      const refused = await postMcp(resource('a'), revoked);
      expect(refused.status).toBe(401);
      expect(challengeParams(refused.headers.get('www-authenticate'))).toMatchObject({ error: 'invalid_token' });
    });

    test('an opaque token for another server is refused there (its introspected aud)', async () => {
      const forA = await as.opaqueToken(resource('a'), 'mcp:tools');
      const res = await postMcp(resource('b'), forA);
      expect(res.status).toBe(401);
      expect(challengeParams(res.headers.get('www-authenticate'))).toMatchObject({ error: 'invalid_token', error_description: 'the token is not meant for this server' });
    });
  });

  describe('static tokens beside OAuth; /health; CORS', () => {
    test('a static token and an access token work on the same server', async () => {
      expect((await postMcp(resource('a'), DEV_TOKEN)).status).toBe(200);
      expect((await postMcp(resource('a'), await staffToken())).status).toBe(200);
      const successes = logger.entries.filter((e) => e.message === 'auth successful' && e.fields.server === 'a').map((e) => e.fields.token);
      expect(successes).toEqual(expect.arrayContaining(['dev', 'staff']));
    });

    test("/health with an access token lists the servers of its principal only", async () => {
      const open = (await (await fetch(`${front.url}/health`)).json()) as Record<string, unknown>;
      expect(open).toEqual({ status: 'ok', service: 'mcp-front', name: PROXY_NAME, servers: 3 });
      const asStaff = (await (await fetch(`${front.url}/health`, { headers: bearer(await staffToken()) })).json()) as { servers: Record<string, unknown> };
      expect(Object.keys(asStaff.servers).sort()).toEqual(['a', 'b']);
      const machine = await as.clientCredentialsToken(resource('m'), 'mcp:tools');
      const asMachine = (await (await fetch(`${front.url}/health`, { headers: bearer(machine) })).json()) as { servers: Record<string, unknown> };
      expect(Object.keys(asMachine.servers).sort()).toEqual(['a', 'b', 'm']);
    });

    test('/health and /metrics take only tokens meant for this proxy: one for another resource is no credential here (RFC 8707)', async () => {
      const elsewhere = 'https://other-api.example.com';
      const staffElsewhere = await staffToken({ aud: elsewhere });
      const health = (await (await fetch(`${front.url}/health`, { headers: bearer(staffElsewhere) })).json()) as Record<string, unknown>;
      expect(health).toEqual({ status: 'ok', service: 'mcp-front', name: PROXY_NAME, servers: 3 });

      const metricsOf = async (token: string | undefined) => {
        const res = await fetch(`${front.url}/metrics`, { headers: bearer(token) });
        return { status: res.status, challenge: res.headers.get('www-authenticate'), text: await res.text() };
      };
      // Meant for server m, principal machines (listed in proxy.metrics): served.
      const served = await metricsOf(await as.clientCredentialsToken(resource('m'), 'mcp:tools'));
      expect(served.status).toBe(200);
      expect(served.text).toContain('mcp_front_auth_failures_total');
      // The same client's token for another resource: refused as for a server.
      const refused = await metricsOf(await as.clientCredentialsToken(elsewhere, 'mcp:tools'));
      expect(refused.status).toBe(401);
      expect(challengeParams(refused.challenge)).toEqual({ realm: PROXY_NAME, error: 'invalid_token', error_description: 'the token is not meant for this server' });
      // A principal not listed, no token, an expired one.
      expect((await metricsOf(await staffToken())).status).toBe(403);
      const anonymous = await metricsOf(undefined);
      expect(anonymous.status).toBe(401);
      expect(anonymous.challenge).toBe(`Bearer realm="${PROXY_NAME}"`);
      expect((await metricsOf(await staffToken({ exp: nowSeconds() - 3600 }))).status).toBe(401);
    });

    test('a browser can read the challenge: WWW-Authenticate is exposed on CORS answers; preflights allow Authorization', async () => {
      const refused = await postMcp(resource('a'), undefined, INITIALIZE, { Origin: APP_ORIGIN });
      expect(refused.status).toBe(401);
      expect(refused.headers.get('access-control-allow-origin')).toBe(APP_ORIGIN);
      expect(refused.headers.get('access-control-expose-headers')?.split(/,\s*/)).toContain('WWW-Authenticate');
      const expired = await postMcp(resource('a'), await staffToken({ exp: nowSeconds() - 3600 }), INITIALIZE, { Origin: APP_ORIGIN });
      expect(expired.status).toBe(401);
      expect(expired.headers.get('access-control-expose-headers')?.split(/,\s*/)).toContain('WWW-Authenticate');
      const scopeless = await postMcp(resource('a'), await staffToken({ scope: '' }), INITIALIZE, { Origin: APP_ORIGIN });
      expect(scopeless.status).toBe(403);
      expect(scopeless.headers.get('access-control-expose-headers')?.split(/,\s*/)).toContain('WWW-Authenticate');

      const preflight = await fetch(resource('a'), {
        method: 'OPTIONS',
        headers: { Origin: APP_ORIGIN, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization, content-type' },
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get('access-control-allow-headers')).toMatch(/\bAuthorization\b/);
    });
  });

  describe('the authorization server unreachable from the start', () => {
    test('503 with Retry-After, no challenge (never 401: no login loop), issuer_unavailable counted, one WARN', async () => {
      const unreachableLogger = captureLogger();
      const metrics = new Registry();
      const down = await startFront(
        (url) => oauthConfig({ ...as, issuer: REFUSING_ORIGIN }, url, { a: stdioServer() }, { oauth: { introspection: { ...INTROSPECTION_CLIENT } } }),
        { logger: unreachableLogger, metrics },
      );
      try {
        const answers: Answer[] = [];
        for (const token of [await staffToken(), 'opaque-token-value']) answers.push(await postMcp(`${down.url}/a/mcp`, token));
        for (const res of answers) {
          expect(res.status).toBe(503);
          expect(res.headers.get('retry-after')).toBe('5');
          expect(res.headers.get('www-authenticate')).toBeNull();
          expect(res.body).toEqual(errorBody('Service Unavailable: the authorization server cannot be reached to verify the token; retry later'));
        }
        expect((await authFailures(metrics)).issuer_unavailable).toBe(2);
        const failed = unreachableLogger.entries.filter((e) => e.message === 'auth failed').map((e) => e.fields.reason);
        expect(failed).toEqual(['issuer_unavailable', 'issuer_unavailable']);
        expect(unreachableLogger.entries.filter((e) => e.message === 'oauth issuer unavailable')).toEqual([
          { level: 'warn', message: 'oauth issuer unavailable', fields: expect.objectContaining({ issuer: REFUSING_ORIGIN }) },
        ]);
      } finally {
        await down.close();
      }
    });
  });
});

describe('OAuth and secrets: no token value in a log line or an upstream request', () => {
  let as: AuthorizationServer;
  let capture: CaptureServer;
  let front: Front;
  const logger = captureLogger();
  const UPSTREAM_KEY = 'upstream-api-key-0123456789';

  beforeAll(async () => {
    [as, capture] = await Promise.all([startAuthorizationServer(), startCapture()]);
    front = await startFront(
      (url) =>
        oauthConfig(
          as,
          url,
          {
            r: { url: `${capture.origin}/mcp`, headers: { 'X-Upstream-Key': UPSTREAM_KEY } },
            l: { url: `${capture.origin}/legacy/sse`, headers: { 'X-Upstream-Key': UPSTREAM_KEY } },
          },
          { tokens: { dev: DEV_TOKEN }, oauth: { introspection: { ...INTROSPECTION_CLIENT } } },
        ),
      { logger },
    );
  });
  afterAll(async () => {
    await front?.close();
    await Promise.all([as?.stop(), capture?.close()]);
  });

  test('static, JWT and opaque tokens, accepted and refused, over Streamable HTTP and legacy SSE', async () => {
    const r = `${front.url}/r/mcp`;
    const l = `${front.url}/l/sse`;
    const user = (claims: Record<string, unknown>, options?: Parameters<AuthorizationServer['mint']>[1]) =>
      as.mint({ sub: 'user-s', scope: 'mcp:tools', email: 's@acme.com', email_verified: true, ...claims }, options);
    const accepted = {
      static: DEV_TOKEN,
      jwt: await as.clientCredentialsToken(r, 'mcp:tools'),
      opaque: await as.opaqueToken(r, 'mcp:tools'),
      user: await user({ aud: l }),
    };
    const refused = {
      expired: await user({ aud: r, exp: nowSeconds() - 3600 }),
      wrongAudience: await user({ aud: l, sub: 'user-t' }),
      noPrincipal: await user({ aud: r, email: 's@elsewhere.com' }),
      noScope: await user({ aud: r, scope: 'openid' }),
      forged: await user({ aud: r }, { key: 'stranger' }),
    };

    for (const token of [accepted.static, accepted.jwt, accepted.opaque]) {
      const init = await postMcp(r, token);
      expect(init.status).toBe(200);
      const session = init.headers.get('mcp-session-id')!;
      expect((await postMcp(r, token, { jsonrpc: '2.0', id: 2, method: 'tools/list' }, { 'Mcp-Session-Id': session })).status).toBe(200);
    }
    const stream = await openEventStream(l, { headers: bearer(accepted.user) });
    try {
      expect(stream.status).toBe(200);
      const endpoint = (await stream.nextMatching((e) => e.event === 'endpoint')).data;
      const posted = await fetch(new URL(endpoint, front.url), { method: 'POST', headers: { ...bearer(accepted.user), 'Content-Type': 'application/json' }, body: JSON.stringify(INITIALIZE) });
      await posted.arrayBuffer();
      expect(posted.status).toBe(202);
      await capture.waitFor((e) => e.url.startsWith('/legacy/messages/') && e.body.includes('"initialize"'));
    } finally {
      stream.close();
    }
    for (const token of Object.values(refused)) expect([401, 403]).toContain((await postMcp(r, token)).status);

    const upstream = capture.requests();
    expect(upstream.length).toBeGreaterThanOrEqual(8);
    for (const entry of upstream) {
      expect(entry.headers.authorization).toBeUndefined();
      expect(entry.headers['x-upstream-key']).toBe(UPSTREAM_KEY);
    }
    const seenUpstream = JSON.stringify(upstream);
    const logged = logger.text();
    expect(logged).toContain('auth successful');
    expect(logged).toContain('auth failed');
    for (const value of [...Object.values(accepted), ...Object.values(refused), INTROSPECTION_CLIENT.clientSecret]) {
      expect(logged).not.toContain(value);
      expect(seenUpstream).not.toContain(value);
      // Nor a piece of one: any 12 characters of its secret part (a JWT's signature: its header
      // and payload are no secret, and common to many tokens).
      const secret = value.split('.')[2] ?? value;
      for (let i = 0; i + 12 <= secret.length; i++) {
        const piece = secret.slice(i, i + 12);
        if (logged.includes(piece) || seenUpstream.includes(piece)) throw new Error(`a piece of a token (${piece}) was logged or sent upstream`);
      }
    }
  });
});
