// The one newline framing of child output (stdio servers' stdout, their stderr): lines across
// chunks come out whole and decoded once; a line over the limit never holds more than the limit.
import { LineReader, type LineOverflow } from '../lib/stdio/line-reader';

function reader(max: number, overflow: LineOverflow = 'split') {
  const lines: string[] = [];
  return { lines, reader: new LineReader((line) => lines.push(line), max, overflow) };
}

describe('LineReader', () => {
  it('joins a line split across chunks, including a multi-byte character cut in two', () => {
    const { lines, reader: r } = reader(1024);
    const bytes = Buffer.from('{"a":"é"}\n{"b":1}\n{"c"');
    const cut = bytes.indexOf(0xa9); // the second byte of "é"
    r.push(bytes.subarray(0, cut));
    r.push(bytes.subarray(cut));
    expect(lines).toEqual(['{"a":"é"}', '{"b":1}']);
    expect(r.bufferedBytes).toBe(4);
    r.push(Buffer.from(':2}\n\n'));
    expect(lines).toEqual(['{"a":"é"}', '{"b":1}', '{"c":2}', '']);
    expect(r.bufferedBytes).toBe(0);
  });

  it('hands over an unterminated last line at the end', () => {
    const { lines, reader: r } = reader(1024);
    r.push(Buffer.from('one\ntwo'));
    r.end();
    expect(lines).toEqual(['one', 'two']);
  });

  it('stops for good on a line that never ends, holding at most the limit', () => {
    const limit = 1024 * 1024;
    const overflows: number[] = [];
    const { lines, reader: r } = reader(limit, (l) => overflows.push(l));
    const chunk = Buffer.alloc(64 * 1024, 'x');
    let peak = 0;
    // 64 MiB of one line, 64 times the limit: the buffer must stay bounded all along.
    for (let i = 0; i < 1024; i++) {
      r.push(chunk);
      peak = Math.max(peak, r.bufferedBytes);
    }
    expect(peak).toBeLessThanOrEqual(limit);
    expect(overflows).toEqual([limit]);
    expect(r.isStopped).toBe(true);
    // Nothing after the overflow is a message: not the end of the long line, not the next line.
    r.push(Buffer.from('xx\n{"jsonrpc":"2.0"}\n'));
    r.end();
    expect(lines).toEqual([]);
    expect(r.bufferedBytes).toBe(0);
  });

  it('counts a long line that arrives in one chunk with its newline', () => {
    const overflows: number[] = [];
    const { lines, reader: r } = reader(10, (l) => overflows.push(l));
    r.push(Buffer.from('short\n' + 'y'.repeat(11) + '\nlater\n'));
    expect(lines).toEqual(['short']);
    expect(overflows).toEqual([10]);
  });

  it("in 'split' mode, hands an overlong line over in pieces and goes on", () => {
    const { lines, reader: r } = reader(8);
    r.push(Buffer.from('abcdef'));
    r.push(Buffer.from('ghij'));
    expect(lines).toEqual(['abcdefghij']);
    expect(r.bufferedBytes).toBe(0);
    r.push(Buffer.from('kl\nmn\n'));
    expect(lines).toEqual(['abcdefghij', 'kl', 'mn']);
  });
});
