// A real OAuth 2.1 authorization server for tests (fixtures/oidc-provider.mjs, oidc-provider 9 in a
// child process), and what tests do with it: tokens by `client_credentials` (JWT or opaque), the
// authorization-code flow with PKCE and its headless login, JWTs minted with the server's own key
// (or a stranger's, or none) for the hostile cases, and stopping and restarting it on the same port.
import { fork, type ChildProcess } from 'node:child_process';
import { createHash, createHmac, generateKeyPairSync, randomBytes, type JsonWebKey } from 'node:crypto';
import { once } from 'node:events';
import path from 'node:path';
import type * as Jose from 'jose' with { 'resolution-mode': 'import' };
import { PATIENCE_MS } from './servers';

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'oidc-provider.mjs');

/** The client mcp-front introspects as (`oauth.introspection` of the config). */
export const INTROSPECTION_CLIENT = { clientId: 'mcp-front', clientSecret: 'mcp-front-introspection-secret' };
/** Gets JWT access tokens by `client_credentials`. */
const JWT_CLIENT = { clientId: 'jwt-client', clientSecret: 'jwt-client-secret' };
/** Gets opaque access tokens by `client_credentials` (checked by introspection). */
const OPAQUE_CLIENT = { clientId: 'opaque-client', clientSecret: 'opaque-client-secret' };

/** The account every authorization-code login logs in, and its claims (also in its access tokens). */
export const ACCOUNT_ID = 'alice';
export const ACCOUNT_CLAIMS = {
  email: 'alice@acme.com',
  email_verified: true,
  groups: ['staff', 'db-admins'],
  realm_access: { roles: ['mcp-user'] },
};

/** Where a test's authorization-code client says it wants the code: never fetched (see `authorize`). */
export const REDIRECT_URI = 'http://127.0.0.1:1/callback';

export interface AuthorizationServerOptions {
  /** The issuer's path, e.g. `/realms/acme` (Keycloak's shape). Default: none. */
  issuerPath?: string;
  /** Lifetime of access tokens in seconds. Default: 3600. */
  accessTokenTtl?: number;
  /**
   * Metadata documents served: both (default), only RFC 8414's (`oauth`, at its path-inserted
   * location), or only OpenID Connect's (`openid`).
   */
  discovery?: 'all' | 'oauth' | 'openid';
}

export interface MintOptions {
  /** Replaces or adds protected header parameters (`kid`, `typ`, …; `alg` with `key: 'stranger'`). */
  header?: Record<string, unknown>;
  /**
   * Signed by the server's key (default), by another RSA key (`stranger`, with the server's `kid`
   * unless `header.kid` says otherwise), HMAC-SHA256 with the server's public key PEM as the
   * secret (`hmac-public-key`, the algorithm confusion attack), or not at all (`none`).
   */
  key?: 'issuer' | 'stranger' | 'hmac-public-key' | 'none';
}

export interface AuthorizationServer {
  /** `http://127.0.0.1:<port><issuerPath>` */
  issuer: string;
  port: number;
  /** Where its keys are (what discovery finds as `jwks_uri`). */
  jwksUri: string;
  introspectionEndpoint: string;
  /** The `kid` of its signing key. */
  kid: string;
  /** A JWT access token for `resource` (its `aud`) with `scope`, by `client_credentials`. */
  clientCredentialsToken(resource: string, scope?: string): Promise<string>;
  /** The same, opaque: only introspection can tell what it is. */
  opaqueToken(resource: string, scope?: string): Promise<string>;
  /** RFC 7009: revokes an opaque token (its introspection then says `active: false`). */
  revoke(token: string): Promise<void>;
  /**
   * The authorization-code flow as a client runs it: registers a public client (RFC 7591), logs in
   * headless with PKCE and redeems the code. Returns the access token (a JWT of the fixed account).
   */
  authorizationCodeToken(resource: string, scope: string): Promise<string>;
  /**
   * Follows an authorization URL through the headless login (keeping the server's cookies, which
   * plain `fetch` does not) and returns the URL the server finally redirects to: the client's
   * `redirect_uri` with `code` (or `error`). For an SDK `OAuthClientProvider.redirectToAuthorization`.
   */
  authorize(authorizationUrl: string | URL): Promise<URL>;
  /** A JWT with these claims; `iss` defaults to the issuer, `exp` to an hour from now (`exp: undefined` leaves it out). */
  mint(claims: Record<string, unknown>, options?: MintOptions): Promise<string>;
  /** Stops the server (the process is reaped): connections are refused from now on. */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same key (opaque tokens and clients registered before are gone). */
  restart(): Promise<void>;
}

let josePromise: Promise<typeof Jose> | undefined;
function loadJose(): Promise<typeof Jose> {
  return (josePromise ??= import('jose'));
}

function newSigningKey(): { jwk: JsonWebKey & { kid: string }; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = `fixture-${randomBytes(6).toString('hex')}`;
  return {
    jwk: { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' },
    publicPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
  };
}

/** Starts the fixture and waits for its answer; `port` 0 takes any. */
async function spawnFixture(options: object): Promise<{ child: ChildProcess; port: number; issuer: string }> {
  const child = fork(FIXTURE, [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], execArgv: [] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  child.send(options);
  const answer = await new Promise<{ port: number; issuer: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`oidc-provider fixture did not start: ${stderr}`)), PATIENCE_MS);
    child.once('message', (message) => {
      clearTimeout(timer);
      resolve(message as { port: number; issuer: string });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`oidc-provider fixture exited (${code}): ${stderr}`));
    });
  });
  return { child, ...answer };
}

async function reap(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

/** Starts a real authorization server on 127.0.0.1; `stop()` it in `afterAll`. */
export async function startAuthorizationServer(options: AuthorizationServerOptions = {}): Promise<AuthorizationServer> {
  const { jwk, publicPem } = newSigningKey();
  const client = (c: { clientId: string; clientSecret: string }) => ({
    client_id: c.clientId,
    client_secret: c.clientSecret,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
  });
  const fixtureOptions = {
    port: 0,
    issuerPath: options.issuerPath ?? '',
    jwk,
    accessTokenTtl: options.accessTokenTtl ?? 3600,
    discovery: options.discovery ?? 'all',
    clients: [client(INTROSPECTION_CLIENT), client(JWT_CLIENT), client(OPAQUE_CLIENT)],
    accountId: ACCOUNT_ID,
    accountClaims: ACCOUNT_CLAIMS,
  };
  let { child, port, issuer } = await spawnFixture(fixtureOptions);
  const base = issuer;

  async function tokenRequest(body: Record<string, string>, auth?: { clientId: string; clientSecret: string }): Promise<Record<string, unknown>> {
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    if (auth) headers.authorization = `Basic ${Buffer.from(`${auth.clientId}:${auth.clientSecret}`).toString('base64')}`;
    const res = await fetch(`${base}/token`, { method: 'POST', headers, body: new URLSearchParams(body) });
    const json = (await res.json()) as Record<string, unknown>;
    if (res.status !== 200) throw new Error(`token endpoint: ${res.status} ${JSON.stringify(json)}`);
    return json;
  }

  async function credentialsToken(c: typeof JWT_CLIENT, resource: string, scope?: string): Promise<string> {
    const body: Record<string, string> = { grant_type: 'client_credentials', resource };
    if (scope !== undefined) body.scope = scope;
    return (await tokenRequest(body, c)).access_token as string;
  }

  async function authorize(authorizationUrl: string | URL): Promise<URL> {
    const cookies = new Map<string, string>();
    let url = new URL(authorizationUrl);
    for (let hop = 0; hop < 20; hop++) {
      const res = await fetch(url, { redirect: 'manual', headers: { cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; ') } });
      for (const line of res.headers.getSetCookie()) {
        const [pair, ...attributes] = line.split(';');
        const eq = pair.indexOf('=');
        const name = pair.slice(0, eq).trim();
        const expired = attributes.some((a) => /^\s*expires=Thu, 01 Jan 1970/i.test(a));
        if (expired) cookies.delete(name);
        else cookies.set(name, pair.slice(eq + 1).trim());
      }
      const location = res.headers.get('location');
      await res.arrayBuffer();
      if (location === null) throw new Error(`authorization stopped at ${url.pathname} with ${res.status}`);
      url = new URL(location, url);
      if (url.origin !== new URL(base).origin) return url;
    }
    throw new Error('authorization: too many redirects');
  }

  async function authorizationCodeToken(resource: string, scope: string): Promise<string> {
    const registration = await fetch(`${base}/reg`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        redirect_uris: [REDIRECT_URI],
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        scope,
      }),
    });
    const registered = (await registration.json()) as { client_id: string };
    if (registration.status !== 201) throw new Error(`registration: ${registration.status} ${JSON.stringify(registered)}`);
    const verifier = randomBytes(32).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const authorizationUrl = new URL(`${base}/auth`);
    for (const [k, v] of Object.entries({
      client_id: registered.client_id,
      response_type: 'code',
      redirect_uri: REDIRECT_URI,
      scope,
      resource,
      code_challenge: challenge,
      code_challenge_method: 'S256',
      state: 'state',
    })) {
      authorizationUrl.searchParams.set(k, v);
    }
    const redirected = await authorize(authorizationUrl);
    const code = redirected.searchParams.get('code');
    if (code === null) throw new Error(`authorization failed: ${redirected.search}`);
    const answer = await tokenRequest({
      grant_type: 'authorization_code',
      code,
      redirect_uri: REDIRECT_URI,
      client_id: registered.client_id,
      code_verifier: verifier,
      resource,
    });
    return answer.access_token as string;
  }

  async function mint(claims: Record<string, unknown>, mintOptions: MintOptions = {}): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const payload: Record<string, unknown> = { iss: issuer, iat: now, exp: now + 3600, ...claims };
    for (const [k, v] of Object.entries(payload)) if (v === undefined) delete payload[k];
    const key = mintOptions.key ?? 'issuer';
    const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
    if (key === 'none') return `${b64({ alg: 'none', ...mintOptions.header })}.${b64(payload)}.`;
    if (key === 'hmac-public-key') {
      const input = `${b64({ alg: 'HS256', kid: jwk.kid, ...mintOptions.header })}.${b64(payload)}`;
      return `${input}.${createHmac('sha256', publicPem).update(input).digest('base64url')}`;
    }
    const jose = await loadJose();
    const signingKey = key === 'issuer' ? await jose.importJWK(jwk, 'RS256') : await jose.importJWK(newSigningKey().jwk, 'RS256');
    return new jose.SignJWT(payload as Jose.JWTPayload).setProtectedHeader({ alg: 'RS256', kid: jwk.kid, typ: 'at+jwt', ...mintOptions.header }).sign(signingKey);
  }

  return {
    issuer,
    port,
    jwksUri: `${base}/jwks`,
    introspectionEndpoint: `${base}/token/introspection`,
    kid: jwk.kid,
    clientCredentialsToken: (resource, scope) => credentialsToken(JWT_CLIENT, resource, scope),
    opaqueToken: (resource, scope) => credentialsToken(OPAQUE_CLIENT, resource, scope),
    async revoke(token) {
      const res = await fetch(`${base}/token/revocation`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`${OPAQUE_CLIENT.clientId}:${OPAQUE_CLIENT.clientSecret}`).toString('base64')}`,
        },
        body: new URLSearchParams({ token }),
      });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`revocation: ${res.status}`);
    },
    authorizationCodeToken,
    authorize,
    mint,
    stop: () => reap(child),
    async restart() {
      await reap(child);
      ({ child } = await spawnFixture({ ...fixtureOptions, port }));
    },
  };
}
