// Property-based tests (fast-check) of the three places that take hostile input: the
// `Authorization` header (CONTRACT §5), the server name in the URL (§3, §4), and the
// configuration (§2, §3: only ConfigError, and never a secret in it). Run counts are fixed; on a
// failure fast-check prints the seed and the shrunk counterexample to replay it with.
import http from 'node:http';
import fc from 'fast-check';
import { parseAuthorization, TokenIndex } from '../lib/auth/bearer';
import { resolveConfig } from '../lib/config';
import { ConfigError } from '../lib/config/config-error';
import { captureLogger, configWith, DEV_TOKEN, PROD_TOKEN, startFront, startJsonRpcUpstream, type Front, type JsonRpcUpstream } from './helpers/servers';

const char = (min: number, max: number) => fc.integer({ min, max }).map((c) => String.fromCharCode(c));
/** What a token may contain: RFC 7230 visible ASCII. */
const visibleAscii = (maxLength = 64) => fc.string({ unit: char(0x21, 0x7e), minLength: 1, maxLength });
/** Any UTF-16 code unit, lone surrogates included. */
const anyUnits = (maxLength = 64) => fc.string({ unit: char(0, 0xffff), maxLength });
const controls = fc.constantFrom('\r', '\n', '\r\n', '\0', '\t', '\v', '\x7f', '\u0085', '\u2028', '\ufeff', ' ', '\u00a0');
/** encodeURIComponent, with lone surrogates (which it refuses) replaced as a URL parser would. */
const encode = (s: string) => encodeURIComponent(s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd'));
const schemeSpelling = fc.constantFrom('Bearer', 'bearer', 'BEARER', 'bEaReR', 'Basic', 'Bearer:', 'Bearer\t', 'Bear', 'Bearerx', 'ｂearer', '');

// ---------------------------------------------------------------------------------------------
// Authorization

describe('Authorization parsing (fuzz)', () => {
  const configured = new Map([
    ['dev', DEV_TOKEN],
    ['prod', PROD_TOKEN],
    ['short', 'x'],
    ['symbols', '!#$%&\'*+-.^_`|~=/"\\'],
  ]);
  const index = new TokenIndex(configured);
  const values = [...configured.values()];

  /** Close misses of the configured values: the cases a non-exact comparison would let through. */
  const nearMiss = fc
    .tuple(
      fc.constantFrom(...values),
      fc.constantFrom('prefix', 'suffix', 'truncate', 'case', 'replace', 'wrap', 'control'),
      visibleAscii(4),
      controls,
      fc.nat(),
    )
    .map(([v, how, extra, ctl, n]) => {
      const i = n % v.length;
      switch (how) {
        case 'prefix':
          return extra + v;
        case 'suffix':
          return v + extra;
        case 'truncate':
          return v.slice(0, i);
        case 'case':
          return v.toUpperCase() === v ? v.toLowerCase() : v.toUpperCase();
        case 'replace':
          return v.slice(0, i) + (v[i] === extra[0] ? String.fromCharCode(v.charCodeAt(i) ^ 1) : extra[0]) + v.slice(i + 1);
        case 'wrap':
          return `"${v}"`;
        default:
          return v.slice(0, i) + ctl + v.slice(i);
      }
    })
    .filter((v) => !values.includes(v));

  const tokenPart = fc.oneof(
    { arbitrary: fc.constantFrom(...values), weight: 3 },
    { arbitrary: nearMiss, weight: 4 },
    { arbitrary: visibleAscii(), weight: 2 },
    { arbitrary: anyUnits(), weight: 2 },
    { arbitrary: fc.string({ unit: 'grapheme', maxLength: 16 }), weight: 1 },
  );
  const separator = fc.oneof({ arbitrary: fc.constant(' '), weight: 6 }, { arbitrary: fc.constantFrom('', '  ', '\t', '\r\n ', '\0', '\u00a0', ','), weight: 1 });

  /** Megabyte values: never hashed, never slow. */
  const huge = fc
    .tuple(schemeSpelling, separator, fc.constantFrom('a', ' ', '\0', 'é', DEV_TOKEN), fc.integer({ min: 4_000, max: 1_100_000 }))
    .map(([scheme, sep, unit, length]) => `${scheme}${sep}${unit.repeat(Math.ceil(length / unit.length))}`);

  /** Node delivers header values as latin1 strings of the raw bytes. */
  const rawBytes = fc.uint8Array({ maxLength: 128 }).map((bytes) => Buffer.from(bytes).toString('latin1'));

  const header = fc.oneof(
    { arbitrary: fc.tuple(schemeSpelling, separator, tokenPart, fc.constantFrom('', '', '', ' ', '\r\n', '\0', ' x')).map((p) => p.join('')), weight: 10 },
    { arbitrary: anyUnits(200), weight: 3 },
    { arbitrary: rawBytes, weight: 2 },
    { arbitrary: fc.constant(undefined), weight: 1 },
    { arbitrary: huge, weight: 1 },
  );

  /** The documented grammar, written independently: `bearer` in any case, one space, visible ASCII up to 4096. */
  function oracle(h: string | undefined): { token: string } | { reason: string } {
    if (h === undefined || h === '') return { reason: 'missing_token' };
    const space = h.indexOf(' ');
    if ((space === -1 ? h : h.slice(0, space)).toLowerCase() !== 'bearer') return { reason: 'missing_token' };
    const token = space === -1 ? '' : h.slice(space + 1);
    return /^[\x21-\x7e]{1,4096}$/.test(token) ? { token } : { reason: 'malformed_header' };
  }

  it('parseAuthorization never throws and returns exactly one documented shape', () => {
    fc.assert(
      fc.property(header, (h) => {
        const parsed = parseAuthorization(h);
        expect(parsed).toEqual(oracle(h));
        expect(Object.keys(parsed)).toHaveLength(1);
        if ('reason' in parsed) expect(['missing_token', 'malformed_header']).toContain(parsed.reason);
      }),
      { numRuns: 2_000 },
    );
  });

  it('any visible-ASCII token after any spelling of "Bearer " is accepted as is', () => {
    const spelling = fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }).map((up) => [...'bearer'].map((c, i) => (up[i] ? c.toUpperCase() : c)).join(''));
    fc.assert(
      fc.property(spelling, visibleAscii(4096), (scheme, token) => {
        expect(parseAuthorization(`${scheme} ${token}`)).toEqual({ token });
      }),
      { numRuns: 500 },
    );
  });

  it('TokenIndex.authenticate: only the exact configured values authenticate, as their own name', () => {
    fc.assert(
      fc.property(header, (h) => {
        const result = index.authenticate(h);
        const expected = oracle(h);
        if ('reason' in expected) {
          expect(result).toEqual({ ok: false, reason: expected.reason });
          return;
        }
        const name = [...configured].find(([, v]) => v === expected.token)?.[0];
        expect(result).toEqual(name === undefined ? { ok: false, reason: 'invalid_token' } : { ok: true, token: name });
      }),
      { numRuns: 2_000 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Server-name routing over real HTTP

describe('server-name routing (fuzz, real HTTP)', () => {
  // `Tar.get-2` checks that dots, dashes and case are matched exactly.
  const NAMES = ['target', 'decoy', 'Tar.get-2'] as const;
  const upstreams = new Map<string, JsonRpcUpstream>();
  let front: Front;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

  beforeAll(async () => {
    for (const name of NAMES) upstreams.set(name, await startJsonRpcUpstream(`/upstream-of-${name}/mcp`));
    const servers = Object.fromEntries(NAMES.map((n) => [n, { url: upstreams.get(n)!.url }]));
    front = await startFront(configWith(servers), { logger: captureLogger() });
  });

  afterAll(async () => {
    agent.destroy();
    await front.close();
    for (const u of upstreams.values()) await u.close();
  });

  function send(method: string, path: string, token?: string): Promise<number> {
    const body = method === 'POST' ? JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }) : undefined;
    return new Promise((resolve, reject) => {
      const url = new URL(front.url);
      const req = http.request(
        {
          host: url.hostname,
          port: url.port,
          method,
          path, // raw: no client-side normalization or re-encoding
          agent,
          headers: {
            ...(token === undefined ? {} : { Authorization: `Bearer ${token}` }),
            ...(body === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }),
            Accept: 'application/json, text/event-stream',
          },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  const pct = (s: string) => [...Buffer.from(s, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
  const pctUpper = (s: string) => pct(s).toUpperCase();
  /** Percent-encodes anything outside visible ASCII, so every byte survives the client. */
  const wireSafe = (s: string) => s.replace(/[^\x21-\x7e]/gu, (c) => pct(c));

  /** One raw path segment: never `/`, `?` or `#` literally, so the router's route always matches. */
  const segment = fc
    .oneof(
      fc.constantFrom(...NAMES),
      fc.constantFrom(...NAMES).map((n) => n.toUpperCase()),
      fc.constantFrom(...NAMES).map((n) => pct(n)),
      fc.constantFrom(...NAMES).map((n) => pctUpper(n[0]) + n.slice(1)),
      fc.constantFrom(...NAMES).map((n) => pct(n).replace(/%/g, '%25')), // double-encoded
      fc.constantFrom('.', '..', '%2e', '%2e%2e', '%2E%2E', '.%2e', '%252e%252e', '%2f', '%2F', '%5c', '%00', '%', '%zz', '%e0%a4%a', 'health', 'HEALTH'),
      fc.tuple(fc.constantFrom(...NAMES), fc.constantFrom('%2f', '%2F', '%2f..%2f', '%00', '%20', '%0a', ';', '.', '%2e', '\\', '~', '%ef%bc%8f')).map(([n, x]) => n + x),
      fc.tuple(fc.constantFrom('..%2f', '%2e%2e%2f', '..%5c', '%2e%2e/'.replace('/', '%2f'), 'x%2f..%2f'), fc.constantFrom(...NAMES)).map(([x, n]) => x + n),
      fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }).map(wireSafe),
      fc.string({ unit: char(0x21, 0x7e), minLength: 1, maxLength: 12 }),
      fc.string({ unit: char(0x80, 0xffff), minLength: 1, maxLength: 6 }).map(encode),
    )
    .map((s) => s.replace(/[/?#]/g, (c) => pct(c)));

  /** What the router should route to: the decoded segment, if it is exactly a configured name. */
  function intended(seg: string): string | undefined {
    let decoded: string;
    try {
      decoded = decodeURIComponent(seg);
    } catch {
      return undefined;
    }
    return (NAMES as readonly string[]).includes(decoded) ? decoded : undefined;
  }

  function totalHits(): Map<string, number> {
    return new Map([...upstreams].map(([n, u]) => [n, u.requests.length]));
  }

  it('unauthenticated: always 401, nothing reaches any upstream', async () => {
    const before = totalHits();
    await fc.assert(
      fc.asyncProperty(
        segment,
        fc.constantFrom('sse', 'message', 'mcp', 'mcp/'),
        fc.constantFrom('GET', 'POST', 'DELETE', 'PUT'),
        fc.constantFrom(undefined, 'wrong', `${DEV_TOKEN}x`, DEV_TOKEN.toUpperCase()),
        async (seg, route, method, token) => {
          expect(await send(method, `/${seg}/${route}`, token)).toBe(401);
        },
      ),
      { numRuns: 150 },
    );
    expect(totalHits()).toEqual(before);
  });

  it('authenticated: only the exact configured name reaches its upstream; no 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(segment, async (seg) => {
        const before = totalHits();
        const status = await send('POST', `/${seg}/mcp`, DEV_TOKEN);
        const target = intended(seg);
        expect(status).toBeLessThan(500);
        expect(status).toBe(target === undefined ? 404 : 200);
        for (const [name, count] of totalHits()) {
          expect({ name, hits: count - before.get(name)! }).toEqual({ name, hits: name === target ? 1 : 0 });
        }
        if (target !== undefined) expect(upstreams.get(target)!.requests.at(-1)).toMatchObject({ method: 'POST', url: `/upstream-of-${target}/mcp` });
      }),
      { numRuns: 200 },
    );
  });

  it('arbitrary paths: never 5xx, never an upstream unless the route names a server exactly', async () => {
    const piece = fc.oneof(segment, fc.constantFrom('', '.', '..', 'mcp', 'sse', 'message', '?sessionId=x', '#', '//', '%2f'));
    await fc.assert(
      fc.asyncProperty(fc.array(piece, { minLength: 1, maxLength: 5 }), fc.constantFrom(undefined, DEV_TOKEN), async (pieces, token) => {
        const path = '/' + pieces.join('/');
        const before = totalHits();
        const status = await send('POST', path, token);
        const m = /^\/([^/?#]+)\/(mcp|sse|message)\/?(?:\?[^#]*)?(?:#.*)?$/.exec(path);
        const named = token !== undefined && m ? intended(m[1]) : undefined;
        // `/sse` takes GET only (405). `/message` is bridged to the Streamable HTTP upstream, but a
        // POST without a session it knows (400, 404) never reaches it.
        if (named !== undefined && m![2] === 'sse') expect(status).toBe(405);
        else expect(status).toBeLessThan(500);
        const target = m?.[2] === 'mcp' ? named : undefined;
        for (const [name, count] of totalHits()) expect({ name, hits: count - before.get(name)! }).toEqual({ name, hits: name === target ? 1 : 0 });
      }),
      { numRuns: 150 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Configuration

describe('config validation (fuzz)', () => {
  const MARK = 'Zq7SECRET';
  /** A distinctive secret; its body may hold anything, so leaks in escaped form are caught too. */
  const secret = fc
    .tuple(
      fc.oneof(visibleAscii(20), anyUnits(12), fc.tuple(visibleAscii(8), controls).map(([a, c]) => a + c), fc.string({ unit: 'grapheme', maxLength: 8 })),
      fc.nat(1e9),
    )
    .map(([body, n]) => `${MARK}${n}${body}`);

  const TOKEN_NAMES = ['dev', 'prod', 'ci', 'bad name', '', 'a'.repeat(3)];
  const ENV_NAMES = ['PROD_TOKEN', 'API_KEY', 'UNSET', 'EMPTY', 'X'];
  const SERVER_NAMES = ['database', 'api', 'fs', 'health', 'HEALTH', '..', 'bad name', 'x/y', ''];
  const HEADER_NAMES = ['X-API-Key', 'Authorization', 'Host', 'bad name', 'x-api-key', 'Content-Length', ''];

  /** A near-valid config that puts the given secrets wherever secrets go (and where they do not). */
  function configArb(secrets: string[]) {
    const s = fc.constantFrom(...secrets);
    const ref = fc.constantFrom(...ENV_NAMES).map(($env) => ({ $env }));
    const strOrEnv = fc.oneof({ arbitrary: s, weight: 4 }, { arbitrary: ref, weight: 2 }, fc.constantFrom('', 42, null, { env: 'X' }, { $env: '' }, { $env: 'X', extra: 1 }));
    const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined, freq: 2 });
    const duration = fc.constantFrom('30s', '1m', 0, -1, '0s', 'soon', 1.5, '600h', 250);

    const server = fc.record(
      {
        url: fc.oneof(fc.constantFrom('http://up.test/mcp', 'https://up.test/sse', 'ftp://x', 'not a url'), strOrEnv, s.map((v) => `http://user:${encode(v)}@up.test/mcp?key=${encode(v)}`)),
        command: fc.oneof(fc.constantFrom('node', ''), strOrEnv),
        args: fc.array(fc.oneof(strOrEnv, s.map((v) => `--api-key=${v}`), s.map((v) => `${v}\0`)), { maxLength: 3 }),
        env: fc.dictionary(fc.constantFrom('DEBUG', 'API_KEY', 'A=B', '', 'NUL\0'), fc.oneof(strOrEnv, s.map((v) => `${v}\0`)), { maxKeys: 3 }),
        cwd: strOrEnv,
        headers: fc.dictionary(fc.constantFrom(...HEADER_NAMES), fc.oneof(strOrEnv, s.map((v) => `${v}\r\nX-Injected: 1`)), { maxKeys: 3 }),
        transportType: fc.constantFrom('stdio', 'sse', 'streamable-http', 'http'),
        // Secrets pasted where token names belong: a realistic mistake that must not be quoted.
        authTokens: fc.array(fc.oneof(fc.constantFrom(...TOKEN_NAMES, 'stagng'), s), { maxLength: 3 }),
        timeout: duration,
        idleTimeout: duration,
        maxSessions: fc.constantFrom(1, 0, 2.5, '3'),
        permissions: fc.dictionary(
          fc.oneof(fc.constantFrom(...TOKEN_NAMES, '*', 'stagng'), s),
          fc.record({ tools: fc.array(fc.oneof(fc.constantFrom('query', 'list_*', '*', ''), s), { maxLength: 2 }), prompts: fc.constantFrom([], 'x', [1]), resource: fc.constant([]) }, { requiredKeys: [] }),
          { maxKeys: 2 },
        ),
        authToken: fc.constant(['dev']),
        requiredScopes: fc.array(fc.oneof(fc.constantFrom('mcp:db', '', 'a b', 'x"y'), s), { maxLength: 2 }),
      },
      { requiredKeys: [] },
    );

    // Members name servers, aggregates, near misses, or a pasted secret; prefixes break each rule.
    const member = fc.oneof(fc.constantFrom(...SERVER_NAMES, 'all', 'ops', 'Database', 'wiki'), s);
    const prefix = fc.oneof(fc.constantFrom('gh', 'g', 'gh-x', 'GH', 'gh_x', '', 'a'.repeat(17), 1), s);
    const aggregate = fc.record(
      {
        servers: fc.oneof(
          fc.array(fc.oneof(member, fc.constantFrom('', 5, null)), { maxLength: 4 }),
          fc.dictionary(member, fc.oneof(fc.record({ prefix, prefx: fc.constant('x') }, { requiredKeys: [] }), fc.constantFrom(true, null, 'gh')), { maxKeys: 3 }),
          fc.constantFrom('database', null),
        ),
        authTokens: fc.array(fc.oneof(fc.constantFrom(...TOKEN_NAMES, 'stagng'), s), { maxLength: 3 }),
        separator: fc.constantFrom('__', '-', '--', '_', '.', ''),
        onUnavailable: fc.constantFrom('omit', 'fail', 'retry'),
        members: fc.constant(['database']),
      },
      { requiredKeys: [] },
    );

    const url = fc.oneof(
      fc.constantFrom('https://idp.test/realms/a', 'https://idp.test/', 'http://idp.test', 'http://127.0.0.1:4000', 'https://idp.test/?q=1', 'https://idp.test/#f', 'not a url', ''),
      strOrEnv,
      s.map((v) => `https://user:${encode(v)}@idp.test/?k=${encode(v)}`),
      s.map((v) => `http://idp.test/${encode(v)}`),
    );
    const claimValue = fc.oneof(fc.constantFrom('db-admins', '*@acme.test', '', 1, true, null, {}), s);
    const oauth = fc.record(
      {
        issuer: url,
        audiences: fc.array(fc.oneof(fc.constantFrom('mcp-front', '', 'a b'), s), { maxLength: 2 }),
        scopes: fc.array(fc.oneof(fc.constantFrom('mcp:tools', '', 'a b', 'x\\y'), s), { maxLength: 2 }),
        jwksUri: url,
        algorithms: fc.array(fc.oneof(fc.constantFrom('RS256', 'ES256', 'none', 'HS256', 'rs256'), s), { maxLength: 2 }),
        introspection: fc.record({ clientId: strOrEnv, clientSecret: fc.oneof(strOrEnv, s.map((v) => `${v}\n`)), endpoint: url, client_secret: s }, { requiredKeys: [] }),
        principals: fc.dictionary(
          fc.constantFrom(...TOKEN_NAMES, 'db-admins', 'staff', '*'),
          fc.record({ claims: fc.dictionary(fc.constantFrom('groups', 'email', 'realm_access.roles', ''), fc.oneof(claimValue, fc.array(claimValue, { maxLength: 2 })), { maxKeys: 2 }), claim: fc.constant({}) }, { requiredKeys: [] }),
          { maxKeys: 3 },
        ),
        issuers: fc.constant([]),
      },
      { requiredKeys: [] },
    );

    return fc.record(
      {
        version: maybe(fc.constantFrom('1.0', '1', '2.0', 1)),
        proxy: fc.record(
          {
            name: maybe(fc.constantFrom('Dev Proxy', '', 'say "hi"')),
            addr: maybe(fc.constantFrom(':8080', 'nope')),
            auth: fc.record(
              {
                kind: fc.constantFrom('bearer_token', 'bearer_token', 'oauth'),
                tokens: fc.dictionary(fc.constantFrom(...TOKEN_NAMES), strOrEnv, { maxKeys: 4 }),
                oauth,
              },
              { requiredKeys: [] },
            ),
            publicUrl: maybe(url),
            maxBodyBytes: maybe(fc.constantFrom(1024, 0, '10')),
            keepAlive: maybe(duration),
            cors: maybe(fc.record({ allowedOrigins: fc.array(fc.constantFrom('*', 'https://app.test', 'not an origin'), { maxLength: 2 }) })),
            authThrottle: maybe(fc.record({ maxFailures: fc.constantFrom(10, 0, 1.5, '3'), window: duration }, { requiredKeys: [] })),
            limits: maybe(
              fc.dictionary(
                fc.oneof(fc.constantFrom(...TOKEN_NAMES, '*'), s),
                fc.record({ requests: fc.record({ max: fc.constantFrom(10, 0, 1.5, '3'), window: duration }, { requiredKeys: [] }), maxSessions: fc.constantFrom(1, 0, 2.5, '3'), maxSession: fc.constant(1) }, { requiredKeys: [] }),
                { maxKeys: 2 },
              ),
            ),
            audit: maybe(fc.constantFrom(true, false, 'no')),
            metrics: maybe(fc.record({ authTokens: fc.array(fc.constantFrom(...TOKEN_NAMES, 'nope'), { maxLength: 2 }) }, { requiredKeys: [] })),
          },
          { requiredKeys: ['auth'] },
        ),
        mcpServers: fc.dictionary(fc.constantFrom(...SERVER_NAMES), server, { maxKeys: 3 }),
        aggregates: maybe(fc.dictionary(fc.constantFrom(...SERVER_NAMES, 'all', 'ops'), aggregate, { maxKeys: 3 })),
      },
      { requiredKeys: ['proxy', 'mcpServers'] },
    );
  }

  const envArb = (secrets: string[]) =>
    fc.dictionary(fc.constantFrom(...ENV_NAMES), fc.oneof(fc.constantFrom(...secrets), fc.constantFrom(...secrets).map((v) => `${v}\n`), fc.constant('')), { maxKeys: 5 });

  /**
   * Every string value of the document outside `authTokens`, outside principals' `claims` (group
   * names and the like, not secrets) and outside aggregates' `servers` (server names and
   * prefixes), and of the environment.
   */
  function valuesOf(raw: unknown, env: Record<string, string>): string[] {
    const out = Object.values(env);
    const claims = new Set([...principalClaims(raw), ...aggregateMembers(raw)]);
    const pending: [unknown, string | undefined][] = [[raw, undefined]];
    for (let item = pending.pop(); item !== undefined; item = pending.pop()) {
      const [node, key] = item;
      if (typeof node === 'string') out.push(node);
      else if (Array.isArray(node)) {
        if (key !== 'authTokens' && !claims.has(node)) for (const n of node) pending.push([n, undefined]);
      } else if (typeof node === 'object' && node !== null && !claims.has(node)) for (const [k, v] of Object.entries(node)) pending.push([v, k]);
    }
    return out;
  }

  function principalClaims(raw: unknown): unknown[] {
    const principals: unknown = (raw as { proxy?: { auth?: { oauth?: { principals?: unknown } } } } | null)?.proxy?.auth?.oauth?.principals;
    if (typeof principals !== 'object' || principals === null) return [];
    return Object.values(principals).map((p) => (p as { claims?: unknown } | null)?.claims);
  }

  function aggregateMembers(raw: unknown): unknown[] {
    const aggregates: unknown = (raw as { aggregates?: unknown } | null)?.aggregates;
    if (typeof aggregates !== 'object' || aggregates === null) return [];
    return Object.values(aggregates).map((a) => (a as { servers?: unknown } | null)?.servers);
  }

  const leaks = (text: string, v: string) => [v, JSON.stringify(v).slice(1, -1), encode(v)].some((form) => text.includes(form));

  /**
   * Runs resolveConfig; anything thrown must be a ConfigError whose text holds no secret: no
   * secret that sits in a value of the config or the environment, and no string pasted into
   * `authTokens` or an aggregate's `servers` that cannot be a name (unknown names that can be are
   * quoted on purpose, to show the typo).
   */
  function check(raw: unknown, env: Record<string, string>, secrets: string[]): void {
    let thrown: unknown;
    try {
      resolveConfig(raw, env);
      return;
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    const err = thrown as ConfigError;
    expect(err.problems.length).toBeGreaterThan(0);
    for (const p of err.problems) expect(p).toEqual({ path: expect.any(String), message: expect.any(String) });
    const text = `${err.message}\n${err.stack ?? ''}\n${JSON.stringify(err.problems)}`;
    const values = valuesOf(raw, env);
    for (const v of secrets) {
      const mustHide = values.some((value) => value.includes(v)) || !/^[A-Za-z0-9._-]{1,32}$/.test(v);
      if (mustHide && leaks(text, v)) throw new Error(`secret leaked into ConfigError: ${JSON.stringify(v)}\n${err.message}`);
    }
  }

  it('arbitrary JSON and JS values: returns or throws ConfigError', () => {
    const value = fc.oneof(
      fc.jsonValue({ maxDepth: 4 }),
      fc.anything({ maxDepth: 3, withNullPrototype: true, withBigInt: true, withDate: true, withMap: true, withSet: true, withTypedArray: true, withSparseArray: true, withBoxedValues: true }),
      // Arbitrary values dropped at every level of an otherwise valid document.
      fc.jsonValue({ maxDepth: 2 }).chain((v) =>
        fc.constantFrom(
          { proxy: v, mcpServers: {} },
          { proxy: { auth: v }, mcpServers: {} },
          { proxy: { auth: { kind: 'bearer_token', oauth: v }, publicUrl: v }, mcpServers: {} },
          { proxy: { auth: { kind: 'bearer_token', oauth: { issuer: v, principals: v, introspection: v } } }, mcpServers: {} },
          { proxy: { auth: { kind: 'bearer_token', oauth: { issuer: 'https://i.test', principals: { p: v, q: { claims: v } } } } }, mcpServers: { s: { url: v, requiredScopes: v } } },
          { proxy: { auth: { kind: 'bearer_token', tokens: v } }, mcpServers: {} },
          { proxy: { auth: { kind: 'bearer_token', tokens: { dev: 'abc' } }, authThrottle: v }, mcpServers: {} },
          { proxy: { auth: { kind: 'bearer_token', tokens: { dev: 'abc' } } }, mcpServers: v },
          { proxy: { auth: { kind: 'bearer_token', tokens: { dev: 'abc' } } }, mcpServers: { s: v } },
          { proxy: { auth: { kind: 'bearer_token', tokens: { dev: 'abc' } } }, mcpServers: { s: { url: v, headers: v } } },
          { proxy: { auth: { kind: 'bearer_token', tokens: { dev: 'abc' } } }, mcpServers: { s: { command: 'x', args: v, env: v, authTokens: v } } },
          { proxy: { auth: { kind: 'bearer_token', tokens: { dev: 'abc' } } }, mcpServers: { s: { command: 'x' } }, aggregates: v },
          { proxy: { auth: { kind: 'bearer_token', tokens: { dev: 'abc' } } }, mcpServers: { s: { command: 'x' } }, aggregates: { a: v, b: { servers: v, authTokens: v } } },
          { proxy: { auth: { kind: 'bearer_token', tokens: { dev: 'abc' } } }, mcpServers: { s: { command: 'x' } }, aggregates: { a: { servers: { s: v }, separator: v, onUnavailable: v } } },
        ),
      ),
    );
    fc.assert(
      fc.property(value, fc.dictionary(fc.string(), fc.string()), (raw, env) => check(raw, env, [])),
      { numRuns: 1_000 },
    );
  });

  it('deeply nested values: ConfigError, not a stack overflow', () => {
    const nest = (depth: number, array: boolean): unknown => {
      let v: unknown = 'leaf';
      for (let i = 0; i < depth; i++) v = array ? [v] : { k: v };
      return v;
    };
    const tokens = { dev: 'abc' };
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 30_000 }), fc.boolean(), fc.nat(6), (depth, array, where) => {
        const v = nest(depth, array);
        const raw = [
          { proxy: { auth: { kind: 'bearer_token', tokens } }, mcpServers: {}, extra: v },
          { proxy: { auth: { kind: 'bearer_token', tokens }, cors: { allowedOrigins: v } }, mcpServers: {} },
          { proxy: { auth: { kind: 'bearer_token', tokens: { dev: v } } }, mcpServers: {} },
          { proxy: { auth: { kind: 'bearer_token', tokens } }, mcpServers: { s: { command: 'x', env: { A: v }, authTokens: ['nope'] } } },
          { proxy: { auth: { kind: 'bearer_token', tokens } }, mcpServers: { s: { command: 'x', args: v, authTokens: [v] } } },
          { proxy: { auth: { kind: 'bearer_token', oauth: { issuer: 'https://i.test', principals: { p: { claims: { c: v } } }, scopes: v } } }, mcpServers: {} },
          v,
        ][where];
        check(raw, {}, []);
      }),
      { numRuns: 40 },
    );
  });

  it('near-valid configs with injected secrets: returns or throws ConfigError that never holds a secret', () => {
    const secrets = fc.uniqueArray(secret, { minLength: 1, maxLength: 5 });
    const scenario = secrets.chain((ss) => fc.tuple(fc.constant(ss), configArb(ss), envArb(ss)));
    fc.assert(
      fc.property(scenario, ([ss, raw, env]) => check(raw, env, ss)),
      { numRuns: 1_500 },
    );
  });
});
