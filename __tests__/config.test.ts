// CONTRACT §2 (ConfigError, loadConfig) and §3 (the configuration format).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULTS, loadConfig, parseDuration, resolveConfig } from '../lib/config';
import type { RemoteServer, ResolvedConfig, StdioServer } from '../lib/config';
import { ConfigError } from '../lib/config/config-error';
import type { ConfigProblem } from '../lib/types';

// Distinctive values: if any of them shows up in an error, a secret leaked.
const DEV_TOKEN = 'S3CRET-dev-token-a1b2c3';
const PROD_TOKEN = 'S3CRET-prod-token-d4e5f6';
const API_KEY = 'S3CRET-api-key-g7h8i9';
const SECRETS = [DEV_TOKEN, PROD_TOKEN, API_KEY];
const ENV = { PROD_TOKEN, API_KEY };

// Tests build and break configs freely; the public types would get in the way.
type Json = any;

/** A small valid config; each test changes what it is about. */
function base(): Json {
  return {
    proxy: { auth: { kind: 'bearer_token', tokens: { dev: DEV_TOKEN, prod: { $env: 'PROD_TOKEN' } } } },
    mcpServers: {
      remote: { url: 'http://upstream.test:3000/mcp' },
      local: { command: 'node', args: ['server.js'] },
    },
  };
}

function failure(raw: unknown, env: Record<string, string | undefined> = ENV): ConfigError {
  try {
    resolveConfig(raw, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected resolveConfig to throw ConfigError');
}

function problems(raw: unknown, env?: Record<string, string | undefined>): ConfigProblem[] {
  return failure(raw, env).problems;
}

/** Asserts exactly one problem, at `path`, whose message contains `message` (or matches it). */
function expectOnly(raw: unknown, path: string, message: RegExp | string, env?: Record<string, string | undefined>): void {
  const ps = problems(raw, env);
  const m = typeof message === 'string' ? expect.stringContaining(message) : expect.stringMatching(message);
  expect(ps).toEqual([{ path, message: m }]);
}

function expectNoSecret(err: ConfigError, secrets: string[] = SECRETS): void {
  const text = `${err.message}\n${JSON.stringify(err.problems)}`;
  for (const s of secrets) expect(text).not.toContain(s);
}

function remote(c: ResolvedConfig, name: string): RemoteServer {
  const s = c.servers.get(name);
  if (s?.kind !== 'remote') throw new Error(`${name} is not a remote server`);
  return s;
}

function stdio(c: ResolvedConfig, name: string): StdioServer {
  const s = c.servers.get(name);
  if (s?.kind !== 'stdio') throw new Error(`${name} is not a stdio server`);
  return s;
}

describe('the CONTRACT §3 example', () => {
  const EXAMPLE = `{
  "version": "1.0",
  "proxy": {
    "name": "Dev Proxy",
    "addr": ":8080",
    "auth": {
      "kind": "bearer_token",
      "tokens": { "dev": "dev-token-123", "prod": { "$env": "PROD_TOKEN" } }
    }
  },
  "mcpServers": {
    "database":   { "url": "http://postgres-mcp:3000/sse", "authTokens": ["dev", "prod"] },
    "api":        { "url": "http://api-mcp:8080/mcp", "headers": { "X-API-Key": { "$env": "API_KEY" } } },
    "filesystem": { "command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/data"],
                    "env": { "DEBUG": "1" }, "authTokens": ["dev"] }
  }
}`;

  test('is valid given PROD_TOKEN and API_KEY, and resolves as documented', () => {
    const c = resolveConfig(JSON.parse(EXAMPLE), ENV);
    expect(c.name).toBe('Dev Proxy');
    expect(c.addr).toBe(':8080');
    expect([...c.tokens]).toEqual([
      ['dev', 'dev-token-123'],
      ['prod', PROD_TOKEN],
    ]);
    expect([...c.literalTokens]).toEqual(['dev']);
    expect([...c.servers.keys()]).toEqual(['database', 'api', 'filesystem']);

    const database = remote(c, 'database');
    expect(database.transport).toBe('sse');
    expect(database.url).toBeInstanceOf(URL);
    expect(database.url.href).toBe('http://postgres-mcp:3000/sse');
    expect([...database.authTokens]).toEqual(['dev', 'prod']);

    const api = remote(c, 'api');
    expect(api.transport).toBe('streamable-http');
    expect(api.headers).toEqual({ 'X-API-Key': API_KEY });
    expect([...api.authTokens]).toEqual(['dev', 'prod']);

    const fs = stdio(c, 'filesystem');
    expect(fs.transport).toBe('stdio');
    expect(fs.command).toBe('npx');
    expect(fs.args).toEqual(['-y', '@modelcontextprotocol/server-filesystem', '/data']);
    expect(fs.env).toEqual({ DEBUG: '1' });
    expect([...fs.authTokens]).toEqual(['dev']);
  });

  test('without its environment names both variables and their paths', () => {
    const err = failure(JSON.parse(EXAMPLE), {});
    expect(err.problems).toEqual([
      { path: 'proxy.auth.tokens.prod', message: 'environment variable PROD_TOKEN is not set' },
      { path: 'mcpServers.api.headers.X-API-Key', message: 'environment variable API_KEY is not set' },
    ]);
  });
});

describe('ConfigError', () => {
  test('collects every problem at once, and the message lists each path', () => {
    const raw = base();
    raw.proxy.auth.tokens.dev = '';
    raw.mcpServers.remote.authToken = ['dev'];
    raw.mcpServers.local.timeout = 'soon';
    raw.mcpServers.broken = {};
    raw.mcpServers['my server'] = { url: 'http://x.test/mcp', authTokens: ['dev', 'stagng'] };
    const err = failure(raw);
    const paths = err.problems.map((p) => p.path);
    expect(paths).toEqual([
      'proxy.auth.tokens.dev',
      'mcpServers.remote.authToken',
      'mcpServers.local.timeout',
      'mcpServers.broken',
      'mcpServers["my server"]',
      'mcpServers["my server"].authTokens[1]',
    ]);
    expect(err.message).toMatch(/^invalid mcp-front configuration \(6 problems\):/);
    for (const p of err.problems) expect(err.message).toContain(`${p.path}: ${p.message}`);
  });

  test('problems are listed in document order, schema and semantic ones interleaved', () => {
    const raw = base();
    raw.version = '9';
    raw.mcpServers.local.maxSessions = 0; // schema
    raw.mcpServers.remote.url = 'ftp://x'; // semantic
    raw.proxy.keepAlive = true; // schema
    const paths = problems(raw).map((p) => p.path);
    expect(paths).toEqual(['proxy.keepAlive', 'mcpServers.remote.url', 'mcpServers.local.maxSessions', 'version']);
  });

  test('a non-object config is one problem at the root', () => {
    for (const raw of [null, [], 'config', 42]) {
      const err = failure(raw);
      expect(err.problems).toEqual([{ path: '', message: 'must be an object' }]);
      expect(err.message).toContain('(root): must be an object');
    }
  });

  test('an empty object reports both required sections', () => {
    expect(problems({})).toEqual([
      { path: 'proxy', message: 'is required' },
      { path: 'mcpServers', message: expect.stringContaining('is required') },
    ]);
  });
});

describe('paths', () => {
  test('array indices in brackets, identifier-like keys dotted, other keys quoted', () => {
    const raw = base();
    raw.mcpServers['a.b'] = { url: 'http://x.test/mcp', authTokens: ['dev', 'nope'], headers: { 'X-API-Key': 7 } };
    raw.mcpServers['1st'] = { command: 'x', args: ['ok', { $env: 'MISSING' }] };
    const ps = problems(raw);
    expect(ps.map((p) => p.path)).toEqual([
      'mcpServers["a.b"].authTokens[1]',
      'mcpServers["a.b"].headers.X-API-Key',
      'mcpServers["1st"].args[1]',
    ]);
  });

  test('an object key that looks like a number is still a key', () => {
    const raw = base();
    raw.mcpServers.remote.headers = { '0': 'x\ny' };
    expectOnly(raw, 'mcpServers.remote.headers["0"]', /CR, LF/);
  });
});

describe('unknown keys', () => {
  test.each([
    [(r: Json) => (r.servers = {}), 'servers', 'unknown key "servers"; did you mean "mcpServers"?'],
    [(r: Json) => (r.proxy.nmae = 'x'), 'proxy.nmae', 'unknown key "nmae"; did you mean "name"?'],
    [(r: Json) => (r.proxy.auth.token = {}), 'proxy.auth.token', 'unknown key "token"; did you mean "tokens"?'],
    [(r: Json) => (r.proxy.cors = { allowedOrigins: [], allowOrigins: [] }), 'proxy.cors.allowOrigins', 'did you mean "allowedOrigins"?'],
    [(r: Json) => (r.mcpServers.remote.authToken = ['dev']), 'mcpServers.remote.authToken', 'unknown key "authToken"; did you mean "authTokens"?'],
    [(r: Json) => (r.mcpServers.remote.type = 'sse'), 'mcpServers.remote.type', 'did you mean "transportType"?'],
    [(r: Json) => (r.mcpServers.local.Args = []), 'mcpServers.local.Args', 'did you mean "args"?'],
  ])('%#: %s', (mutate, path, message) => {
    const raw = base();
    mutate(raw);
    expectOnly(raw, path as string, message as string);
  });

  test('no suggestion when nothing is close', () => {
    const raw = base();
    raw.mcpServers.remote.zzzzzz = 1;
    expectOnly(raw, 'mcpServers.remote.zzzzzz', /^unknown key "zzzzzz"$/);
  });

  test('a misspelled {"$env"} reference', () => {
    const raw = base();
    raw.proxy.auth.tokens.prod = { env: 'PROD_TOKEN' };
    expect(problems(raw)).toEqual([
      { path: 'proxy.auth.tokens.prod', message: 'must be a string or {"$env": "NAME"}' },
      { path: 'proxy.auth.tokens.prod.env', message: expect.stringContaining('did you mean "$env"?') },
    ]);
  });

  test('a {"$env"} reference with other keys', () => {
    const raw = base();
    raw.proxy.auth.tokens.prod = { $env: 'PROD_TOKEN', default: DEV_TOKEN + 'x' };
    expectOnly(raw, 'proxy.auth.tokens.prod.default', /^unknown key "default": an environment reference is just/);
  });
});

describe('$env', () => {
  const env = {
    TOKEN: PROD_TOKEN,
    URL: 'https://upstream.test/base/sse',
    CMD: '/usr/bin/node',
    ARG: '--flag',
    VAL: 'v',
    DIR: '/srv',
    KEY: API_KEY,
    EMPTY: '',
  };

  test('resolves in every place a string value is allowed', () => {
    const c = resolveConfig(
      {
        proxy: { auth: { kind: 'bearer_token', tokens: { t: { $env: 'TOKEN' } } } },
        mcpServers: {
          r: { url: { $env: 'URL' }, headers: { 'X-Key': { $env: 'KEY' } } },
          s: { command: { $env: 'CMD' }, args: ['a', { $env: 'ARG' }], env: { X: { $env: 'VAL' } }, cwd: { $env: 'DIR' } },
        },
      },
      env,
    );
    expect(c.tokens.get('t')).toBe(PROD_TOKEN);
    expect(c.literalTokens.size).toBe(0);
    const r = remote(c, 'r');
    expect(r.url.href).toBe('https://upstream.test/base/sse');
    expect(r.transport).toBe('sse'); // inferred after resolution
    expect(r.headers).toEqual({ 'X-Key': API_KEY });
    const s = stdio(c, 's');
    expect(s).toMatchObject({ command: '/usr/bin/node', args: ['a', '--flag'], env: { X: 'v' }, cwd: '/srv' });
  });

  test('an unset variable is an error naming it and the path, wherever it is', () => {
    const err = failure(
      {
        proxy: { auth: { kind: 'bearer_token', tokens: { t: { $env: 'U1' } } } },
        mcpServers: {
          r: { url: { $env: 'U2' }, headers: { 'X-Key': { $env: 'U3' } } },
          s: { command: { $env: 'U4' }, args: [{ $env: 'U5' }], env: { X: { $env: 'U6' } }, cwd: { $env: 'U7' } },
        },
      },
      env,
    );
    expect(err.problems).toEqual([
      { path: 'proxy.auth.tokens.t', message: 'environment variable U1 is not set' },
      { path: 'mcpServers.r.url', message: 'environment variable U2 is not set' },
      { path: 'mcpServers.r.headers.X-Key', message: 'environment variable U3 is not set' },
      { path: 'mcpServers.s.command', message: 'environment variable U4 is not set' },
      { path: 'mcpServers.s.args[0]', message: 'environment variable U5 is not set' },
      { path: 'mcpServers.s.env.X', message: 'environment variable U6 is not set' },
      { path: 'mcpServers.s.cwd', message: 'environment variable U7 is not set' },
    ]);
  });

  test('empty is an error where a secret is expected (tokens, headers), fine elsewhere', () => {
    const raw = base();
    raw.proxy.auth.tokens.prod = { $env: 'EMPTY' };
    raw.mcpServers.remote.headers = { 'X-Key': { $env: 'EMPTY' } };
    raw.mcpServers.local.args = [{ $env: 'EMPTY' }];
    raw.mcpServers.local.env = { X: { $env: 'EMPTY' } };
    expect(problems(raw, env)).toEqual([
      { path: 'proxy.auth.tokens.prod', message: 'environment variable EMPTY is empty' },
      { path: 'mcpServers.remote.headers.X-Key', message: 'environment variable EMPTY is empty' },
    ]);
    raw.proxy.auth.tokens.prod = 'fine';
    delete raw.mcpServers.remote.headers;
    const c = resolveConfig(raw, env);
    expect(stdio(c, 'local')).toMatchObject({ args: [''], env: { X: '' } });
  });

  test('the variable name must be a non-empty string', () => {
    const raw = base();
    raw.proxy.auth.tokens.prod = { $env: '' };
    raw.mcpServers.remote.url = { $env: 3 };
    expect(problems(raw)).toEqual([
      { path: 'proxy.auth.tokens.prod.$env', message: 'must be the name of an environment variable' },
      { path: 'mcpServers.remote.url.$env', message: expect.stringMatching(/must be a string/) },
    ]);
  });

  test('only own variables count, not Object.prototype members', () => {
    const raw = base();
    raw.proxy.auth.tokens.prod = { $env: 'constructor' };
    expectOnly(raw, 'proxy.auth.tokens.prod', 'environment variable constructor is not set', {});
  });

  test('looks variables up in the env argument, not process.env', () => {
    process.env.MCP_FRONT_TEST_ONLY_IN_PROCESS = 'x';
    try {
      const raw = base();
      raw.proxy.auth.tokens.prod = { $env: 'MCP_FRONT_TEST_ONLY_IN_PROCESS' };
      expectOnly(raw, 'proxy.auth.tokens.prod', /MCP_FRONT_TEST_ONLY_IN_PROCESS is not set/, {});
    } finally {
      delete process.env.MCP_FRONT_TEST_ONLY_IN_PROCESS;
    }
  });

  test('a string or {"$env"} and nothing else', () => {
    const raw = base();
    raw.proxy.auth.tokens.dev = 12345;
    raw.mcpServers.local.args = ['ok', null, ['nested']];
    expect(problems(raw)).toEqual([
      { path: 'proxy.auth.tokens.dev', message: 'must be a string or {"$env": "NAME"}' },
      { path: 'mcpServers.local.args[1]', message: 'must be a string or {"$env": "NAME"}' },
      { path: 'mcpServers.local.args[2]', message: 'must be a string or {"$env": "NAME"}' },
    ]);
  });
});

describe('secrets never appear in errors', () => {
  test('bad token values, header values, env values and pasted tokens', () => {
    const leakyEnv = {
      PROD_TOKEN: `${PROD_TOKEN}\n`,
      API_KEY: `${API_KEY}\r\nX-Injected: 1`,
      BAD_URL: `not a url ${API_KEY}`,
    };
    const raw = {
      version: '1.0',
      proxy: {
        auth: {
          kind: 'bearer_token',
          tokens: { dev: `${DEV_TOKEN} with spaces`, prod: { $env: 'PROD_TOKEN' }, ok: 'S3CRET-ok-value', twin: 'S3CRET-ok-value' },
        },
      },
      mcpServers: {
        api: { url: { $env: 'BAD_URL' }, headers: { 'X-API-Key': { $env: 'API_KEY' }, 'X-Other': `${DEV_TOKEN}\n` } },
        db: { url: `ftp://user:${PROD_TOKEN}@db.test`, authTokens: ['S3CRET-ok-value'] },
        fs: { command: 'x', env: { SECRET: { $env: 'API_KEY' } }, args: [{ $env: 'API_KEY' }], cwd: 5 },
      },
    };
    const err = failure(raw, leakyEnv);
    expect(err.problems.map((p) => p.path)).toEqual([
      'proxy.auth.tokens.dev',
      'proxy.auth.tokens.prod',
      'mcpServers.api.url',
      'mcpServers.api.headers.X-API-Key',
      'mcpServers.api.headers.X-Other',
      'mcpServers.db.url',
      'mcpServers.db.authTokens[0]',
      'mcpServers.fs.cwd',
    ]);
    expect(err.problems[1].message).toMatch(/environment variable PROD_TOKEN contains .* \(a trailing newline\?\)/);
    expect(err.problems[2].message).toBe('must be an absolute http:// or https:// URL (value of environment variable BAD_URL)');
    expect(err.problems[6].message).toMatch(/is a token value, not a token name/);
    expectNoSecret(err, [...SECRETS, 'S3CRET-ok-value', 'S3CRET']);
  });

  test('a bad version or origin is quoted, because it is not a secret', () => {
    const raw = base();
    raw.version = '2.0';
    raw.proxy.cors = { allowedOrigins: ['https://app.test/path'] };
    expect(problems(raw)).toEqual([
      { path: 'proxy.cors.allowedOrigins[0]', message: expect.stringContaining('"https://app.test/path" is not an origin') },
      { path: 'version', message: expect.stringContaining('unsupported version "2.0"') },
    ]);
  });
});

describe('defaults', () => {
  test('omitted fields take the documented defaults', () => {
    const c = resolveConfig(base(), ENV);
    expect(c).toMatchObject({
      name: 'mcp-front',
      addr: ':8080',
      maxBodyBytes: 10 * 1024 * 1024,
      maxEventBytes: 64 * 1024 * 1024,
      maxBatch: 1000,
      keepAliveMs: 15_000,
      allowedOrigins: undefined,
    });
    expect(DEFAULTS).toEqual({
      name: 'mcp-front',
      addr: ':8080',
      maxBodyBytes: 10485760,
      maxEventBytes: 67108864,
      maxBatch: 1000,
      keepAliveMs: 15000,
      timeoutMs: 60000,
      idleTimeoutMs: 1800000,
      maxSessions: 100,
      drainTimeoutMs: 30000,
      keyPrefix: 'mcp-front:',
      audit: true,
    });
    const r = remote(c, 'remote');
    expect(r).toMatchObject({ timeoutMs: 60_000, headers: {}, transport: 'streamable-http' });
    expect([...r.authTokens]).toEqual(['dev', 'prod']);
    const s = stdio(c, 'local');
    expect(s).toMatchObject({ timeoutMs: 60_000, idleTimeoutMs: 30 * 60_000, maxSessions: 100, env: {}, args: ['server.js'] });
    expect('cwd' in s).toBe(false);
    expect(stdio(resolveConfig({ ...base(), mcpServers: { s: { command: 'x' } } }, ENV), 's').args).toEqual([]);
  });

  test('explicitly undefined fields are the same as omitted ones', () => {
    const raw = base();
    Object.assign(raw.proxy, { name: undefined, addr: undefined, maxBodyBytes: undefined, maxEventBytes: undefined, keepAlive: undefined, cors: undefined });
    Object.assign(raw.mcpServers.local, { timeout: undefined, idleTimeout: undefined, maxSessions: undefined, env: undefined });
    const c = resolveConfig(raw, ENV);
    expect(c).toMatchObject({
      name: 'mcp-front',
      addr: ':8080',
      maxBodyBytes: DEFAULTS.maxBodyBytes,
      maxEventBytes: DEFAULTS.maxEventBytes,
      allowedOrigins: undefined,
    });
    expect(stdio(c, 'local')).toMatchObject({ idleTimeoutMs: DEFAULTS.idleTimeoutMs, maxSessions: 100, env: {} });
  });

  test('configured values replace the defaults', () => {
    const raw = base();
    Object.assign(raw.proxy, { name: 'Edge', addr: '127.0.0.1:9000', maxBodyBytes: 1024, maxEventBytes: 2048, keepAlive: '2s' });
    Object.assign(raw.mcpServers.local, { timeout: 500, idleTimeout: '1.5m', maxSessions: 3, cwd: '/tmp' });
    raw.mcpServers.remote.timeout = '5s';
    const c = resolveConfig(raw, ENV);
    expect(c).toMatchObject({ name: 'Edge', addr: '127.0.0.1:9000', maxBodyBytes: 1024, maxEventBytes: 2048, keepAliveMs: 2000 });
    expect(stdio(c, 'local')).toMatchObject({ timeoutMs: 500, idleTimeoutMs: 90_000, maxSessions: 3, cwd: '/tmp' });
    expect(remote(c, 'remote').timeoutMs).toBe(5000);
  });

  test('mcpServers may be empty: a proxy with no servers is valid', () => {
    const c = resolveConfig({ ...base(), mcpServers: {} }, ENV);
    expect(c.servers.size).toBe(0);
  });

  test('the resolved config does not share objects with the input', () => {
    const raw = base();
    raw.mcpServers.local.env = { A: '1' };
    const c = resolveConfig(raw, ENV);
    raw.mcpServers.local.env.A = '2';
    raw.mcpServers.local.args.push('more');
    expect(stdio(c, 'local')).toMatchObject({ env: { A: '1' }, args: ['server.js'] });
  });
});

describe('version', () => {
  test.each([undefined, '1.0', '1', '1.2'])('accepts %p', (version) => {
    expect(() => resolveConfig({ ...base(), version }, ENV)).not.toThrow();
  });

  test.each(['2.0', 'v1', '1.0.0', ''])('rejects %p', (version) => {
    expectOnly({ ...base(), version }, 'version', /^unsupported version .*"1\.0"/);
  });

  test('must be a string', () => {
    expectOnly({ ...base(), version: 1 }, 'version', 'must be a string');
  });
});

describe('proxy', () => {
  test('is required, and so are auth, kind and tokens (or oauth: config-oauth.test.ts)', () => {
    expect(problems({ mcpServers: {} })).toEqual([{ path: 'proxy', message: 'is required' }]);
    expect(problems({ proxy: {}, mcpServers: {} })).toEqual([{ path: 'proxy.auth', message: 'is required' }]);
    expect(problems({ proxy: { auth: {} }, mcpServers: {} })).toEqual([
      { path: 'proxy.auth.kind', message: 'is required (use "bearer_token")' },
      { path: 'proxy.auth', message: 'needs "tokens" (static bearer tokens), "oauth" (OAuth 2.1 access tokens), or both' },
    ]);
  });

  test('auth.kind must be "bearer_token"', () => {
    const raw = base();
    raw.proxy.auth.kind = 'oauth';
    expectOnly(raw, 'proxy.auth.kind', 'must be "bearer_token" (the only supported kind)');
  });

  test('tokens needs at least one entry', () => {
    const raw = base();
    raw.proxy.auth.tokens = {};
    raw.mcpServers = {};
    expectOnly(raw, 'proxy.auth.tokens', 'must define at least one token');
  });

  test('token names: letters, digits, ".", "_", "-"', () => {
    const raw = base();
    raw.proxy.auth.tokens = { 'ok.name_1-x': 'v1-aaaaaaaa', 'bad name': 'v2-bbbbbbbb', 'new\nline': 'v3-cccccccc', '': 'v4-dddddddd' };
    raw.mcpServers = {};
    const ps = problems(raw);
    expect(ps.map((p) => p.path)).toEqual(['proxy.auth.tokens["bad name"]', 'proxy.auth.tokens["new\\nline"]', 'proxy.auth.tokens[""]']);
    for (const p of ps) expect(p.message).toMatch(/^invalid token name; use only letters, digits/);
  });

  test.each([
    ['empty', ''],
    ['a space', 'abc def'],
    ['a tab', 'abc\tdef'],
    ['a newline', 'abc\n'],
    ['a control character', 'abc\u0000'],
    ['non-ASCII', 'abcé'],
  ])('a token value with %s is rejected without quoting it', (_, value) => {
    const raw = base();
    raw.proxy.auth.tokens.dev = value;
    const err = failure(raw);
    expect(err.problems).toEqual([{ path: 'proxy.auth.tokens.dev', message: expect.any(String) }]);
    if (value !== '') expectNoSecret(err, [value]);
  });

  test('two names may share a value (a warning, not an error); the first name wins', () => {
    const raw = base();
    raw.proxy.auth.tokens.prod = DEV_TOKEN;
    const c = resolveConfig(raw, ENV);
    expect(c.tokens.get('prod')).toBe(DEV_TOKEN);
    expect(c.tokens.get('dev')).toBe(DEV_TOKEN);
  });

  test('literalTokens lists the names written literally', () => {
    const c = resolveConfig(base(), ENV);
    expect([...c.literalTokens]).toEqual(['dev']);
    expect([...c.tokens.keys()]).toEqual(['dev', 'prod']);
  });

  test('name must be non-empty and safe inside a quoted realm', () => {
    for (const [name, message] of [
      ['', 'must not be empty'],
      ['say "hi"', /double quotes/],
      ['a\r\nb', /control characters/],
      [3, 'must be a string'],
    ] as const) {
      const raw = base();
      raw.proxy.name = name;
      expectOnly(raw, 'proxy.name', message);
    }
  });

  test.each([':8080', ':0', '0.0.0.0:65535', 'localhost:3000', '[::1]:8080', '[::]:80', 'my-host.internal:443'])(
    'addr %p is accepted',
    (addr) => {
      const raw = base();
      raw.proxy.addr = addr;
      expect(resolveConfig(raw, ENV).addr).toBe(addr);
    },
  );

  test.each(['8080', ':', ':65536', ':-1', 'host', 'host:port', '::1:8080', '[::1]', 'http://h:80', ' :8080', ':80a'])(
    'addr %p is rejected',
    (addr) => {
      const raw = base();
      raw.proxy.addr = addr;
      expectOnly(raw, 'proxy.addr', /^must look like ":8080", "127\.0\.0\.1:8080" or "\[::1\]:8080"/);
    },
  );

  test.each([0, -1, 1.5, '10', 2 ** 60])('maxBodyBytes %p is rejected', (maxBodyBytes) => {
    const raw = base();
    raw.proxy.maxBodyBytes = maxBodyBytes;
    expectOnly(raw, 'proxy.maxBodyBytes', /^must be (a positive integer|an integer|at most \d+)$/);
  });

  test.each([0, -1, 1.5, '10', 2 ** 60])('maxEventBytes %p is rejected', (maxEventBytes) => {
    const raw = base();
    raw.proxy.maxEventBytes = maxEventBytes;
    expectOnly(raw, 'proxy.maxEventBytes', /^must be (a positive integer|an integer|at most \d+)$/);
  });

  test('keepAlive is a positive duration', () => {
    const raw = base();
    raw.proxy.keepAlive = '0s';
    expectOnly(raw, 'proxy.keepAlive', 'must be greater than 0');
    raw.proxy.keepAlive = 'often';
    expectOnly(raw, 'proxy.keepAlive', /^must be a duration/);
    raw.proxy.keepAlive = 250;
    expect(resolveConfig(raw, ENV).keepAliveMs).toBe(250);
  });
});

describe('proxy.cors.allowedOrigins', () => {
  function origins(list: unknown): ResolvedConfig['allowedOrigins'] {
    const raw = base();
    raw.proxy.cors = { allowedOrigins: list };
    return resolveConfig(raw, ENV).allowedOrigins;
  }

  test('["*"] allows every origin', () => {
    expect(origins(['*'])).toBe('*');
  });

  test('origins are normalized the way browsers send them', () => {
    const set = origins([
      'https://App.Example.com',
      'https://app.example.com:443/',
      'http://localhost:3000',
      'HTTP://127.0.0.1:80',
      'chrome-extension://abcdef',
    ]);
    expect(set).toEqual(new Set(['https://app.example.com', 'http://localhost:3000', 'http://127.0.0.1', 'chrome-extension://abcdef']));
  });

  test('an empty list is allowed and allows no cross-origin caller', () => {
    expect(origins([])).toEqual(new Set());
  });

  test('"*" must be alone', () => {
    const raw = base();
    raw.proxy.cors = { allowedOrigins: ['https://a.test', '*'] };
    expectOnly(raw, 'proxy.cors.allowedOrigins[1]', /"\*" allows every origin, so it must be the only entry/);
  });

  test.each(['https://a.test/app', 'https://a.test?x=1', 'https://a.test/#h', 'a.test', 'null', '', 'https://user:pw@a.test', 'file:///etc'])(
    '%p is not an origin',
    (origin) => {
      const raw = base();
      raw.proxy.cors = { allowedOrigins: ['https://ok.test', origin] };
      expectOnly(raw, 'proxy.cors.allowedOrigins[1]', /is not an origin; use scheme:\/\/host\[:port\] without a path/);
    },
  );

  test('shape errors', () => {
    const raw = base();
    raw.proxy.cors = {};
    expectOnly(raw, 'proxy.cors.allowedOrigins', 'is required');
    raw.proxy.cors = { allowedOrigins: 'https://a.test' };
    expectOnly(raw, 'proxy.cors.allowedOrigins', 'must be an array');
    raw.proxy.cors = { allowedOrigins: [1] };
    expectOnly(raw, 'proxy.cors.allowedOrigins[0]', 'must be a string');
  });
});

describe('proxy.authThrottle', () => {
  function throttle(value: unknown): ResolvedConfig['authThrottle'] {
    const raw = base();
    raw.proxy.authThrottle = value;
    return resolveConfig(raw, ENV).authThrottle;
  }
  function throttleProblems(value: unknown): ConfigProblem[] {
    const raw = base();
    raw.proxy.authThrottle = value;
    return problems(raw);
  }

  test('is off by default', () => {
    expect(resolveConfig(base(), ENV).authThrottle).toBeUndefined();
    expect('authThrottle' in resolveConfig(base(), ENV)).toBe(false);
    expect(throttle(undefined)).toBeUndefined();
  });

  test('resolves maxFailures and the window in ms', () => {
    expect(throttle({ maxFailures: 10, window: '1m' })).toEqual({ maxFailures: 10, windowMs: 60_000 });
    expect(throttle({ maxFailures: 1, window: 1500 })).toEqual({ maxFailures: 1, windowMs: 1500 });
  });

  test('both keys are required, and nothing else is allowed', () => {
    expect(throttleProblems({})).toEqual([
      { path: 'proxy.authThrottle.maxFailures', message: 'is required' },
      { path: 'proxy.authThrottle.window', message: 'is required' },
    ]);
    expect(throttleProblems({ maxFailures: 5, window: '1m', windw: '2m' })).toEqual([
      { path: 'proxy.authThrottle.windw', message: 'unknown key "windw"; did you mean "window"?' },
    ]);
    expect(throttleProblems(true)).toEqual([{ path: 'proxy.authThrottle', message: 'must be an object' }]);
    const raw = base();
    raw.proxy.authThrotle = { maxFailures: 5, window: '1m' };
    expectOnly(raw, 'proxy.authThrotle', 'unknown key "authThrotle"; did you mean "authThrottle"?');
  });

  test.each([0, -1, 2.5, '10', 2 ** 60])('maxFailures %p is rejected', (maxFailures) => {
    expect(throttleProblems({ maxFailures, window: '1m' })).toEqual([
      { path: 'proxy.authThrottle.maxFailures', message: expect.stringMatching(/^must be (a positive integer|an integer|at most \d+)$/) },
    ]);
  });

  test('window is a positive duration', () => {
    expect(throttleProblems({ maxFailures: 5, window: '0s' })).toEqual([{ path: 'proxy.authThrottle.window', message: 'must be greater than 0' }]);
    expect(throttleProblems({ maxFailures: 5, window: 'a minute' })).toEqual([
      { path: 'proxy.authThrottle.window', message: expect.stringMatching(/^must be a duration/) },
    ]);
    expect(throttleProblems({ maxFailures: 5, window: '600h' })).toEqual([
      { path: 'proxy.authThrottle.window', message: expect.stringMatching(/^must be at most 2147483647 ms/) },
    ]);
  });
});

describe('server names', () => {
  test.each(['db', 'a.b', 'A_b-9', '...x'])('%p is accepted', (name) => {
    const c = resolveConfig({ ...base(), mcpServers: { [name]: { command: 'x' } } }, ENV);
    expect(c.servers.get(name)?.name).toBe(name);
  });

  test.each([
    ['my server', /^invalid server name; use only letters/],
    ['a/b', /^invalid server name/],
    ['', /^invalid server name/],
    ['.', /cannot be server names/],
    ['..', /cannot be server names/],
    ['health', /"health" is reserved/],
    ['Health', /"health" is reserved/],
  ])('%p is rejected', (name, message) => {
    const path = /^[A-Za-z_$][\w$-]*$/.test(name) ? `mcpServers.${name}` : `mcpServers[${JSON.stringify(name)}]`;
    expectOnly({ ...base(), mcpServers: { [name]: { command: 'x' } } }, path, message);
  });

  test('a server must be an object', () => {
    expectOnly({ ...base(), mcpServers: { db: 'http://x.test' } }, 'mcpServers.db', 'must be an object');
    expectOnly({ ...base(), mcpServers: [] }, 'mcpServers', 'must be an object');
  });
});

describe('servers', () => {
  function withServer(server: Json, env: Record<string, string> = ENV) {
    return resolveConfig({ ...base(), mcpServers: { s: server } }, env).servers.get('s')!;
  }
  function serverProblems(server: Json): ConfigProblem[] {
    return problems({ ...base(), mcpServers: { s: server } });
  }

  test('needs exactly one of url and command', () => {
    expect(serverProblems({})).toEqual([{ path: 'mcpServers.s', message: 'needs "url" (a remote server) or "command" (a stdio server)' }]);
    expect(serverProblems({ url: 'http://x.test/mcp', command: 'x' })).toEqual([
      { path: 'mcpServers.s', message: expect.stringMatching(/^has both "url" and "command"/) },
    ]);
  });

  test.each(['upstream:3000/mcp', '/relative/mcp', 'ftp://x.test/mcp', 'ws://x.test/mcp', 'not a url', ''])(
    'url %p must be an absolute http(s) URL',
    (url) => {
      expect(serverProblems({ url })).toEqual([{ path: 'mcpServers.s.url', message: 'must be an absolute http:// or https:// URL' }]);
    },
  );

  test.each([
    ['http://x.test/sse', 'sse'],
    ['https://x.test/v1/sse?team=a', 'sse'],
    ['http://x.test/mcp', 'streamable-http'],
    ['http://x.test/', 'streamable-http'],
    ['http://x.test/ssefoo', 'streamable-http'],
  ])('%p is inferred as %p', (url, transport) => {
    expect(withServer({ url })).toMatchObject({ kind: 'remote', transport });
  });

  test('command is inferred as stdio', () => {
    expect(withServer({ command: 'x' })).toMatchObject({ kind: 'stdio', transport: 'stdio' });
  });

  test('transportType overrides inference', () => {
    expect(withServer({ url: 'http://x.test/sse', transportType: 'streamable-http' }).transport).toBe('streamable-http');
    expect(withServer({ url: 'http://x.test/events', transportType: 'sse' }).transport).toBe('sse');
    expect(withServer({ command: 'x', transportType: 'stdio' }).transport).toBe('stdio');
  });

  test('transportType must agree with url or command', () => {
    expect(serverProblems({ url: 'http://x.test/mcp', transportType: 'stdio' })).toEqual([
      { path: 'mcpServers.s.transportType', message: '"stdio" needs "command"; this server has "url"' },
    ]);
    expect(serverProblems({ command: 'x', transportType: 'sse' })).toEqual([
      { path: 'mcpServers.s.transportType', message: '"sse" needs "url"; this server has "command"' },
    ]);
    expect(serverProblems({ command: 'x', transportType: 'streamable-http' })).toEqual([
      { path: 'mcpServers.s.transportType', message: '"streamable-http" needs "url"; this server has "command"' },
    ]);
    expect(serverProblems({ url: 'http://x.test/mcp', transportType: 'http' })).toEqual([
      { path: 'mcpServers.s.transportType', message: 'must be one of "stdio", "sse", "streamable-http"' },
    ]);
  });

  test('stdio options on a remote server, and headers on a stdio server, are errors', () => {
    const ps = serverProblems({ url: 'http://x.test/mcp', args: [], env: {}, cwd: '/', idleTimeout: '1m', maxSessions: 2 });
    expect(ps).toEqual(
      ['args', 'env', 'cwd', 'idleTimeout', 'maxSessions'].map((k) => ({
        path: `mcpServers.s.${k}`,
        message: 'only for stdio servers (with "command")',
      })),
    );
    expect(serverProblems({ command: 'x', headers: { 'X-Key': 'v' } })).toEqual([
      { path: 'mcpServers.s.headers', message: 'only for remote servers (with "url")' },
    ]);
  });

  test('command and cwd must not be empty', () => {
    expect(serverProblems({ command: '', cwd: '' })).toEqual([
      { path: 'mcpServers.s.command', message: 'must not be empty' },
      { path: 'mcpServers.s.cwd', message: 'must not be empty' },
    ]);
  });

  test('env names must be usable by spawn()', () => {
    expect(serverProblems({ command: 'x', env: { 'A=B': '1', '': '2', OK: '3' } }).map((p) => p.path)).toEqual([
      'mcpServers.s.env["A=B"]',
      'mcpServers.s.env[""]',
    ]);
  });

  describe('authTokens', () => {
    test('omitted: every configured token', () => {
      expect([...withServer({ command: 'x' }).authTokens]).toEqual(['dev', 'prod']);
    });

    test('listed: only those', () => {
      expect([...withServer({ command: 'x', authTokens: ['prod'] }).authTokens]).toEqual(['prod']);
    });

    test('empty is an error', () => {
      expect(serverProblems({ command: 'x', authTokens: [] })).toEqual([
        { path: 'mcpServers.s.authTokens', message: expect.stringMatching(/^must list at least one token name/) },
      ]);
    });

    test('an unknown name is an error with a suggestion', () => {
      const raw = base();
      raw.proxy.auth.tokens.staging = 'S3CRET-staging-x';
      raw.mcpServers = { database: { url: 'http://db.test/sse', authTokens: ['dev', 'stagng'] } };
      expectOnly(raw, 'mcpServers.database.authTokens[1]', 'unknown token name "stagng"; did you mean "staging"?');
      const err = failure(raw);
      expect(err.message).toContain('mcpServers.database.authTokens[1]: unknown token name "stagng"');
    });

    test('an unknown name with nothing close lists the defined names', () => {
      expect(serverProblems({ command: 'x', authTokens: ['zzzzzzzz'] })).toEqual([
        { path: 'mcpServers.s.authTokens[0]', message: 'unknown token name "zzzzzzzz"; defined tokens: "dev", "prod"' },
      ]);
    });

    test('an unknown entry that may be a secret is not quoted', () => {
      const generated = 'Hk3v9QxZr2mW8bTn4yLp6sDf1gJc7aUe0oXiVqRwYtS'; // the shape of generate-token
      const pasted = (authTokens: string[], env: Record<string, string | undefined> = ENV) => {
        const raw = base();
        raw.mcpServers = { s: { command: 'x', authTokens } };
        return problems(raw, env);
      };
      // Can never be a token name, or too long to be one: possibly a token whose variable is unset here.
      for (const entry of [generated, 'abc def', 'tok\n', 'tökén']) {
        const ps = pasted([entry]);
        expect(ps).toEqual([{ path: 'mcpServers.s.authTokens[0]', message: expect.stringMatching(/^unknown token name \(not shown: it may be a secret\); /) }]);
        expectNoSecret(failure({ ...base(), mcpServers: { s: { command: 'x', authTokens: [entry] } } }), [entry, JSON.stringify(entry).slice(1, -1)]);
      }
      // Inside a value of the environment (here with the trailing newline a shell adds) or the config.
      expect(pasted(['short-secret'], { ...ENV, OTHER: 'short-secret\n' })[0].message).toMatch(/not shown/);
      const raw = base();
      raw.mcpServers = { s: { command: 'x', args: ['--key=k-123'], authTokens: ['k-123'] } };
      expect(problems(raw)[0].message).toMatch(/not shown/);
    });

    test('duplicates are errors', () => {
      expect(serverProblems({ command: 'x', authTokens: ['dev', 'prod', 'dev'] })).toEqual([
        { path: 'mcpServers.s.authTokens[2]', message: 'duplicate token name "dev"' },
      ]);
    });

    test('a name whose value failed to resolve is still a known name', () => {
      const raw = base();
      raw.mcpServers = { s: { command: 'x', authTokens: ['prod'] } };
      expect(problems(raw, {})).toEqual([{ path: 'proxy.auth.tokens.prod', message: 'environment variable PROD_TOKEN is not set' }]);
    });

    test('must be an array of strings', () => {
      expect(serverProblems({ command: 'x', authTokens: 'dev' })).toEqual([{ path: 'mcpServers.s.authTokens', message: 'must be an array' }]);
      expect(serverProblems({ command: 'x', authTokens: ['dev', 7] })).toEqual([
        { path: 'mcpServers.s.authTokens[1]', message: 'must be a string' },
      ]);
    });
  });

  describe('durations and limits', () => {
    test.each([
      ['timeout', { url: 'http://x.test/mcp' }],
      ['idleTimeout', { command: 'x' }],
    ])('%s is a positive duration', (key, server) => {
      expect(withServer({ ...server, [key]: '1.5s' })).toMatchObject({ [`${key}Ms`]: 1500 });
      expect(withServer({ ...server, [key]: 42 })).toMatchObject({ [`${key}Ms`]: 42 });
      expect(serverProblems({ ...server, [key]: 0 })).toEqual([{ path: `mcpServers.s.${key}`, message: 'must be greater than 0' }]);
      for (const bad of ['30 s', '30', '-1s', 'PT30S', true, -5, 1.5]) {
        expect(serverProblems({ ...server, [key]: bad })).toEqual([
          { path: `mcpServers.s.${key}`, message: expect.stringMatching(/^must be a duration: milliseconds, or a string such as "500ms"/) },
        ]);
      }
      // Node turns longer timers into 1 ms.
      expect(serverProblems({ ...server, [key]: '600h' })).toEqual([
        { path: `mcpServers.s.${key}`, message: expect.stringMatching(/^must be at most 2147483647 ms/) },
      ]);
    });

    test.each([0, -1, 2.5, '3'])('maxSessions %p is rejected', (maxSessions) => {
      expect(serverProblems({ command: 'x', maxSessions })).toEqual([
        { path: 'mcpServers.s.maxSessions', message: expect.stringMatching(/^must be (a positive integer|an integer)$/) },
      ]);
    });
  });

  describe('headers', () => {
    test('configured headers, including Authorization, are kept', () => {
      const s = withServer({ url: 'http://x.test/mcp', headers: { Authorization: 'Bearer upstream-cred', 'X-Trace': 'on' } });
      expect(s).toMatchObject({ headers: { Authorization: 'Bearer upstream-cred', 'X-Trace': 'on' } });
    });

    test('names must be HTTP tokens', () => {
      expect(serverProblems({ url: 'http://x.test/mcp', headers: { 'X Key': 'v', 'X:Key': 'v', 'Ünï': 'v' } }).map((p) => p.path)).toEqual([
        'mcpServers.s.headers["X Key"]',
        'mcpServers.s.headers["X:Key"]',
        'mcpServers.s.headers["Ünï"]',
      ]);
    });

    test('values must not contain CR or LF, and are not quoted', () => {
      const err = failure({ ...base(), mcpServers: { s: { url: 'http://x.test/mcp', headers: { 'X-Key': `${API_KEY}\r\nX-Evil: 1` } } } });
      expect(err.problems).toEqual([{ path: 'mcpServers.s.headers.X-Key', message: 'must not contain CR, LF or other control characters' }]);
      expectNoSecret(err);
    });

    test('empty values are errors', () => {
      expect(serverProblems({ url: 'http://x.test/mcp', headers: { 'X-Key': '' } })).toEqual([
        { path: 'mcpServers.s.headers.X-Key', message: 'must not be empty' },
      ]);
    });

    test('headers the proxy owns cannot be configured', () => {
      for (const name of ['Host', 'Content-Length', 'transfer-encoding', 'Mcp-Session-Id']) {
        expect(serverProblems({ url: 'http://x.test/mcp', headers: { [name]: 'v' } })).toEqual([
          { path: `mcpServers.s.headers.${name}`, message: `"${name}" is managed by the proxy and cannot be configured` },
        ]);
      }
    });

    test('the same name twice in different case is an error', () => {
      expect(serverProblems({ url: 'http://x.test/mcp', headers: { 'X-Key': 'a', 'x-key': 'b' } })).toEqual([
        { path: 'mcpServers.s.headers.x-key', message: 'duplicates header "X-Key" (header names are case-insensitive)' },
      ]);
    });

    test('a "__proto__" header stays an ordinary key', () => {
      const headers = JSON.parse('{"__proto__": "v"}');
      const s = withServer({ url: 'http://x.test/mcp', headers }) as RemoteServer;
      expect(Object.keys(s.headers)).toEqual(['__proto__']);
      expect(Object.getPrototypeOf(s.headers)).toBe(Object.prototype);
    });
  });
});

describe('parseDuration', () => {
  test.each([
    [0, 0],
    [1500, 1500],
    ['500ms', 500],
    ['30s', 30_000],
    ['1.5s', 1500],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['0s', 0],
  ])('%p → %p', (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
  });

  test.each([-1, 1.5, NaN, Infinity, '', '30', '30 s', ' 30s', '30S', '1d', '-1s', '.5s', '1e3ms', null, undefined, {}, []])(
    '%p is invalid',
    (input) => {
      expect(parseDuration(input)).toBeUndefined();
    },
  );
});

describe('hostile documents', () => {
  test('values nested far deeper than the schema are reported, not a stack overflow', () => {
    let deep: Json = 'leaf';
    for (let i = 0; i < 100_000; i++) deep = { k: deep };
    const raw = base();
    raw.extra = deep;
    raw.mcpServers.local.authTokens = ['nope'];
    raw.mcpServers.local.env = { A: deep };
    expect(problems(raw).map((p) => p.path)).toEqual(['mcpServers.local.authTokens[0]', 'mcpServers.local.env.A', 'mcpServers.local.env.A.k', 'extra']);
  });
});

describe('the schema', () => {
  test('is compiled once, at module load, not per call', () => {
    jest.isolateModules(() => {
      const ajv = require('ajv') as typeof import('ajv');
      const compile = jest.spyOn(ajv.default.prototype, 'compile');
      const fresh = require('../lib/config') as typeof import('../lib/config');
      expect(compile).toHaveBeenCalledTimes(1);
      fresh.resolveConfig(base(), ENV);
      expect(() => fresh.resolveConfig({}, ENV)).toThrow(/proxy: is required/);
      expect(compile).toHaveBeenCalledTimes(1);
      compile.mockRestore();
    });
  });
});

describe('loadConfig', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'mcp-front-config-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  function file(name: string, text: string): string {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  }
  function loadFailure(path: string, env: Record<string, string> = ENV): ConfigError {
    try {
      loadConfig(path, env);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return err as ConfigError;
    }
    throw new Error('expected loadConfig to throw ConfigError');
  }

  test('returns the parsed config, $env references unresolved', () => {
    const path = file('good.json', JSON.stringify(base(), null, 2));
    expect(loadConfig(path, ENV)).toEqual(base());
  });

  test('accepts a UTF-8 byte order mark', () => {
    const path = file('bom.json', `\uFEFF${JSON.stringify(base())}`);
    expect(loadConfig(path, ENV)).toEqual(base());
  });

  test('reads the MCP Front documentation style: // and /* */ comments, trailing commas', () => {
    const text = `{
  "version": "1.0",
  "proxy": {
    "name": "Dev Proxy", // shown in logs and the realm
    "auth": {
      "kind": "bearer_token",
      "tokens": {
        "dev-old": "${DEV_TOKEN}", // old token, remove after 2026-01-31
        "dev": { "$env": "PROD_TOKEN" }, // new token
      },
    },
  },
  /*
   * Environment isolation: development tokens never reach production servers.
   */
  "mcpServers": {
    "database": {
      "url": "http://postgres-mcp:3000/sse", // "//" inside a string is not a comment
      "authTokens": ["dev-old", "dev",], /* both, during the rotation */
    },
    "notes": { "command": "node", "args": ["/* kept */", "a//b"] },
  },
}
// end of file, no newline after this comment`;
    const config: Json = loadConfig(file('documented.jsonc', text), ENV);
    expect(config.proxy.auth.tokens).toEqual({ 'dev-old': DEV_TOKEN, dev: { $env: 'PROD_TOKEN' } });
    expect(config.mcpServers.database).toEqual({ url: 'http://postgres-mcp:3000/sse', authTokens: ['dev-old', 'dev'] });
    expect(config.mcpServers.notes.args).toEqual(['/* kept */', 'a//b']);
    expect(resolveConfig(config, ENV).servers.get('database')!.authTokens).toEqual(new Set(['dev-old', 'dev']));
  });

  test('a "__proto__" key stays an own key, as JSON.parse keeps it', () => {
    const raw = base();
    const text = JSON.stringify(raw).replace('"url":', '"headers": { "__proto__": "x" }, "url":');
    const parsed: Json = JSON.parse(text);
    const loaded: Json = loadConfig(file('proto.json', `// a comment makes it JSON with comments\n${text}`), ENV);
    expect(loaded).toEqual(parsed);
    expect(Object.keys(loaded.mcpServers.remote.headers)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(loaded.mcpServers.remote.headers)).toBe(Object.prototype);
  });

  test('a file nested too deeply for the parser is a ConfigError, not a RangeError', () => {
    const path = file('deep.json', '['.repeat(200_000));
    expect(loadFailure(path).problems).toEqual([{ path: '(file)', message: `invalid JSON in ${JSON.stringify(path)}: nested too deeply` }]);
  });

  test('validates with the given env', () => {
    const path = file('env.json', JSON.stringify(base()));
    expect(loadFailure(path, {}).problems).toEqual([{ path: 'proxy.auth.tokens.prod', message: 'environment variable PROD_TOKEN is not set' }]);
  });

  test('an invalid config lists every problem', () => {
    const raw = base();
    raw.proxy.auth.kind = 'basic';
    raw.mcpServers.remote.authToken = ['dev'];
    const err = loadFailure(file('invalid.json', JSON.stringify(raw)));
    expect(err.problems.map((p) => p.path)).toEqual(['proxy.auth.kind', 'mcpServers.remote.authToken']);
  });

  test('a missing file names the path and the OS error code', () => {
    const path = join(dir, 'missing.json');
    const err = loadFailure(path);
    expect(err.problems).toEqual([{ path: '(file)', message: `cannot read config file ${JSON.stringify(path)}: ENOENT` }]);
    expect(err.message).toContain('(file): cannot read config file');
  });

  test('a directory is unreadable too', () => {
    expect(loadFailure(dir).problems[0].message).toMatch(/: EISDIR$/);
  });

  test.each([
    ['unquoted value', `{\n  "proxy": {\n    "auth": { "tokens": { "dev": ${DEV_TOKEN} } }\n  }\n}`, 3, 34, 'unexpected character'],
    ['two commas', '{\n  "a": 1,,\n}', 2, 10, 'expected a property name in double quotes'],
    ['unterminated comment', '{\n  /* note\n  "a": 1\n}', 2, 3, 'unterminated comment (a "*/" is missing)'],
    ['a stray slash', '{\n  / note\n}', 2, 3, 'unexpected character'],
    ['unquoted name', '{ a: 1 }', 1, 3, 'unexpected character'],
    ['single quotes', "{ 'a': 1 }", 1, 3, 'strings must use double quotes'],
    ['missing colon', '{ "a" 1 }', 1, 7, 'expected ":" after a property name'],
    ['missing comma', '[1 2]', 1, 4, 'expected "," or "]"'],
    ['truncated', `{ "tokens": { "dev": "${DEV_TOKEN}`, 1, 22, 'unterminated string'],
    ['line break in a string', `{ "dev": "${DEV_TOKEN}\n" }`, 1, 34, 'control character in a string (write it as an escape such as \\n)'],
    ['tab in a string', `{ "dev": "${DEV_TOKEN}\t" }`, 1, 34, 'control character in a string (write it as an escape such as \\n)'],
    ['bad escape after a good one', `{\n  "dev": "\\\\${DEV_TOKEN}\\q" }`, 2, 36, 'invalid escape sequence in a string'],
    ['short unicode escape', `{ "dev": "${DEV_TOKEN}\\u12" }`, 1, 34, 'invalid escape sequence in a string'],
    ['bad number', '{ "maxBatch": 1. }', 1, 15, 'invalid number'],
    ['value missing', '{ "a": }', 1, 8, 'expected a value'],
    ['missing close brace', '{ "a": [1, 2]\n\n', 1, 14, 'unexpected end of file (a "}" is missing)'],
    ['missing close bracket at the end', '{ "a": [1, 2 // a comment\n', 1, 26, 'unexpected end of file (a "]" is missing)'],
    ['missing value at the end', '{ "a":\t\n', 1, 7, 'unexpected end of file'],
    ['missing close bracket', '{ "a": [1, 2 }', 1, 14, 'expected "," or "]"'],
    ['empty file', '', 1, 1, 'unexpected end of file'],
    ['two documents', '{} {}', 1, 4, 'unexpected content after the end of the document'],
  ])('bad JSON (%s) gives line and column without quoting the file', (_, text, line, column, reason) => {
    const path = file('bad.json', text);
    const err = loadFailure(path);
    expect(err.problems).toEqual([
      { path: '(file)', message: `invalid JSON in ${JSON.stringify(path)} at line ${line}, column ${column}: ${reason}` },
    ]);
    expectNoSecret(err);
  });
});

describe('several instances: proxy.addr, instanceId, trustProxy, store, drainTimeout', () => {
  const REDIS_PASSWORD = 'S3CRET-redis-password-x9y8';

  test('defaults: no instance id, trust no proxy, memory store, 30 s drain', () => {
    const c = resolveConfig(base(), ENV);
    expect(c.instanceId).toBeUndefined();
    expect(c.trustProxy).toBe(false);
    expect(c.store).toBeUndefined();
    expect(c.drainTimeoutMs).toBe(30_000);
  });

  test('proxy.addr and proxy.instanceId take $env, so one file serves every instance', () => {
    const raw = base();
    raw.proxy.addr = { $env: 'ADDR' };
    raw.proxy.instanceId = { $env: 'POD' };
    const c = resolveConfig(raw, { ...ENV, ADDR: '127.0.0.1:9090', POD: 'web-7f9c_2' });
    expect(c.addr).toBe('127.0.0.1:9090');
    expect(c.instanceId).toBe('web-7f9c_2');
    expectOnly(raw, 'proxy.addr', 'environment variable ADDR is not set', { ...ENV, POD: 'a' });
    expectOnly(raw, 'proxy.addr', /port 0-65535.*\(value of environment variable ADDR\)/, { ...ENV, ADDR: 'nope', POD: 'a' });
  });

  test.each([
    ['a', true],
    ['A'.repeat(32), true],
    ['web_1-b', true],
    ['', false],
    ['A'.repeat(33), false],
    ['web.1', false],
    ['web 1', false],
    ['wéb', false],
  ])('instanceId %j valid: %s', (id, valid) => {
    const raw = base();
    raw.proxy.instanceId = id;
    if (valid) expect(resolveConfig(raw, ENV).instanceId).toBe(id);
    else expectOnly(raw, 'proxy.instanceId', 'must be 1 to 32 of the characters A-Z a-z 0-9 _ - (no dot)');
  });

  test('options.instanceId overrides proxy.instanceId and is checked the same way', () => {
    const raw = base();
    raw.proxy.instanceId = 'from-file';
    expect(resolveConfig(raw, ENV, { instanceId: 'from-code' }).instanceId).toBe('from-code');
    const err = failure2(() => resolveConfig(raw, ENV, { instanceId: 'a.b' }));
    expect(err.problems).toEqual([{ path: 'options.instanceId', message: expect.stringContaining('no dot') }]);
  });

  test.each([
    [true, true],
    [false, false],
    [2, 2],
    ['loopback', ['loopback']],
    ['10.0.0.1, 172.16.0.0/12 ,uniquelocal', ['10.0.0.1', '172.16.0.0/12', 'uniquelocal']],
    [['::1', 'fd00::/8', '10.0.0.0/255.0.0.0'], ['::1', 'fd00::/8', '10.0.0.0/255.0.0.0']],
  ])('trustProxy %j resolves to %j', (value, resolved) => {
    const raw = base();
    raw.proxy.trustProxy = value;
    expect(resolveConfig(raw, ENV).trustProxy).toEqual(resolved);
  });

  test('a bad trustProxy is refused with its path, and a near miss gets a did-you-mean', () => {
    const raw = base();
    raw.proxy.trustProxy = ['10.0.0.0/8', 'lopback', '10.0.0.0/33'];
    expect(problems(raw)).toEqual([
      { path: 'proxy.trustProxy[1]', message: expect.stringContaining('did you mean "loopback"?') },
      { path: 'proxy.trustProxy[2]', message: expect.stringContaining('"10.0.0.0/33" is not an IP address') },
    ]);
    raw.proxy.trustProxy = 0;
    expectOnly(raw, 'proxy.trustProxy', 'must be a positive integer');
    raw.proxy.trustProxy = 1.5;
    expect(problems(raw)[0].path).toBe('proxy.trustProxy');
    raw.proxy.trustProxy = [];
    expectOnly(raw, 'proxy.trustProxy', 'at least one address');
    raw.proxy.trustProxy = { hops: 1 };
    expect(problems(raw)[0].path).toBe('proxy.trustProxy');
  });

  test('proxy.store.redis: url from $env, default and custom key prefix', () => {
    const raw = base();
    raw.proxy.store = { redis: { url: { $env: 'REDIS_URL' } } };
    const url = `redis://:${REDIS_PASSWORD}@redis.test:6379/2`;
    expect(resolveConfig(raw, { ...ENV, REDIS_URL: url }).store).toEqual({ redis: { url, keyPrefix: 'mcp-front:' } });
    raw.proxy.store.redis.keyPrefix = 'team-a:';
    expect(resolveConfig(raw, { ...ENV, REDIS_URL: url }).store?.redis.keyPrefix).toBe('team-a:');
  });

  test('a bad proxy.store is refused with its path, a did-you-mean, and never quotes the URL', () => {
    const raw = base();
    raw.proxy.store = { redis: { url: `http://:${REDIS_PASSWORD}@redis.test:6379` } };
    const err = failure(raw);
    expect(err.problems).toEqual([{ path: 'proxy.store.redis.url', message: expect.stringContaining('must be a redis:// or rediss:// URL') }]);
    expectNoSecret(err, [REDIS_PASSWORD]);
    raw.proxy.store = { redis: { url: 'redis://redis.test', keyprefix: 'x' } };
    expectOnly(raw, 'proxy.store.redis.keyprefix', 'did you mean "keyPrefix"?');
    raw.proxy.store = { reddis: { url: 'redis://redis.test' } };
    expect(problems(raw)).toEqual(
      expect.arrayContaining([{ path: 'proxy.store.reddis', message: expect.stringContaining('did you mean "redis"?') }]),
    );
    raw.proxy.store = { redis: {} };
    expectOnly(raw, 'proxy.store.redis.url', 'is required');
    raw.proxy.store = { redis: { url: { $env: 'REDIS_URL' } } };
    expectOnly(raw, 'proxy.store.redis.url', 'environment variable REDIS_URL is empty', { ...ENV, REDIS_URL: '' });
    raw.proxy.sotre = {};
    expect(problems(raw, { ...ENV, REDIS_URL: 'redis://r' })).toEqual([
      { path: 'proxy.sotre', message: expect.stringContaining('did you mean "store"?') },
    ]);
  });

  test('proxy.drainTimeout is a duration', () => {
    const raw = base();
    raw.proxy.drainTimeout = '5s';
    expect(resolveConfig(raw, ENV).drainTimeoutMs).toBe(5_000);
    raw.proxy.drainTimeout = 'soon';
    expectOnly(raw, 'proxy.drainTimeout', 'must be a duration');
    raw.proxy.drainTimeout = 0;
    expectOnly(raw, 'proxy.drainTimeout', 'must be greater than 0');
    delete raw.proxy.drainTimeout;
    raw.proxy.drainTimout = '5s';
    expectOnly(raw, 'proxy.drainTimout', 'did you mean "drainTimeout"?');
  });
});

describe('observability: proxy.audit, proxy.metrics', () => {
  test('audit is on by default and a boolean', () => {
    const raw = base();
    expect(resolveConfig(raw, ENV).audit).toBe(true);
    raw.proxy.audit = false;
    expect(resolveConfig(raw, ENV).audit).toBe(false);
    raw.proxy.audit = 'no';
    expectOnly(raw, 'proxy.audit', 'must be true or false');
    delete raw.proxy.audit;
    raw.proxy.audti = false;
    expectOnly(raw, 'proxy.audti', 'did you mean "audit"?');
  });

  test('metrics is off by default; {} is open; authTokens are token names', () => {
    const raw = base();
    expect(resolveConfig(raw, ENV).metrics).toBeUndefined();
    raw.proxy.metrics = {};
    expect(resolveConfig(raw, ENV).metrics).toEqual({});
    raw.proxy.metrics = { authTokens: ['prod'] };
    expect([...resolveConfig(raw, ENV).metrics!.authTokens!]).toEqual(['prod']);
  });

  test('metrics problems name their path, with a did-you-mean', () => {
    const raw = base();
    raw.proxy.metrics = { authTokens: ['prdo'] };
    expectOnly(raw, 'proxy.metrics.authTokens[0]', 'unknown token name "prdo"; did you mean "prod"?');
    raw.proxy.metrics = { authTokens: [] };
    expectOnly(raw, 'proxy.metrics.authTokens', 'must list at least one token name');
    raw.proxy.metrics = { authTokens: ['prod', 'prod'] };
    expectOnly(raw, 'proxy.metrics.authTokens[1]', 'duplicate token name "prod"');
    raw.proxy.metrics = { authToken: ['prod'] };
    expectOnly(raw, 'proxy.metrics.authToken', 'did you mean "authTokens"?');
    raw.proxy.metrics = true;
    expectOnly(raw, 'proxy.metrics', 'must be an object');
  });

  test('a token value pasted into metrics.authTokens is reported, never quoted', () => {
    const raw = base();
    const value = resolveConfig(raw, ENV).tokens.get('prod')!;
    raw.proxy.metrics = { authTokens: [value] };
    const found = problems(raw);
    expect(found).toEqual([{ path: 'proxy.metrics.authTokens[0]', message: expect.stringContaining('is a token value, not a token name') }]);
    expect(JSON.stringify(found)).not.toContain(value);
  });
});

function failure2(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}
