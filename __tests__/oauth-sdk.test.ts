// OAuth 2.1 from the client's side (README: OAuth 2.1): the official MCP SDK client runs its own
// authorization against a real authorization server (fixtures/oidc-provider.mjs) through the
// router — 401, Protected Resource Metadata, discovery, dynamic registration, PKCE with
// `resource`, token — on both HTTP transports; it steps up on `insufficient_scope`; and a
// `client_credentials` machine client calls with its token.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { McpFrontConfig } from '../lib/types';
import { connectClient, textOf } from './helpers/clients';
import { ACCOUNT_ID, startAuthorizationServer, type AuthorizationServer } from './helpers/oauth';
import { HeadlessOAuthProvider, oauthConfig, payloadOf, postMcp, stdioServer } from './helpers/oauth-front';
import { captureLogger, startEverything, startFront, type Front, type Upstream } from './helpers/servers';

type Kind = 'streamable' | 'sse';

const newClient = () => new Client({ name: 'oauth-e2e', version: '1.0.0' }, { capabilities: {} });

function transportFor(kind: Kind, url: URL, provider: HeadlessOAuthProvider) {
  return kind === 'sse' ? new SSEClientTransport(url, { authProvider: provider }) : new StreamableHTTPClientTransport(url, { authProvider: provider });
}

/**
 * The SDK's own flow, as an app runs it: the first connection ends in a redirect to the
 * authorization server (`UnauthorizedError`), the app hands the code back (`finishAuth`) and
 * connects again.
 */
async function connectWithOAuth(kind: Kind, url: URL, provider: HeadlessOAuthProvider): Promise<{ client: Client; transport: StreamableHTTPClientTransport | SSEClientTransport }> {
  const first = transportFor(kind, url, provider);
  await expect(newClient().connect(first)).rejects.toBeInstanceOf(UnauthorizedError);
  await first.finishAuth(provider.takeCode());
  const transport = transportFor(kind, url, provider);
  const client = newClient();
  await client.connect(transport);
  return { client, transport };
}

describe('OAuth 2.1 with the MCP SDK client', () => {
  let as: AuthorizationServer;
  let everything: Upstream;

  beforeAll(async () => {
    [as, everything] = await Promise.all([startAuthorizationServer(), startEverything('streamableHttp')]);
  });
  afterAll(async () => {
    await Promise.all([as?.stop(), everything?.close()]);
  });

  describe('the authorization-code flow the SDK runs on its own', () => {
    let front: Front;
    const logger = captureLogger();

    beforeAll(async () => {
      front = await startFront((url) => oauthConfig(as, url, { s: stdioServer() }), { logger });
    });
    afterAll(() => front?.close());

    test.each<Kind>(['streamable', 'sse'])(
      '%s: 401 → metadata → discovery → registration → PKCE with resource → token for this resource → tools work',
      async (kind) => {
        const route = kind === 'sse' ? 'sse' : 'mcp';
        const resource = `${front.url}/s/${route}`;
        const provider = new HeadlessOAuthProvider(as);
        const { client } = await connectWithOAuth(kind, new URL(resource), provider);
        try {
          const tools = await client.listTools();
          expect(tools.tools.map((t) => t.name)).toContain('echo');
          expect(textOf(await client.callTool({ name: 'echo', arguments: { message: `hello over ${kind}` } }))).toBe(`hello over ${kind}`);
        } finally {
          await client.close();
        }

        // One registration, one authorization: PKCE (S256), the resource the metadata named and
        // the scope of the challenge.
        expect(provider.registrations).toBe(1);
        expect(provider.authorizationUrls).toHaveLength(1);
        const asked = provider.authorizationUrls[0];
        expect(asked.origin + asked.pathname).toBe(`${as.issuer}/auth`);
        expect(asked.searchParams.get('resource')).toBe(resource);
        expect(asked.searchParams.get('code_challenge_method')).toBe('S256');
        expect(asked.searchParams.get('code_challenge')).toEqual(expect.any(String));
        expect(asked.searchParams.get('scope')).toBe('mcp:tools');

        // The token the SDK saved is for exactly this resource (RFC 8707), of the logged-in user.
        expect(payloadOf(provider.accessToken)).toMatchObject({ iss: as.issuer, aud: resource, sub: ACCOUNT_ID, scope: 'mcp:tools' });
        expect(logger.entries).toContainEqual({
          level: 'info',
          message: 'auth successful',
          fields: expect.objectContaining({ token: 'staff', sub: ACCOUNT_ID, server: 's' }),
        });
      },
    );
  });

  describe('step-up (insufficient_scope, MCP Authorization 2025-11-25)', () => {
    let front: Front;
    let publicUrl: string;
    const config = (requiredScopes?: string[]): McpFrontConfig =>
      oauthConfig(as, publicUrl, { s: stdioServer(requiredScopes === undefined ? {} : { requiredScopes }) });

    beforeAll(async () => {
      front = await startFront((url) => {
        publicUrl = url;
        return config();
      });
    });
    afterAll(() => front?.close());

    test('a server that now needs mcp:admin answers 403 with the challenge; the SDK authorizes again with it and the same session goes on', async () => {
      const url = new URL(`${front.url}/s/mcp`);
      const provider = new HeadlessOAuthProvider(as);
      const { client, transport } = await connectWithOAuth('streamable', url, provider);
      try {
        const sessionId = (transport as StreamableHTTPClientTransport).sessionId;
        expect(sessionId).toEqual(expect.any(String));
        const first = provider.accessToken;
        expect(payloadOf(first).scope).toBe('mcp:tools');

        await front.router.reload(config(['mcp:admin']));

        // The token the client holds lacks mcp:admin: the challenge names every scope needed.
        const refused = await postMcp(url.href, first, { jsonrpc: '2.0', id: 99, method: 'tools/list' }, { 'Mcp-Session-Id': sessionId! });
        expect(refused.status).toBe(403);
        expect(refused.headers.get('www-authenticate')).toBe(
          `Bearer realm="OAuth Proxy", error="insufficient_scope", scope="mcp:tools mcp:admin", resource_metadata="${publicUrl}/.well-known/oauth-protected-resource/s/mcp"`,
        );

        // The SDK meets the same 403, starts a new authorization with the challenged scope and
        // stops at the redirect; the app hands the code back and calls again.
        await expect(client.callTool({ name: 'echo', arguments: { message: 'before' } })).rejects.toBeInstanceOf(UnauthorizedError);
        expect(provider.authorizationUrls).toHaveLength(2);
        expect(provider.authorizationUrls[1].searchParams.get('scope')).toBe('mcp:tools mcp:admin');
        expect(provider.authorizationUrls[1].searchParams.get('resource')).toBe(url.href);
        await transport.finishAuth(provider.takeCode());

        const stepped = provider.accessToken;
        expect(stepped).not.toBe(first);
        expect(payloadOf(stepped)).toMatchObject({ aud: url.href, sub: ACCOUNT_ID, scope: 'mcp:tools mcp:admin' });
        expect(textOf(await client.callTool({ name: 'echo', arguments: { message: 'after step-up' } }))).toBe('after step-up');
        // Same user, same principal: the session opened with the first token is still the one in use.
        expect((transport as StreamableHTTPClientTransport).sessionId).toBe(sessionId);
      } finally {
        await client.close();
      }
    });
  });

  describe('a client_credentials machine client', () => {
    let front: Front;
    const logger = captureLogger();

    beforeAll(async () => {
      front = await startFront((url) => oauthConfig(as, url, { e: { url: `${everything.origin}/mcp` }, s: stdioServer() }), { logger });
    });
    afterAll(() => front?.close());

    test('with a plain fetch: initialize answered by the upstream', async () => {
      const token = await as.clientCredentialsToken(`${front.url}/e/mcp`, 'mcp:tools');
      const res = await postMcp(`${front.url}/e/mcp`, token);
      expect(res.status).toBe(200);
      expect(res.headers.get('mcp-session-id')).toEqual(expect.any(String));
      const text = String(res.body);
      expect(text).toContain('"serverInfo"');
      expect(logger.entries).toContainEqual({
        level: 'info',
        message: 'auth successful',
        fields: expect.objectContaining({ token: 'machines', sub: 'jwt-client', server: 'e' }),
      });
    });

    test.each<['streamable' | 'sse', string]>([
      ['streamable', 'e'],
      ['sse', 's'],
    ])('with the SDK client (%s, requestInit headers): listTools and callTool', async (kind, server) => {
      const token = await as.clientCredentialsToken(`${front.url}/${server}/${kind === 'sse' ? 'sse' : 'mcp'}`, 'mcp:tools');
      const client = await connectClient(front.url, server, kind, token);
      try {
        expect((await client.listTools()).tools.map((t) => t.name)).toContain('echo');
        const echoed = await client.callTool({ name: 'echo', arguments: { message: 'from a machine' } });
        expect(textOf(echoed)).toContain('from a machine');
      } finally {
        await client.close();
      }
    });

    test('a token without the proxy-wide scope gets 403 insufficient_scope', async () => {
      const token = await as.clientCredentialsToken(`${front.url}/e/mcp`);
      const res = await postMcp(`${front.url}/e/mcp`, token);
      expect(res.status).toBe(403);
      expect(res.headers.get('www-authenticate')).toContain('error="insufficient_scope", scope="mcp:tools"');
    });
  });
});
