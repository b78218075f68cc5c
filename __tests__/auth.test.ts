// CONTRACT §5 and §6: authentication, authorization order, Origin/CORS, health, log lines.
import request from 'supertest';
import { parseAuthorization, TokenIndex } from '../lib/auth/bearer';
import { createDefaultLogger, formatLine } from '../lib/logger';
import { captureLogger, configWith, DEV_TOKEN, PROD_TOKEN, startFront, startJsonRpcUpstream, type Front, type JsonRpcUpstream } from './helpers/servers';

const ping = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' });

describe('parseAuthorization', () => {
  it.each([
    ['Bearer abc', 'abc'],
    ['bearer abc', 'abc'],
    ['BEARER abc.def-ghi_jkl~+/==', 'abc.def-ghi_jkl~+/=='],
  ])('accepts %j', (header, token) => {
    expect(parseAuthorization(header)).toEqual({ token });
  });

  it.each([
    [undefined, 'missing_token'],
    ['', 'missing_token'],
    ['Basic dXNlcjpwYXNz', 'missing_token'],
    ['Bearer', 'malformed_header'],
    ['Bearer ', 'malformed_header'],
    ['Bearer  abc', 'malformed_header'],
    ['Bearer abc def', 'malformed_header'],
    ['Bearer abc\u0000', 'malformed_header'],
    ['Bearer abc\tdef', 'malformed_header'],
    ['Bearer ' + 'a'.repeat(5000), 'malformed_header'],
  ])('refuses %j as %s', (header, reason) => {
    expect(parseAuthorization(header)).toEqual({ reason });
  });
});

describe('TokenIndex', () => {
  const index = new TokenIndex(new Map([['dev', 'aaa'], ['prod', 'bbb'], ['alias', 'aaa']]));

  it('resolves a value to its name, the first one configured on duplicates', () => {
    expect(index.match('bbb')).toBe('prod');
    expect(index.match('aaa')).toBe('dev');
  });

  it('matches nothing for unknown values, prefixes and extensions', () => {
    expect(index.match('bb')).toBeUndefined();
    expect(index.match('bbbb')).toBeUndefined();
    expect(index.match('')).toBeUndefined();
  });
});

describe('log line format', () => {
  it('matches CONTRACT §6', () => {
    const line = formatLine('INFO', 'auth successful', { token: 'dev', client_ip: '10.0.0.5', server: 'database' }, new Date('2024-01-15T10:30:45.123Z'));
    expect(line).toBe('2024-01-15T10:30:45.123Z INFO auth successful token=dev client_ip=10.0.0.5 server=database');
  });

  it('writes the lines of one event-loop turn in one write, in order', async () => {
    const writes: string[] = [];
    const logger = createDefaultLogger({ write: (chunk: string) => writes.push(chunk) } as unknown as NodeJS.WritableStream);
    logger.info('auth successful', { token: 'dev' });
    logger.warn('auth failed', { reason: 'invalid_token' });
    expect(writes).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes).toHaveLength(1);
    expect(writes[0]).toMatch(/^\S+Z INFO auth successful token=dev\n\S+Z WARN auth failed reason=invalid_token\n$/);
  });

  it('quotes values that would break the line', () => {
    const line = formatLine('WARN', 'auth failed', { server: 'a b\nc=d' });
    expect(line).toMatch(/ server="a b\\nc=d"$/);
  });
});

describe('router authentication and authorization', () => {
  let upstream: JsonRpcUpstream;
  let front: Front;
  const logger = captureLogger();

  beforeAll(async () => {
    upstream = await startJsonRpcUpstream();
    front = await startFront(
      configWith({
        open: { url: upstream.url },
        devonly: { url: upstream.url, authTokens: ['dev'] },
      }),
      { logger },
    );
  });
  afterAll(async () => {
    await front.close();
    await upstream.close();
  });
  beforeEach(() => logger.entries.splice(0));

  const post = (path: string) => request(front.url).post(path).set('Content-Type', 'application/json').set('Accept', 'application/json, text/event-stream');

  it('answers /health without authentication and without secrets', async () => {
    const res = await request(front.url).get('/health');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'ok', service: 'mcp-front', name: 'Test Proxy' });
    expect(JSON.stringify(res.body)).not.toContain(DEV_TOKEN);
  });

  it('401 without a token, with the realm and no error code', async () => {
    const res = await post('/open/mcp').send(ping);
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="Test Proxy"');
    expect(res.body.error.message).toMatch(/bearer token is required/);
  });

  it('401 with error="invalid_token" for a wrong token, and the token is not logged', async () => {
    const res = await post('/open/mcp').set('Authorization', 'Bearer not-a-real-token-value').send(ping);
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer realm="Test Proxy", error="invalid_token"/);
    expect(res.headers['content-type']).toMatch(/application\/json/);
    expect(logger.entries).toContainEqual({
      level: 'warn',
      message: 'auth failed',
      fields: { reason: 'invalid_token', client_ip: expect.any(String), server: 'open' },
    });
    expect(logger.text()).not.toContain('not-a-real-token-value');
  });

  it('ignores tokens in the query string', async () => {
    const res = await post(`/open/mcp?access_token=${DEV_TOKEN}&token=${DEV_TOKEN}`).send(ping);
    expect(res.status).toBe(401);
  });

  it('authenticates before looking up the server: unknown server without token is 401', async () => {
    const res = await post('/nope/mcp').send(ping);
    expect(res.status).toBe(401);
  });

  it('404 for an unknown server with a valid token', async () => {
    const res = await post('/nope/mcp').set('Authorization', `Bearer ${DEV_TOKEN}`).send(ping);
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe(-32000);
  });

  it('404 for encoded path tricks', async () => {
    for (const path of ['/..%2fopen/mcp', '/open%2f..%2fopen/mcp', '/%2e%2e/mcp', '/%ZZ/mcp']) {
      const res = await post(path).set('Authorization', `Bearer ${DEV_TOKEN}`).send(ping);
      expect(res.status).toBe(404);
    }
  });

  it('403 when the token may not use the server', async () => {
    const res = await post('/devonly/mcp').set('Authorization', `Bearer ${PROD_TOKEN}`).send(ping);
    expect(res.status).toBe(403);
    expect(res.body.error.message).toMatch(/may not use server "devonly"/);
    expect(logger.entries).toContainEqual({
      level: 'warn',
      message: 'auth failed',
      fields: { reason: 'forbidden', token: 'prod', client_ip: expect.any(String), server: 'devonly' },
    });
  });

  it('passes an allowed token, logs "auth successful" with the token name, and never forwards Authorization', async () => {
    upstream.requests.splice(0);
    const res = await post('/devonly/mcp').set('Authorization', `bearer ${DEV_TOKEN}`).set('Cookie', 'session=secret').send(ping);
    expect(res.status).toBe(200);
    expect(logger.entries).toContainEqual({
      level: 'info',
      message: 'auth successful',
      fields: { token: 'dev', client_ip: expect.any(String), server: 'devonly' },
    });
    expect(upstream.requests).toHaveLength(1);
    expect(upstream.requests[0].headers.authorization).toBeUndefined();
    expect(upstream.requests[0].headers.cookie).toBeUndefined();
    expect(logger.text()).not.toContain(DEV_TOKEN);
  });

  it('405 with Allow for a wrong method on a known route', async () => {
    const res = await request(front.url).put('/open/mcp').set('Authorization', `Bearer ${DEV_TOKEN}`).send(ping);
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('POST, GET, DELETE');
  });

  it('leaves paths that are not its routes to the host app', async () => {
    front.app.get('/open/status', (_req, res) => {
      res.json({ host: true });
    });
    const res = await request(front.url).get('/open/status');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ host: true });
  });
});

describe('Origin and CORS', () => {
  let upstream: JsonRpcUpstream;

  beforeAll(async () => {
    upstream = await startJsonRpcUpstream();
  });
  afterAll(() => upstream.close());

  it('without a list: same-origin passes, another origin gets 403, no Origin passes', async () => {
    const front = await startFront(configWith({ up: { url: upstream.url } }));
    try {
      const auth = `Bearer ${DEV_TOKEN}`;
      const other = await request(front.url).post('/up/mcp').set('Authorization', auth).set('Origin', 'http://evil.example').send(ping);
      expect(other.status).toBe(403);
      const same = await request(front.url).post('/up/mcp').set('Authorization', auth).set('Origin', front.origin).set('Content-Type', 'application/json').send(ping);
      expect(same.status).toBe(200);
      const none = await request(front.url).post('/up/mcp').set('Authorization', auth).set('Content-Type', 'application/json').send(ping);
      expect(none.status).toBe(200);
    } finally {
      await front.close();
    }
  });

  it('with a list: preflight is answered before authentication, listed origins get CORS headers', async () => {
    const front = await startFront(configWith({ up: { url: upstream.url } }, { cors: { allowedOrigins: ['https://app.example'] } }));
    try {
      const preflight = await request(front.url)
        .options('/up/mcp')
        .set('Origin', 'https://app.example')
        .set('Access-Control-Request-Method', 'POST')
        .set('Access-Control-Request-Headers', 'authorization, content-type, mcp-session-id');
      expect(preflight.status).toBe(204);
      expect(preflight.headers['access-control-allow-origin']).toBe('https://app.example');
      for (const h of ['Authorization', 'Content-Type', 'Mcp-Session-Id', 'MCP-Protocol-Version', 'Last-Event-ID', 'Mcp-Method', 'Mcp-Name']) {
        expect(preflight.headers['access-control-allow-headers']).toContain(h);
      }
      const denied = await request(front.url).options('/up/mcp').set('Origin', 'https://evil.example').set('Access-Control-Request-Method', 'POST');
      expect(denied.status).toBe(403);
      // With a list, only the list counts: a rebinding page is "same-origin" with itself.
      const rebound = await request(front.url).post('/up/mcp').set('Origin', front.origin).set('Authorization', `Bearer ${DEV_TOKEN}`).send(ping);
      expect(rebound.status).toBe(403);

      const unauth = await request(front.url).post('/up/mcp').set('Origin', 'https://app.example').send(ping);
      expect(unauth.status).toBe(401);
      expect(unauth.headers['access-control-expose-headers']).toContain('WWW-Authenticate');
      const ok = await request(front.url)
        .post('/up/mcp')
        .set('Origin', 'https://app.example')
        .set('Authorization', `Bearer ${DEV_TOKEN}`)
        .set('Content-Type', 'application/json')
        .send(ping);
      expect(ok.status).toBe(200);
      expect(ok.headers['access-control-allow-origin']).toBe('https://app.example');
      expect(ok.headers['access-control-expose-headers']).toContain('Mcp-Session-Id');
    } finally {
      await front.close();
    }
  });

  it('uses req.ip for client_ip, honouring trust proxy', async () => {
    const logger = captureLogger();
    const front = await startFront(configWith({ up: { url: upstream.url } }), { logger, configure: (app) => app.set('trust proxy', true) });
    try {
      await request(front.url).post('/up/mcp').set('X-Forwarded-For', '10.0.0.5').set('Authorization', `Bearer ${DEV_TOKEN}`).set('Content-Type', 'application/json').send(ping);
      expect(logger.entries).toContainEqual({ level: 'info', message: 'auth successful', fields: { token: 'dev', client_ip: '10.0.0.5', server: 'up' } });
    } finally {
      await front.close();
    }
  });
});
