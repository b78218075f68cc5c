// Newline framing of a child's output (MCP stdio transport: messages are delimited by newlines and
// contain none), bounded and in linear time: every byte is scanned once, and a line that spans
// chunks is kept as a list of Buffers and joined once, when its newline arrives.

const NEWLINE = 0x0a;

/**
 * Longest message line a stdio server may write. V8 cannot make a string much beyond 512 MiB, and
 * a child that never writes a newline would otherwise grow the proxy's memory without end.
 */
export const MAX_LINE_BYTES = 128 * 1024 * 1024;

/**
 * What happens to a line longer than `maxLineBytes`:
 * - `'split'`: it is handed over in pieces of about that size (log output, where a piece is fine);
 * - a function: the reader stops for good — what it held is dropped, nothing more is buffered or
 *   handed over — and the function is called once (protocol output, where half a message is
 *   worthless and a child that never ends its line would otherwise grow the buffer without end).
 */
export type LineOverflow = 'split' | ((limit: number) => void);

export class LineReader {
  private pieces: Buffer[] = [];
  private held = 0;
  private stopped = false;

  constructor(
    /** Receives each line, decoded as UTF-8, without its newline. */
    private readonly onLine: (line: string) => void,
    /** Longest line kept, in bytes, newline excluded. */
    private readonly maxLineBytes: number,
    private readonly overflow: LineOverflow,
  ) {}

  /** Bytes of the unfinished line held in memory (never more than `maxLineBytes`). */
  get bufferedBytes(): number {
    return this.held;
  }

  /** The reader gave up on an overlong line: everything from now on is ignored. */
  get isStopped(): boolean {
    return this.stopped;
  }

  push(chunk: Buffer): void {
    let start = 0;
    let nl = chunk.indexOf(NEWLINE);
    while (nl !== -1) {
      if (this.stopped) return;
      if (this.held + nl - start > this.maxLineBytes && this.overflow !== 'split') {
        this.fail(this.overflow);
        return;
      }
      let line: string;
      if (this.held > 0) {
        this.pieces.push(chunk.subarray(start, nl));
        line = Buffer.concat(this.pieces, this.held + nl - start).toString('utf8');
        this.pieces = [];
        this.held = 0;
      } else {
        line = chunk.toString('utf8', start, nl);
      }
      this.onLine(line);
      start = nl + 1;
      nl = chunk.indexOf(NEWLINE, start);
    }
    if (this.stopped || start >= chunk.length) return;
    const rest = chunk.length - start;
    if (this.held + rest > this.maxLineBytes) {
      if (this.overflow !== 'split') {
        this.fail(this.overflow);
        return;
      }
      this.pieces.push(chunk.subarray(start));
      const piece = Buffer.concat(this.pieces, this.held + rest).toString('utf8');
      this.pieces = [];
      this.held = 0;
      this.onLine(piece);
      return;
    }
    // A chunk read from a pipe is its own Buffer: holding a view of it keeps no more than it.
    this.pieces.push(start === 0 ? chunk : chunk.subarray(start));
    this.held += rest;
  }

  /** The stream ended: an unterminated last line is handed over as it is. */
  end(): void {
    if (this.stopped || this.held === 0) return;
    const line = Buffer.concat(this.pieces, this.held).toString('utf8');
    this.pieces = [];
    this.held = 0;
    this.onLine(line);
  }

  private fail(onOverflow: (limit: number) => void): void {
    this.stopped = true;
    this.pieces = [];
    this.held = 0;
    onOverflow(this.maxLineBytes);
  }
}
