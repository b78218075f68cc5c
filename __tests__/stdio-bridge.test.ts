// CONTRACT §4, §5: a stdio server (the reference server in stdio mode) relayed over both HTTP
// transports: round trips, progress, sampling, notifications, isolation, environment hygiene.
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { CreateMessageRequestSchema, LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { connectClient, type ClientTransportKind, textOf } from './helpers/clients';
import { captureLogger, configWith, DEV_TOKEN, EVERYTHING, PROD_TOKEN, startFront, type Front } from './helpers/servers';

const SECRET_ENV = 'MCP_FRONT_STDIO_TEST_SECRET';
const SECRET_VALUE = 'env-token-value-4242-should-never-leak';

describe('stdio bridge with the reference server', () => {
  let front: Front;
  const logger = captureLogger();
  const clients: Client[] = [];

  beforeAll(async () => {
    process.env[SECRET_ENV] = SECRET_VALUE;
    const config = configWith({
      everything: {
        command: process.execPath,
        args: [EVERYTHING, 'stdio'],
        env: { MCP_FRONT_CONFIGURED: 'configured-value' },
      },
    });
    // A token whose value comes from the proxy's environment: exactly what must not reach children.
    config.proxy.auth.tokens!.ops = { $env: SECRET_ENV };
    front = await startFront(config, { logger });
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });
  afterAll(async () => {
    await front.close();
    delete process.env[SECRET_ENV];
  });

  const connect = async (kind: ClientTransportKind, options: Parameters<typeof connectClient>[4] = {}, token = DEV_TOKEN) => {
    const client = await connectClient(front.url, 'everything', kind, token, options);
    clients.push(client);
    return client;
  };

  describe.each<ClientTransportKind>(['sse', 'streamable'])('over %s', (kind) => {
    it('relays round trips: tools/list, echo, get-sum', async () => {
      const client = await connect(kind);
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining(['echo', 'get-sum', 'get-env']));
      expect(textOf(await client.callTool({ name: 'echo', arguments: { message: `hello ${kind}` } }))).toBe(`Echo: hello ${kind}`);
      expect(textOf(await client.callTool({ name: 'get-sum', arguments: { a: 2, b: 40 } }))).toMatch(/\b42\b/);
    });

    it('streams progress notifications before the result', async () => {
      const client = await connect(kind);
      const seen: string[] = [];
      const result = await client.callTool(
        { name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 3 } },
        undefined,
        { onprogress: (p) => seen.push(`progress ${p.progress}/${p.total}`) },
      );
      seen.push('result');
      expect(textOf(result)).toMatch(/completed/i);
      if (kind === 'streamable') {
        expect(seen).toEqual(['progress 1/3', 'progress 2/3', 'progress 3/3', 'result']);
      } else {
        // The SDK client runs notification handlers a microtask late but settles responses at
        // once, and its EventSource dispatches every event of a chunk synchronously: a last
        // progress event that shares a TCP segment with the result is dropped by the client
        // ("unknown token"). The proxy relays it (the child writes both within a millisecond).
        expect(seen.slice(0, 2)).toEqual(['progress 1/3', 'progress 2/3']);
        expect(seen.at(-1)).toBe('result');
      }
    });

    it('relays a sampling request to the client and its answer back to the server', async () => {
      const client = await connect(kind, { capabilities: { sampling: {} } });
      const prompts: string[] = [];
      client.setRequestHandler(CreateMessageRequestSchema, async (request) => {
        prompts.push(JSON.stringify(request.params.messages[0].content));
        return { model: 'test-model', role: 'assistant', content: { type: 'text', text: `sampled via ${kind}` } };
      });
      const result = await client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'what is 6x7?' } });
      expect(prompts).toEqual([expect.stringContaining('what is 6x7?')]);
      expect(textOf(result)).toContain(`sampled via ${kind}`);
    });

    it('relays server notifications (logging)', async () => {
      const client = await connect(kind);
      const logged = new Promise<{ level: string }>((resolve) => {
        client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => resolve(n.params));
      });
      await client.callTool({ name: 'toggle-simulated-logging', arguments: {} });
      expect((await logged).level).toEqual(expect.any(String));
    });

    it('gives the child a minimal environment plus its configured env, never token values', async () => {
      const client = await connect(kind);
      const env = JSON.parse(textOf(await client.callTool({ name: 'get-env', arguments: {} }))) as Record<string, string>;
      expect(env.MCP_FRONT_CONFIGURED).toBe('configured-value');
      expect(env.PATH).toBe(process.env.PATH);
      expect(env[SECRET_ENV]).toBeUndefined();
      const dump = JSON.stringify(env);
      for (const secret of [SECRET_VALUE, DEV_TOKEN, PROD_TOKEN]) expect(dump).not.toContain(secret);
      // Only the SDK's allowlist and what the config adds.
      expect(Object.keys(env).filter((k) => !['HOME', 'LOGNAME', 'PATH', 'SHELL', 'TERM', 'USER', 'MCP_FRONT_CONFIGURED'].includes(k))).toEqual([]);
    });
  });

  it('gives every session its own process: ten concurrent sessions, no cross-talk', async () => {
    const before = logger.entries.length;
    const kinds: ClientTransportKind[] = ['sse', 'streamable'];
    const sessions = await Promise.all(
      Array.from({ length: 10 }, async (_, i) => ({ i, client: await connect(kinds[i % 2], {}, i < 5 ? DEV_TOKEN : SECRET_VALUE) })),
    );
    const answers = await Promise.all(
      sessions.flatMap(({ i, client }) =>
        Array.from({ length: 5 }, async (_, j) => ({
          expected: `Echo: session-${i}-call-${j}`,
          got: textOf(await client.callTool({ name: 'echo', arguments: { message: `session-${i}-call-${j}` } })),
        })),
      ),
    );
    for (const { expected, got } of answers) expect(got).toBe(expected);
    const pids = logger.entries.slice(before).filter((e) => e.message === 'session started' && e.fields.upstream === 'stdio').map((e) => e.fields.pid);
    expect(new Set(pids).size).toBe(10);
  });

  it('never writes a token value into a log line', () => {
    const text = logger.text();
    for (const secret of [SECRET_VALUE, DEV_TOKEN, PROD_TOKEN]) expect(text).not.toContain(secret);
  });
});
