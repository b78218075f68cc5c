// The configuration of OAuth 2.1 access tokens beside static tokens (README: OAuth 2.1, Configuration):
// `proxy.auth.oauth`, `proxy.publicUrl`, servers' `requiredScopes`, principals in the token
// namespace; defaults, resolved values, every problem with its exact path and message, and no
// secret in any of them.
import { DEFAULT_OAUTH_ALGORITHMS, resolveConfig } from '../lib/config';
import type { ResolvedConfig } from '../lib/config';
import { canonicalConfig, configFingerprint } from '../lib/config/fingerprint';
import { tokenWarnings } from '../lib/config/token-warnings';
import { configChecks } from './helpers/config-checks';

type Json = any;

// Distinctive values: if any of them shows up in an error, a secret leaked.
const CI_TOKEN = 'S3CRET-ci-token-q1w2e3r4t5y6u7';
const CLIENT_SECRET = 'S3CRET-introspection-z9x8c7';
const SECRETS = [CI_TOKEN, CLIENT_SECRET];
const ENV = { CI_TOKEN, INTROSPECTION_SECRET: CLIENT_SECRET, ISSUER: 'https://idp.example.com/realms/acme', PUBLIC_URL: 'https://mcp.example.com/gw/' };

/** The README's OAuth example: a static token beside OAuth, two principals, a server scope. */
function base(): Json {
  return {
    proxy: {
      publicUrl: 'https://mcp.example.com/gw',
      auth: {
        kind: 'bearer_token',
        tokens: { ci: { $env: 'CI_TOKEN' } },
        oauth: {
          issuer: 'https://idp.example.com/realms/acme',
          audiences: ['mcp-front'],
          scopes: ['mcp:tools'],
          introspection: { clientId: 'mcp-front', clientSecret: { $env: 'INTROSPECTION_SECRET' } },
          principals: {
            'db-admins': { claims: { groups: 'db-admins' } },
            staff: { claims: { email: '*@acme.com', email_verified: true } },
          },
        },
      },
    },
    mcpServers: {
      database: { url: 'http://db.test/mcp', authTokens: ['ci', 'db-admins'], requiredScopes: ['mcp:db'] },
      files: { command: 'node' },
    },
  };
}

/** Only OAuth: no static tokens at all. */
function oauthOnly(): Json {
  const raw = base();
  delete raw.proxy.auth.tokens;
  raw.mcpServers.database.authTokens = ['db-admins'];
  return raw;
}

function resolve(raw: unknown, env: Record<string, string | undefined> = ENV): ResolvedConfig {
  return resolveConfig(raw, env);
}

const { problems, expectOnly } = configChecks(SECRETS, ENV);

const LOOPBACK = 'http:// only on loopback: localhost, 127.0.0.0/8, [::1]';

describe('resolved form', () => {
  test('the README example resolves as documented', () => {
    const c = resolve(base());
    expect(c.publicUrl).toBe('https://mcp.example.com/gw');
    expect(c.oauth).toEqual({
      issuer: 'https://idp.example.com/realms/acme',
      audiences: ['mcp-front'],
      scopes: ['mcp:tools'],
      algorithms: [...DEFAULT_OAUTH_ALGORITHMS],
      introspection: { clientId: 'mcp-front', clientSecret: CLIENT_SECRET },
      principals: [
        { name: 'db-admins', claims: new Map([['groups', [{ kind: 'exact', value: 'db-admins' }]]]) },
        {
          name: 'staff',
          claims: new Map<string, unknown>([
            ['email', [{ kind: 'pattern', pattern: '*@acme.com' }]],
            ['email_verified', [{ kind: 'exact', value: true }]],
          ]),
        },
      ],
    });
    expect(c.oauth).not.toHaveProperty('jwksUri');
    expect(c.oauth!.introspection).not.toHaveProperty('endpoint');
    expect([...c.tokens.keys()]).toEqual(['ci']);
  });

  test('a server needs oauth.scopes, then its own requiredScopes, each once', () => {
    const raw = base();
    raw.proxy.auth.oauth.scopes = ['mcp:tools', 'openid', 'mcp:tools'];
    raw.mcpServers.database.requiredScopes = ['mcp:db', 'openid', 'mcp:db', 'mcp:admin'];
    const c = resolve(raw);
    expect(c.oauth!.scopes).toEqual(['mcp:tools', 'openid']);
    expect(c.servers.get('database')!.scopes).toEqual(['mcp:tools', 'openid', 'mcp:db', 'mcp:admin']);
    expect(c.servers.get('files')!.scopes).toEqual(['mcp:tools', 'openid']);
  });

  test('authTokens omitted: every token and every principal', () => {
    expect([...resolve(base()).servers.get('files')!.authTokens]).toEqual(['ci', 'db-admins', 'staff']);
    expect([...resolve(oauthOnly()).servers.get('files')!.authTokens]).toEqual(['db-admins', 'staff']);
  });

  test('defaults: no audiences, no scopes, the asymmetric algorithms, no introspection', () => {
    const raw = base();
    const { issuer, principals } = raw.proxy.auth.oauth;
    raw.proxy.auth.oauth = { issuer, principals };
    delete raw.mcpServers.database.requiredScopes;
    const c = resolve(raw);
    expect(c.oauth).toEqual({ issuer, audiences: [], scopes: [], algorithms: [...DEFAULT_OAUTH_ALGORITHMS], principals: expect.any(Array) });
    expect(DEFAULT_OAUTH_ALGORITHMS).toEqual(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']);
    expect(c.servers.get('database')!.scopes).toEqual([]);
  });

  test('explicitly undefined keys are the same as omitted ones', () => {
    const raw = base();
    Object.assign(raw.proxy.auth.oauth, { audiences: undefined, scopes: undefined, jwksUri: undefined, algorithms: undefined, introspection: undefined });
    raw.mcpServers.database.requiredScopes = undefined;
    const c = resolve(raw);
    expect(c.oauth).toEqual({ issuer: 'https://idp.example.com/realms/acme', audiences: [], scopes: [], algorithms: [...DEFAULT_OAUTH_ALGORITHMS], principals: expect.any(Array) });
    expect(c.servers.get('database')!.scopes).toEqual([]);
  });

  test('the seed format stays valid unchanged: no oauth, no publicUrl, no scopes', () => {
    const seed = {
      version: '1.0',
      proxy: { name: 'Dev Proxy', addr: ':8080', auth: { kind: 'bearer_token', tokens: { dev: 'dev-token-123', prod: { $env: 'CI_TOKEN' } } } },
      mcpServers: { database: { url: 'http://postgres-mcp:3000/sse', authTokens: ['dev', 'prod'] }, filesystem: { command: 'npx', authTokens: ['dev'] } },
    };
    const c = resolve(seed);
    expect(c).not.toHaveProperty('oauth');
    expect(c).not.toHaveProperty('publicUrl');
    for (const s of c.servers.values()) expect(s.scopes).toEqual([]);
    expect([...c.servers.get('database')!.authTokens]).toEqual(['dev', 'prod']);
  });

  test('oauth without tokens is valid; with neither, one problem at proxy.auth', () => {
    const c = resolve(oauthOnly());
    expect(c.tokens.size).toBe(0);
    expect(c.oauth!.principals.map((p) => p.name)).toEqual(['db-admins', 'staff']);
    const raw = oauthOnly();
    delete raw.proxy.auth.oauth;
    delete raw.proxy.publicUrl;
    raw.mcpServers = {};
    expectOnly(raw, 'proxy.auth', 'needs "tokens" (static bearer tokens), "oauth" (OAuth 2.1 access tokens), or both');
  });

  test('tokens, when present, still needs one entry', () => {
    const raw = base();
    raw.proxy.auth.tokens = {};
    raw.mcpServers.database.authTokens = ['db-admins'];
    expectOnly(raw, 'proxy.auth.tokens', 'must define at least one token');
  });

  test('a config without tokens gives no token warnings', () => {
    expect(tokenWarnings(resolve(oauthOnly()), { NODE_ENV: 'production' })).toEqual([]);
  });

  test('the resolved config does not share objects with the input', () => {
    const raw = base();
    const c = resolve(raw);
    raw.proxy.auth.oauth.scopes.push('later');
    raw.proxy.auth.oauth.audiences.push('later');
    expect(c.oauth!.scopes).toEqual(['mcp:tools']);
    expect(c.oauth!.audiences).toEqual(['mcp-front']);
  });
});

describe('proxy.publicUrl', () => {
  test('is required with oauth', () => {
    const raw = base();
    delete raw.proxy.publicUrl;
    expectOnly(
      raw,
      'proxy.publicUrl',
      'is required with "oauth": the URL clients use to reach this proxy, mount path included (e.g. "https://mcp.example.com/gw"); resource URLs are built from it, never from the Host header',
    );
  });

  test.each([
    ['https://mcp.example.com/gw/', 'https://mcp.example.com/gw'],
    ['https://mcp.example.com/', 'https://mcp.example.com'],
    ['https://mcp.example.com', 'https://mcp.example.com'],
    ['https://MCP.Example.com:443/gw', 'https://mcp.example.com/gw'],
    ['https://mcp.example.com:8443/a/b', 'https://mcp.example.com:8443/a/b'],
    ['http://localhost:8080/', 'http://localhost:8080'],
    ['http://127.0.0.1:3000/gw', 'http://127.0.0.1:3000/gw'],
    ['http://127.9.8.7', 'http://127.9.8.7'],
    ['http://[::1]:3000', 'http://[::1]:3000'],
  ])('%s is stored as %s', (value, stored) => {
    const raw = base();
    raw.proxy.publicUrl = value;
    expect(resolve(raw).publicUrl).toBe(stored);
  });

  test('$env is allowed, and so is publicUrl without oauth', () => {
    const raw = base();
    raw.proxy.publicUrl = { $env: 'PUBLIC_URL' };
    expect(resolve(raw).publicUrl).toBe('https://mcp.example.com/gw');
    delete raw.proxy.auth.oauth;
    delete raw.mcpServers.database.requiredScopes;
    raw.mcpServers.database.authTokens = ['ci'];
    expect(resolve(raw).publicUrl).toBe('https://mcp.example.com/gw');
    expect(resolve(raw)).not.toHaveProperty('oauth');
  });

  test.each([
    ['http://mcp.example.com/gw', `must be https:// (${LOOPBACK})`],
    ['http://10.0.0.1/gw', `must be https:// (${LOOPBACK})`],
    ['http://localhost.example.com/gw', `must be https:// (${LOOPBACK})`],
    ['ftp://mcp.example.com', `must be an absolute https:// URL (${LOOPBACK})`],
    ['/gw', `must be an absolute https:// URL (${LOOPBACK})`],
    ['', `must be an absolute https:// URL (${LOOPBACK})`],
    ['https://mcp.example.com/gw?x=1', 'must not have a query or fragment'],
    ['https://mcp.example.com/gw?', 'must not have a query or fragment'],
    ['https://mcp.example.com/gw#top', 'must not have a query or fragment'],
    ['https://user:pw@mcp.example.com/gw', 'must not contain a user name or password'],
    [' https://mcp.example.com/gw', 'must not contain spaces or control characters'],
  ])('%j: %s', (value, message) => {
    const raw = base();
    raw.proxy.publicUrl = value;
    expectOnly(raw, 'proxy.publicUrl', message);
  });

  test('a bad value from the environment names the variable', () => {
    const raw = base();
    raw.proxy.publicUrl = { $env: 'PUBLIC_URL' };
    expectOnly(raw, 'proxy.publicUrl', `must be https:// (${LOOPBACK}) (value of environment variable PUBLIC_URL)`, { ...ENV, PUBLIC_URL: 'http://mcp.example.com' });
    expectOnly(raw, 'proxy.publicUrl', 'environment variable PUBLIC_URL is not set', { CI_TOKEN, INTROSPECTION_SECRET: CLIENT_SECRET });
    expectOnly(raw, 'proxy.publicUrl', 'must not contain spaces or control characters (value of environment variable PUBLIC_URL)', {
      ...ENV,
      PUBLIC_URL: 'https://mcp.example.com\n',
    });
  });

  test('must be a string or {"$env"}', () => {
    const raw = base();
    raw.proxy.publicUrl = 42;
    expectOnly(raw, 'proxy.publicUrl', 'must be a string or {"$env": "NAME"}');
  });
});

describe('proxy.auth.oauth.issuer', () => {
  test('is required', () => {
    const raw = base();
    delete raw.proxy.auth.oauth.issuer;
    expectOnly(raw, 'proxy.auth.oauth.issuer', 'is required');
  });

  test.each(['https://idp.example.com/realms/acme/', 'https://idp.example.com', 'https://IDP.example.com:443/x', 'http://localhost:4000', 'http://127.0.0.1:4000/oidc', 'http://[::1]:4000'])(
    '%s is kept exactly as written (compared as a string, RFC 8414 §3.3)',
    (issuer) => {
      const raw = base();
      raw.proxy.auth.oauth.issuer = issuer;
      expect(resolve(raw).oauth!.issuer).toBe(issuer);
    },
  );

  test('$env is allowed', () => {
    const raw = base();
    raw.proxy.auth.oauth.issuer = { $env: 'ISSUER' };
    expect(resolve(raw).oauth!.issuer).toBe('https://idp.example.com/realms/acme');
    expectOnly(raw, 'proxy.auth.oauth.issuer', 'environment variable ISSUER is not set', { CI_TOKEN, INTROSPECTION_SECRET: CLIENT_SECRET });
    expectOnly(raw, 'proxy.auth.oauth.issuer', 'must not contain spaces or control characters (value of environment variable ISSUER)', {
      ...ENV,
      ISSUER: 'https://idp.example.com/realms/acme\n',
    });
  });

  test.each([
    ['http://idp.example.com', `must be https:// (${LOOPBACK})`],
    ['http://192.168.1.10:8080', `must be https:// (${LOOPBACK})`],
    ['http://[::2]:8080', `must be https:// (${LOOPBACK})`],
    ['idp.example.com', `must be an absolute https:// URL (${LOOPBACK})`],
    ['https://idp.example.com/realms/acme?tenant=1', 'must not have a query or fragment'],
    ['https://idp.example.com/realms/acme#x', 'must not have a query or fragment'],
    ['https://a:b@idp.example.com', 'must not contain a user name or password'],
    ['https://idp.example.com/realms/acme ', 'must not contain spaces or control characters'],
  ])('%j: %s', (issuer, message) => {
    const raw = base();
    raw.proxy.auth.oauth.issuer = issuer;
    expectOnly(raw, 'proxy.auth.oauth.issuer', message);
  });
});

describe('proxy.auth.oauth.jwksUri and introspection.endpoint', () => {
  test('resolve to their URL; a query is allowed there', () => {
    const raw = base();
    raw.proxy.auth.oauth.jwksUri = 'https://idp.example.com/certs?v=2';
    raw.proxy.auth.oauth.introspection.endpoint = 'http://127.0.0.1:4000/token/introspection';
    const c = resolve(raw);
    expect(c.oauth!.jwksUri).toBe('https://idp.example.com/certs?v=2');
    expect(c.oauth!.introspection!.endpoint).toBe('http://127.0.0.1:4000/token/introspection');
  });

  test.each([
    ['http://idp.example.com/certs', `must be https:// (${LOOPBACK})`],
    ['https://idp.example.com/certs#k', 'must not have a fragment'],
    ['not a url', 'must not contain spaces or control characters'],
    ['certs.json', `must be an absolute https:// URL (${LOOPBACK})`],
  ])('%j: %s', (url, message) => {
    const raw = base();
    raw.proxy.auth.oauth.jwksUri = url;
    raw.proxy.auth.oauth.introspection.endpoint = url;
    // In document order: `jwksUri` was added after `introspection`.
    expect(problems(raw)).toEqual([
      { path: 'proxy.auth.oauth.introspection.endpoint', message },
      { path: 'proxy.auth.oauth.jwksUri', message },
    ]);
  });
});

describe('proxy.auth.oauth.introspection', () => {
  test('clientId and clientSecret are required', () => {
    const raw = base();
    raw.proxy.auth.oauth.introspection = {};
    expect(problems(raw)).toEqual([
      { path: 'proxy.auth.oauth.introspection.clientId', message: 'is required' },
      { path: 'proxy.auth.oauth.introspection.clientSecret', message: 'is required' },
    ]);
  });

  test('a literal secret works too', () => {
    const raw = base();
    raw.proxy.auth.oauth.introspection.clientSecret = CLIENT_SECRET;
    raw.proxy.auth.oauth.introspection.clientId = { $env: 'CI_TOKEN' };
    expect(resolve(raw).oauth!.introspection).toEqual({ clientId: CI_TOKEN, clientSecret: CLIENT_SECRET });
  });

  test.each([
    ['', 'must not be empty'],
    [`${CLIENT_SECRET}é`, 'must contain only printable ASCII characters (RFC 6749 Appendix A)'],
    [`${CLIENT_SECRET}\n`, 'must contain only printable ASCII characters (RFC 6749 Appendix A)'],
  ])('a bad secret %j is reported, never quoted', (secret, message) => {
    const raw = base();
    raw.proxy.auth.oauth.introspection.clientSecret = secret;
    expectOnly(raw, 'proxy.auth.oauth.introspection.clientSecret', message);
  });

  test('from the environment: unset, empty, or with a trailing newline', () => {
    const raw = base();
    const at = 'proxy.auth.oauth.introspection.clientSecret';
    expectOnly(raw, at, 'environment variable INTROSPECTION_SECRET is not set', { CI_TOKEN });
    expectOnly(raw, at, 'environment variable INTROSPECTION_SECRET is empty', { CI_TOKEN, INTROSPECTION_SECRET: '' });
    expectOnly(raw, at, 'environment variable INTROSPECTION_SECRET contains control or non-ASCII characters (a trailing newline?)', {
      CI_TOKEN,
      INTROSPECTION_SECRET: `${CLIENT_SECRET}\n`,
    });
  });

  test('an empty clientId, and an unknown key with a suggestion', () => {
    const raw = base();
    raw.proxy.auth.oauth.introspection.clientId = '';
    raw.proxy.auth.oauth.introspection.client_secret = 'x';
    expect(problems(raw)).toEqual([
      { path: 'proxy.auth.oauth.introspection.clientId', message: 'must not be empty' },
      { path: 'proxy.auth.oauth.introspection.client_secret', message: 'unknown key "client_secret"; did you mean "clientSecret"?' },
    ]);
  });
});

describe('proxy.auth.oauth.algorithms', () => {
  test('a subset of the asymmetric ones, each once', () => {
    const raw = base();
    raw.proxy.auth.oauth.algorithms = ['ES256', 'RS256', 'ES256', 'EdDSA'];
    expect(resolve(raw).oauth!.algorithms).toEqual(['ES256', 'RS256', 'EdDSA']);
  });

  test('"none" and HMAC are refused, saying why', () => {
    const raw = base();
    raw.proxy.auth.oauth.algorithms = ['RS256', 'none', 'HS256', 'hs512', 'NONE'];
    const none = '"none" would accept unsigned tokens that anyone can write (RFC 8725 §3.1, RFC 9068 §4); use an asymmetric algorithm such as RS256 or ES256';
    const hmac = (alg: string) =>
      `"${alg}" is an HMAC algorithm: its key is a shared secret no authorization server publishes, and accepting it beside public keys invites key confusion (RFC 8725 §2.1); use an asymmetric algorithm such as RS256 or ES256`;
    expect(problems(raw)).toEqual([
      { path: 'proxy.auth.oauth.algorithms[1]', message: none },
      { path: 'proxy.auth.oauth.algorithms[2]', message: hmac('HS256') },
      { path: 'proxy.auth.oauth.algorithms[3]', message: hmac('HS512') },
      { path: 'proxy.auth.oauth.algorithms[4]', message: none },
    ]);
  });

  test('an unknown one gets a suggestion, or the list', () => {
    const raw = base();
    raw.proxy.auth.oauth.algorithms = ['rs256', 'XYZ999'];
    expect(problems(raw)).toEqual([
      { path: 'proxy.auth.oauth.algorithms[0]', message: 'is not a supported asymmetric JWS algorithm; did you mean "RS256"?' },
      { path: 'proxy.auth.oauth.algorithms[1]', message: `is not a supported asymmetric JWS algorithm; use one of ${DEFAULT_OAUTH_ALGORITHMS.join(', ')}` },
    ]);
  });

  test('an empty list, or not strings', () => {
    const raw = base();
    raw.proxy.auth.oauth.algorithms = [];
    expectOnly(raw, 'proxy.auth.oauth.algorithms', `must list at least one algorithm (omit "algorithms" for the default: ${DEFAULT_OAUTH_ALGORITHMS.join(', ')})`);
    raw.proxy.auth.oauth.algorithms = 'RS256';
    expectOnly(raw, 'proxy.auth.oauth.algorithms', 'must be an array');
    raw.proxy.auth.oauth.algorithms = [256];
    expectOnly(raw, 'proxy.auth.oauth.algorithms[0]', 'must be a string');
  });
});

describe('scopes, audiences, requiredScopes', () => {
  const SCOPE = 'must be a scope: visible ASCII characters without spaces, double quotes or backslashes (RFC 6749 §3.3)';
  const AUDIENCE = 'must be an audience: visible ASCII characters without spaces, double quotes or backslashes';

  test('RFC 6749 §3.3 scope tokens: anything visible but " and \\', () => {
    const raw = base();
    const odd = "a!#$%&'()*+,-./09:;<=>?@AZ[]^_`az{|}~";
    raw.proxy.auth.oauth.scopes = [odd, 'https://graph.example.com/mcp.read'];
    raw.proxy.auth.oauth.audiences = ['api://mcp-front', 'https://mcp.example.com/gw'];
    const c = resolve(raw);
    expect(c.oauth!.scopes).toEqual([odd, 'https://graph.example.com/mcp.read']);
    expect(c.oauth!.audiences).toEqual(['api://mcp-front', 'https://mcp.example.com/gw']);
  });

  test('audiences are deduplicated', () => {
    const raw = base();
    raw.proxy.auth.oauth.audiences = ['a', 'b', 'a'];
    expect(resolve(raw).oauth!.audiences).toEqual(['a', 'b']);
  });

  test.each([
    ['', 'must not be empty'],
    ['mcp tools', null],
    ['mcp"tools', null],
    ['mcp\\tools', null],
    ['mcp:tööls', null],
    ['mcp:tools\n', null],
  ])('%j is refused in each list, not quoted', (value, message) => {
    const raw = base();
    raw.proxy.auth.oauth.scopes = ['ok', value];
    raw.proxy.auth.oauth.audiences = [value];
    raw.mcpServers.database.requiredScopes = [value, 'ok'];
    expect(problems(raw)).toEqual([
      { path: 'proxy.auth.oauth.audiences[0]', message: message ?? AUDIENCE },
      { path: 'proxy.auth.oauth.scopes[1]', message: message ?? SCOPE },
      { path: 'mcpServers.database.requiredScopes[0]', message: message ?? SCOPE },
    ]);
  });

  test('shape errors', () => {
    const raw = base();
    raw.proxy.auth.oauth.scopes = 'mcp:tools';
    raw.proxy.auth.oauth.audiences = [1];
    raw.mcpServers.database.requiredScopes = { scope: 'x' };
    expect(problems(raw)).toEqual([
      { path: 'proxy.auth.oauth.audiences[0]', message: 'must be a string' },
      { path: 'proxy.auth.oauth.scopes', message: 'must be an array' },
      { path: 'mcpServers.database.requiredScopes', message: 'must be an array' },
    ]);
  });

  test('requiredScopes without oauth is an error: it could never be satisfied', () => {
    const raw = base();
    delete raw.proxy.auth.oauth;
    delete raw.proxy.publicUrl;
    raw.mcpServers.database.authTokens = ['ci'];
    raw.mcpServers.files.requiredScopes = [];
    expect(problems(raw)).toEqual([
      { path: 'mcpServers.database.requiredScopes', message: 'needs proxy.auth.oauth: scopes are only ever granted to OAuth access tokens, so this server could never be reached with them' },
      { path: 'mcpServers.files.requiredScopes', message: 'needs proxy.auth.oauth: scopes are only ever granted to OAuth access tokens, so this server could never be reached with them' },
    ]);
  });

  test('requiredScopes: [] adds nothing', () => {
    const raw = base();
    raw.mcpServers.database.requiredScopes = [];
    expect(resolve(raw).servers.get('database')!.scopes).toEqual(['mcp:tools']);
  });
});

describe('proxy.auth.oauth.principals', () => {
  test('are required, and at least one', () => {
    const raw = base();
    delete raw.proxy.auth.oauth.principals;
    raw.mcpServers.database.authTokens = ['ci'];
    expectOnly(raw, 'proxy.auth.oauth.principals', 'is required');
    raw.proxy.auth.oauth.principals = {};
    expectOnly(raw, 'proxy.auth.oauth.principals', 'must define at least one principal');
  });

  test('keep the order written: the first match wins', () => {
    const raw = base();
    raw.proxy.auth.oauth.principals = { zeta: { claims: { sub: 'a' } }, alpha: { claims: { sub: 'b' } }, mid: { claims: { sub: 'c' } } };
    raw.mcpServers.database.authTokens = ['ci'];
    expect(resolve(raw).oauth!.principals.map((p) => p.name)).toEqual(['zeta', 'alpha', 'mid']);
  });

  test('claim values compile: exact, pattern, number, boolean, alternatives; dotted claim names kept', () => {
    const raw = base();
    raw.proxy.auth.oauth.principals = {
      ops: {
        claims: {
          'realm_access.roles': ['ops', 'admin-*'],
          tier: 3,
          mfa: false,
          email: '*',
          acr: [1, 'gold', true],
        },
      },
    };
    raw.mcpServers.database.authTokens = ['ops'];
    const [ops] = resolve(raw).oauth!.principals;
    expect(ops.claims).toEqual(
      new Map<string, unknown>([
        ['realm_access.roles', [{ kind: 'exact', value: 'ops' }, { kind: 'pattern', pattern: 'admin-*' }]],
        ['tier', [{ kind: 'exact', value: 3 }]],
        ['mfa', [{ kind: 'exact', value: false }]],
        ['email', [{ kind: 'pattern', pattern: '*' }]],
        ['acr', [{ kind: 'exact', value: 1 }, { kind: 'exact', value: 'gold' }, { kind: 'exact', value: true }]],
      ]),
    );
  });

  test('"claim" for "claims": a suggestion, and claims is still required', () => {
    const raw = base();
    raw.proxy.auth.oauth.principals.staff = { claim: { sub: 'x' } };
    expect(problems(raw)).toEqual([
      { path: 'proxy.auth.oauth.principals.staff.claims', message: 'is required' },
      { path: 'proxy.auth.oauth.principals.staff.claim', message: 'unknown key "claim"; did you mean "claims"?' },
    ]);
  });

  test('a principal named like a token is an error at the principal', () => {
    const raw = base();
    raw.proxy.auth.oauth.principals.ci = { claims: { sub: 'robot' } };
    expectOnly(raw, 'proxy.auth.oauth.principals.ci', '"ci" is also a token name; tokens and principals share one namespace (authTokens, permissions, limits, logs)');
  });

  test.each(['bad name', 'a/b', '*', 'é'])('the name %j breaks the token-name rule', (name) => {
    const raw = base();
    raw.proxy.auth.oauth.principals[name] = { claims: { sub: 'x' } };
    raw.mcpServers.database.authTokens = ['ci'];
    const path = /^[A-Za-z_$][\w$-]*$/.test(name) ? `proxy.auth.oauth.principals.${name}` : `proxy.auth.oauth.principals[${JSON.stringify(name)}]`;
    expectOnly(raw, path, 'invalid principal name; use only letters, digits, ".", "_" and "-" (principal names appear in log lines)');
  });

  test.each([
    [{}, 'proxy.auth.oauth.principals.staff.claims', 'is required'],
    [{ claims: {} }, 'proxy.auth.oauth.principals.staff.claims', 'must define at least one claim'],
    [{ claims: { '': 'x' } }, 'proxy.auth.oauth.principals.staff.claims[""]', 'a claim name must not be empty (nested claims are written "realm_access.roles")'],
    [{ claims: { sub: '' } }, 'proxy.auth.oauth.principals.staff.claims.sub', 'must not be empty'],
    [{ claims: { sub: [] } }, 'proxy.auth.oauth.principals.staff.claims.sub', 'must list at least one value'],
    [{ claims: { sub: ['a', ''] } }, 'proxy.auth.oauth.principals.staff.claims.sub[1]', 'must not be empty'],
    [{ claims: { sub: null } }, 'proxy.auth.oauth.principals.staff.claims.sub', 'must be a string, a number, true or false, or an array'],
    [{ claims: { sub: { $env: 'X' } } }, 'proxy.auth.oauth.principals.staff.claims.sub', 'must be a string, a number, true or false, or an array'],
    [{ claims: { sub: [['a']] } }, 'proxy.auth.oauth.principals.staff.claims.sub[0]', 'must be a string, a number, or true or false'],
    ['staff', 'proxy.auth.oauth.principals.staff', 'must be an object'],
  ])('%j: %s %s', (entry, path, message) => {
    const raw = base();
    raw.proxy.auth.oauth.principals.staff = entry;
    expectOnly(raw, path, message);
  });
});

describe('proxy.auth.oauth: shape', () => {
  test.each([
    [(o: Json) => (o.issuers = ['x']), 'proxy.auth.oauth.issuers', 'unknown key "issuers"; did you mean "issuer"?'],
    [(o: Json) => (o.audience = ['x']), 'proxy.auth.oauth.audience', 'unknown key "audience"; did you mean "audiences"?'],
    [(o: Json) => (o.jwks_uri = 'https://x'), 'proxy.auth.oauth.jwks_uri', 'unknown key "jwks_uri"; did you mean "jwksUri"?'],
    [(o: Json) => (o.principal = {}), 'proxy.auth.oauth.principal', 'unknown key "principal"; did you mean "principals"?'],
    [(o: Json) => (o.introspection = true), 'proxy.auth.oauth.introspection', 'must be an object'],
  ])('%#: %s', (change, path, message) => {
    const raw = base();
    change(raw.proxy.auth.oauth);
    expectOnly(raw, path, message);
  });

  test('misspelled keys beside it get a suggestion', () => {
    const raw = base();
    raw.proxy.auth.OAuth = raw.proxy.auth.oauth;
    delete raw.proxy.auth.oauth;
    raw.proxy.publicURL = raw.proxy.publicUrl;
    delete raw.proxy.publicUrl;
    raw.mcpServers.database.requiredScope = raw.mcpServers.database.requiredScopes;
    delete raw.mcpServers.database.requiredScopes;
    raw.mcpServers.database.authTokens = ['ci'];
    expect(problems(raw)).toEqual([
      { path: 'proxy.auth.OAuth', message: 'unknown key "OAuth"; did you mean "oauth"?' },
      { path: 'proxy.publicURL', message: 'unknown key "publicURL"; did you mean "publicUrl"?' },
      { path: 'mcpServers.database.requiredScope', message: 'unknown key "requiredScope"; did you mean "requiredScopes"?' },
    ]);
  });

  test('"kind": "oauth" says where OAuth goes', () => {
    const raw = base();
    raw.proxy.auth.kind = 'oauth';
    expectOnly(raw, 'proxy.auth.kind', 'must be "bearer_token" (the only supported kind); OAuth 2.1 access tokens are configured in "oauth", beside "tokens"');
  });

  test('oauth that is not an object: one problem, and publicUrl is still required', () => {
    const raw = base();
    raw.proxy.auth.oauth = 'https://idp.example.com';
    raw.mcpServers.database.authTokens = ['ci'];
    expectOnly(raw, 'proxy.auth.oauth', 'must be an object');
    delete raw.proxy.publicUrl;
    expect(problems(raw).map((p) => p.path)).toEqual(['proxy.publicUrl', 'proxy.auth.oauth']);
  });

  test('a broken oauth does not also make every principal reference unknown', () => {
    const raw = base();
    raw.proxy.auth.oauth.issuer = 'http://idp.example.com';
    raw.proxy.auth.oauth.principals.staff.claims = {};
    raw.proxy.limits = { staff: { maxSessions: 1 } };
    expect(problems(raw).map((p) => p.path)).toEqual(['proxy.auth.oauth.issuer', 'proxy.auth.oauth.principals.staff.claims']);
  });
});

describe('principal names work wherever token names do', () => {
  test('authTokens, permissions, limits and metrics take principal names', () => {
    const raw = base();
    raw.mcpServers.database.permissions = { 'db-admins': { tools: ['*'] }, '*': { tools: [] } };
    raw.proxy.limits = { staff: { maxSessions: 2 }, ci: { maxSessions: 5 } };
    raw.proxy.metrics = { authTokens: ['staff', 'ci'] };
    const c = resolve(raw);
    expect([...c.servers.get('database')!.authTokens]).toEqual(['ci', 'db-admins']);
    expect(c.servers.get('database')!.permissions!.get('db-admins')).toEqual({ tools: ['*'] });
    expect(c.limits!.get('staff')).toEqual({ maxSessions: 2 });
    expect([...c.metrics!.authTokens!]).toEqual(['staff', 'ci']);
  });

  test('an unknown name: "token or principal name", with a suggestion or the list', () => {
    const raw = base();
    raw.mcpServers.database.authTokens = ['ci', 'db-admin', 'stuff'];
    raw.mcpServers.database.permissions = { 'db-admns': { tools: [] } };
    raw.proxy.limits = { nobody: { maxSessions: 1 } };
    raw.proxy.metrics = { authTokens: ['staf'] };
    expect(problems(raw)).toEqual([
      { path: 'proxy.limits.nobody', message: 'unknown token or principal name "nobody"; defined tokens and principals: "ci", "db-admins", "staff", or "*"' },
      { path: 'proxy.metrics.authTokens[0]', message: 'unknown token or principal name "staf"; did you mean "staff"?' },
      // Quoted although it occurs in the claim value "db-admins": claim values are not secrets.
      { path: 'mcpServers.database.authTokens[1]', message: 'unknown token or principal name "db-admin"; did you mean "db-admins"?' },
      { path: 'mcpServers.database.authTokens[2]', message: 'unknown token or principal name "stuff"; did you mean "staff"?' },
      { path: 'mcpServers.database.permissions.db-admns', message: 'unknown token or principal name "db-admns"; did you mean "db-admins"?' },
    ]);
  });

  test('a principal in permissions but not in authTokens', () => {
    const raw = base();
    raw.mcpServers.database.permissions = { staff: { tools: [] } };
    expectOnly(raw, 'mcpServers.database.permissions.staff', 'principal "staff" is not in this server\'s "authTokens", so it can never use these permissions');
  });

  test('duplicates and empty lists name principals too', () => {
    const raw = base();
    raw.mcpServers.database.authTokens = ['staff', 'staff'];
    raw.mcpServers.files.authTokens = [];
    expect(problems(raw)).toEqual([
      { path: 'mcpServers.database.authTokens[1]', message: 'duplicate principal name "staff"' },
      { path: 'mcpServers.files.authTokens', message: 'must list at least one token or principal name (omit "authTokens" to allow every token and principal)' },
    ]);
  });

  test('without oauth, the messages speak of tokens only, as before', () => {
    const raw = base();
    delete raw.proxy.auth.oauth;
    delete raw.mcpServers.database.requiredScopes;
    raw.mcpServers.database.authTokens = ['ci', 'cj'];
    expectOnly(raw, 'mcpServers.database.authTokens[1]', 'unknown token name "cj"; did you mean "ci"?');
  });

  test('a name that occurs in a value outside claims is still not quoted', () => {
    const raw = base();
    raw.mcpServers.database.headers = { 'X-Key': 'key-db-admin-1' };
    raw.mcpServers.database.authTokens = ['ci', 'db-admin'];
    expectOnly(raw, 'mcpServers.database.authTokens[1]', 'unknown token or principal name (not shown: it may be a secret); did you mean "db-admins"?');
  });

  test('a pasted token value in authTokens is still never quoted', () => {
    const raw = base();
    raw.mcpServers.database.authTokens = [CI_TOKEN];
    expectOnly(raw, 'mcpServers.database.authTokens[0]', 'is a token value, not a token name; use its name from proxy.auth.tokens');
  });
});

describe('no secret in any message', () => {
  test('a config broken everywhere quotes neither the client secret nor token values', () => {
    const raw = base();
    raw.proxy.auth.tokens.pasted = CI_TOKEN;
    raw.proxy.auth.oauth.issuer = `https://idp.example.com/${CLIENT_SECRET}?x`;
    raw.proxy.auth.oauth.jwksUri = `http://idp.example.com/${CLIENT_SECRET}`;
    raw.proxy.auth.oauth.introspection = { clientId: `${CLIENT_SECRET}\n`, clientSecret: `${CLIENT_SECRET}\u0000`, endpoint: CLIENT_SECRET };
    raw.proxy.auth.oauth.scopes = [`${CLIENT_SECRET} x`];
    raw.proxy.auth.oauth.audiences = [`${CI_TOKEN} y`];
    raw.proxy.auth.oauth.algorithms = [CLIENT_SECRET];
    raw.proxy.publicUrl = `https://${CLIENT_SECRET}@mcp.example.com`;
    raw.mcpServers.database.requiredScopes = [`"${CI_TOKEN}"`];
    raw.mcpServers.database.authTokens = [CLIENT_SECRET];
    raw.proxy.limits = { [CLIENT_SECRET]: { maxSessions: 1 } };
    const found = problems(raw); // asserts that no secret appears
    expect(found.length).toBeGreaterThanOrEqual(11);
  });
});

describe('configFingerprint', () => {
  const variants: [string, (raw: Json) => void][] = [
    ['issuer', (r) => (r.proxy.auth.oauth.issuer += '/')],
    ['audiences', (r) => r.proxy.auth.oauth.audiences.push('other')],
    ['scopes', (r) => r.proxy.auth.oauth.scopes.push('other')],
    ['jwksUri', (r) => (r.proxy.auth.oauth.jwksUri = 'https://idp.example.com/certs')],
    ['algorithms', (r) => (r.proxy.auth.oauth.algorithms = ['RS256'])],
    ['introspection.clientId', (r) => (r.proxy.auth.oauth.introspection.clientId = 'other')],
    ['introspection.endpoint', (r) => (r.proxy.auth.oauth.introspection.endpoint = 'https://idp.example.com/introspect')],
    ['a principal claim', (r) => (r.proxy.auth.oauth.principals.staff.claims.email_verified = false)],
    ['a claim value kind', (r) => (r.proxy.auth.oauth.principals['db-admins'].claims.groups = 'db-admins*')],
    ['principal order', (r) => (r.proxy.auth.oauth.principals = { staff: r.proxy.auth.oauth.principals.staff, 'db-admins': r.proxy.auth.oauth.principals['db-admins'] })],
    ['publicUrl', (r) => (r.proxy.publicUrl = 'https://mcp.example.com/other')],
    ['requiredScopes', (r) => r.mcpServers.database.requiredScopes.push('more')],
  ];

  test.each(variants)('the canonical config changes with %s', (_, change) => {
    const raw = base();
    change(raw);
    expect(canonicalConfig(resolve(raw))).not.toBe(canonicalConfig(resolve(base())));
  });

  test('equal for the same settings; a changed client secret changes it, and it never holds the secret', async () => {
    const same = await configFingerprint(resolve(base()));
    expect(await configFingerprint(resolve(base()))).toBe(same);
    const changed = await configFingerprint(resolve(base(), { ...ENV, INTROSPECTION_SECRET: `${CLIENT_SECRET}-rotated` }));
    expect(changed).not.toBe(same);
    expect(same).toMatch(/^[0-9a-f]{32}$/);
  });
});
