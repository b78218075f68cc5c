// The OAuth access-token verifier (README: OAuth 2.1) against a real authorization server
// (fixtures/oidc-provider.mjs): JWTs verified with its keys, opaque tokens introspected, the
// hostile cases, the cache, and the authorization server going away and coming back.
import { once } from 'node:events';
import net from 'node:net';
import express from 'express';
import request from 'supertest';
import { createOAuthVerifier, matchPrincipal, audienceAccepted, type OAuthVerifier } from '../lib/auth/oauth';
import { DEFAULT_OAUTH_ALGORITHMS, type ResolvedClaimMatch, type ResolvedOAuth, type ResolvedPrincipal } from '../lib/config/resolved-config';
import { ACCOUNT_ID, INTROSPECTION_CLIENT, startAuthorizationServer, type AuthorizationServer } from './helpers/oauth';
import { captureLogger, configWith, DEV_TOKEN, REFUSING_ORIGIN } from './helpers/servers';

const RESOURCE = 'https://mcp.example.com/gw/db/mcp';

function oauthConfig(as: AuthorizationServer, overrides: Partial<ResolvedOAuth> = {}): ResolvedOAuth {
  return {
    issuer: as.issuer,
    audiences: [],
    scopes: [],
    algorithms: [...DEFAULT_OAUTH_ALGORITHMS],
    introspection: { ...INTROSPECTION_CLIENT },
    principals: [],
    ...overrides,
  };
}

/** `fetch` that records `METHOD path` of every request, to count what reaches the authorization server. */
function countingFetch(): { fetch: typeof fetch; calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    fetch: (input, init) => {
      const url = new URL(String(input));
      calls.push(`${init?.method ?? 'GET'} ${url.pathname}`);
      return fetch(input, init);
    },
  };
}

/** A clock the test moves (milliseconds), for the verifier's `now`. */
function clock(): { now: () => number; advance(ms: number): void } {
  let at = Date.now();
  return { now: () => at, advance: (ms) => (at += ms) };
}

const seconds = () => Math.floor(Date.now() / 1000);

describe('OAuth access-token verifier against a real authorization server', () => {
  let as: AuthorizationServer;
  const verifiers: OAuthVerifier[] = [];
  function verifier(config: ResolvedOAuth, options: Partial<Parameters<typeof createOAuthVerifier>[1]> = {}) {
    const logger = captureLogger();
    const v = createOAuthVerifier(config, { logger, ...options });
    verifiers.push(v);
    return Object.assign(v, { logger });
  }

  beforeAll(async () => {
    as = await startAuthorizationServer();
  });
  afterAll(async () => {
    for (const v of verifiers) v.close();
    await as?.stop();
  });

  describe('JWT access tokens (RFC 9068)', () => {
    test('a token from client_credentials is valid, with its issuer, subject, audience, scopes and claims; discovery then keys are fetched once', async () => {
      const counted = countingFetch();
      const v = verifier(oauthConfig(as), { fetch: counted.fetch });
      const token = await as.clientCredentialsToken(RESOURCE, 'mcp:tools mcp:db');
      const result = await v.verify(token);
      expect(result).toMatchObject({ ok: true, token: { iss: as.issuer, sub: 'jwt-client', aud: [RESOURCE] } });
      if (!result.ok) throw new Error('unreachable');
      expect([...result.token.scopes]).toEqual(['mcp:tools', 'mcp:db']);
      expect(result.token.exp).toBeGreaterThan(seconds());
      expect(result.token.claims.client_id).toBe('jwt-client');
      expect(counted.calls).toEqual(['GET /.well-known/oauth-authorization-server', 'GET /jwks']);

      const other = await as.clientCredentialsToken(RESOURCE, 'mcp:tools');
      expect(await v.verify(other)).toMatchObject({ ok: true });
      expect(counted.calls).toHaveLength(2);
    });

    test('a token from the authorization-code flow (PKCE, headless login) carries the account and its claims', async () => {
      const v = verifier(oauthConfig(as));
      const token = await as.authorizationCodeToken(RESOURCE, 'mcp:tools');
      const result = await v.verify(token);
      expect(result).toMatchObject({ ok: true, token: { sub: ACCOUNT_ID, aud: [RESOURCE], claims: { email: 'alice@acme.com', email_verified: true } } });
      if (!result.ok) throw new Error('unreachable');
      expect([...result.token.scopes]).toEqual(['mcp:tools']);
    });

    test('configured jwksUri: no discovery at all', async () => {
      const counted = countingFetch();
      const v = verifier(oauthConfig(as, { jwksUri: as.jwksUri, introspection: undefined }), { fetch: counted.fetch });
      expect(await v.verify(await as.mint({ sub: 'u' }))).toMatchObject({ ok: true });
      expect(counted.calls).toEqual(['GET /jwks']);
    });

    test('another issuer → invalid_token', async () => {
      const v = verifier(oauthConfig(as));
      expect(await v.verify(await as.mint({ iss: 'https://evil.example.com' }))).toEqual({ ok: false, reason: 'invalid_token' });
      expect(await v.verify(await as.mint({ iss: `${as.issuer}/` }))).toEqual({ ok: false, reason: 'invalid_token' });
    });

    test('expired → expired; within the 60 s of clock skew → valid', async () => {
      const v = verifier(oauthConfig(as));
      expect(await v.verify(await as.mint({ exp: seconds() - 3600 }))).toEqual({ ok: false, reason: 'expired' });
      expect(await v.verify(await as.mint({ exp: seconds() - 90 }))).toEqual({ ok: false, reason: 'expired' });
      expect(await v.verify(await as.mint({ exp: seconds() - 30 }))).toMatchObject({ ok: true });
    });

    test('an expired token with a bad signature is invalid, not expired', async () => {
      const v = verifier(oauthConfig(as));
      expect(await v.verify(await as.mint({ exp: seconds() - 3600 }, { key: 'stranger' }))).toEqual({ ok: false, reason: 'invalid_token' });
    });

    test('no exp → invalid_token', async () => {
      const v = verifier(oauthConfig(as));
      expect(await v.verify(await as.mint({ sub: 'u', exp: undefined }))).toEqual({ ok: false, reason: 'invalid_token' });
    });

    test('nbf more than 60 s ahead → invalid_token; less → valid', async () => {
      const v = verifier(oauthConfig(as));
      expect(await v.verify(await as.mint({ nbf: seconds() + 600 }))).toEqual({ ok: false, reason: 'invalid_token' });
      expect(await v.verify(await as.mint({ nbf: seconds() + 30 }))).toMatchObject({ ok: true });
    });

    test('alg none → invalid_token, and the authorization server is not even asked', async () => {
      const counted = countingFetch();
      const v = verifier(oauthConfig(as), { fetch: counted.fetch });
      expect(await v.verify(await as.mint({ sub: 'u' }, { key: 'none' }))).toEqual({ ok: false, reason: 'invalid_token' });
      expect(counted.calls).toEqual([]);
    });

    test('HMAC with the public key as the secret (algorithm confusion) → invalid_token, even with HS256 configured', async () => {
      const forged = await as.mint({ sub: 'u' }, { key: 'hmac-public-key' });
      for (const algorithms of [[...DEFAULT_OAUTH_ALGORITHMS], ['RS256', 'HS256']]) {
        const v = verifier(oauthConfig(as, { algorithms }));
        expect(await v.verify(forged)).toEqual({ ok: false, reason: 'invalid_token' });
      }
    });

    test('an algorithm outside the allowlist → invalid_token', async () => {
      const v = verifier(oauthConfig(as, { algorithms: ['ES256'] }));
      expect(await v.verify(await as.mint({ sub: 'u' }))).toEqual({ ok: false, reason: 'invalid_token' });
    });

    test("another key under the server's kid, and an unknown kid → invalid_token", async () => {
      const v = verifier(oauthConfig(as));
      expect(await v.verify(await as.mint({ sub: 'u' }, { key: 'stranger' }))).toEqual({ ok: false, reason: 'invalid_token' });
      expect(await v.verify(await as.mint({ sub: 'u' }, { key: 'stranger', header: { kid: 'unknown-kid' } }))).toEqual({ ok: false, reason: 'invalid_token' });
      expect(await v.verify(await as.mint({ sub: 'u' }))).toMatchObject({ ok: true });
    });

    test('a sender-constrained token (cnf: DPoP or mutual TLS) is no bearer token → invalid_token', async () => {
      const v = verifier(oauthConfig(as));
      expect(await v.verify(await as.mint({ sub: 'u', cnf: { jkt: 'abc' } }))).toEqual({ ok: false, reason: 'invalid_token' });
    });

    test('scp as an array (Okta) or a string (Entra) gives the scopes too', async () => {
      const v = verifier(oauthConfig(as));
      const okta = await v.verify(await as.mint({ scp: ['mcp:a', 'mcp:b'] }));
      const entra = await v.verify(await as.mint({ scp: 'mcp:c mcp:d' }));
      expect(okta.ok && [...okta.token.scopes]).toEqual(['mcp:a', 'mcp:b']);
      expect(entra.ok && [...entra.token.scopes]).toEqual(['mcp:c', 'mcp:d']);
    });
  });

  describe('discovery of an issuer with a path (RFC 8414 §3.1)', () => {
    test.each([
      ['oauth', ['GET /.well-known/oauth-authorization-server/realms/acme', 'GET /realms/acme/jwks']],
      [
        'openid',
        [
          'GET /.well-known/oauth-authorization-server/realms/acme',
          'GET /.well-known/openid-configuration/realms/acme',
          'GET /realms/acme/.well-known/openid-configuration',
          'GET /realms/acme/jwks',
        ],
      ],
    ] as const)('metadata served by %s only: found in the order of the MCP specification', async (discovery, expected) => {
      const realm = await startAuthorizationServer({ issuerPath: '/realms/acme', discovery });
      try {
        const counted = countingFetch();
        const v = verifier(oauthConfig(realm), { fetch: counted.fetch });
        expect(await v.verify(await realm.clientCredentialsToken(RESOURCE, 'mcp:tools'))).toMatchObject({ ok: true, token: { iss: realm.issuer } });
        expect(counted.calls).toEqual(expected);
      } finally {
        await realm.stop();
      }
    });

    test('metadata naming another issuer is not used (RFC 8414 §3.3) → issuer_unavailable, WARN error=issuer_mismatch', async () => {
      // The same server with a trailing slash is another issuer: its metadata says it has none.
      const issuer = `${as.issuer}/`;
      const v = verifier(oauthConfig(as, { issuer }));
      expect(await v.verify(await as.mint({ iss: issuer }))).toEqual({ ok: false, reason: 'issuer_unavailable' });
      expect(v.logger.entries).toEqual([{ level: 'warn', message: 'oauth issuer unavailable', fields: { issuer, error: 'issuer_mismatch' } }]);
    });
  });

  describe('opaque access tokens (RFC 7662 introspection)', () => {
    test('an active token is valid, with its audience, scopes and exp; the answer is cached (no second introspection)', async () => {
      const counted = countingFetch();
      const v = verifier(oauthConfig(as), { fetch: counted.fetch });
      const token = await as.opaqueToken(RESOURCE, 'mcp:tools');
      expect(token.split('.')).toHaveLength(1);
      const first = await v.verify(token);
      expect(first).toMatchObject({ ok: true, token: { iss: as.issuer, aud: [RESOURCE], claims: { client_id: 'opaque-client', active: true } } });
      if (!first.ok) throw new Error('unreachable');
      expect([...first.token.scopes]).toEqual(['mcp:tools']);
      expect(first.token.exp).toBeGreaterThan(seconds());
      expect(counted.calls).toEqual(['GET /.well-known/oauth-authorization-server', 'POST /token/introspection']);
      expect(await v.verify(token)).toBe(first);
      expect(counted.calls).toHaveLength(2);
    });

    test('concurrent requests with the same new token share one introspection', async () => {
      const counted = countingFetch();
      const v = verifier(oauthConfig(as, { introspection: { ...INTROSPECTION_CLIENT, endpoint: as.introspectionEndpoint } }), { fetch: counted.fetch });
      const token = await as.opaqueToken(RESOURCE, 'mcp:tools');
      const results = await Promise.all([v.verify(token), v.verify(token), v.verify(token)]);
      expect(results.every((r) => r.ok)).toBe(true);
      expect(counted.calls).toEqual(['POST /token/introspection']);
    });

    test('an answer is trusted 60 s at most: a revoked token stops working after that', async () => {
      const time = clock();
      const v = verifier(oauthConfig(as), { now: time.now });
      const token = await as.opaqueToken(RESOURCE, 'mcp:tools');
      expect(await v.verify(token)).toMatchObject({ ok: true });
      await as.revoke(token);
      time.advance(59_000);
      expect(await v.verify(token)).toMatchObject({ ok: true });
      time.advance(2_000);
      expect(await v.verify(token)).toEqual({ ok: false, reason: 'invalid_token' });
    });

    test('inactive (unknown) → invalid_token, and not cached', async () => {
      const counted = countingFetch();
      const v = verifier(oauthConfig(as, { introspection: { ...INTROSPECTION_CLIENT, endpoint: as.introspectionEndpoint } }), { fetch: counted.fetch });
      expect(await v.verify('no-such-token-0123456789')).toEqual({ ok: false, reason: 'invalid_token' });
      expect(await v.verify('no-such-token-0123456789')).toEqual({ ok: false, reason: 'invalid_token' });
      expect(counted.calls).toEqual(['POST /token/introspection', 'POST /token/introspection']);
    });

    test("an answer from another issuer (iss) → invalid_token", async () => {
      const v = verifier(
        oauthConfig(as, { issuer: 'https://idp.example.com', jwksUri: as.jwksUri, introspection: { ...INTROSPECTION_CLIENT, endpoint: as.introspectionEndpoint } }),
      );
      expect(await v.verify(await as.opaqueToken(RESOURCE, 'mcp:tools'))).toEqual({ ok: false, reason: 'invalid_token' });
    });

    test('wrong introspection credentials → issuer_unavailable (503, not a login loop), WARN error=http_401', async () => {
      const v = verifier(oauthConfig(as, { introspection: { clientId: 'mcp-front', clientSecret: 'wrong', endpoint: as.introspectionEndpoint } }));
      expect(await v.verify(await as.opaqueToken(RESOURCE, 'mcp:tools'))).toEqual({ ok: false, reason: 'issuer_unavailable' });
      expect(v.logger.entries).toEqual([{ level: 'warn', message: 'oauth issuer unavailable', fields: { issuer: as.issuer, error: 'http_401' } }]);
    });

    test('without introspection configured, a token that is not a JWT → invalid_token, nothing asked', async () => {
      const counted = countingFetch();
      const v = verifier(oauthConfig(as, { introspection: undefined }), { fetch: counted.fetch });
      expect(await v.verify(await as.opaqueToken(RESOURCE, 'mcp:tools'))).toEqual({ ok: false, reason: 'invalid_token' });
      expect(counted.calls).toEqual([]);
    });
  });

  describe('the cache', () => {
    test('a second verification of a JWT is the cached one, until its exp; then it is verified again', async () => {
      const time = clock();
      const v = verifier(oauthConfig(as), { now: time.now });
      const token = await as.mint({ sub: 'u', exp: seconds() + 120 });
      const first = await v.verify(token);
      expect(first.ok).toBe(true);
      expect(await v.verify(token)).toBe(first);
      time.advance(150_000); // past exp, within the clock skew: verified again, still valid
      const again = await v.verify(token);
      expect(again).toMatchObject({ ok: true });
      expect(again).not.toBe(first);
      time.advance(60_000);
      expect(await v.verify(token)).toEqual({ ok: false, reason: 'expired' });
    });

    test('close() drops the cache: issuer_unavailable from then on', async () => {
      const v = verifier(oauthConfig(as));
      const token = await as.mint({ sub: 'u' });
      expect(await v.verify(token)).toMatchObject({ ok: true });
      v.close();
      expect(await v.verify(token)).toEqual({ ok: false, reason: 'issuer_unavailable' });
    });
  });

  describe('malformed tokens', () => {
    const garbage = (length: number, alphabet: string) => Array.from({ length }, (_, i) => alphabet[(i * 7919) % alphabet.length]).join('');
    const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

    test('4096 characters of anything, JWT-shaped or not → invalid_token, no request to the server', async () => {
      const counted = countingFetch();
      const v = verifier(oauthConfig(as, { introspection: undefined }), { fetch: counted.fetch });
      const shapes = [
        garbage(4096, B64URL),
        `${garbage(2000, B64URL)}.${garbage(2000, B64URL)}.${garbage(94, B64URL)}`,
        `${Buffer.from('{"alg":"RS256"').toString('base64url')}.e30.sig`,
        `${Buffer.from('[]').toString('base64url')}.e30.sig`,
        '..',
        'a.b.c',
        garbage(4096, '.~+/=!'),
      ];
      for (const token of shapes) expect(await v.verify(token)).toEqual({ ok: false, reason: 'invalid_token' });
      expect(await v.verify(garbage(4097, B64URL))).toEqual({ ok: false, reason: 'invalid_token' });
      expect(await v.verify('')).toEqual({ ok: false, reason: 'invalid_token' });
      expect(counted.calls).toEqual([]);
      // A well-formed header is looked up among the keys, fetched once; the signature fails.
      const header = Buffer.from('{"alg":"RS256","kid":"x"}').toString('base64url');
      for (const token of [`${header}.${garbage(4000, B64URL)}.sig`, `${header}.${garbage(3000, B64URL)}.${garbage(1000, B64URL)}`]) {
        expect(await v.verify(token)).toEqual({ ok: false, reason: 'invalid_token' });
      }
      expect(counted.calls).toEqual(['GET /.well-known/oauth-authorization-server', 'GET /jwks']);
      expect(v.logger.entries).toEqual([]);
    });

    test('a garbage opaque token with introspection configured is asked about once and refused', async () => {
      const v = verifier(oauthConfig(as));
      expect(await v.verify(garbage(4096, B64URL))).toEqual({ ok: false, reason: 'invalid_token' });
    });
  });

  describe('the authorization server unavailable', () => {
    test('stopped: cached keys still verify; an unknown kid (after the cooldown) and introspection → issuer_unavailable with one WARN; back: INFO, and it works again', async () => {
      const own = await startAuthorizationServer();
      try {
        const time = clock();
        const v = verifier(oauthConfig(own), { now: time.now });
        const tokens: string[] = [];
        const mint = async (...args: Parameters<AuthorizationServer['mint']>) => {
          const token = await own.mint(...args);
          tokens.push(token);
          return token;
        };
        const opaque = await own.opaqueToken(RESOURCE, 'mcp:tools');
        tokens.push(opaque);
        expect(await v.verify(await mint({ sub: 'a' }))).toMatchObject({ ok: true });

        await own.stop();
        expect(await v.verify(await mint({ sub: 'b' }))).toMatchObject({ ok: true });
        // Keys were fetched a moment ago: an unknown kid is refused without asking again.
        expect(await v.verify(await mint({ sub: 'c' }, { key: 'stranger', header: { kid: 'new-kid' } }))).toEqual({ ok: false, reason: 'invalid_token' });
        time.advance(31_000);
        expect(await v.verify(await mint({ sub: 'd' }, { key: 'stranger', header: { kid: 'new-kid' } }))).toEqual({ ok: false, reason: 'issuer_unavailable' });
        expect(await v.verify(await mint({ sub: 'e' }, { key: 'stranger', header: { kid: 'newer-kid' } }))).toEqual({ ok: false, reason: 'issuer_unavailable' });
        expect(await v.verify(opaque)).toEqual({ ok: false, reason: 'issuer_unavailable' });
        expect(await v.verify(await mint({ sub: 'f' }))).toMatchObject({ ok: true });
        // Keys past their age are refreshed in the background; while that fails, they stay in use.
        time.advance(11 * 60_000);
        expect(await v.verify(await mint({ sub: 'f2' }))).toMatchObject({ ok: true });
        expect(await v.verify(await mint({ sub: 'f3' }))).toMatchObject({ ok: true });
        expect(v.logger.entries).toEqual([{ level: 'warn', message: 'oauth issuer unavailable', fields: { issuer: own.issuer, error: 'ECONNREFUSED' } }]);

        await own.restart();
        expect(await v.verify(await mint({ sub: 'g' }, { key: 'stranger', header: { kid: 'new-kid' } }))).toEqual({ ok: false, reason: 'invalid_token' });
        expect(v.logger.entries.map((e) => `${e.level} ${e.message}`)).toEqual(['warn oauth issuer unavailable', 'info oauth issuer available']);
        expect(await v.verify(await own.opaqueToken(RESOURCE, 'mcp:tools'))).toMatchObject({ ok: true });
        expect(await v.verify(await mint({ sub: 'h' }))).toMatchObject({ ok: true });
        expect(v.logger.entries).toHaveLength(2);

        const logged = v.logger.text();
        for (const token of tokens) expect(logged).not.toContain(token);
      } finally {
        await own.stop();
      }
    });

    test('unreachable from the start (discovery refused) → issuer_unavailable, one WARN; warmUp() says so without a request', async () => {
      const config: ResolvedOAuth = { ...oauthConfig(as), issuer: REFUSING_ORIGIN };
      const v = verifier(config);
      let warned!: () => void;
      const warning = new Promise<void>((resolve) => (warned = resolve));
      v.logger.warn = (message, fields) => {
        v.logger.entries.push({ level: 'warn', message, fields: fields ?? {} });
        warned();
      };
      v.warmUp();
      await warning;
      // fetch refuses port 1 itself (a "bad port" of the Fetch standard): `error=TypeError`.
      expect(v.logger.entries).toEqual([{ level: 'warn', message: 'oauth issuer unavailable', fields: { issuer: REFUSING_ORIGIN, error: 'TypeError' } }]);
      const token = await as.mint({ iss: REFUSING_ORIGIN });
      expect(await v.verify(token)).toEqual({ ok: false, reason: 'issuer_unavailable' });
      expect(await v.verify('opaque-token-0123456789')).toEqual({ ok: false, reason: 'issuer_unavailable' });
      expect(v.logger.entries).toHaveLength(1);
    });

    test('warmUp() fetches metadata and keys once; a verification meanwhile waits for the same fetch', async () => {
      const counted = countingFetch();
      const v = verifier(oauthConfig(as, { introspection: undefined }), { fetch: counted.fetch });
      v.warmUp();
      expect(await v.verify(await as.mint({ sub: 'u' }))).toMatchObject({ ok: true });
      expect(counted.calls).toEqual(['GET /.well-known/oauth-authorization-server', 'GET /jwks']);
    });

    test('a server that accepts connections and never answers → issuer_unavailable within the fetch timeout, WARN error=timeout', async () => {
      const sockets = new Set<net.Socket>();
      const silent = net.createServer((socket) => sockets.add(socket));
      silent.listen(0, '127.0.0.1');
      await once(silent, 'listening');
      const issuer = `http://127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
      try {
        const v = verifier({ ...oauthConfig(as), issuer });
        expect(await v.verify(await as.mint({ iss: issuer }))).toEqual({ ok: false, reason: 'issuer_unavailable' });
        expect(v.logger.entries).toEqual([{ level: 'warn', message: 'oauth issuer unavailable', fields: { issuer, error: 'timeout' } }]);
      } finally {
        for (const socket of sockets) socket.destroy();
        silent.close();
      }
    });
  });
});

describe('matchPrincipal', () => {
  const exact = (value: string | number | boolean): ResolvedClaimMatch => ({ kind: 'exact', value });
  const pattern = (p: string): ResolvedClaimMatch => ({ kind: 'pattern', pattern: p });
  const principal = (name: string, claims: Record<string, ResolvedClaimMatch[]>): ResolvedPrincipal => ({ name, claims: new Map(Object.entries(claims)) });

  const principals = [
    principal('db-admins', { groups: [exact('db-admins')] }),
    principal('staff', { email: [pattern('*@acme.com')], email_verified: [exact(true)] }),
    principal('robots', { client_id: [exact('ci'), exact('deploy')] }),
    principal('keycloak', { 'realm_access.roles': [exact('mcp-user')] }),
    principal('auth0', { 'https://acme.com/roles': [exact('admin')] }),
    principal('level', { level: [exact(3)] }),
  ];

  test.each([
    ['an exact value in an array claim', { groups: ['staff', 'db-admins'] }, 'db-admins'],
    ['the first match in the order given wins', { groups: ['db-admins'], email: 'a@acme.com', email_verified: true }, 'db-admins'],
    ['a pattern and a boolean, both required', { email: 'bob@acme.com', email_verified: true }, 'staff'],
    ['one claim of two missing', { email: 'bob@acme.com' }, undefined],
    ['no coercion: "true" is not true', { email: 'bob@acme.com', email_verified: 'true' }, undefined],
    ['the pattern is anchored', { email: 'bob@acme.com.evil.org', email_verified: true }, undefined],
    ['a pattern matches strings only', { email: ['x', 'y@acme.com'], email_verified: true }, 'staff'],
    ['a list of alternatives: any', { client_id: 'deploy' }, 'robots'],
    ['case-sensitive', { client_id: 'CI' }, undefined],
    ['a dotted path into nested objects (Keycloak)', { realm_access: { roles: ['mcp-user'] } }, 'keycloak'],
    ['a claim whose name holds dots is looked up whole first (Auth0)', { 'https://acme.com/roles': ['admin'] }, 'auth0'],
    ['a dotted path does not reach into an array or the prototype', { realm_access: [{ roles: 'mcp-user' }] }, undefined],
    ['numbers match exactly', { level: 3 }, 'level'],
    ['no number coercion', { level: '3' }, undefined],
    ['an object claim matches nothing', { groups: { 0: 'db-admins' } }, undefined],
    ['nothing', {}, undefined],
  ] as const)('%s', (_what, claims, expected) => {
    expect(matchPrincipal(principals, claims as Record<string, unknown>)).toBe(expected);
  });

  test('a claim named like a prototype property is data', () => {
    const proto = [principal('p', { 'constructor.name': [exact('Object')] }), principal('q', { toString: [pattern('*')] })];
    expect(matchPrincipal(proto, {})).toBeUndefined();
    expect(matchPrincipal(proto, { toString: 'x' })).toBe('q');
  });

  test('a principal with no claims matches every token', () => {
    expect(matchPrincipal([principal('anyone', {})], { sub: 'x' })).toBe('anyone');
  });

  test('a pattern on a long hostile value stays linear (many * against a near miss)', () => {
    const p = [principal('p', { email: [pattern(`${'*a'.repeat(50)}*b`)] })];
    expect(matchPrincipal(p, { email: 'a'.repeat(4000) })).toBeUndefined();
    expect(matchPrincipal(p, { email: `${'a'.repeat(4000)}b` })).toBe('p');
  });
});

describe('audienceAccepted', () => {
  test.each([
    [[RESOURCE], [RESOURCE], true],
    [['other', RESOURCE], ['x', RESOURCE], true],
    [[], [RESOURCE], false],
    [[RESOURCE], [], false],
    [[`${RESOURCE}/`], [RESOURCE], false],
    [[RESOURCE.toUpperCase()], [RESOURCE], false],
  ])('%j against %j → %s', (aud, accepted, expected) => {
    expect(audienceAccepted(aud, accepted)).toBe(expected);
  });
});

describe('jose is loaded only when a verifier needs it', () => {
  test('requiring mcp-front and serving requests without oauth does not load jose; verifying a token does', async () => {
    let loaded = 0;
    jest.doMock('jose', () => {
      loaded++;
      return jest.requireActual('jose');
    });
    try {
      let lib!: typeof import('../lib');
      let oauth!: typeof import('../lib/auth/oauth');
      jest.isolateModules(() => {
        lib = require('../lib');
        oauth = require('../lib/auth/oauth');
      });
      const router = lib.mcpFront(configWith({ echo: { url: 'http://127.0.0.1:1/mcp', transportType: 'streamable-http', authTokens: ['dev'] } }), { logger: captureLogger() });
      const app = express().use(router);
      await request(app).get('/health').expect(200);
      await request(app).post('/echo/mcp').set('Authorization', 'Bearer wrong').send({}).expect(401);
      await request(app).post('/nope/mcp').set('Authorization', `Bearer ${DEV_TOKEN}`).send({}).expect(404);
      await router.close();
      const unused = oauth.createOAuthVerifier({ issuer: REFUSING_ORIGIN, audiences: [], scopes: [], algorithms: ['RS256'], principals: [] }, { logger: captureLogger() });
      expect(oauth.matchPrincipal([], {})).toBeUndefined();
      expect(loaded).toBe(0);

      expect(await unused.verify('a.b.c')).toEqual({ ok: false, reason: 'invalid_token' });
      expect(loaded).toBe(1);
      unused.close();
    } finally {
      jest.dontMock('jose');
    }
  });
});
