// OAuth 2.0 Protected Resource Metadata (RFC 9728; README: OAuth 2.1) as clients fetch it: under
// the router's mount path (where challenges point) and, through `router.wellKnown` at the host's
// root, at the path-inserted location of RFC 9728 §3.1; to any origin, unauthenticated, with
// `resource` exactly the URL the client connects to (RFC 9728 §3.3). The authorization server is
// never asked for any of it, so none runs here.
import { INITIALIZE } from './helpers/clients';
import { challengeParams, oauthConfig, postMcp, PROXY_NAME, stdioServer } from './helpers/oauth-front';
import type { AuthorizationServer } from './helpers/oauth';
import { REFUSING_ORIGIN, startFront, type Front } from './helpers/servers';

const ISSUER = REFUSING_ORIGIN;
const WELL_KNOWN = '/.well-known/oauth-protected-resource';

async function getJson(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; body: unknown }> {
  const res = await fetch(url, { headers });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: (res.headers.get('content-type') ?? '').includes('json') ? JSON.parse(text) : text };
}

describe('Protected Resource Metadata (RFC 9728)', () => {
  let front: Front;
  let publicUrl: string;
  const config = (extra: Record<string, unknown> = {}) =>
    oauthConfig({ issuer: ISSUER } as AuthorizationServer, publicUrl, { db: stdioServer({ requiredScopes: ['mcp:db'] }), docs: stdioServer(), ...extra });

  beforeAll(async () => {
    front = await startFront(
      (url) => {
        publicUrl = url;
        return config();
      },
      { mount: '/gw', wellKnown: true },
    );
  });
  afterAll(() => front?.close());

  const documentOf = (server: string, route: 'mcp' | 'sse', scopes: string[]) => ({
    resource: `${publicUrl}/${server}/${route}`,
    authorization_servers: [ISSUER],
    scopes_supported: scopes,
    bearer_methods_supported: ['header'],
    resource_name: `${PROXY_NAME}: ${server}`,
  });

  test('publicUrl is the router URL with its mount path', () => {
    expect(publicUrl).toBe(`${front.origin}/gw`);
  });

  test.each<['mcp' | 'sse']>([['mcp'], ['sse']])('under the mount and at the host root (path-inserted): the same document, resource = <publicUrl>/<server>/%s', async (route) => {
    const underMount = await getJson(`${publicUrl}${WELL_KNOWN}/db/${route}`);
    const atRoot = await getJson(`${front.origin}${WELL_KNOWN}/gw/db/${route}`);
    for (const answer of [underMount, atRoot]) {
      expect(answer.status).toBe(200);
      expect(answer.body).toEqual(documentOf('db', route, ['mcp:tools', 'mcp:db']));
      expect(answer.headers.get('access-control-allow-origin')).toBe('*');
    }
    expect((await getJson(`${front.origin}${WELL_KNOWN}/gw/docs/${route}`)).body).toEqual(documentOf('docs', route, ['mcp:tools']));
  });

  test('the URL a 401 points to serves the metadata of the very URL the client requested', async () => {
    for (const [path, route] of [
      ['/db/mcp', 'mcp'],
      ['/db/sse', 'sse'],
    ] as const) {
      const refused = await fetch(`${publicUrl}${path}`, route === 'mcp' ? { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(INITIALIZE) } : {});
      await refused.arrayBuffer();
      expect(refused.status).toBe(401);
      const { resource_metadata: pointer, scope } = challengeParams(refused.headers.get('www-authenticate'));
      expect(pointer).toBe(`${publicUrl}${WELL_KNOWN}/db/${route}`);
      expect(scope).toBe('mcp:tools mcp:db');
      const document = (await getJson(pointer)).body as { resource: string };
      expect(document.resource).toBe(`${publicUrl}${path}`);
    }
  });

  test('any Origin gets the same document with Access-Control-Allow-Origin: *, and a bad token changes nothing', async () => {
    const plain = await getJson(`${publicUrl}${WELL_KNOWN}/db/mcp`);
    const variants: Record<string, string>[] = [
      { Origin: 'https://evil.example.com' },
      { Origin: 'null' },
      { Authorization: 'Bearer not-a-token' },
      { Origin: 'https://claude.ai', Authorization: 'Basic eDp5' },
    ];
    for (const headers of variants) {
      for (const url of [`${publicUrl}${WELL_KNOWN}/db/mcp`, `${front.origin}${WELL_KNOWN}/gw/db/mcp`]) {
        const answer = await getJson(url, headers);
        expect(answer.status).toBe(200);
        expect(answer.body).toEqual(plain.body);
        expect(answer.headers.get('access-control-allow-origin')).toBe('*');
      }
    }
  });

  test('a preflight is answered (the SDK sends MCP-Protocol-Version, which a browser preflights)', async () => {
    for (const url of [`${publicUrl}${WELL_KNOWN}/db/mcp`, `${front.origin}${WELL_KNOWN}/gw/db/sse`]) {
      const res = await fetch(url, {
        method: 'OPTIONS',
        headers: { Origin: 'https://claude.ai', 'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': 'mcp-protocol-version' },
      });
      await res.arrayBuffer();
      expect(res.status).toBe(204);
      expect(res.headers.get('access-control-allow-origin')).toBe('*');
      expect(res.headers.get('access-control-allow-methods')).toMatch(/\bGET\b/);
      expect(res.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('mcp-protocol-version');
    }
  });

  test('404 for an unknown server (or route) in both places; the root location without the mount path is not served', async () => {
    for (const url of [`${publicUrl}${WELL_KNOWN}/nope/mcp`, `${front.origin}${WELL_KNOWN}/gw/nope/mcp`]) {
      const answer = await getJson(url);
      expect(answer.status).toBe(404);
      expect(answer.body).toEqual({ error: 'not_found', error_description: 'no server named "nope"' });
      expect(answer.headers.get('access-control-allow-origin')).toBe('*');
    }
    for (const url of [`${publicUrl}${WELL_KNOWN}/db/message`, `${front.origin}${WELL_KNOWN}/db/mcp`, `${front.origin}${WELL_KNOWN}/gw/db/mcp/extra`]) {
      const res = await fetch(url);
      await res.arrayBuffer();
      expect(res.status).toBe(404);
    }
  });

  test('follows reload(): a server added is described at once, a server removed is 404', async () => {
    expect((await getJson(`${front.origin}${WELL_KNOWN}/gw/extra/mcp`)).status).toBe(404);
    await front.router.reload(config({ extra: stdioServer() }));
    expect((await getJson(`${front.origin}${WELL_KNOWN}/gw/extra/mcp`)).body).toEqual(documentOf('extra', 'mcp', ['mcp:tools']));
    await front.router.reload(config());
    expect((await getJson(`${publicUrl}${WELL_KNOWN}/extra/mcp`)).status).toBe(404);
  });

  test('at the root mount, the well-known routes of the router and of wellKnown agree', async () => {
    let rootUrl = '';
    const atRoot = await startFront(
      (url) => {
        rootUrl = url;
        return oauthConfig({ issuer: ISSUER } as AuthorizationServer, url, { db: stdioServer() });
      },
      { wellKnown: true },
    );
    try {
      const answer = await getJson(`${rootUrl}${WELL_KNOWN}/db/mcp`);
      expect(answer.status).toBe(200);
      expect((answer.body as { resource: string }).resource).toBe(`${rootUrl}/db/mcp`);
      const refused = await postMcp(`${rootUrl}/db/mcp`, undefined);
      expect(challengeParams(refused.headers.get('www-authenticate')).resource_metadata).toBe(`${rootUrl}${WELL_KNOWN}/db/mcp`);
    } finally {
      await atRoot.close();
    }
  });
});
