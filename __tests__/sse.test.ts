// The SSE parser reads upstream streams by the rules of WHATWG HTML §9.2.6 "Interpreting an event
// stream", exactly as clients do (the SDK's SSE client reads through eventsource-parser): any other
// framing would let an upstream show the client events the proxy never saw.
import http from 'node:http';
import { once } from 'node:events';
import type net from 'node:net';
import fc from 'fast-check';
import { createParser } from 'eventsource-parser';
import { openSseStream, SseParser, type SseEvent, type SseParserOptions } from '../lib/wire/sse';

interface Parsed {
  events: SseEvent[];
  comments: string[];
  retries: number[];
  tooLarge: number[];
}

function parse(chunks: (string | Buffer)[], options: Omit<SseParserOptions, 'onComment' | 'onRetry' | 'onTooLarge'> = {}): Parsed {
  const out: Parsed = { events: [], comments: [], retries: [], tooLarge: [] };
  const parser = new SseParser((e) => out.events.push(e), {
    ...options,
    onComment: (c) => out.comments.push(c),
    onRetry: (ms) => out.retries.push(ms),
    onTooLarge: (limit) => out.tooLarge.push(limit),
  });
  for (const c of chunks) parser.push(c);
  return out;
}

const eventsOf = (text: string | Buffer) => parse([text]).events.map(({ event, data, id }) => ({ event, data, id }));

/** What eventsource-parser (the SDK client's parser) makes of a whole text. */
function reference(text: string): Omit<Parsed, 'tooLarge'> {
  const out: Omit<Parsed, 'tooLarge'> = { events: [], comments: [], retries: [] };
  const parser = createParser({
    onEvent: (e) => out.events.push({ event: e.event ?? 'message', data: e.data, id: e.id }),
    onComment: (c) => out.comments.push(c),
    onRetry: (ms) => out.retries.push(ms),
  });
  parser.feed(text);
  return out;
}

/** `bytes` cut at the given positions. */
/** What a client reads of one stream that `write` fills and that then ends (on a real server). */
async function streamText(write: (stream: ReturnType<typeof openSseStream>) => void): Promise<string> {
  const server = http.createServer((_req, res) => {
    const stream = openSseStream(res, 0);
    write(stream);
    stream.end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const { port } = server.address() as net.AddressInfo;
    return await (await fetch(`http://127.0.0.1:${port}/`)).text();
  } finally {
    server.closeAllConnections();
    server.close();
  }
}

function cutAt(bytes: Buffer, cuts: number[]): Buffer[] {
  const sorted = [...new Set(cuts)].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const cut of sorted) {
    chunks.push(bytes.subarray(from, cut));
    from = cut;
  }
  chunks.push(bytes.subarray(from));
  return chunks;
}

describe('SseParser framing (WHATWG HTML §9.2.6)', () => {
  const terminators = ['\r\n', '\n', '\r'];

  test.each(terminators.flatMap((a) => terminators.map((b) => [a, b])))(
    'a line ended by %j followed by an empty line ended by %j ends the event',
    (first, second) => {
      const text = `event: endpoint${first}data: /evil${first}${second}event: message${first}data: {}${first}${first}`;
      // A CR followed by LF is one terminator: `\r` then `\n` is not a blank line.
      if (first === '\r' && second === '\n') {
        expect(eventsOf(text)).toEqual([{ event: 'message', data: '/evil\n{}', id: undefined }]);
        return;
      }
      expect(eventsOf(text)).toEqual([
        { event: 'endpoint', data: '/evil', id: undefined },
        { event: 'message', data: '{}', id: undefined },
      ]);
    },
  );

  test('the mixed-terminator event the old parser merged is two events', () => {
    expect(eventsOf('event: endpoint\ndata: /evil\n\r\nevent: message\ndata: {"jsonrpc":"2.0"}\n\n')).toEqual([
      { event: 'endpoint', data: '/evil', id: undefined },
      { event: 'message', data: '{"jsonrpc":"2.0"}', id: undefined },
    ]);
    expect(eventsOf('data: a\r\rdata: b\r\n\r\ndata: c\n\r')).toEqual([
      { event: 'message', data: 'a', id: undefined },
      { event: 'message', data: 'b', id: undefined },
      { event: 'message', data: 'c', id: undefined },
    ]);
  });

  test('fields: data, event, id, retry, comments, lines without a colon, one leading space', () => {
    const text = [
      ': a comment',
      ':no space',
      'data:no space',
      'data:  two spaces',
      'data',
      'id: 7',
      'retry: 2500',
      'retry: soon',
      'unknown: ignored',
      'event: custom',
      '',
      'id: with\0nul',
      'data: second',
      '',
      'event: lonely',
      'id: 9',
      '',
      'event:',
      'data:',
      '',
      'data: trailing',
      'data:',
      '',
      'Data: case matters',
      '',
      '',
    ].join('\n');
    const out = parse([text]);
    expect(out.events).toEqual([
      { event: 'custom', data: 'no space\n two spaces\n', id: '7' },
      // An id with U+0000 is ignored.
      { event: 'message', data: 'second', id: undefined },
      // `event: lonely` had no data: not dispatched. An empty `event` is `message`.
      { event: 'message', data: '', id: undefined },
      // Only the last newline of the data goes.
      { event: 'message', data: 'trailing\n', id: undefined },
    ]);
    expect(out.comments).toEqual(['a comment', 'no space']);
    expect(out.retries).toEqual([2500]);
  });

  test('a UTF-8 BOM is dropped at the start of the stream only, even split byte by byte', () => {
    const bom = Buffer.from([0xef, 0xbb, 0xbf]);
    const body = Buffer.from('data: x\n\n\ufeffdata: y\n\ndata: z\n\n');
    const whole = Buffer.concat([bom, body]);
    const expected = [
      { event: 'message', data: 'x', id: undefined },
      // Later, U+FEFF is part of a field name (`\ufeffdata`), which is unknown.
      { event: 'message', data: 'z', id: undefined },
    ];
    expect(eventsOf(whole)).toEqual(expected);
    expect(eventsOf(body)).toEqual(expected);
    const byteByByte = parse([...whole].map((b) => Buffer.from([b]))).events;
    expect(byteByByte.map(({ event, data, id }) => ({ event, data, id }))).toEqual(expected);
    // A stream that starts like a BOM but is not one keeps its bytes.
    expect(parse([Buffer.from([0xef]), Buffer.from([0xbb]), Buffer.from('data: w\n\n')]).events[0]?.data).toBeUndefined();
    expect(eventsOf(Buffer.from('d'))).toEqual([]);
  });

  test('a CRLF split across two chunks is one terminator', () => {
    const out = parse(['data: a\r', '\ndata: b\r', '\n\r', '\n']);
    expect(out.events.map((e) => e.data)).toEqual(['a\nb']);
  });

  test('every cut of a small stream, multi-byte characters and CRLF included, gives the same events', () => {
    const text = '\ufeffevent: message\r\ndata: {"x":"héllo ☃ 🎉"}\r\n\r\n: ka\rid: 1\ndata: {"y":2}\r\n\ndata: z\r\r';
    const bytes = Buffer.from(text);
    const whole = parse([bytes]);
    expect(whole.events.map((e) => [e.event, e.data, e.id])).toEqual([
      ['message', '{"x":"héllo ☃ 🎉"}', undefined],
      ['message', '{"y":2}', '1'],
      ['message', 'z', undefined],
    ]);
    for (let cut = 0; cut <= bytes.length; cut++) {
      expect(parse(cutAt(bytes, [cut]))).toEqual(whole);
    }
    expect(parse([...bytes].map((b) => Buffer.from([b])))).toEqual(whole);
  });

  test('property: where a stream is cut never changes its events', () => {
    const piece = fc.constantFrom('data', 'event', 'id', 'retry', ':', ' ', '\r', '\n', '\r\n', 'a', 'é', '🎉', '7', 'endpoint', '\0');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 60 }), fc.array(fc.nat(), { maxLength: 8 }), (pieces, cuts) => {
        const bytes = Buffer.from(pieces.join(''));
        const chunks = cutAt(bytes, cuts.map((c) => c % (bytes.length + 1)));
        expect(parse(chunks)).toEqual(parse([bytes]));
      }),
      { numRuns: 500 },
    );
  });

  test('property: the same events, comments and retries as eventsource-parser', () => {
    const piece = fc.constantFrom('data', 'event', 'id', 'retry', 'Data', ':', ': ', ' ', '\r', '\n', '\r\n', 'a', 'é', '12', 'message', '\0');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 80 }), fc.array(fc.nat(), { maxLength: 8 }), (pieces, cuts) => {
        // eventsource-parser holds a CR that ends its input (a CRLF may follow): end with LF for both.
        const text = pieces.join('') + '\n';
        const bytes = Buffer.from(text);
        const mine = parse(cutAt(bytes, cuts.map((c) => c % (bytes.length + 1))));
        expect({ events: mine.events, comments: mine.comments, retries: mine.retries }).toEqual(reference(text));
      }),
      { numRuns: 1000 },
    );
  });
});

describe('SseParser long lines (decoded piece by piece)', () => {
  /** A data line of about 300 KB: multi-byte characters, and invalid UTF-8, wherever the cuts fall. */
  const long = Buffer.concat([
    Buffer.from('data: {"text":"'),
    ...Array.from({ length: 3000 }, (_, i) => Buffer.from(`${'a'.repeat(90)}é☃🎉${i}`)),
    Buffer.from([0xe2, 0x98, 0x22, 0xff, 0xc3]),
    Buffer.from('"}\r\ndata: second\n\nevent: x\ndata:'),
    Buffer.from('b'.repeat(300_000)),
    Buffer.from('\n\n'),
  ]);

  test('the same events as the whole stream read at once, however it is cut', () => {
    const whole = parse([long]);
    expect(whole.events).toHaveLength(2);
    expect(whole.events[0].data.endsWith('\ufffd"\ufffd\ufffd"}\nsecond')).toBe(true);
    expect(whole.events[1]).toEqual({ event: 'x', data: 'b'.repeat(300_000), id: undefined });
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: long.length - 1 }), { minLength: 2, maxLength: 40 }), (cuts) => {
        expect(parse(cutAt(long, cuts))).toEqual(whole);
      }),
      { numRuns: 200 },
    );
    // In 64 KiB reads, as from a socket, and cut inside each multi-byte character.
    expect(parse(cutAt(long, Array.from({ length: Math.floor(long.length / 65536) }, (_, i) => (i + 1) * 65536)))).toEqual(whole);
    const snowman = long.indexOf('☃');
    expect(parse(cutAt(long, [3, snowman + 1, snowman + 2, long.indexOf(0xff), long.length - 10]))).toEqual(whole);
  });

  test('a long line that is not data, or whose first piece ends before its colon, is read whole', () => {
    const comment = Buffer.from(`: ${'c'.repeat(300_000)}\ndata: 1\n\n`);
    expect(parse(cutAt(comment, [100, 200_000]))).toEqual(parse([comment]));
    const event = Buffer.from(`event: ${'e'.repeat(300_000)}\ndata: 1\n\n`);
    expect(parse(cutAt(event, [100, 200_000])).events).toEqual([{ event: 'e'.repeat(300_000), data: '1', id: undefined }]);
    const split = Buffer.from(`data: ${'d'.repeat(300_000)}\n\n`);
    for (const cut of [2, 4, 5, 6]) expect(parse(cutAt(split, [cut, 100_000])).events).toEqual([{ event: 'message', data: 'd'.repeat(300_000), id: undefined }]);
  });

  test('the size bound holds for a long line too', () => {
    const out = parse(cutAt(Buffer.from(`data: ${'x'.repeat(400_000)}\n\n`), [100_000, 200_000, 300_000]), { maxEventBytes: 350_000 });
    expect(out.tooLarge).toEqual([350_000]);
    expect(out.events).toEqual([]);
  });
});

describe('SseParser size bound', () => {
  test('an event up to the limit passes; one byte more ends the parse, once', () => {
    const limit = 1000;
    // The limit counts the bytes of the event's data lines, `data: ` included.
    const fits = `data: ${'x'.repeat(limit - 6)}\n\n`;
    expect(parse([fits, fits], { maxEventBytes: limit })).toMatchObject({ tooLarge: [] });
    expect(parse([fits, fits], { maxEventBytes: limit }).events).toHaveLength(2);

    const over = parse([fits, `data: ${'x'.repeat(limit / 2)}\ndata: ${'y'.repeat(limit / 2)}\n`, fits, '\n'], { maxEventBytes: limit });
    expect(over.tooLarge).toEqual([limit]);
    expect(over.events).toHaveLength(1);
  });

  test('a line that has not ended yet counts: memory stays bounded while it arrives', () => {
    const out = parse(['data: ', 'x'.repeat(600), 'x'.repeat(600)], { maxEventBytes: 1000 });
    expect(out.tooLarge).toEqual([1000]);
  });

  test('comments and events under the limit never add up across events', () => {
    const chunks = Array.from({ length: 100 }, (_, i) => `: keep-alive ${i}\ndata: ${'z'.repeat(500)}\n\n`);
    const out = parse(chunks, { maxEventBytes: 1000 });
    expect(out.tooLarge).toEqual([]);
    expect(out.events).toHaveLength(100);
  });
});

describe('openSseStream', () => {
  test('streams with the same keep-alive period share one timer: each gets its comments, until it closes or ends', async () => {
    const streams: ReturnType<typeof openSseStream>[] = [];
    const closed: Promise<unknown>[] = [];
    const server = http.createServer((req, res) => {
      const stream = openSseStream(res, 20);
      streams.push(stream);
      closed.push(once(res, 'close'));
      if (req.url === '/ended') stream.end();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as net.AddressInfo;
    /** Reads a stream until `count` keep-alive comments arrived, then leaves. */
    const readComments = (path: string, count: number, controller = new AbortController()) =>
      fetch(`http://127.0.0.1:${port}${path}`, { signal: controller.signal }).then(async (res) => {
        const decoder = new TextDecoder();
        let text = '';
        for await (const chunk of res.body!) {
          text += decoder.decode(chunk, { stream: true });
          if (text.split(': keepalive\n\n').length > count) break;
        }
        controller.abort();
        return text;
      });
    try {
      // One leaves after its first comment while the other one keeps reading: the ticker goes on.
      const [first, second] = await Promise.all([readComments('/a', 1), readComments('/b', 3)]);
      expect(first.startsWith(': keepalive\n\n')).toBe(true);
      expect(second).toBe(': keepalive\n\n'.repeat(3));
      // A stream ended by its owner gets nothing more, and says it is closed.
      const ended = await (await fetch(`http://127.0.0.1:${port}/ended`)).text();
      expect(ended).toBe('');
      expect(streams[2].closed).toBe(true);
      // Writing to a stream whose client left is a no-op.
      await closed[0];
      streams[0].send('message', 'late');
      expect(streams[0].closed).toBe(true);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  test('long data (written in three parts) reads back as one event', async () => {
    const data = `{"text":"${'é'.repeat(100_000)}"}`;
    const text = await streamText((stream) => {
      stream.send('message', data, '7');
      stream.send('message', 'short');
    });
    expect(reference(text).events).toEqual([
      { event: 'message', data, id: '7' },
      { event: 'message', data: 'short', id: undefined },
    ]);
  });

  test('data with CR, LF or CRLF goes out as several data lines that read back the same', async () => {
    const data = 'a\rb\r\nc\nd';
    const text = await streamText((stream) => {
      stream.send('message', 'only\rcr', '5');
      stream.send('message', data);
    });
    expect(reference(text).events).toEqual([
      { event: 'message', data: 'only\ncr', id: '5' },
      { event: 'message', data: 'a\nb\nc\nd', id: undefined },
    ]);
  });
});
