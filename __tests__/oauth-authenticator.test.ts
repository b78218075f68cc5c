// The authenticator's OAuth path after the first request of a token (README: OAuth 2.1): a token
// verified before is proven synchronously, as a static token is — no promise, the request is
// dispatched in the tick it arrived — and its principal is matched once per token and config, yet a
// reload that changes the principals applies to it at once.
import crypto from 'node:crypto';
import { authenticatorFor } from '../lib/auth/authenticate';
import { digest } from '../lib/auth/bearer';
import { createOAuthVerifier } from '../lib/auth/oauth';
import { tokenDigest } from '../lib/auth/oauth/token-cache';
import { resolveConfig } from '../lib/config';
import { DEFAULT_OAUTH_ALGORITHMS } from '../lib/config/resolved-config';
import type { McpFrontConfig } from '../lib';
import { startAuthorizationServer, type AuthorizationServer } from './helpers/oauth';
import { captureLogger, DEV_TOKEN } from './helpers/servers';

const PUBLIC_URL = 'http://127.0.0.1:1/gw';
const RESOURCE = `${PUBLIC_URL}/db/mcp`;

let as: AuthorizationServer;
beforeAll(async () => {
  as = await startAuthorizationServer();
});
afterAll(async () => {
  await as?.stop();
});

function config(principals: Record<string, { claims: Record<string, string> }>, servers: McpFrontConfig['mcpServers'] = { db: { url: 'http://127.0.0.1:1/mcp' } }): McpFrontConfig {
  return {
    proxy: {
      publicUrl: PUBLIC_URL,
      auth: { kind: 'bearer_token', tokens: { dev: DEV_TOKEN }, oauth: { issuer: as.issuer, jwksUri: as.jwksUri, audiences: ['shared'], principals } },
    },
    mcpServers: servers,
  };
}

test('the verifier answers a cached token synchronously, with the very result it cached', async () => {
  const verifier = createOAuthVerifier(
    { issuer: as.issuer, jwksUri: as.jwksUri, audiences: [], scopes: [], algorithms: [...DEFAULT_OAUTH_ALGORITHMS], principals: [] },
    { logger: captureLogger() },
  );
  try {
    const token = await as.mint({ sub: 'alice', aud: RESOURCE });
    const first = verifier.verify(token);
    // The first verification asks for the keys.
    expect(first).toBeInstanceOf(Promise);
    const verified = await first;
    expect(verified).toMatchObject({ ok: true });
    const again = verifier.verify(token);
    expect(again).not.toBeInstanceOf(Promise);
    expect(again).toBe(verified);
    // A token refused on sight needs nobody either.
    expect(verifier.verify('')).toEqual({ ok: false, reason: 'invalid_token' });
  } finally {
    verifier.close();
  }
});

test('a token proven before is proven in the same tick, its principal matched once; a reload re-matches it', async () => {
  const logger = captureLogger();
  const env = {};
  const auth = authenticatorFor(resolveConfig(config({ staff: { claims: { email: '*@acme.com' } } }), env), undefined, logger);
  const header = `Bearer ${await as.mint({ sub: 'alice', email: 'alice@acme.com', aud: RESOURCE })}`;
  try {
    const first = await auth.prove(header);
    expect(first).toMatchObject({ ok: true, credential: { kind: 'oauth', principal: 'staff' } });
    const again = auth.prove(header);
    expect(again).not.toBeInstanceOf(Promise);
    expect(again).toBe(first);
    // As a static token is.
    expect(auth.prove(`Bearer ${DEV_TOKEN}`)).toEqual({ ok: true, credential: { kind: 'static', name: 'dev' } });

    // Same issuer and keys: the reload keeps the verifier and its cache, not the principal.
    const reloaded = authenticatorFor(resolveConfig(config({ admins: { claims: { email: 'alice@acme.com' } } }), env), auth, logger);
    expect(reloaded.oauth!.verifier).toBe(auth.oauth!.verifier);
    const after = reloaded.prove(header);
    expect(after).not.toBeInstanceOf(Promise);
    expect(after).toMatchObject({ ok: true, credential: { kind: 'oauth', principal: 'admins' } });
    expect(reloaded.prove(header)).toBe(after);
  } finally {
    auth.close();
  }
});

test('an introspected token is held to its aud only when the answer has one (RFC 7662 §2.2: aud is optional); a JWT always is', () => {
  const auth = authenticatorFor(resolveConfig(config({ staff: { claims: { email: '*@acme.com' } } }), {}), undefined, captureLogger());
  try {
    const server = resolveConfig(config({ staff: { claims: { email: '*@acme.com' } } }), {}).servers.get('db')!;
    const token = (audienceBound: boolean, aud: string[]) => ({
      kind: 'oauth' as const,
      principal: 'staff',
      token: { iss: as.issuer, sub: 'alice', aud, audienceBound, exp: Math.floor(Date.now() / 1000) + 600, scopes: new Set<string>(), claims: { email: 'alice@acme.com' } },
    });
    expect(auth.hold(token(false, []), server)).toMatchObject({ ok: true, principal: { name: 'staff' } });
    expect(auth.principalOf(token(false, []))).toEqual({ ok: true, name: 'staff' });
    // An answer that names another resource is refused, as a JWT without this server's aud is.
    expect(auth.hold(token(true, ['https://other.example/mcp']), server)).toEqual({ ok: false, reason: 'wrong_audience' });
    expect(auth.hold(token(true, []), server)).toEqual({ ok: false, reason: 'wrong_audience' });
    expect(auth.principalOf(token(true, []))).toEqual({ ok: false, reason: 'wrong_audience' });
  } finally {
    auth.close();
  }
});

test("an access token's answer for a server is decided once per config: the same for each request, another for another server or config", async () => {
  const logger = captureLogger();
  const servers = (dbTokens: string[]) => ({
    db: { url: 'http://127.0.0.1:1/mcp', authTokens: dbTokens },
    billing: { url: 'http://127.0.0.1:2/mcp', requiredScopes: ['mcp:billing'] },
  });
  const staff = { staff: { claims: { email: '*@acme.com' } } };
  const first = resolveConfig(config(staff, servers(['staff'])), {});
  const auth = authenticatorFor(first, undefined, logger);
  const header = `Bearer ${await as.mint({ sub: 'alice', email: 'alice@acme.com', aud: 'shared', scope: 'mcp:tools' })}`;
  try {
    const proof = await auth.prove(header);
    if (!proof.ok) throw new Error(proof.reason);
    const db = auth.hold(proof.credential, first.servers.get('db')!);
    expect(db).toMatchObject({ ok: true, principal: { name: 'staff', identity: `staff\n${as.issuer}\nalice`, subject: 'alice' } });
    expect(auth.hold(proof.credential, first.servers.get('db')!)).toBe(db);
    expect(auth.hold(proof.credential, first.servers.get('billing')!)).toEqual({ ok: false, reason: 'insufficient_scope', name: 'staff' });

    // A reload that takes db away from the principal: a new authenticator, a new answer.
    const second = resolveConfig(config(staff, servers(['dev'])), {});
    const reloaded = authenticatorFor(second, auth, logger);
    const again = reloaded.prove(header);
    if (again instanceof Promise || !again.ok) throw new Error('a cached token is proven synchronously');
    expect(reloaded.hold(again.credential, second.servers.get('db')!)).toEqual({ ok: false, reason: 'forbidden', name: 'staff' });
  } finally {
    auth.close();
  }
});

test('a presented token is hashed once per request: the static comparison and the token cache share the digest', async () => {
  const auth = authenticatorFor(resolveConfig(config({ staff: { claims: { email: '*@acme.com' } } }), {}), undefined, captureLogger());
  const token = await as.mint({ sub: 'alice', email: 'alice@acme.com', aud: RESOURCE });
  expect(digest(token).toString('base64')).toBe(tokenDigest(token));
  const spy = jest.spyOn(crypto, 'hash');
  try {
    expect(await auth.prove(`Bearer ${token}`)).toMatchObject({ ok: true });
    spy.mockClear();
    expect(auth.prove(`Bearer ${token}`)).toMatchObject({ ok: true, credential: { principal: 'staff' } });
    expect(spy).toHaveBeenCalledTimes(1);
  } finally {
    spy.mockRestore();
    auth.close();
  }
});

test("a static token's proof and hold are built once per config too, and a server that does not list it is refused", () => {
  const config = resolveConfig(
    {
      proxy: { auth: { kind: 'bearer_token', tokens: { dev: DEV_TOKEN, other: `${DEV_TOKEN}-other` } } },
      mcpServers: { db: { url: 'http://127.0.0.1:1/mcp', authTokens: ['dev'] }, files: { url: 'http://127.0.0.1:2/mcp', authTokens: ['other'] } },
    },
    {},
  );
  const auth = authenticatorFor(config, undefined, captureLogger());
  const proof = auth.prove(`Bearer ${DEV_TOKEN}`);
  expect(proof).toEqual({ ok: true, credential: { kind: 'static', name: 'dev' } });
  expect(auth.prove(`Bearer ${DEV_TOKEN}`)).toBe(proof);
  if (proof instanceof Promise || !proof.ok) throw new Error('a static token is proven synchronously');
  const held = auth.hold(proof.credential, config.servers.get('db')!);
  expect(held).toEqual({ ok: true, principal: { name: 'dev', identity: 'dev' } });
  expect(auth.hold(proof.credential, config.servers.get('db')!)).toBe(held);
  expect(auth.hold(proof.credential, config.servers.get('files')!)).toEqual({ ok: false, reason: 'forbidden', name: 'dev' });
  expect(auth.prove(`Bearer ${DEV_TOKEN}-other`)).toEqual({ ok: true, credential: { kind: 'static', name: 'other' } });
});
