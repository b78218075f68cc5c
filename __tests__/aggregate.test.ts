// Aggregates (README: Aggregates): the reference server over stdio and over Streamable HTTP as two
// members of one endpoint, through the official SDK client on both client transports.
import { once } from 'node:events';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { CreateMessageRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { connectClient, postModern, textOf, type ClientTransportKind } from './helpers/clients';
import { liveSessionCount } from '../lib/mcp-front';
import { captureLogger, configWith, DEV_TOKEN, EVERYTHING, PROD_TOKEN, startEverything, startFront, type Front, type Upstream } from './helpers/servers';

jest.setTimeout(60_000);

let remote: Upstream;
let front: Front;
let logger: ReturnType<typeof captureLogger>;

beforeAll(async () => {
  remote = await startEverything('streamableHttp');
  logger = captureLogger();
  front = await startFront(
    {
      ...configWith({
        local: { command: process.execPath, args: [EVERYTHING, 'stdio'] },
        remote: { url: `${remote.origin}/mcp` },
      }),
      aggregates: { all: { servers: { local: { prefix: 'loc' }, remote: { prefix: 'rem' } } } },
    },
    { logger },
  );
});

afterAll(async () => {
  await front?.close();
  await remote?.close();
});

describe.each<ClientTransportKind>(['streamable', 'sse'])('aggregate over %s', (kind) => {
  let client: Client;
  beforeAll(async () => {
    client = await connectClient(front.url, 'all', kind, DEV_TOKEN, { capabilities: { sampling: {} } });
  });
  afterAll(async () => {
    await client?.close();
  });

  test('initialize answers as mcp-front/<aggregate>', () => {
    expect(client.getServerVersion()?.name).toBe('mcp-front/all');
    expect(client.getServerCapabilities()?.tools).toEqual({ listChanged: true });
  });

  test('tools of both members, prefixed', async () => {
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name);
    expect(names).toContain('loc__echo');
    expect(names).toContain('rem__echo');
    expect(names.every((n) => n.startsWith('loc__') || n.startsWith('rem__'))).toBe(true);
  });

  test('a call reaches its member with the member’s own name', async () => {
    const a = await client.callTool({ name: 'loc__echo', arguments: { message: 'hi local' } });
    expect(textOf(a)).toContain('hi local');
    const b = await client.callTool({ name: 'rem__echo', arguments: { message: 'hi remote' } });
    expect(textOf(b)).toContain('hi remote');
  });

  test('an unknown prefix is an unknown tool, named as sent', async () => {
    await expect(client.callTool({ name: 'nope__echo', arguments: {} })).rejects.toThrow(/Unknown tool: nope__echo/);
  });

  test('resources are prefixed and readable', async () => {
    const { resources } = await client.listResources();
    expect(resources.length).toBeGreaterThan(0);
    expect(resources.every((r) => r.uri.startsWith('loc+') || r.uri.startsWith('rem+'))).toBe(true);
    const first = resources.find((r) => r.uri.startsWith('rem+'))!;
    const read = await client.readResource({ uri: first.uri });
    expect(read.contents[0].uri).toBe(first.uri);
  });

  test('sampling requests from both members at once get answers routed back', async () => {
    const seen: unknown[] = [];
    client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
      seen.push(req.params);
      return { model: 'test', role: 'assistant', content: { type: 'text', text: 'sampled' } };
    });
    const { tools } = await client.listTools();
    const sampling = tools.filter((t) => t.name.endsWith('__trigger-sampling-request')).map((t) => t.name);
    expect(sampling.length).toBe(2);
    const results = await Promise.all(sampling.map((name) => client.callTool({ name, arguments: { prompt: 'p', maxTokens: 5 } })));
    for (const r of results) expect(textOf(r)).toContain('sampled');
    expect(seen.length).toBe(2);
  });
});

describe('2026-07-28 stateless requests on an aggregate', () => {
  const url = () => `${front.url}/all/mcp`;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const json = async (res: Response) => (await res.json()) as { id: unknown; result: any; error: any };

  test('server/discover is the aggregate’s own', async () => {
    const res = await postModern(url(), DEV_TOKEN, 1, 'server/discover');
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body.id).toBe(1);
    expect(body.result.supportedVersions).toEqual(['2026-07-28']);
    expect(body.result._meta['io.modelcontextprotocol/serverInfo'].name).toBe('mcp-front/all');
  });

  test('lists are merged and a call reaches its member under its own name', async () => {
    const list = await json(await postModern(url(), DEV_TOKEN, 2, 'tools/list'));
    const names = (list.result.tools as { name: string }[]).map((t) => t.name);
    expect(names).toContain('loc__echo');
    expect(names).toContain('rem__echo');
    const call = await json(await postModern(url(), DEV_TOKEN, 3, 'tools/call', { name: 'rem__echo', arguments: { message: 'modern' } }));
    expect(call.id).toBe(3);
    expect(textOf(call.result)).toContain('modern');
  });

  test('Mcp-Name must carry the prefixed name the body has', async () => {
    const res = await postModern(url(), DEV_TOKEN, 4, 'tools/call', { name: 'rem__echo', arguments: { message: 'x' } }, { name: 'echo' });
    expect(res.status).toBe(400);
    expect((await json(res)).error.code).toBe(-32020);
  });

  test('requests of one token share one registry session and its member sessions', async () => {
    await postModern(url(), DEV_TOKEN, 5, 'tools/list');
    const before = liveSessionCount(front.router);
    const calls = await Promise.all([6, 7, 8].map((id) => postModern(url(), DEV_TOKEN, id, 'tools/call', { name: 'loc__echo', arguments: { message: `m${id}` } }).then(json)));
    expect(calls.map((c) => textOf(c.result))).toEqual(['Echo: m6', 'Echo: m7', 'Echo: m8']);
    expect(liveSessionCount(front.router)).toBe(before);
  });
});

describe('the client’s notifications/initialized and what follows it', () => {
  // A remote member that is slow to take `notifications/initialized` (a POST of its own): the
  // client's next request must not overtake it, or a server that sets itself up on that
  // notification answers the request half set up.
  test('a remote member receives it before the client’s next request', async () => {
    const order: string[] = [];
    const slow = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.method !== 'POST') return void res.writeHead(req.method === 'DELETE' ? 200 : 405).end();
        const message = JSON.parse(Buffer.concat(chunks).toString()) as { id?: number; method: string };
        const json = (result: unknown) => {
          const body = JSON.stringify({ jsonrpc: '2.0', id: message.id, result });
          res.writeHead(200, { 'Content-Type': 'application/json', 'Mcp-Session-Id': 'slow-1' }).end(body);
        };
        if (message.method === 'initialize') return json({ protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'slow', version: '1' } });
        if (message.method === 'notifications/initialized') {
          // Taken late: anything sent after it by the client is already here by then.
          return void setTimeout(() => {
            order.push('initialized');
            res.writeHead(202).end();
          }, 300);
        }
        order.push(message.method);
        json({ tools: [{ name: 'ready', inputSchema: { type: 'object' } }] });
      });
    });
    slow.listen(0, '127.0.0.1');
    await once(slow, 'listening');
    const port = (slow.address() as net.AddressInfo).port;
    const f = await startFront({ ...configWith({ slow: { url: `http://127.0.0.1:${port}/mcp` } }), aggregates: { one: { servers: ['slow'] } } });
    try {
      const c = await connectClient(f.url, 'one', 'streamable', DEV_TOKEN);
      const { tools } = await c.listTools();
      expect(tools.map((t) => t.name)).toEqual(['slow__ready']);
      expect(order).toEqual(['initialized', 'tools/list']);
      await c.close();
    } finally {
      await f.close();
      slow.closeAllConnections();
      slow.close();
    }
  });
});

describe('what initialize says, and names too long for some clients', () => {
  const MEMBER = path.join(__dirname, 'fixtures', 'aggregate-member.js');
  const LONG = 'x'.repeat(62);

  test('instructions of the visible members under their prefixes, capabilities any member has; one WARN per long name', async () => {
    const log = captureLogger();
    const f = await startFront(
      {
        ...configWith({
          alpha: { command: process.execPath, args: [MEMBER, '--name=alpha', `--extra-tool=${LONG}`] },
          beta: { command: process.execPath, args: [MEMBER, '--name=beta'], authTokens: ['dev'] },
        }),
        aggregates: { all: { servers: { alpha: { prefix: 'a' }, beta: { prefix: 'b' } } } },
      },
      { logger: log },
    );
    try {
      const dev = await connectClient(f.url, 'all', 'streamable', DEV_TOKEN);
      expect(dev.getInstructions()).toBe('## a__* (server "alpha")\nAsk alpha.\n\n## b__* (server "beta")\nAsk beta.');
      expect(dev.getServerCapabilities()).toEqual({
        tools: { listChanged: true },
        prompts: { listChanged: true },
        resources: { listChanged: true, subscribe: true },
        completions: {},
        logging: {},
      });
      // prod may not use beta: its instructions are not shown to prod.
      const prod = await connectClient(f.url, 'all', 'streamable', PROD_TOKEN);
      expect(prod.getInstructions()).toBe('## a__* (server "alpha")\nAsk alpha.');
      const long = `a__${LONG}`;
      for (const c of [dev, prod, dev]) expect((await c.listTools()).tools.map((t) => t.name)).toContain(long);
      const warned = log.entries.filter((e) => e.message === 'aggregate name over 64 characters');
      expect(warned.map((e) => e.fields)).toEqual([{ aggregate: 'all', server: 'alpha', name: long, length: 65 }]);
      await dev.close();
      await prod.close();
    } finally {
      await f.close();
    }
  });
});
