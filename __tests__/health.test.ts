// `GET /health` (README: Routes; Monitoring; Running several instances): open to everyone without
// naming a server or a secret; with a valid token it adds the instance id, the config fingerprint,
// and the state of each server and aggregate that token may use.
import { scryptSync } from 'node:crypto';
import request from 'supertest';
import { canonicalConfig, FINGERPRINT_SALT } from '../lib/config/fingerprint';
import { resolveConfig } from '../lib/config';
import { MemoryStore } from '../lib/store';
import { aggregateState, healthHook } from '../lib/observability/health';
import { auditHook } from '../lib/observability/audit';
import { Pipeline } from '../lib/pipeline/pipeline';
import type { Exchange } from '../lib/pipeline/hooks';
import type { McpFrontConfig } from '../lib/types';
import { INITIALIZE } from './helpers/clients';
import { configWith, DEV_TOKEN, PROD_TOKEN, REFUSING_ORIGIN, startFront, startJsonRpcUpstream, type Front, type JsonRpcUpstream } from './helpers/servers';

let upstream: JsonRpcUpstream;
const fronts: Front[] = [];

beforeAll(async () => {
  upstream = await startJsonRpcUpstream();
});

afterEach(async () => {
  await Promise.all(fronts.splice(0).map((f) => f.close()));
});

afterAll(() => upstream.close());

function config(extra: Partial<McpFrontConfig['proxy']> = {}, tokens = { dev: DEV_TOKEN, prod: PROD_TOKEN }): McpFrontConfig {
  const c = configWith({ api: { url: upstream.url } }, extra);
  c.proxy.auth.tokens = tokens;
  return c;
}

async function front(c: McpFrontConfig, options: Parameters<typeof startFront>[1] = {}): Promise<Front> {
  const f = await startFront(c, options);
  fronts.push(f);
  return f;
}

const health = (f: Front, token?: string) => {
  const r = request(f.url).get('/health');
  return token === undefined ? r : r.set('Authorization', `Bearer ${token}`);
};

describe('GET /health', () => {
  it('without a token: status and name only, no fingerprint, no instance id', async () => {
    const f = await front(config({ instanceId: 'web-1' }));
    const res = await health(f);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok', service: 'mcp-front', name: 'Test Proxy', servers: 1 });
  });

  it('with a valid token: adds the instance id and the config fingerprint', async () => {
    const f = await front(config({ instanceId: 'web-1' }));
    const res = await health(f, DEV_TOKEN);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      status: 'ok',
      service: 'mcp-front',
      name: 'Test Proxy',
      servers: { api: { state: 'unknown' } },
      instanceId: 'web-1',
      configFingerprint: expect.stringMatching(/^[0-9a-f]{32}$/),
    });
  });

  it('options.instanceId wins over proxy.instanceId', async () => {
    const f = await front(config({ instanceId: 'from-file' }), { instanceId: 'from-code' });
    expect((await health(f, DEV_TOKEN)).body.instanceId).toBe('from-code');
  });

  it('a wrong token gets the open answer, not a 401, and counts as a failed authentication', async () => {
    const f = await front(config({ authThrottle: { maxFailures: 1, window: '1m' } }));
    const res = await health(f, 'not-a-token');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok', service: 'mcp-front', name: 'Test Proxy', servers: 1 });
    // The throttle now refuses this client, on /health (no extras) and on the MCP routes.
    expect((await health(f, DEV_TOKEN)).body.configFingerprint).toBeUndefined();
    expect((await request(f.url).post('/api/mcp').set('Authorization', `Bearer ${DEV_TOKEN}`).send({})).status).toBe(429);
  });
});

describe('GET /health with aggregates', () => {
  /**
   * `api` answers, `down` refuses connections, `prodonly` is for `prod` alone; `all` omits a
   * member that is down, `strict` fails, `ops` is for `prod` alone. No aggregate session is
   * needed: an aggregate's state is its members', which their own routes' traffic sets.
   */
  function aggregated(): McpFrontConfig {
    const c = config();
    c.mcpServers = { api: { url: upstream.url }, down: { url: `${REFUSING_ORIGIN}/mcp` }, prodonly: { url: upstream.url, authTokens: ['prod'] } };
    c.aggregates = {
      all: { servers: ['api', 'down', 'prodonly'] },
      strict: { servers: ['api', 'down'], onUnavailable: 'fail' },
      ops: { servers: ['api'], authTokens: ['prod'] },
    };
    return c;
  }
  const post = async (f: Front, server: string) => (await request(f.url).post(`/${server}/mcp`).set('Authorization', `Bearer ${DEV_TOKEN}`).set('Accept', 'application/json, text/event-stream').send(INITIALIZE)).status;

  it('without a token: counts them as it counts servers, naming none', async () => {
    const f = await front(aggregated());
    const res = await health(f);
    expect(res.body).toEqual({ status: 'ok', service: 'mcp-front', name: 'Test Proxy', servers: 3, aggregates: 3 });
  });

  it('with a token: the aggregates it may open, each with the members it sees there, stated from theirs', async () => {
    const f = await front(aggregated());
    expect((await health(f, DEV_TOKEN)).body.aggregates).toEqual({
      all: { state: 'unknown', members: { api: 'unknown', down: 'unknown' } },
      strict: { state: 'unknown', members: { api: 'unknown', down: 'unknown' } },
    });
    expect(await post(f, 'api')).toBe(200);
    expect((await health(f, DEV_TOKEN)).body.aggregates).toEqual({
      all: { state: 'up', members: { api: 'up', down: 'unknown' } },
      strict: { state: 'up', members: { api: 'up', down: 'unknown' } },
    });
    expect(await post(f, 'down')).toBe(502);
    const dev = (await health(f, DEV_TOKEN)).body;
    expect(dev.aggregates).toEqual({
      all: { state: 'degraded', members: { api: 'up', down: 'down' } },
      // `onUnavailable: "fail"`: a session could not open.
      strict: { state: 'down', members: { api: 'up', down: 'down' } },
    });
    // A member's failure is told once, under `servers`.
    expect(dev.servers.down).toEqual({ state: 'down', lastFailure: { at: expect.any(String), kind: 'refused' } });
    expect((await health(f, PROD_TOKEN)).body.aggregates).toEqual({
      all: { state: 'degraded', members: { api: 'up', down: 'down', prodonly: 'unknown' } },
      strict: { state: 'down', members: { api: 'up', down: 'down' } },
      ops: { state: 'up', members: { api: 'up' } },
    });
  });
});

describe('the health module', () => {
  // Reading every answer costs the passthrough a parse per response (bench/README.md): the module
  // asks for answers only while they can change what it reports.
  it('looks at answers only while a server is not known to be up', () => {
    const hook = healthHook();
    const base = { server: 'api', token: 'dev', sessionId: undefined, route: 'streamable', upstream: 'streamable-http', protocolVersion: undefined } as const;
    const ex = { ...base, method: 'tools/call', id: 1, startedAt: 0 } as unknown as Exchange;
    expect(hook.appliesTo!(base)).toBe(true);
    hook.answer!(ex, { jsonrpc: '2.0', id: 1, result: {} }, 1);
    expect(hook.report(['api']).api.state).toBe('up');
    expect(hook.appliesTo!(base)).toBe(false);
    hook.upstreamError!({ server: 'api', code: 'ECONNREFUSED' } as never);
    expect(hook.report(['api']).api.state).toBe('down');
    expect(hook.appliesTo!(base)).toBe(true);
    hook.answer!(ex, { jsonrpc: '2.0', id: 1, result: {} }, 1);
    expect(hook.report(['api']).api).toEqual({ state: 'up', lastFailure: { at: expect.any(String), kind: 'refused' } });
    expect(hook.appliesTo!({ ...base, server: 'other' })).toBe(true);
  });

  it('with the audit off and the server up, no module reads the answers: the passthrough relays them unread', () => {
    const quiet = { info() {}, warn() {}, error() {}, debug() {} };
    let audit = false;
    const health = healthHook();
    const pipeline = new Pipeline([auditHook(quiet, () => audit), health], quiet);
    const base = { server: 'api', token: 'dev', sessionId: undefined, route: 'streamable', upstream: 'streamable-http', protocolVersion: undefined } as const;
    expect(pipeline.observes(base)).toBe(true);
    health.sessionStarted!({ server: 'api', token: 'dev', sessionId: 's', kind: 'streamable', upstream: 'streamable-http' } as never);
    expect(pipeline.observes(base)).toBe(false);
    audit = true;
    expect(pipeline.observes(base)).toBe(true);
  });

  it('an aggregate’s session makes no server up: the aggregate is stated from its members', () => {
    const hook = healthHook();
    hook.sessionStarted!({ id: 's', server: 'all', token: 'dev', kind: 'streamable', upstream: 'aggregate', fields: {} });
    expect(hook.report(['all'])).toEqual({ all: { state: 'unknown' } });
    expect(hook.reportAggregate(['api'], 'omit')).toEqual({ state: 'unknown', members: { api: 'unknown' } });
  });

  it.each([
    [[], 'omit', 'unknown'],
    [['unknown', 'unknown'], 'omit', 'unknown'],
    [['up', 'unknown'], 'omit', 'up'],
    [['up', 'up'], 'fail', 'up'],
    [['up', 'down'], 'omit', 'degraded'],
    [['unknown', 'down'], 'omit', 'degraded'],
    [['up', 'down'], 'fail', 'down'],
    [['down', 'down'], 'omit', 'down'],
  ] as const)('members %j with onUnavailable %s: the aggregate is %s', (members, onUnavailable, state) => {
    expect(aggregateState(members, onUnavailable)).toBe(state);
  });
});

describe('configFingerprint', () => {
  const fingerprint = async (f: Front) => (await health(f, DEV_TOKEN)).body.configFingerprint as string;

  it('is equal on instances with the same config, whatever their instance ids', async () => {
    const [a, b] = await Promise.all([front(config({ instanceId: 'a' })), front(config({ instanceId: 'b' }))]);
    expect(await fingerprint(a)).toBe(await fingerprint(b));
  });

  it('changes with any change of the config, a token value included, and follows a reload', async () => {
    const f = await front(config());
    const first = await fingerprint(f);
    await f.router.reload(config({}, { dev: DEV_TOKEN, prod: `${PROD_TOKEN}-rotated` }));
    const rotated = await fingerprint(f);
    expect(rotated).not.toBe(first);
    await f.router.reload(config({ keepAlive: '20s' }));
    const other = await fingerprint(f);
    expect(new Set([first, rotated, other]).size).toBe(3);
    await f.router.reload(config());
    expect(await fingerprint(f)).toBe(first);
  });

  it('is scrypt (N=2^15, r=8, p=1) over the whole resolved config with the documented salt', async () => {
    const c = config({ instanceId: 'x' });
    const f = await front(c);
    const expected = scryptSync(canonicalConfig(resolveConfig(c, {})), FINGERPRINT_SALT, 16, {
      N: 2 ** 15,
      r: 8,
      p: 1,
      maxmem: 64 * 1024 * 1024,
    }).toString('hex');
    expect(await fingerprint(f)).toBe(expected);
    expect(canonicalConfig(resolveConfig(c, {}))).toContain(PROD_TOKEN);
    expect(FINGERPRINT_SALT).toBe('mcp-front config fingerprint v1');
  });
});

describe('options.store', () => {
  it('is where the auth throttle counts: two routers given one store count failures once', async () => {
    const store = new MemoryStore();
    const c = config({ authThrottle: { maxFailures: 2, window: '1m' } });
    const trust = { configure: (app: import('express').Express) => app.set('trust proxy', true), store };
    const [a, b] = await Promise.all([front(c, trust), front(c, trust)]);
    const post = (f: Front, token: string) =>
      request(f.url).post('/api/mcp').set('X-Forwarded-For', '203.0.113.5').set('Authorization', `Bearer ${token}`).send({});
    expect((await post(a, 'guess-1')).status).toBe(401);
    expect((await post(b, 'guess-2')).status).toBe(401);
    expect((await post(a, DEV_TOKEN)).status).toBe(429);
    expect((await post(b, DEV_TOKEN)).status).toBe(429);
    expect(store.size).toBe(1);
  });
});
