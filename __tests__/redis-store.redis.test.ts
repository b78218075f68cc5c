// The Redis counter store (README: Running several instances) against a real redis-server, and the
// auth throttle shared through it by two routers. `npm run test:redis` (needs `redis-server`).
import { once } from 'node:events';
import Redis from 'ioredis';
import request from 'supertest';
import { RedisStore } from '../lib/store';
import { captureLogger, configWith, DEV_TOKEN, startFront, startJsonRpcUpstream, type Front, type JsonRpcUpstream } from './helpers/servers';
import { startRedis, type RedisServer } from './helpers/redis';

const PASSWORD = 'S3CRET-redis-password-q7w8e9';
const WAIT_MS = 15_000;

/** Polls an asynchronous condition that no event announces (a key's expiry inside Redis). */
async function eventually(condition: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

let redis: RedisServer;
let admin: Redis;
const stores: RedisStore[] = [];

function store(options: { keyPrefix?: string; url?: string; logger?: ReturnType<typeof captureLogger> } = {}): RedisStore {
  const s = new RedisStore({ url: options.url ?? redis.url, keyPrefix: options.keyPrefix, logger: options.logger ?? captureLogger() });
  stores.push(s);
  return s;
}

/** A store whose connection is up, so that a test's first call goes to Redis. */
async function readyStore(options: Parameters<typeof store>[0] = {}): Promise<RedisStore> {
  const s = store(options);
  await eventually(async () => (await s.get('warm-up')) === undefined && isRedisUp(s), 'the store to connect');
  return s;
}

function isRedisUp(s: RedisStore): boolean {
  return (s as unknown as { client: { status: string } }).client.status === 'ready';
}

beforeAll(async () => {
  redis = await startRedis({ password: PASSWORD });
  admin = new Redis(redis.url);
});

afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  if (admin.status === 'ready') await admin.flushall();
});

afterAll(async () => {
  admin.disconnect();
  await redis.stop();
});

describe('RedisStore', () => {
  it('is atomic per window: concurrent increments from two clients count every hit once', async () => {
    const [a, b] = await Promise.all([readyStore(), readyStore()]);
    const hits = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 ? a : b).increment('burst', 60_000)));
    expect(hits.map((h) => h.count).sort((x, y) => x - y)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect((await a.get('burst'))?.count).toBe(200);
    expect(Number(await admin.get('mcp-front:burst'))).toBe(200);
  });

  it('starts a window with the first hit, does not extend it, and forgets it when it ends', async () => {
    const s = await readyStore();
    expect(await s.get('w')).toBeUndefined();
    const first = await s.increment('w', 60_000);
    expect(first.count).toBe(1);
    expect(first.resetInMs).toBeGreaterThan(0);
    expect(first.resetInMs).toBeLessThanOrEqual(60_000);
    // Once some of the window has passed, a hit does not restart it.
    await eventually(async () => (await admin.pttl('mcp-front:w')) < first.resetInMs - 50, 'some of the window to pass');
    const second = await s.increment('w', 60_000);
    expect(second.count).toBe(2);
    expect(second.resetInMs).toBeLessThan(first.resetInMs - 50);

    await s.increment('short', 200);
    await eventually(async () => (await s.get('short')) === undefined, 'the 200 ms window to end');
    expect((await s.increment('short', 200)).count).toBe(1);
  });

  it('prefixes its keys (mcp-front: by default), so deployments can share one Redis', async () => {
    const plain = await readyStore();
    const teamA = await readyStore({ keyPrefix: 'team-a:' });
    await plain.increment('k', 60_000);
    await teamA.increment('k', 60_000);
    await teamA.increment('k', 60_000);
    expect(Number(await admin.get('mcp-front:k'))).toBe(1);
    expect(Number(await admin.get('team-a:k'))).toBe(2);
    expect(await admin.pttl('team-a:k')).toBeGreaterThan(0);
    expect((await plain.get('k'))?.count).toBe(1);
  });

  it('serves on in memory while Redis is down, warns once without the password, and recovers', async () => {
    const logger = captureLogger();
    const s = await readyStore({ logger });
    expect((await s.increment('ip', 60_000)).count).toBe(1);

    const port = redis.port;
    let connectionErrors = 0;
    (s as unknown as { client: Redis }).client.on('error', () => connectionErrors++);
    admin.disconnect();
    await redis.stop();
    // Every call answers (counting in memory) while Redis is gone.
    for (let i = 1; i <= 5; i++) expect((await s.increment('ip', 60_000)).count).toBe(i);
    // Several failed reconnections, still one WARN.
    await eventually(async () => connectionErrors >= 3, 'three failed reconnections');
    for (let i = 6; i <= 10; i++) expect((await s.increment('ip', 60_000)).count).toBe(i);

    redis = await startRedis({ port, password: PASSWORD });
    admin = new Redis(redis.url);
    await eventually(async () => logger.entries.some((e) => e.message === 'store recovered'), 'the INFO store recovered');
    // Back in Redis (which lost its data with the restart: no persistence).
    expect((await s.increment('ip', 60_000)).count).toBe(1);
    expect(Number(await admin.get('mcp-front:ip'))).toBe(1);

    const warns = logger.entries.filter((e) => e.message.startsWith('store unavailable'));
    expect(warns).toHaveLength(1);
    expect(warns[0]).toMatchObject({ level: 'warn', fields: { store: 'redis', target: `redis://127.0.0.1:${port}` } });
    expect(logger.entries.filter((e) => e.message === 'store recovered')).toHaveLength(1);
    expect(logger.text()).not.toContain(PASSWORD);
  });

  it('a quick restart, with no connection error at all: still one WARN when a call counts in memory, one INFO when Redis is back', async () => {
    // A Redis that is back before the client's next reconnection attempt never causes an `error`
    // event. This client reconnects only when the test says so, after the restart: that case,
    // whatever the machine's speed.
    const client = new Redis(redis.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 5_000, retryStrategy: () => null });
    try {
      await once(client, 'ready');
      let connectionErrors = 0;
      client.on('error', () => connectionErrors++);
      const logger = captureLogger();
      const s = new RedisStore({ client, logger });
      const outageLines = () => logger.entries.filter((e) => e.message.startsWith('store unavailable') || e.message === 'store recovered');
      expect((await s.increment('quick', 60_000)).count).toBe(1);

      const port = redis.port;
      const closed = once(client, 'end');
      admin.disconnect();
      await redis.stop();
      await closed;
      // Counted in memory, from zero: Redis's count of 1 is out of reach.
      for (let i = 1; i <= 3; i++) expect((await s.increment('quick', 60_000)).count).toBe(i);
      expect(outageLines()).toMatchObject([{ level: 'warn', fields: { store: 'redis', target: 'client', error: 'not connected (end)' } }]);

      redis = await startRedis({ port, password: PASSWORD });
      admin = new Redis(redis.url);
      const ready = once(client, 'ready');
      await client.connect();
      await ready;
      // The restarted Redis has no data (no persistence): its count starts again.
      expect((await s.increment('quick', 60_000)).count).toBe(1);
      expect(Number(await admin.get('mcp-front:quick'))).toBe(1);
      expect(connectionErrors).toBe(0);
      expect(outageLines().map((e) => [e.level, e.message])).toEqual([
        ['warn', 'store unavailable; counting in memory until it is back'],
        ['info', 'store recovered'],
      ]);
    } finally {
      client.disconnect();
    }
  });

  it('once closed (a reload moved to another store), a late call counts in memory and reports no outage', async () => {
    const logger = captureLogger();
    const s = await readyStore({ logger });
    await s.close();
    expect((await s.increment('late', 60_000)).count).toBe(1);
    expect(logger.entries.filter((e) => e.message.startsWith('store unavailable'))).toEqual([]);
  });

  it('does not stall a request on a hung Redis: the call is bounded and counts in memory', async () => {
    const logger = captureLogger();
    const s = await readyStore({ logger });
    redis.child.kill('SIGSTOP');
    try {
      const hit = await s.increment('hung', 60_000);
      expect(hit.count).toBe(1);
      expect(logger.entries.filter((e) => e.message.startsWith('store unavailable'))).toHaveLength(1);
    } finally {
      redis.child.kill('SIGCONT');
    }
    // The connection never dropped, so no event says Redis is back: a later call probes it.
    await eventually(async () => {
      await s.get('hung');
      return logger.entries.some((e) => e.message === 'store recovered');
    }, 'recovery after SIGCONT');
    await s.increment('after', 60_000);
    expect(Number(await admin.get('mcp-front:after'))).toBe(1);
  });
});

describe('proxy.store.redis: the auth throttle shared by two instances', () => {
  const CLIENT = '203.0.113.9';
  let upstream: JsonRpcUpstream;
  const fronts: Front[] = [];

  beforeAll(async () => {
    upstream = await startJsonRpcUpstream();
  });

  afterEach(async () => {
    await Promise.all(fronts.splice(0).map((f) => f.close()));
  });

  afterAll(() => upstream.close());

  async function instance(): Promise<Front> {
    const config = configWith(
      { api: { url: upstream.url } },
      { authThrottle: { maxFailures: 2, window: '1m' }, store: { redis: { url: { $env: 'REDIS_URL' } } } },
    );
    const front = await startFront(config, { env: { REDIS_URL: redis.url }, configure: (app) => app.set('trust proxy', true) });
    fronts.push(front);
    return front;
  }

  const post = (f: Front, token: string) =>
    request(f.url)
      .post('/api/mcp')
      .set('X-Forwarded-For', CLIENT)
      .set('Authorization', `Bearer ${token}`)
      .set('Accept', 'application/json, text/event-stream')
      .send({ jsonrpc: '2.0', id: 1, method: 'ping' });

  it('counts failures once across instances: two guesses on A, and B refuses the third', async () => {
    const [a, b] = await Promise.all([instance(), instance()]);
    expect((await post(a, 'guess-1')).status).toBe(401);
    expect((await post(a, 'guess-2')).status).toBe(401);
    const refused = await post(b, DEV_TOKEN);
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toMatch(/^\d+$/);
    expect(refused.body).toMatchObject({ jsonrpc: '2.0', error: { code: -32000 } });
    expect((await post(a, DEV_TOKEN)).status).toBe(429);
  });
});
