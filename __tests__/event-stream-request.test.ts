// The GET of a remote legacy upstream's event stream (remote/event-stream-request.ts): the
// request's bytes, and the reader of its response, which must frame bodies exactly as Node's own
// HTTP client does, however the bytes are split, and refuse what could smuggle bytes.
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import fc from 'fast-check';
import { EventStreamRequest, ResponseReader, type StreamHead } from '../lib/remote/event-stream-request';

interface Read {
  heads: StreamHead[];
  body: string;
  ended: number;
  errors: Error[];
}

function reader(): { reader: ResponseReader; read: Read } {
  const read: Read = { heads: [], body: '', ended: 0, errors: [] };
  const r = new ResponseReader({
    head: (h) => read.heads.push(h),
    data: (chunk) => (read.body += chunk.toString('latin1')),
    end: () => read.ended++,
    error: (err) => read.errors.push(err),
  });
  return { reader: r, read };
}

/** Feeds `text` cut at `cuts` (offsets), then, with `eof`, the end of the connection. */
function feed(text: string, cuts: number[] = [], eof = false): Read {
  const { reader: r, read } = reader();
  const bytes = Buffer.from(text, 'latin1');
  let from = 0;
  for (const cut of [...new Set(cuts)].sort((a, b) => a - b)) {
    if (cut <= from || cut >= bytes.length) continue;
    r.push(bytes.subarray(from, cut));
    from = cut;
  }
  r.push(bytes.subarray(from));
  if (eof) r.eof();
  return read;
}

const chunk = (data: string, ext = '') => `${data.length.toString(16).toUpperCase()}${ext}\r\n${data}\r\n`;
const CHUNKED =
  'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\nX-Twice: a\r\nX-Twice: b\r\n\r\n' +
  chunk('event: endpoint\ndata: /m?s=1\n\n') +
  chunk('hello', ';ext=1') +
  chunk('0123456789abcdef!') +
  '0\r\nTrailer-Field: x\r\n\r\n';

describe('ResponseReader', () => {
  test('a chunked body: status, headers, the bytes without their framing, one end', () => {
    const read = feed(CHUNKED);
    expect(read.heads).toEqual([{ status: 200, headers: { 'content-type': 'text/event-stream', 'transfer-encoding': 'chunked', 'x-twice': 'a, b' } }]);
    expect(read.body).toBe('event: endpoint\ndata: /m?s=1\n\nhello0123456789abcdef!');
    expect(read.ended).toBe(1);
    expect(read.errors).toEqual([]);
  });

  test('the same, however the bytes are cut', () => {
    const whole = feed(CHUNKED);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: CHUNKED.length - 1 }), { maxLength: 12 }), (cuts) => {
        expect(feed(CHUNKED, cuts)).toEqual(whole);
      }),
    );
    // Every single cut, and the bytes one by one.
    for (let i = 1; i < CHUNKED.length; i++) expect(feed(CHUNKED, [i])).toEqual(whole);
    expect(feed(CHUNKED, Array.from({ length: CHUNKED.length }, (_, i) => i))).toEqual(whole);
  });

  test('bare LF line ends, as Node reads them', () => {
    const read = feed('HTTP/1.1 200 OK\nContent-Type: text/event-stream\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n');
    expect(read.heads[0].status).toBe(200);
    expect(read.body).toBe('abc');
    expect(read.ended).toBe(1);
  });

  test('a body of known length ends at its length; one without framing ends with the connection', () => {
    const known = feed('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloIGNORED');
    expect(known.body).toBe('hello');
    expect(known.ended).toBe(1);
    const open = feed('HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: 1\n\n', [30]);
    expect(open.ended).toBe(0);
    expect(open.body).toBe('data: 1\n\n');
    const closed = feed('HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: 1\n\n', [], true);
    expect(closed.ended).toBe(1);
    expect(closed.errors).toEqual([]);
  });

  test('informational answers are skipped; 204 has no body', () => {
    const read = feed('HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    expect(read.heads.map((h) => h.status)).toEqual([200]);
    expect(read.body).toBe('ok');
    const empty = feed('HTTP/1.1 204 No Content\r\n\r\n');
    expect(empty.heads.map((h) => h.status)).toEqual([204]);
    expect(empty.ended).toBe(1);
  });

  test.each([
    ['a status line that is not HTTP/1.x', 'HTTP/2 200\r\n\r\n'],
    ['a header line without a colon', 'HTTP/1.1 200 OK\r\nBroken\r\n\r\n'],
    ['an obsolete line folding', 'HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\n\r\n'],
    ['Transfer-Encoding with Content-Length', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n'],
    ['two different Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd'],
    ['a Content-Length that is not a number', 'HTTP/1.1 200 OK\r\nContent-Length: 3x\r\n\r\nabc'],
    ['a chunk size that is not hex', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'],
    ['a chunk longer than its size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n'],
    ['a head over 16 KiB', `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n`],
  ])('refused: %s', (_what, text) => {
    const read = feed(text);
    expect(read.errors).toEqual([expect.objectContaining({ code: 'HPE_INVALID_RESPONSE' })]);
    expect(read.ended).toBe(0);
    // Nothing after the error: one report only.
    expect(read.body.length).toBeLessThanOrEqual(2);
  });

  test('a connection that ends inside a chunk is an error, not an end', () => {
    const read = feed('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc', [], true);
    expect(read.body).toBe('abc');
    expect(read.ended).toBe(0);
    expect(read.errors).toEqual([expect.objectContaining({ code: 'ECONNRESET' })]);
  });

  test('stop() silences it; a handler may stop it while it reads', () => {
    const read: Read = { heads: [], body: '', ended: 0, errors: [] };
    const r: ResponseReader = new ResponseReader({
      head: (h) => read.heads.push(h),
      data: (chunk) => {
        read.body += chunk.toString('latin1');
        r.stop();
      },
      end: () => read.ended++,
      error: (err) => read.errors.push(err),
    });
    r.push(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n1\r\nb\r\n0\r\n\r\n'));
    r.eof();
    expect(read).toEqual({ heads: [expect.objectContaining({ status: 200 })], body: 'a', ended: 0, errors: [] });
  });
});

describe('EventStreamRequest', () => {
  /** A server that records the request's head and answers with `answer` (raw bytes). */
  async function rawServer(answer: string) {
    const heads: string[] = [];
    const server = net.createServer((socket) => {
      let text = '';
      socket.on('data', (c) => {
        text += c.toString('latin1');
        if (text.includes('\r\n\r\n')) {
          heads.push(text);
          socket.end(answer);
        }
      });
      socket.on('error', () => undefined);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return { heads, port: (server.address() as net.AddressInfo).port, close: () => server.close() };
  }

  function run(url: URL, headers: Record<string, string | string[]> = {}) {
    const read: Read = { heads: [], body: '', ended: 0, errors: [] };
    let request!: EventStreamRequest;
    const done = new Promise<void>((resolve) => {
      request = new EventStreamRequest(
        { url, headers },
        {
          head: (h) => read.heads.push(h),
          data: (chunk) => (read.body += chunk.toString('latin1')),
          end: () => {
            read.ended++;
            resolve();
          },
          error: (err) => {
            read.errors.push(err);
            resolve();
          },
        },
      );
    });
    return { read, done, request };
  }

  test('the request: path and query, Host, Basic credentials from the URL, the headers, Connection: close; then the stream', async () => {
    const server = await rawServer('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n7\r\ndata: 1\r\n2\r\n\n\n\r\n0\r\n\r\n');
    try {
      const before = EventStreamRequest.live;
      const { read, done } = run(new URL(`http://us%40r:p%3Ass@127.0.0.1:${server.port}/a/sse?x=1&y=%20`), { accept: 'text/event-stream', 'x-multi': ['1', '2'] });
      await done;
      expect(server.heads[0].split('\r\n')).toEqual([
        'GET /a/sse?x=1&y=%20 HTTP/1.1',
        `Host: 127.0.0.1:${server.port}`,
        'accept: text/event-stream',
        'x-multi: 1',
        'x-multi: 2',
        `Authorization: Basic ${Buffer.from('us@r:p:ss').toString('base64')}`,
        'Connection: close',
        '',
        '',
      ]);
      expect(read).toEqual({ heads: [{ status: 200, headers: expect.objectContaining({ 'content-type': 'text/event-stream' }) }], body: 'data: 1\n\n', ended: 1, errors: [] });
      expect(EventStreamRequest.live).toBe(before);
    } finally {
      server.close();
    }
  });

  test('a configured Authorization or Host header wins over the URL', async () => {
    const server = await rawServer('HTTP/1.1 204 No Content\r\n\r\n');
    try {
      const { done } = run(new URL(`http://u:p@127.0.0.1:${server.port}/sse`), { Authorization: 'Bearer configured', Host: 'upstream.example' });
      await done;
      const lines = server.heads[0].split('\r\n');
      expect(lines).toContain('Authorization: Bearer configured');
      expect(lines).toContain('Host: upstream.example');
      expect(lines.filter((l) => /^(authorization|host):/i.test(l))).toHaveLength(2);
    } finally {
      server.close();
    }
  });

  test('header names are case-insensitive: the last one given wins, once', async () => {
    const server = await rawServer('HTTP/1.1 204 No Content\r\n\r\n');
    try {
      const { done } = run(new URL(`http://127.0.0.1:${server.port}/sse`), { accept: 'text/event-stream', 'X-Key': 'a', Accept: 'configured/type' });
      await done;
      const lines = server.heads[0].split('\r\n');
      expect(lines.filter((l) => /^accept:/i.test(l))).toEqual(['Accept: configured/type']);
      expect(lines).toContain('X-Key: a');
    } finally {
      server.close();
    }
  });

  test('an invalid header value throws at once, as http.request does, and opens nothing', () => {
    const before = EventStreamRequest.live;
    const open = (headers: Record<string, string>) => () => new EventStreamRequest({ url: new URL('http://127.0.0.1:1/sse'), headers }, { head() {}, data() {}, end() {}, error() {} });
    expect(open({ 'x-bad': 'a\r\nInjected: 1' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CHAR' }));
    expect(open({ 'bad name': 'x' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_HTTP_TOKEN' }));
    expect(EventStreamRequest.live).toBe(before);
  });

  test('a refused connection is an error with its errno code; destroy(err) reports err once', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = http.createServer().listen(0, '127.0.0.1', () => {
        const { port: p } = s.address() as net.AddressInfo;
        s.close(() => resolve(p));
      });
    });
    const refused = run(new URL(`http://127.0.0.1:${port}/sse`));
    await refused.done;
    expect(refused.read.errors).toEqual([expect.objectContaining({ code: 'ECONNREFUSED' })]);

    const server = await rawServer('');
    try {
      const destroyed = run(new URL(`http://127.0.0.1:${server.port}/sse`));
      const timeout = Object.assign(new Error('too slow'), { code: 'UPSTREAM_TIMEOUT' });
      destroyed.request.destroy(timeout);
      destroyed.request.destroy(new Error('again'));
      await destroyed.done;
      expect(destroyed.read.errors).toEqual([timeout]);
    } finally {
      server.close();
    }
  });
});
