// Streams opened with an access token end at its expiry (README: OAuth 2.1), one timer per expiry
// rather than per request: event streams are ended, plain answers left to finish, and a response
// that closes is forgotten, its timer with it once no response of that expiry is open.
import { once } from 'node:events';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StreamDeadlines } from '../lib/auth/stream-deadlines';

/** A server whose handler hands each response to the test; `get()` opens a request and resolves with its response. */
async function server() {
  const responses: ServerResponse[] = [];
  const waiting: ((res: ServerResponse) => void)[] = [];
  const srv = http.createServer((_req, res) => {
    const next = waiting.shift();
    if (next) next(res);
    else responses.push(res);
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as AddressInfo;
  const agent = new http.Agent({ keepAlive: false });
  return {
    /** A request; resolves with the server's response object and a promise of the client's response. */
    async open(): Promise<{ res: ServerResponse; answer: Promise<IncomingMessage> }> {
      const req = http.get({ host: '127.0.0.1', port, agent });
      const answer = once(req, 'response').then(([m]) => m as IncomingMessage);
      answer.catch(() => undefined);
      req.on('error', () => undefined);
      const res = responses.shift() ?? (await new Promise<ServerResponse>((resolve) => waiting.push(resolve)));
      return { res, answer };
    },
    async close() {
      srv.closeAllConnections();
      srv.close();
      agent.destroy();
    },
  };
}

/**
 * An open event stream. Its headers go to `writeHead` alone, as the SSE writer gives them when
 * nothing set a header before (no `Origin`, a host app without `X-Powered-By`), or — `viaSetHeader`
 * — after another header was set.
 */
function eventStream(res: ServerResponse, viaSetHeader = false): void {
  if (viaSetHeader) res.setHeader('Vary', 'Origin');
  res.writeHead(200, { 'Content-Type': 'text/event-stream' });
  res.write(': open\n\n');
}

/** Resolves when the client's side of a streamed answer ends, however it ends. */
async function ended(answer: Promise<IncomingMessage>): Promise<void> {
  const message = await answer;
  message.resume();
  // Cut, not ended: the client sees `aborted`, then `close`.
  message.on('error', () => undefined);
  if (!message.closed) await new Promise((resolve) => message.once('close', resolve));
}

let srv: Awaited<ReturnType<typeof server>>;
beforeEach(async () => {
  srv = await server();
});
afterEach(async () => {
  await srv.close();
});

test('event streams of one expiry share one timer and end at it; a plain answer pending then is left to finish', async () => {
  const deadlines = new StreamDeadlines();
  const expiry = Date.now() + 300;
  const a = await srv.open();
  const b = await srv.open();
  const plain = await srv.open();
  eventStream(a.res);
  eventStream(b.res, true);
  for (const { res } of [a, b, plain]) deadlines.add(res, expiry);
  expect(deadlines.size).toBe(1);

  await Promise.all([ended(a.answer), ended(b.answer)]);
  expect(a.res.destroyed && b.res.destroyed).toBe(true);
  // The timer has fired: the plain answer is still open and finishes whole.
  expect(plain.res.destroyed).toBe(false);
  plain.res.end('done');
  const message = await plain.answer;
  let body = '';
  for await (const chunk of message) body += chunk;
  expect(body).toBe('done');
  expect(deadlines.size).toBe(0);
});

test('a response that closes is forgotten; the last of an expiry takes the timer with it', async () => {
  const deadlines = new StreamDeadlines();
  const later = Date.now() + 3_600_000;
  const first = await srv.open();
  const second = await srv.open();
  const other = await srv.open();
  deadlines.add(first.res, later);
  deadlines.add(second.res, later);
  deadlines.add(other.res, later + 1000);
  expect(deadlines.size).toBe(2);

  first.res.end('1');
  await once(first.res, 'close');
  expect(deadlines.size).toBe(2);
  second.res.end('2');
  await once(second.res, 'close');
  expect(deadlines.size).toBe(1);
  other.res.end('3');
  await once(other.res, 'close');
  expect(deadlines.size).toBe(0);
});

test('an expiry beyond what a Node timer holds arms nothing', async () => {
  const deadlines = new StreamDeadlines();
  const { res } = await srv.open();
  eventStream(res);
  deadlines.add(res, Date.now() + 2 ** 31 + 60_000);
  expect(deadlines.size).toBe(0);
  res.end();
});
