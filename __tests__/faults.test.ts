// Faults of upstreams and children: each gives its own client a prompt, correct error, and leaves
// every other session working (CONTRACT §7).
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { openEventStream } from './fixtures/remote-streams';
import { connectClient, INITIALIZE } from './helpers/clients';
import { configWith, DEV_TOKEN, startEverything, startFront, type Front, type Upstream } from './helpers/servers';

const auth = { Authorization: `Bearer ${DEV_TOKEN}` };
const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(url, {
    method: 'POST',
    headers: { ...auth, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', ...headers },
    body: JSON.stringify(body),
  });

/** An upstream that misbehaves on purpose, by path. */
async function startFaultyUpstream() {
  const server = http.createServer((req, res) => {
    req.resume();
    if (req.url === '/reset/sse') {
      // A legacy SSE upstream that announces its endpoint, then drops the connection.
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.write('event: endpoint\ndata: /message?sessionId=x\n\n');
      setImmediate(() => res.socket?.destroy());
      return;
    }
    if (req.url === '/reset-mid-stream/mcp') {
      // A Streamable HTTP upstream that starts an event stream, then dies mid-answer.
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Mcp-Session-Id': 'upstream-1' });
      res.write('event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":1}}\n\n');
      setImmediate(() => res.socket?.destroy());
      return;
    }
    if (req.url === '/error/mcp') {
      res.writeHead(500, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32603, message: 'upstream broke' }, id: 1 }));
      return;
    }
    res.writeHead(404).end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe('faults', () => {
  let faulty: Awaited<ReturnType<typeof startFaultyUpstream>>;
  let healthy: Upstream;
  let front: Front;

  beforeAll(async () => {
    [faulty, healthy] = await Promise.all([startFaultyUpstream(), startEverything('streamableHttp')]);
    front = await startFront(
      configWith({
        resetSse: { url: `${faulty.origin}/reset/sse` },
        resetStream: { url: `${faulty.origin}/reset-mid-stream/mcp` },
        broken: { url: `${faulty.origin}/error/mcp` },
        crashing: { command: process.execPath, args: ['-e', 'process.exit(7)'], maxSessions: 2 },
        healthy: { url: `${healthy.origin}/mcp` },
      }),
    );
  });
  afterAll(async () => {
    await front?.close();
    await Promise.all([faulty?.close(), healthy?.close()]);
  });

  it('keeps a healthy session working through every fault below', async () => {
    const survivor = await connectClient(front.url, 'healthy', 'streamable', DEV_TOKEN);
    try {
      // An SSE upstream that resets: the client's stream ends instead of hanging.
      const stream = await openEventStream(`${front.url}/resetSse/sse`, { headers: auth });
      expect(stream.status).toBe(200);
      await stream.ended;

      // A Streamable upstream that resets mid-answer: the client's response ends too.
      const midStream = await openEventStream(`${front.url}/resetStream/mcp`, {
        method: 'POST',
        headers: { ...auth, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
        body: JSON.stringify(INITIALIZE),
      });
      expect(midStream.status).toBe(200);
      expect((await midStream.next()).data).toContain('notifications/progress');
      await midStream.ended;

      // An upstream 500 with a JSON-RPC error passes through as the upstream's own answer.
      const broken = await post(`${front.url}/broken/mcp`, INITIALIZE);
      expect(broken.status).toBe(500);
      expect(await broken.json()).toMatchObject({ error: { message: 'upstream broke' } });

      // A stdio server in a crash loop: every attempt fails promptly, children are reaped (so
      // maxSessions: 2 is never exhausted into 503s), over both transports.
      for (let i = 0; i < 6; i++) {
        const viaMcp = await post(`${front.url}/crashing/mcp`, INITIALIZE);
        expect(viaMcp.status).toBe(502);
        expect(await viaMcp.json()).toMatchObject({ jsonrpc: '2.0', error: { message: expect.stringMatching(/exit|code 7/i) } });
        const viaSse = await openEventStream(`${front.url}/crashing/sse`, { headers: auth });
        if (viaSse.status === 200) await viaSse.ended;
        else expect(viaSse.status).toBe(502);
      }

      const echoed = await survivor.callTool({ name: 'echo', arguments: { message: 'unharmed' } });
      expect(JSON.stringify(echoed)).toContain('unharmed');
    } finally {
      await survivor.close();
    }
  });
});
