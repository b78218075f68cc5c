// The SSE parser relays upstream streams event by event; it must survive any chunking.
import { SseParser, type SseEvent } from '../lib/sse';

function parse(chunks: (string | Buffer)[]): SseEvent[] {
  const events: SseEvent[] = [];
  const parser = new SseParser((e) => events.push(e));
  for (const c of chunks) parser.push(c);
  return events;
}

describe('SseParser', () => {
  it('parses events, ids, multi-line data and comments', () => {
    const events = parse(['event: endpoint\ndata: /message?sessionId=1\n\n: keepalive\n\nid: 7\ndata: a\ndata: b\n\n']);
    expect(events.map(({ event, data, id }) => ({ event, data, id }))).toEqual([
      { event: 'endpoint', data: '/message?sessionId=1', id: undefined },
      { event: '', data: '', id: undefined },
      { event: 'message', data: 'a\nb', id: '7' },
    ]);
    expect(events[1].raw).toBe(': keepalive\n\n');
  });

  it('gives the same events whatever the chunk boundaries, CRLF included', () => {
    const text = 'event: message\r\ndata: {"x":"héllo ☃ 🎉"}\r\n\r\nevent: message\ndata: {"y":2}\n\n';
    const whole = parse([text]).map((e) => [e.event, e.data]);
    const bytes = Buffer.from(text);
    for (let cut = 1; cut < bytes.length; cut++) {
      // Cuts inside multi-byte characters too.
      expect(parse([bytes.subarray(0, cut), bytes.subarray(cut)]).map((e) => [e.event, e.data])).toEqual(whole);
    }
    expect(whole).toEqual([
      ['message', '{"x":"héllo ☃ 🎉"}'],
      ['message', '{"y":2}'],
    ]);
  });

  it('holds an unfinished event until its blank line arrives', () => {
    const events: SseEvent[] = [];
    const parser = new SseParser((e) => events.push(e));
    parser.push('data: partial');
    expect(events).toEqual([]);
    parser.push('\n\n');
    expect(events.map((e) => e.data)).toEqual(['partial']);
  });
});
