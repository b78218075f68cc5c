// The configuration of permissions per token (README: Permissions per token) and limits per
// token (README: Limits per token): defaults, resolved values, and each problem with its path.
import { resolveConfig } from '../lib/config';
import { ConfigError } from '../lib/config/config-error';

type Json = any;
const DEV = 'S3CRET-dev-token-a1b2c3';

function base(): Json {
  return {
    proxy: { auth: { kind: 'bearer_token', tokens: { 'db-read': DEV, 'db-write': 'S3CRET-write-x9', ops: 'S3CRET-ops-y8' } } },
    mcpServers: {
      database: { url: 'http://db.test/mcp', authTokens: ['db-read', 'db-write'] },
      local: { command: 'node' },
    },
  };
}

function problems(raw: unknown): { path: string; message: string }[] {
  try {
    resolveConfig(raw, {});
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const list = (err as ConfigError).problems.map((p) => ({ path: p.path, message: p.message }));
    for (const p of list) expect(p.message).not.toContain('S3CRET');
    return list;
  }
  throw new Error('expected a ConfigError');
}

describe('permissions', () => {
  it('default: none', () => {
    expect(resolveConfig(base(), {}).servers.get('database')!.permissions).toBeUndefined();
  });

  it('resolves entries by token name and "*", an omitted kind unrestricted', () => {
    const raw = base();
    raw.mcpServers.database.permissions = { 'db-read': { tools: ['query', 'list_*'], prompts: [] }, '*': { tools: ['*'] } };
    const p = resolveConfig(raw, {}).servers.get('database')!.permissions!;
    expect(p.get('db-read')).toEqual({ tools: ['query', 'list_*'], prompts: [] });
    expect(p.get('*')).toEqual({ tools: ['*'] });
  });

  it('changing permissions keeps the server’s sessions (no new transport): enforced per message', () => {
    // Checked through the resolved form only here; reload behaviour is in permissions.test.ts.
    const raw = base();
    raw.mcpServers.local.permissions = { '*': { tools: [] } };
    expect(resolveConfig(raw, {}).servers.get('local')!.permissions!.get('*')).toEqual({ tools: [] });
  });

  it.each([
    [(r: Json) => (r.mcpServers.database.permissions = { 'db-raed': { tools: [] } }), 'mcpServers.database.permissions.db-raed', 'unknown token name "db-raed"; did you mean "db-read"?'],
    [(r: Json) => (r.mcpServers.database.permissions = { ops: { tools: [] } }), 'mcpServers.database.permissions.ops', 'token "ops" is not in this server\'s "authTokens", so it can never use these permissions'],
    [(r: Json) => (r.mcpServers.database.permissions = { '*': { tool: [] } }), 'mcpServers.database.permissions["*"].tool', 'unknown key "tool"; did you mean "tools"?'],
    [(r: Json) => (r.mcpServers.database.permissions = { '*': { tools: 'query' } }), 'mcpServers.database.permissions["*"].tools', 'must be an array'],
    [(r: Json) => (r.mcpServers.database.permissions = { '*': { tools: [''] } }), 'mcpServers.database.permissions["*"].tools[0]', 'must not be empty'],
    [(r: Json) => (r.mcpServers.database.permissions = { '*': { tools: ['a', 'a'] } }), 'mcpServers.database.permissions["*"].tools[1]', 'duplicate of entry 0'],
    [(r: Json) => (r.mcpServers.database.permission = {}), 'mcpServers.database.permission', 'unknown key "permission"; did you mean "permissions"?'],
  ])('%#: problem at its path', (change, path, message) => {
    const raw = base();
    change(raw);
    expect(problems(raw)).toContainEqual({ path, message: message });
  });

  it('a key that may be a secret is quoted neither in the message nor in the path', () => {
    const raw = base();
    raw.mcpServers.database.permissions = { [DEV]: { tool: [] } };
    raw.proxy.limits = { [DEV]: { maxSessions: 0 } };
    const found = problems(raw);
    expect(found).toContainEqual({ path: 'mcpServers.database.permissions', message: expect.stringContaining('(not shown: it may be a secret)') });
    expect(found).toContainEqual({ path: 'proxy.limits', message: expect.stringContaining('(not shown: it may be a secret)') });
    for (const p of found) expect(p.path).not.toContain('S3CRET');
  });
});

describe('limits', () => {
  it('default: none', () => {
    expect(resolveConfig(base(), {}).limits).toBeUndefined();
  });

  it('resolves durations, each field as configured', () => {
    const raw = base();
    raw.proxy.limits = { ops: { requests: { max: 600, window: '1m' }, maxSessions: 5 }, '*': { maxSessions: 50 } };
    const limits = resolveConfig(raw, {}).limits!;
    expect(limits.get('ops')).toEqual({ requests: { max: 600, windowMs: 60_000 }, maxSessions: 5 });
    expect(limits.get('*')).toEqual({ maxSessions: 50 });
  });

  it.each([
    [(r: Json) => (r.proxy.limits = { opps: { maxSessions: 1 } }), 'proxy.limits.opps', 'unknown token name "opps"; did you mean "ops"?'],
    [(r: Json) => (r.proxy.limits = { ops: { requests: { max: 5 } } }), 'proxy.limits.ops.requests.window', 'is required'],
    [(r: Json) => (r.proxy.limits = { ops: { requests: { max: 0, window: '1s' } } }), 'proxy.limits.ops.requests.max', 'must be a positive integer'],
    [(r: Json) => (r.proxy.limits = { ops: { requests: { max: 1, window: '0s' } } }), 'proxy.limits.ops.requests.window', 'must be greater than 0'],
    [(r: Json) => (r.proxy.limits = { ops: { maxSession: 1 } }), 'proxy.limits.ops.maxSession', 'unknown key "maxSession"; did you mean "maxSessions"?'],
    [(r: Json) => (r.proxy.limits = { ops: { maxSessions: 1.5 } }), 'proxy.limits.ops.maxSessions', 'must be an integer'],
    [(r: Json) => (r.proxy.limit = {}), 'proxy.limit', 'unknown key "limit"; did you mean "limits"?'],
  ])('%#: problem at its path', (change, path, message) => {
    const raw = base();
    change(raw);
    expect(problems(raw)).toContainEqual({ path, message: message });
  });
});
