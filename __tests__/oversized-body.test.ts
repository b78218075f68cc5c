// A body over the limit is answered with 413 and a JSON-RPC error that the client actually reads:
// the proxy closes the connection in stages (RFC 9112 §9.6) instead of resetting it while the
// client is still sending — with and without Content-Length, with fetch and with http.request.
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { once } from 'node:events';
import { configWith, DEV_TOKEN, startFront, startJsonRpcUpstream, type Front, type JsonRpcUpstream } from './helpers/servers';

const FIXTURE = path.join(__dirname, 'fixtures', 'stdio-server.js');
const MiB = 1024 * 1024;
/** Against the default limit of 10 MiB. */
const BODY_BYTES = 64 * MiB;
const CHUNK = Buffer.alloc(MiB, 0x20);

let upstream: JsonRpcUpstream;
let front: Front;

beforeAll(async () => {
  upstream = await startJsonRpcUpstream();
  front = await startFront(configWith({ remote: { url: upstream.url }, local: { command: process.execPath, args: [FIXTURE] } }));
});

afterAll(async () => {
  await front?.close();
  await upstream?.close();
});

const headers = { Authorization: `Bearer ${DEV_TOKEN}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' };

/** 64 MiB of JSON-ish bytes, as a stream (sent chunked, no Content-Length). */
function bodyStream(): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= BODY_BYTES) return controller.close();
      sent += CHUNK.length;
      controller.enqueue(new Uint8Array(CHUNK));
    },
  });
}

/** A raw http.request that writes 64 MiB whatever happens, and reports the response it got. */
function rawPost(url: string, chunked: boolean): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: 'POST',
      headers: chunked ? headers : { ...headers, 'Content-Length': String(BODY_BYTES) },
    });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    // Before a response, a broken connection is the failure under test; after it, the writes
    // that are cut short are expected.
    req.on('error', reject);
    let written = 0;
    const writeMore = () => {
      while (written < BODY_BYTES && !req.destroyed) {
        written += CHUNK.length;
        if (!req.write(CHUNK)) return void req.once('drain', writeMore);
      }
      if (!req.destroyed) req.end();
    };
    writeMore();
  });
}

describe.each([
  ['a remote server (Streamable HTTP)', 'remote'],
  ['a stdio server', 'local'],
])('a 64 MiB body for %s gets 413 with its JSON-RPC error', (_kind, server) => {
  const url = () => `${front.url}/${server}/mcp`;

  const expectRefusal = (status: number, body: string) => {
    expect(status).toBe(413);
    expect(JSON.parse(body)).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32600, message: expect.stringContaining('exceeds the limit') } });
  };

  test('fetch, with Content-Length', async () => {
    const res = await fetch(url(), { method: 'POST', headers, body: Buffer.alloc(BODY_BYTES, 0x20) });
    expectRefusal(res.status, await res.text());
  });

  test('fetch, chunked', async () => {
    const res = await fetch(url(), { method: 'POST', headers, body: bodyStream(), duplex: 'half' } as RequestInit);
    expectRefusal(res.status, await res.text());
  });

  test('http.request, with Content-Length', async () => {
    const res = await rawPost(url(), false);
    expect(res.headers.connection).toBe('close');
    expectRefusal(res.status, res.body);
  });

  test('http.request, chunked', async () => {
    const res = await rawPost(url(), true);
    expectRefusal(res.status, res.body);
  });
});

/** A raw client that ignores the proxy's close: half-open allowed, so only the proxy's bounds end it. */
async function stubbornClient(head: string) {
  const { port } = new URL(front.origin);
  // The proxy's side of the connection: a socket closed after the FIN sends the client nothing,
  // so the cut is observed there.
  const accepted = once(front.server, 'connection') as Promise<[net.Socket]>;
  const socket = net.connect({ host: '127.0.0.1', port: Number(port), allowHalfOpen: true });
  await once(socket, 'connect');
  const [serverSide] = await accepted;
  const cut = new Promise<void>((resolve) => serverSide.once('close', () => resolve()));
  socket.on('error', () => {});
  let response = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (response += chunk));
  let open = true;
  // Not events.once: it would reject on the write errors these tests provoke.
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve(void (open = false))));
  socket.write(
    `POST /remote/mcp HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${DEV_TOKEN}\r\nContent-Type: application/json\r\n${head}\r\n`,
  );
  return { socket, closed, cut, isOpen: () => open, response: () => response };
}

describe('the drain is bounded', () => {
  test('in bytes: a client that keeps sending after the 413 is cut off', async () => {
    const client = await stubbornClient('Transfer-Encoding: chunked\r\n');
    const chunk = `${CHUNK.length.toString(16)}\r\n${CHUNK.toString()}\r\n`;
    // Endless: the test ends only when the proxy cuts the connection.
    const writeMore = () => {
      while (client.isOpen() && !client.socket.destroyed) {
        if (!client.socket.write(chunk)) return void client.socket.once('drain', writeMore);
      }
    };
    writeMore();
    await client.closed;
    expect(client.response()).toMatch(/^HTTP\/1\.1 413 /);
  });

  test('in time: a client that announced 64 MiB, sends nothing and never closes is cut off', async () => {
    const client = await stubbornClient(`Content-Length: ${BODY_BYTES}\r\n`);
    await client.cut;
    client.socket.destroy();
    expect(client.response()).toMatch(/^HTTP\/1\.1 413 /);
  });
});
