// `proxy.authThrottle`: failed-authentication throttling per client IP (README "Security model").
import request from 'supertest';
import { AuthThrottle, authThrottleFor } from '../lib/auth/throttle';
import type { McpFrontConfig } from '../lib/types';
import { captureLogger, configWith, DEV_TOKEN, PROD_TOKEN, startFront, startJsonRpcUpstream, type Front, type JsonRpcUpstream } from './helpers/servers';

/** A clock the test moves by hand, so windows pass without sleeping. */
function fakeClock(start = 1_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

describe('AuthThrottle', () => {
  const settings = { maxFailures: 3, windowMs: 60_000 };

  it('refuses an IP after maxFailures failures, until its window ends', async () => {
    const clock = fakeClock();
    const throttle = new AuthThrottle(settings, { now: clock.now });
    for (let i = 0; i < 3; i++) {
      expect(await throttle.check('10.0.0.1')).toEqual({ throttled: false });
      await throttle.recordFailure('10.0.0.1');
    }
    expect(await throttle.check('10.0.0.1')).toEqual({ throttled: true, retryAfterSeconds: 60, firstRefusal: true });

    clock.advance(45_500);
    // Rounded up: retrying after a rounded-down value would still be refused.
    expect(await throttle.check('10.0.0.1')).toEqual({ throttled: true, retryAfterSeconds: 15, firstRefusal: false });
    clock.advance(14_400);
    expect(await throttle.check('10.0.0.1')).toEqual({ throttled: true, retryAfterSeconds: 1, firstRefusal: false });

    clock.advance(100);
    expect(await throttle.check('10.0.0.1')).toEqual({ throttled: false });
  });

  it('is a fixed window from the first failure: later failures do not extend it', async () => {
    const clock = fakeClock();
    const throttle = new AuthThrottle(settings, { now: clock.now });
    await throttle.recordFailure('10.0.0.1');
    clock.advance(59_000);
    await throttle.recordFailure('10.0.0.1');
    await throttle.recordFailure('10.0.0.1');
    expect(await throttle.check('10.0.0.1')).toMatchObject({ throttled: true, retryAfterSeconds: 1 });
    clock.advance(1_000);
    expect(await throttle.check('10.0.0.1')).toEqual({ throttled: false });
    // The next failure opens a fresh window with a fresh count, and a fresh log line.
    await throttle.recordFailure('10.0.0.1');
    await throttle.recordFailure('10.0.0.1');
    expect(await throttle.check('10.0.0.1')).toEqual({ throttled: false });
    await throttle.recordFailure('10.0.0.1');
    expect(await throttle.check('10.0.0.1')).toEqual({ throttled: true, retryAfterSeconds: 60, firstRefusal: true });
  });

  it('counts each IP on its own', async () => {
    const throttle = new AuthThrottle({ maxFailures: 1, windowMs: 1_000 }, { now: fakeClock().now });
    await throttle.recordFailure('10.0.0.1');
    expect((await throttle.check('10.0.0.1')).throttled).toBe(true);
    expect((await throttle.check('10.0.0.2')).throttled).toBe(false);
    expect((await throttle.check('::ffff:10.0.0.1')).throttled).toBe(false);
  });

  it('never throttles or tracks an unknown address', async () => {
    const throttle = new AuthThrottle({ maxFailures: 1, windowMs: 1_000 }, { now: fakeClock().now });
    await throttle.recordFailure(undefined);
    await throttle.recordFailure(undefined);
    expect(await throttle.check(undefined)).toEqual({ throttled: false });
    expect(throttle.size).toBe(0);
  });

  it('forgets ended windows without a timer', async () => {
    const clock = fakeClock();
    const throttle = new AuthThrottle({ maxFailures: 5, windowMs: 1_000 }, { now: clock.now });
    for (let i = 0; i < 100; i++) await throttle.recordFailure(`10.0.${i >> 8}.${i & 255}`);
    clock.advance(500);
    await throttle.recordFailure('10.1.0.1');
    expect(throttle.size).toBe(101);
    clock.advance(500);
    expect((await throttle.check('10.9.9.9')).throttled).toBe(false);
    expect(throttle.size).toBe(1);
    clock.advance(500);
    await throttle.check('10.9.9.9');
    expect(throttle.size).toBe(0);
  });

  it('tracks at most maxEntries IPs, evicting the oldest window', async () => {
    const throttle = new AuthThrottle({ maxFailures: 1, windowMs: 60_000 }, { now: fakeClock().now, maxEntries: 3 });
    for (const ip of ['a', 'b', 'c', 'd']) await throttle.recordFailure(ip);
    expect(throttle.size).toBe(3);
    expect((await throttle.check('a')).throttled).toBe(false);
    for (const ip of ['b', 'c', 'd']) expect((await throttle.check(ip)).throttled).toBe(true);
  });

  it('holds 10,000 IPs by default', async () => {
    const throttle = new AuthThrottle({ maxFailures: 1, windowMs: 60_000 }, { now: fakeClock().now });
    for (let i = 0; i < 10_050; i++) await throttle.recordFailure(`ip-${i}`);
    expect(throttle.size).toBe(10_000);
    expect((await throttle.check('ip-49')).throttled).toBe(false);
    expect((await throttle.check('ip-50')).throttled).toBe(true);
  });

  it('authThrottleFor keeps the previous throttle only when the settings are unchanged', async () => {
    const first = authThrottleFor({ maxFailures: 3, windowMs: 1_000 }, undefined);
    expect(first).toBeInstanceOf(AuthThrottle);
    expect(authThrottleFor({ maxFailures: 3, windowMs: 1_000 }, first)).toBe(first);
    const changed = authThrottleFor({ maxFailures: 4, windowMs: 1_000 }, first);
    expect(changed).not.toBe(first);
    expect(changed?.settings).toEqual({ maxFailures: 4, windowMs: 1_000 });
    expect(authThrottleFor({ maxFailures: 4, windowMs: 2_000 }, changed)).not.toBe(changed);
    expect(authThrottleFor(undefined, first)).toBeUndefined();
  });
});

describe('proxy.authThrottle over HTTP', () => {
  const ATTACKER = '203.0.113.7';
  const NEIGHBOUR = '198.51.100.2';
  let upstream: JsonRpcUpstream;
  let upstreamUrl: string;
  let front: Front | undefined;

  beforeAll(async () => {
    upstream = await startJsonRpcUpstream();
    upstreamUrl = upstream.url;
  });

  afterEach(async () => {
    await front?.close();
    front = undefined;
  });

  afterAll(() => upstream.close());

  function config(authThrottle?: McpFrontConfig['proxy']['authThrottle']): McpFrontConfig {
    return configWith({ api: { url: upstreamUrl }, devOnly: { url: upstreamUrl, authTokens: ['dev'] } }, authThrottle ? { authThrottle } : {});
  }

  async function start(authThrottle?: McpFrontConfig['proxy']['authThrottle']) {
    const logger = captureLogger();
    // `trust proxy` makes req.ip the X-Forwarded-For address, so one test can be several clients.
    front = await startFront(config(authThrottle), { logger, configure: (app) => app.set('trust proxy', true) });
    return { front, logger };
  }

  const ping = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' });
  const post = (f: Front, ip: string, token: string, server = 'api') =>
    request(f.url)
      .post(`/${server}/mcp`)
      .set('X-Forwarded-For', ip)
      .set('Authorization', `Bearer ${token}`)
      .set('Content-Type', 'application/json')
      .set('Accept', 'application/json, text/event-stream')
      .send(ping);

  it('answers 429 with Retry-After after maxFailures 401s, logs once, and leaves other IPs alone', async () => {
    const { front: f, logger } = await start({ maxFailures: 3, window: '1m' });

    for (let i = 0; i < 3; i++) expect((await post(f, ATTACKER, `guess-${i}`)).status).toBe(401);

    // Even the right token is refused: the throttle runs before any token comparison.
    const refused = await post(f, ATTACKER, DEV_TOKEN);
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers['retry-after']);
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThanOrEqual(59);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(refused.headers['content-type']).toMatch(/^application\/json/);
    expect(refused.body).toEqual({ jsonrpc: '2.0', error: { code: -32000, message: expect.stringMatching(/^Too Many Requests/) }, id: null });
    expect(refused.headers['www-authenticate']).toBeUndefined();
    expect((await post(f, ATTACKER, 'guess-again')).status).toBe(429);

    const throttledLines = logger.entries.filter((e) => e.message === 'auth throttled');
    expect(throttledLines).toEqual([{ level: 'warn', message: 'auth throttled', fields: { client_ip: ATTACKER, retry_after: retryAfter } }]);
    // Refused requests are not authentication attempts, so they are not logged as such.
    expect(logger.entries.filter((e) => e.message === 'auth failed')).toHaveLength(3);

    // Another client: a success works, and its own failures are counted from zero.
    expect((await post(f, NEIGHBOUR, DEV_TOKEN)).status).toBe(200);
    expect((await post(f, NEIGHBOUR, 'wrong')).status).toBe(401);
    expect((await post(f, NEIGHBOUR, PROD_TOKEN)).status).toBe(200);
    // /health needs no authentication and is never throttled.
    expect((await request(f.url).get('/health').set('X-Forwarded-For', ATTACKER)).status).toBe(200);
    expect(logger.text()).not.toContain(DEV_TOKEN);
  });

  it('counts only 401s: 403 and 404 do not throttle', async () => {
    const { front: f } = await start({ maxFailures: 2, window: '1m' });
    for (let i = 0; i < 5; i++) {
      expect((await post(f, ATTACKER, PROD_TOKEN, 'devOnly')).status).toBe(403);
      expect((await post(f, ATTACKER, DEV_TOKEN, 'nope')).status).toBe(404);
    }
    expect((await post(f, ATTACKER, DEV_TOKEN)).status).toBe(200);
    // A request without a token guesses nothing (and is how every OAuth client starts): not counted.
    for (let i = 0; i < 5; i++) expect((await request(f.url).post('/api/mcp').set('X-Forwarded-For', ATTACKER).send(ping)).status).toBe(401);
    expect((await post(f, ATTACKER, DEV_TOKEN)).status).toBe(200);
    // A malformed header is a guess, like a wrong token.
    expect((await post(f, ATTACKER, 'a b')).status).toBe(401);
    expect((await post(f, ATTACKER, 'a b')).status).toBe(401);
    expect((await post(f, ATTACKER, DEV_TOKEN)).status).toBe(429);
  });

  it('is off by default', async () => {
    const { front: f, logger } = await start();
    for (let i = 0; i < 30; i++) expect((await post(f, ATTACKER, `guess-${i}`)).status).toBe(401);
    expect((await post(f, ATTACKER, DEV_TOKEN)).status).toBe(200);
    expect(logger.entries.some((e) => e.message === 'auth throttled')).toBe(false);
  });

  it('keeps its counts across a reload with the same setting, and starts afresh when it changes', async () => {
    const { front: f } = await start({ maxFailures: 1, window: '1m' });
    expect((await post(f, ATTACKER, 'guess')).status).toBe(401);
    expect((await post(f, ATTACKER, DEV_TOKEN)).status).toBe(429);

    await f.router.reload(config({ maxFailures: 1, window: 60_000 }));
    expect((await post(f, ATTACKER, DEV_TOKEN)).status).toBe(429);

    await f.router.reload(config({ maxFailures: 2, window: '1m' }));
    expect((await post(f, ATTACKER, DEV_TOKEN)).status).toBe(200);

    await f.router.reload(config());
    for (let i = 0; i < 5; i++) expect((await post(f, ATTACKER, `guess-${i}`)).status).toBe(401);
  });
});
