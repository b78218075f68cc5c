// The configuration of aggregates (README: Aggregates, Configuration): several configured servers
// served as one endpoint. Defaults and resolved values (members in order, prefixes, separator,
// onUnavailable, authTokens, OAuth scopes), every problem with its exact path and message, several
// at once in one ConfigError, and no secret in any of them.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, resolveConfig } from '../lib/config';
import type { ResolvedConfig } from '../lib/config';
import { ConfigError } from '../lib/config/config-error';
import { canonicalConfig } from '../lib/config/fingerprint';
import type { ResolvedAggregate } from '../lib/config/resolved-config';
import { configChecks } from './helpers/config-checks';

type Json = any;

// Distinctive values: if any of them shows up in an error, a secret leaked.
const DEV_TOKEN = 'S3CRET-dev-token-a1b2c3';
const OPS_TOKEN = 'S3CRET-ops-token-d4e5f6';
const API_KEY = 'S3CRET-api-key-g7h8i9';
const SECRETS = [DEV_TOKEN, OPS_TOKEN, API_KEY];
const ENV = { OPS_TOKEN, API_KEY };

const PREFIX_RULE = 'a prefix is a lower-case letter, then up to 15 lower-case letters, digits or "-"';

/** Three servers, one of each kind, and the two aggregates of the README. */
function base(): Json {
  return {
    proxy: { auth: { kind: 'bearer_token', tokens: { dev: DEV_TOKEN, ops: { $env: 'OPS_TOKEN' }, ci: 'S3CRET-ci-token-j1k2l3' } } },
    mcpServers: {
      github: { url: 'http://github-mcp.test/mcp', headers: { Authorization: { $env: 'API_KEY' } }, authTokens: ['dev', 'ops'] },
      database: { url: 'http://db-mcp.test:3000/sse', authTokens: ['ops'] },
      files: { command: 'npx', args: ['-y', '@modelcontextprotocol/server-everything'], authTokens: ['dev'] },
    },
    aggregates: {
      all: { servers: ['github', 'files'] },
      ops: { servers: { github: { prefix: 'gh' }, database: {} }, authTokens: ['ops'], separator: '__', onUnavailable: 'omit' },
    },
  };
}

function resolve(raw: unknown, env: Record<string, string | undefined> = ENV): ResolvedConfig {
  return resolveConfig(raw, env);
}

function aggregate(raw: unknown, name: string): ResolvedAggregate {
  const a = resolve(raw).aggregates.get(name);
  if (a === undefined) throw new Error(`no aggregate ${name}`);
  return a;
}

const { problems, expectOnly } = configChecks(SECRETS, ENV);

/** `base()` with one more aggregate `x` of these members (and options). */
function withX(servers: unknown, options: Json = {}): Json {
  const raw = base();
  raw.aggregates.x = { servers, ...options };
  return raw;
}

describe('resolved form', () => {
  test('the README example: members in order, prefixes, separator, onUnavailable, authTokens', () => {
    const c = resolve(base());
    expect([...c.aggregates.keys()]).toEqual(['all', 'ops']);
    expect(c.aggregates.get('all')).toEqual({
      name: 'all',
      members: [
        { server: 'github', prefix: 'github' },
        { server: 'files', prefix: 'files' },
      ],
      separator: '__',
      onUnavailable: 'omit',
      authTokens: new Set(['dev', 'ops']),
      scopes: [],
    });
    expect(c.aggregates.get('ops')).toEqual({
      name: 'ops',
      members: [
        { server: 'github', prefix: 'gh' },
        { server: 'database', prefix: 'database' },
      ],
      separator: '__',
      onUnavailable: 'omit',
      authTokens: new Set(['ops']),
      scopes: [],
    });
    // The servers themselves are unchanged: an aggregate adds routes, it takes none away.
    expect([...c.servers.keys()]).toEqual(['github', 'database', 'files']);
  });

  test('no aggregates, or an empty object: an empty map', () => {
    const raw = base();
    delete raw.aggregates;
    expect(resolve(raw).aggregates).toEqual(new Map());
    raw.aggregates = {};
    expect(resolve(raw).aggregates).toEqual(new Map());
  });

  test('members keep the order written, in a list and in an object', () => {
    expect(aggregate(withX(['files', 'database', 'github']), 'x').members.map((m) => m.server)).toEqual(['files', 'database', 'github']);
    expect(aggregate(withX({ files: {}, github: { prefix: 'gh' }, database: { prefix: 'db' } }), 'x').members).toEqual([
      { server: 'files', prefix: 'files' },
      { server: 'github', prefix: 'gh' },
      { server: 'database', prefix: 'db' },
    ]);
  });

  test('a server may be a member of several aggregates, under a different prefix in each', () => {
    const c = resolve(base());
    expect(c.aggregates.get('all')!.members[0]).toEqual({ server: 'github', prefix: 'github' });
    expect(c.aggregates.get('ops')!.members[0]).toEqual({ server: 'github', prefix: 'gh' });
  });

  test.each(['__', '-', '--', '_'])('separator %p', (separator) => {
    expect(aggregate(withX(['files'], { separator }), 'x').separator).toBe(separator);
  });

  test('onUnavailable: "omit" by default, or "fail"', () => {
    expect(aggregate(withX(['files']), 'x').onUnavailable).toBe('omit');
    expect(aggregate(withX(['files'], { onUnavailable: 'fail' }), 'x').onUnavailable).toBe('fail');
  });

  test('authTokens omitted: every token allowed on at least one member', () => {
    expect(aggregate(withX(['database']), 'x').authTokens).toEqual(new Set(['ops']));
    expect(aggregate(withX(['database', 'files']), 'x').authTokens).toEqual(new Set(['ops', 'dev']));
    // `ci` may use no member: it may not open the aggregate either.
    expect(aggregate(withX(['github', 'database', 'files']), 'x').authTokens).toEqual(new Set(['dev', 'ops']));
    // A member that allows every token lets every token open the aggregate.
    const raw = withX(['database', 'files']);
    delete raw.mcpServers.files.authTokens;
    expect(aggregate(raw, 'x').authTokens).toEqual(new Set(['dev', 'ops', 'ci']));
  });

  test('authTokens listed: exactly those', () => {
    expect(aggregate(withX(['database', 'files'], { authTokens: ['ci', 'dev'] }), 'x').authTokens).toEqual(new Set(['ci', 'dev']));
  });

  test('with OAuth: principals count among the tokens, and scopes are oauth.scopes then every member\'s requiredScopes', () => {
    const raw = base();
    raw.proxy.publicUrl = 'https://mcp.example.com';
    raw.proxy.auth.oauth = {
      issuer: 'https://idp.example.com',
      scopes: ['mcp:tools'],
      principals: { staff: { claims: { groups: 'staff' } }, admins: { claims: { groups: 'admins' } } },
    };
    raw.mcpServers.github.requiredScopes = ['mcp:gh', 'mcp:tools'];
    raw.mcpServers.database.requiredScopes = ['mcp:db'];
    raw.mcpServers.database.authTokens = ['ops', 'admins'];
    delete raw.mcpServers.files.authTokens;
    const c = resolve(raw);
    expect(c.aggregates.get('ops')!.scopes).toEqual(['mcp:tools', 'mcp:gh', 'mcp:db']);
    expect(c.aggregates.get('all')!.scopes).toEqual(['mcp:tools', 'mcp:gh']);
    // `files` allows every token and principal.
    expect(c.aggregates.get('all')!.authTokens).toEqual(new Set(['dev', 'ops', 'ci', 'staff', 'admins']));
    raw.aggregates.db = { servers: ['database'] };
    expect(resolve(raw).aggregates.get('db')!.authTokens).toEqual(new Set(['ops', 'admins']));
    raw.aggregates.db.authTokens = ['staff'];
    expect(resolve(raw).aggregates.get('db')!.authTokens).toEqual(new Set(['staff']));
  });

  test('a server name that fits the prefix rule is its prefix; `prefix` replaces it', () => {
    const raw = base();
    raw.mcpServers['db-2'] = { url: 'http://db2.test/mcp' };
    raw.mcpServers['Files.v2'] = { command: 'node' };
    raw.aggregates.x = { servers: { 'db-2': {}, 'Files.v2': { prefix: 'files2' }, files: { prefix: 'fs' } } };
    expect(aggregate(raw, 'x').members.map((m) => m.prefix)).toEqual(['db-2', 'files2', 'fs']);
  });

  test('prefixes that only share letters are apart: `gh` and `hub`, `gh` and `g-h`', () => {
    expect(aggregate(withX({ github: { prefix: 'gh' }, files: { prefix: 'g-h' }, database: { prefix: 'hub' } }), 'x').members).toHaveLength(3);
  });

  test('the member order is part of the configuration fingerprint (lists are merged in that order)', () => {
    const reversed = withX(['files', 'github']);
    expect(canonicalConfig(resolve(withX(['github', 'files'])))).not.toBe(canonicalConfig(resolve(reversed)));
  });

  test('loadConfig: a JSON file with comments and trailing commas', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mcp-front-aggregates-'));
    try {
      const file = join(dir, 'config.json');
      writeFileSync(
        file,
        `{
  "proxy": { "auth": { "kind": "bearer_token", "tokens": { "ops": { "$env": "OPS_TOKEN" } } } },
  "mcpServers": {
    "github": { "url": "http://github-mcp.test/mcp" },
    "files": { "command": "npx", "args": ["-y", "@modelcontextprotocol/server-everything"] }, // stdio
  },
  "aggregates": {
    /* one endpoint for both */
    "all": { "servers": { "github": { "prefix": "gh" }, "files": {}, }, "separator": "-", },
  },
}`,
      );
      const c = resolve(loadConfig(file, ENV));
      expect(c.aggregates.get('all')).toMatchObject({ members: [{ server: 'github', prefix: 'gh' }, { server: 'files', prefix: 'files' }], separator: '-' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('aggregate names', () => {
  test('share the servers\' namespace: the name of a server is an error at the aggregate', () => {
    const raw = base();
    raw.aggregates.github = { servers: ['files'] };
    expectOnly(raw, 'aggregates.github', 'is also the name of a server; an aggregate is served on the routes of its name, so the two must differ');
  });

  test('the name of a server that failed to resolve is taken too, and that server is no "unknown" member', () => {
    const raw = base();
    raw.mcpServers.github.url = 'ftp://github-mcp.test';
    raw.aggregates.github = { servers: ['files'] };
    expect(problems(raw)).toEqual([
      { path: 'mcpServers.github.url', message: 'must be an absolute http:// or https:// URL' },
      { path: 'aggregates.github', message: 'is also the name of a server; an aggregate is served on the routes of its name, so the two must differ' },
    ]);
  });

  test.each([
    ['bad name', 'aggregates["bad name"]', 'invalid aggregate name; use only letters, digits, ".", "_" and "-" (it is a URL path segment)'],
    ['a/b', 'aggregates["a/b"]', 'invalid aggregate name; use only letters, digits, ".", "_" and "-" (it is a URL path segment)'],
    ['..', 'aggregates[".."]', '"." and ".." cannot be aggregate names (URL normalization removes them)'],
    ['Health', 'aggregates.Health', '"health" is reserved for the health check route'],
  ])('follow the server-name rules: %p', (name, path, message) => {
    const raw = base();
    raw.aggregates[name] = { servers: ['files'] };
    expectOnly(raw, path, message);
  });

  test('dots, dashes and digits are fine, as in server names', () => {
    const raw = base();
    raw.aggregates['team-2.tools_all'] = { servers: ['files'] };
    expect(resolve(raw).aggregates.has('team-2.tools_all')).toBe(true);
  });
});

describe('members', () => {
  test('an unknown server: at its path, with a did-you-mean', () => {
    expectOnly(withX(['github', 'gihub']), 'aggregates.x.servers[1]', 'unknown server "gihub"; did you mean "github"?');
    expectOnly(withX({ files: {}, Database: {} }), 'aggregates.x.servers.Database', 'unknown server "Database"; did you mean "database"?');
  });

  test('an unknown server and nothing close: the configured servers are listed', () => {
    expectOnly(withX(['wiki']), 'aggregates.x.servers[0]', 'unknown server "wiki"; members are servers of "mcpServers": "github", "database", "files"');
  });

  test('no servers at all: said so', () => {
    const raw = { proxy: base().proxy, mcpServers: {}, aggregates: { x: { servers: ['wiki'] } } };
    expectOnly(raw, 'aggregates.x.servers[0]', 'unknown server "wiki"; members are servers of "mcpServers", which has none');
  });

  test('many servers: the list is cut short', () => {
    const raw = withX(['wiki']);
    for (let i = 0; i < 12; i++) raw.mcpServers[`s${i}`] = { command: 'node' };
    const [p] = problems(raw);
    expect(p.message).toBe('unknown server "wiki"; members are servers of "mcpServers": "github", "database", "files", "s0", "s1", "s2", "s3", "s4", "s5", "s6", …');
  });

  test('an aggregate as a member: members are servers', () => {
    const message = '"all" is an aggregate; the members of an aggregate are servers of "mcpServers" (aggregates do not nest)';
    expectOnly(withX(['files', 'all']), 'aggregates.x.servers[1]', message);
    expectOnly(withX({ all: {} }), 'aggregates.x.servers.all', message);
    // Itself, too.
    expectOnly(withX(['x']), 'aggregates.x.servers[0]', '"x" is an aggregate; the members of an aggregate are servers of "mcpServers" (aggregates do not nest)');
  });

  test('a member listed twice', () => {
    expectOnly(withX(['files', 'github', 'files']), 'aggregates.x.servers[2]', 'server "files" is listed twice; a server is a member once');
  });

  test('an unknown server listed twice: reported as unknown, then as listed twice', () => {
    expect(problems(withX(['wiki', 'wiki']))).toEqual([
      { path: 'aggregates.x.servers[0]', message: 'unknown server "wiki"; members are servers of "mcpServers": "github", "database", "files"' },
      { path: 'aggregates.x.servers[1]', message: 'server "wiki" is listed twice; a server is a member once' },
    ]);
  });

  test.each([
    [[], 'must list at least one server'],
    [{}, 'must list at least one server'],
    ['github', 'must be a list of server names (["github", "files"]) or an object of them ({"github": {"prefix": "gh"}, "files": {}})'],
    [null, 'must be a list of server names (["github", "files"]) or an object of them ({"github": {"prefix": "gh"}, "files": {}})'],
  ])('servers: %p is an error', (servers, message) => {
    expectOnly(withX(servers), 'aggregates.x.servers', message);
  });

  test('servers is required', () => {
    const raw = base();
    raw.aggregates.x = { authTokens: ['dev'] };
    expectOnly(raw, 'aggregates.x.servers', 'is required (the names of its member servers)');
  });

  test('list entries are non-empty strings', () => {
    expect(problems(withX(['files', 5, '']))).toEqual([
      { path: 'aggregates.x.servers[1]', message: 'must be a string' },
      { path: 'aggregates.x.servers[2]', message: 'must not be empty' },
    ]);
  });

  test('a member\'s options are an object with only `prefix`', () => {
    expectOnly(withX({ files: true }), 'aggregates.x.servers.files', 'must be an object: {"prefix": "…"}, or {} for the defaults');
    expectOnly(withX({ files: { prefx: 'f' } }), 'aggregates.x.servers.files.prefx', 'unknown key "prefx"; did you mean "prefix"?');
    expectOnly(withX({ files: { prefix: 3 } }), 'aggregates.x.servers.files.prefix', 'must be a string');
  });
});

describe('prefixes', () => {
  test('a server name that is no prefix, in a list: the object form is shown, with a suggestion', () => {
    const raw = withX(['files', 'GitHub_Enterprise']);
    raw.mcpServers.GitHub_Enterprise = { url: 'http://ghe.test/mcp' };
    expectOnly(
      raw,
      'aggregates.x.servers[1]',
      `the server name cannot be its prefix (${PREFIX_RULE}); list the members as an object to give this one a "prefix": {"GitHub_Enterprise": {"prefix": "github-enterpris"}}`,
    );
  });

  test('a server name that is no prefix, in an object: set `prefix`', () => {
    const raw = withX({ files: {}, 'db.main': {} });
    raw.mcpServers['db.main'] = { url: 'http://db.test/mcp' };
    expectOnly(raw, 'aggregates.x.servers["db.main"]', `the server name cannot be its prefix (${PREFIX_RULE}); give this member a "prefix", such as "db-main"`);
    // Nothing to suggest from a name of digits.
    raw.mcpServers['42'] = { command: 'node' };
    raw.aggregates.x.servers = { 42: {} };
    expectOnly(raw, 'aggregates.x.servers["42"]', `the server name cannot be its prefix (${PREFIX_RULE}); give this member a "prefix"`);
    raw.aggregates.x.servers = ['42'];
    expectOnly(raw, 'aggregates.x.servers[0]', `the server name cannot be its prefix (${PREFIX_RULE}); list the members as an object to give this one a "prefix": {"42": {"prefix": "…"}}`);
  });

  test('a server name of 17 characters is too long to be a prefix', () => {
    const raw = withX(['abcdefghijklmnopq']);
    raw.mcpServers.abcdefghijklmnopq = { command: 'node' };
    expectOnly(raw, 'aggregates.x.servers[0]', `the server name cannot be its prefix (${PREFIX_RULE}); list the members as an object to give this one a "prefix": {"abcdefghijklmnopq": {"prefix": "abcdefghijklmnop"}}`);
    raw.aggregates.x.servers = { abcdefghijklmnopq: { prefix: 'abcdefghijklmnop' } };
    expect(resolve(raw).aggregates.get('x')!.members).toEqual([{ server: 'abcdefghijklmnopq', prefix: 'abcdefghijklmnop' }]);
  });

  test.each([
    ['GH', `invalid prefix "GH": ${PREFIX_RULE}; such as "gh"`],
    ['gh_x', `invalid prefix "gh_x": ${PREFIX_RULE}; such as "gh-x"`],
    ['2gh', `invalid prefix "2gh": ${PREFIX_RULE}; such as "gh"`],
    ['-gh', `invalid prefix "-gh": ${PREFIX_RULE}; such as "gh"`],
    ['', `invalid prefix "": ${PREFIX_RULE}`],
    ['abcdefghijklmnopq', `invalid prefix "abcdefghijklmnopq": ${PREFIX_RULE}; such as "abcdefghijklmnop"`],
    ['gh+x', `invalid prefix (not shown: it may be a secret): ${PREFIX_RULE}`],
  ])('an invalid prefix %p', (prefix, message) => {
    expectOnly(withX({ github: { prefix } }), 'aggregates.x.servers.github.prefix', message);
  });

  test('equal prefixes: reported once, at the later member', () => {
    expectOnly(
      withX({ github: { prefix: 'files' }, files: {} }),
      'aggregates.x.servers.files',
      'prefix "files" is also the prefix of server "github"; each member needs a prefix of its own',
    );
    expectOnly(
      withX({ github: { prefix: 'a' }, files: { prefix: 'a' } }),
      'aggregates.x.servers.files.prefix',
      'prefix "a" is also the prefix of server "github"; each member needs a prefix of its own',
    );
  });

  test('a prefix that starts another: reported once, at the longer one, in whichever order', () => {
    const message = 'prefix "gh-x" starts with the prefix "gh" of server "github"; no prefix may start another';
    expectOnly(withX({ github: { prefix: 'gh' }, files: { prefix: 'gh-x' } }), 'aggregates.x.servers.files.prefix', message);
    expectOnly(withX({ files: { prefix: 'gh-x' }, github: { prefix: 'gh' } }), 'aggregates.x.servers.files.prefix', message);
  });

  test('three members under one prefix: each later one reported once', () => {
    expect(problems(withX({ github: { prefix: 'p' }, database: { prefix: 'p' }, files: { prefix: 'p' } }))).toEqual([
      { path: 'aggregates.x.servers.database.prefix', message: 'prefix "p" is also the prefix of server "github"; each member needs a prefix of its own' },
      { path: 'aggregates.x.servers.files.prefix', message: 'prefix "p" is also the prefix of server "github"; each member needs a prefix of its own' },
    ]);
  });

  test('prefixes are compared within one aggregate only', () => {
    const raw = base();
    raw.aggregates.y = { servers: { files: { prefix: 'gh' } } };
    expect(resolve(raw).aggregates.get('y')!.members).toEqual([{ server: 'files', prefix: 'gh' }]);
  });
});

describe('separator, onUnavailable, authTokens', () => {
  test.each(['.', '', '/', '___', 1])('separator %p lists the allowed values', (separator) => {
    expectOnly(withX(['files'], { separator }), 'aggregates.x.separator', 'must be one of "__", "-", "--", "_"');
  });

  test('onUnavailable lists the allowed values', () => {
    expectOnly(withX(['files'], { onUnavailable: 'retry' }), 'aggregates.x.onUnavailable', 'must be one of "omit", "fail"');
  });

  test('an unknown token name: did you mean', () => {
    expectOnly(withX(['files'], { authTokens: ['dev', 'opps'] }), 'aggregates.x.authTokens[1]', 'unknown token name "opps"; did you mean "ops"?');
  });

  test('an unknown token name and nothing close: the tokens are listed', () => {
    expectOnly(withX(['files'], { authTokens: ['staging'] }), 'aggregates.x.authTokens[0]', 'unknown token name "staging"; defined tokens: "dev", "ops", "ci"');
  });

  test('an empty list: what leaving it out means', () => {
    expectOnly(withX(['files'], { authTokens: [] }), 'aggregates.x.authTokens', 'must list at least one token name (omit "authTokens" to allow every token allowed on one of its members)');
  });

  test('a token value where its name belongs: not quoted', () => {
    expectOnly(withX(['files'], { authTokens: [DEV_TOKEN] }), 'aggregates.x.authTokens[0]', 'is a token value, not a token name; use its name from proxy.auth.tokens');
  });

  test('unknown keys, with the likely one', () => {
    const raw = withX(['files']);
    raw.aggregates.x.authToken = ['dev'];
    expectOnly(raw, 'aggregates.x.authToken', 'unknown key "authToken"; did you mean "authTokens"?');
    const members = base();
    members.aggregates.x = { members: ['files'] };
    expect(problems(members)).toEqual([
      { path: 'aggregates.x.servers', message: 'is required (the names of its member servers)' },
      { path: 'aggregates.x.members', message: 'unknown key "members"; did you mean "servers"?' },
    ]);
    const top = base();
    top.aggregate = top.aggregates;
    delete top.aggregates;
    expectOnly(top, 'aggregate', 'unknown key "aggregate"; did you mean "aggregates"?');
  });

  test('aggregates and each aggregate are objects', () => {
    expectOnly({ ...base(), aggregates: ['all'] }, 'aggregates', 'must be an object');
    expectOnly(withX(undefined, {}), 'aggregates.x.servers', 'is required (the names of its member servers)');
    const raw = base();
    raw.aggregates.x = 'github,files';
    expectOnly(raw, 'aggregates.x', 'must be an object');
  });
});

describe('several problems at once', () => {
  test('one ConfigError lists every problem, schema and semantic ones, in document order', () => {
    const raw = base();
    raw.aggregates = {
      github: { servers: ['files'] },
      all: { servers: ['files', 'wiki', 'files', 'ops'], separator: '.', authTokens: [] },
      ops: { servers: { github: { prefix: 'GH' }, database: { prefix: 'db' }, files: { prefix: 'db-files' } }, onUnavailable: 'never', extra: 1 },
      'bad name': { servers: [] },
    };
    const err = (() => {
      try {
        resolveConfig(raw, ENV);
      } catch (e) {
        return e as ConfigError;
      }
      throw new Error('expected a ConfigError');
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.problems).toEqual([
      { path: 'aggregates.github', message: 'is also the name of a server; an aggregate is served on the routes of its name, so the two must differ' },
      { path: 'aggregates.all.servers[1]', message: 'unknown server "wiki"; members are servers of "mcpServers": "github", "database", "files"' },
      { path: 'aggregates.all.servers[2]', message: 'server "files" is listed twice; a server is a member once' },
      { path: 'aggregates.all.servers[3]', message: '"ops" is an aggregate; the members of an aggregate are servers of "mcpServers" (aggregates do not nest)' },
      { path: 'aggregates.all.separator', message: 'must be one of "__", "-", "--", "_"' },
      { path: 'aggregates.all.authTokens', message: 'must list at least one token name (omit "authTokens" to allow every token allowed on one of its members)' },
      { path: 'aggregates.ops.servers.github.prefix', message: `invalid prefix "GH": ${PREFIX_RULE}; such as "gh"` },
      { path: 'aggregates.ops.servers.files.prefix', message: 'prefix "db-files" starts with the prefix "db" of server "database"; no prefix may start another' },
      { path: 'aggregates.ops.onUnavailable', message: 'must be one of "omit", "fail"' },
      { path: 'aggregates.ops.extra', message: 'unknown key "extra"' },
      { path: 'aggregates["bad name"]', message: 'invalid aggregate name; use only letters, digits, ".", "_" and "-" (it is a URL path segment)' },
      { path: 'aggregates["bad name"].servers', message: 'must list at least one server' },
    ]);
    expect(err.message).toContain('12 problems');
  });

  test('problems of servers and of aggregates together', () => {
    const raw = withX(['files', 'wiki']);
    raw.mcpServers.files.authTokens = ['nope'];
    expect(problems(raw)).toEqual([
      { path: 'mcpServers.files.authTokens[0]', message: 'unknown token name "nope"; defined tokens: "dev", "ops", "ci"' },
      { path: 'aggregates.x.servers[1]', message: 'unknown server "wiki"; members are servers of "mcpServers": "github", "database", "files"' },
    ]);
  });
});

describe('secrets never appear in errors', () => {
  test('a token value pasted as a member: not quoted', () => {
    expectOnly(withX(['files', DEV_TOKEN]), 'aggregates.x.servers[1]', 'unknown server (not shown: it may be a secret); members are servers of "mcpServers": "github", "database", "files"');
    expect(problems(withX([DEV_TOKEN, DEV_TOKEN]))).toEqual([
      { path: 'aggregates.x.servers[0]', message: 'unknown server (not shown: it may be a secret); members are servers of "mcpServers": "github", "database", "files"' },
      { path: 'aggregates.x.servers[1]', message: 'a server (not shown: it may be a secret) is listed twice; a server is a member once' },
    ]);
  });

  test('a value read through $env, pasted as a member: not quoted', () => {
    const raw = withX([OPS_TOKEN]);
    expectOnly(raw, 'aggregates.x.servers[0]', 'unknown server (not shown: it may be a secret); members are servers of "mcpServers": "github", "database", "files"');
  });

  test('a member key that may be a secret: the problem is reported at `servers`, without the key', () => {
    expectOnly(withX({ files: {}, [API_KEY]: {} }), 'aggregates.x.servers', 'unknown server (not shown: it may be a secret); members are servers of "mcpServers": "github", "database", "files"');
    expect(problems(withX({ [API_KEY]: { prefx: 'a' } }))).toEqual([
      { path: 'aggregates.x.servers', message: 'a member whose name is not shown (it may be a secret): unknown key "prefx"; did you mean "prefix"?' },
      { path: 'aggregates.x.servers', message: 'unknown server (not shown: it may be a secret); members are servers of "mcpServers": "github", "database", "files"' },
    ]);
  });

  test('a name that may be a token is quoted when it can only be a typo', () => {
    // Not in any value of the config or the environment, short, a name's characters.
    expectOnly(withX({ fils: {} }), 'aggregates.x.servers.fils', 'unknown server "fils"; did you mean "files"?');
  });

  test('a prefix that is a secret: not quoted', () => {
    expectOnly(withX({ github: { prefix: DEV_TOKEN } }), 'aggregates.x.servers.github.prefix', `invalid prefix (not shown: it may be a secret): ${PREFIX_RULE}`);
    expectOnly(withX({ github: { prefix: OPS_TOKEN } }), 'aggregates.x.servers.github.prefix', `invalid prefix (not shown: it may be a secret): ${PREFIX_RULE}`);
  });
});
