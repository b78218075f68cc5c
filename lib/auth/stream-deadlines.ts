// A stream opened with an access token ends when the token expires (README: OAuth 2.1): a legacy
// SSE stream, a Streamable HTTP GET stream, a POST answered as a stream. The client opens it
// again with a fresh token. Responses are grouped by their token's expiry, so that the requests
// of one token share one timer: a timer per request cost each request a timer list of its own
// (every millisecond gives a new delay) and its removal.
import type { ServerResponse } from 'node:http';

/** Node timers hold at most 2^31 - 1 ms; a token valid longer is not a stream's concern. */
const MAX_DELAY_MS = 2 ** 31 - 1;

interface Group {
  readonly timer: NodeJS.Timeout;
  readonly responses: Set<ServerResponse>;
}

/**
 * Whether `res` is an event stream. `getHeader` sees only headers set with `setHeader`: those
 * given to `writeHead` alone (as the SSE writer gives them, when nothing set a header before — a
 * request without `Origin` in a host app without `X-Powered-By`) are only in the header block
 * node wrote, its `_header`.
 */
function isEventStream(res: ServerResponse): boolean {
  const type = res.getHeader('content-type');
  if (type !== undefined) return String(type).startsWith('text/event-stream');
  const written = (res as { _header?: unknown })._header;
  return typeof written === 'string' && /\r\ncontent-type:[ \t]*text\/event-stream/i.test(written);
}

/** How often an answer still pending when its token expired is looked at again. */
const PENDING_RECHECK_MS = 1_000;

/** The open responses of access tokens, by expiry (milliseconds since the epoch). */
export class StreamDeadlines {
  private readonly groups = new Map<number, Group>();
  private readonly expiryOf = new Map<ServerResponse, number>();

  constructor(private readonly now: () => number = Date.now) {}

  /**
   * Ends `res` at `expiresAtMs` if it is an event stream by then. A plain answer still pending is
   * left to finish; one that becomes a stream only later (a remote upstream answering after the
   * token expired) is ended then. Forgotten when `res` closes.
   */
  add(res: ServerResponse, expiresAtMs: number): void {
    if (expiresAtMs - this.now() > MAX_DELAY_MS) return;
    this.put(res, expiresAtMs);
    res.once('close', () => this.remove(res));
  }

  /** Expiries with an open response: for tests and leak checks. */
  get size(): number {
    return this.groups.size;
  }

  private put(res: ServerResponse, expiresAtMs: number): void {
    let group = this.groups.get(expiresAtMs);
    if (group === undefined) {
      const timer = setTimeout(() => this.expire(expiresAtMs), Math.max(0, expiresAtMs - this.now()));
      timer.unref();
      group = { timer, responses: new Set() };
      this.groups.set(expiresAtMs, group);
    }
    group.responses.add(res);
    this.expiryOf.set(res, expiresAtMs);
  }

  private remove(res: ServerResponse): void {
    const expiresAtMs = this.expiryOf.get(res);
    this.expiryOf.delete(res);
    const group = expiresAtMs === undefined ? undefined : this.groups.get(expiresAtMs);
    if (group === undefined || !group.responses.delete(res) || group.responses.size > 0) return;
    clearTimeout(group.timer);
    this.groups.delete(expiresAtMs!);
  }

  private expire(expiresAtMs: number): void {
    const group = this.groups.get(expiresAtMs);
    if (group === undefined) return;
    this.groups.delete(expiresAtMs);
    for (const res of group.responses) {
      this.expiryOf.delete(res);
      if (res.writableEnded || res.destroyed) continue;
      if (!res.headersSent) this.put(res, this.now() + PENDING_RECHECK_MS);
      else if (isEventStream(res)) res.destroy();
    }
  }
}

const deadlines = new StreamDeadlines();

/** `StreamDeadlines.add` on the process's one instance: timers are the process's too. */
export function endStreamAt(res: ServerResponse, expiresAtMs: number): void {
  deadlines.add(res, expiresAtMs);
}
