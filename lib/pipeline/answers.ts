// The answer point of the routes that pass an HTTP upstream's response through (Streamable HTTP
// passthrough): its JSON body or its event stream is read message by message, each message goes
// through `answer`, and what the client gets is the upstream's own bytes unless a hook replaced a
// message (or the pipeline refused part of the batch, whose errors are merged in).
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { JsonRpcMessage } from '../wire/body';
import { SseParser } from '../wire/sse';
import type { Admission, Refusal } from './pipeline';

/**
 * The text to send for one server message: `line` unless a hook replaced it, or `undefined` for a
 * response to no request waiting for it, which is dropped (`InFlight.answer`).
 */
export type AnswerPoint = (message: JsonRpcMessage, line: string) => string | undefined;

function isMessage(value: unknown): value is JsonRpcMessage {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Every message of one server text through `answer`: a message, or a batch of them (JSON-RPC 2.0
 * §6), whose responses each pass on their own, so that no answer rides past the answer point
 * inside an array. `out` holds what is left, each message's text; `changed` says whether that
 * differs from the server's text. `undefined` for text that holds no JSON-RPC message at all.
 */
export function answerEach(answer: AnswerPoint, parsed: unknown, text: string): { out: string[]; changed: boolean } | undefined {
  if (Array.isArray(parsed)) {
    const out: string[] = [];
    let changed = false;
    for (const m of parsed) {
      const line = JSON.stringify(m);
      const kept = isMessage(m) ? answer(m, line) : line;
      if (kept !== line) changed = true;
      if (kept !== undefined) out.push(kept);
    }
    return { out, changed };
  }
  if (!isMessage(parsed)) return undefined;
  const kept = answer(parsed, text);
  return { out: kept === undefined ? [] : [kept], changed: kept !== text };
}

/** `answerEach`, as the text to relay: the server's own when nothing changed, `undefined` when nothing is left. */
export function answerText(answer: AnswerPoint, parsed: unknown, text: string): string | undefined {
  const each = answerEach(answer, parsed, text);
  if (each === undefined || !each.changed) return text;
  if (each.out.length === 0) return undefined;
  return Array.isArray(parsed) ? `[${each.out.join(',')}]` : each.out[0];
}

/**
 * A JSON answer: read whole (at most `limit` bytes, else `onTooLarge`), each message passed
 * through `answer`, written with its own `Content-Length`. Text that is not JSON passes unchanged.
 * An answer of which nothing is left (every response in it answered no request of this POST) is
 * `onNoAnswer`'s to answer.
 */
export function relayJsonAnswer(
  proxyRes: IncomingMessage,
  res: ServerResponse,
  status: number,
  statusMessage: string | undefined,
  headers: OutgoingHttpHeaders,
  answer: AnswerPoint,
  refusals: readonly Refusal[],
  limit: number,
  onTooLarge: () => void,
  onNoAnswer: () => void,
): void {
  const chunks: Buffer[] = [];
  let size = 0;
  proxyRes.on('data', (chunk: Buffer) => {
    if (size > limit) return;
    size += chunk.length;
    if (size > limit) {
      chunks.length = 0;
      proxyRes.destroy();
      onTooLarge();
      return;
    }
    chunks.push(chunk);
  });
  proxyRes.on('end', () => {
    if (size > limit || res.writableEnded || res.destroyed) return;
    const original = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size);
    const body = answerBody(original, answer, refusals);
    if (body === undefined) return onNoAnswer();
    delete headers['content-length'];
    delete headers['transfer-encoding'];
    // A batch whose requests were all refused has only notifications left: the upstream's
    // `202` carries no body, the refusals need one (MCP 2025-06-18 §Sending Messages to the Server).
    const finalStatus = refusals.length > 0 && status === 202 ? 200 : status;
    if (finalStatus !== status) headers['content-type'] = 'application/json';
    res.writeHead(finalStatus, finalStatus === status ? statusMessage : undefined, { ...headers, 'content-length': body.length });
    res.end(body);
  });
}

function answerBody(original: Buffer, answer: AnswerPoint, refusals: readonly Refusal[]): Buffer | undefined {
  let parsed: unknown;
  if (original.length > 0) {
    try {
      parsed = JSON.parse(original.toString('utf8'));
    } catch {
      parsed = undefined;
    }
  }
  const each = parsed === undefined ? undefined : answerEach(answer, parsed, original.toString('utf8'));
  if (each === undefined) {
    if (refusals.length === 0) return original;
    return Buffer.from(`[${refusals.map((r) => r.line).join(',')}]`);
  }
  if (refusals.length === 0) {
    if (!each.changed) return original;
    if (each.out.length === 0) return undefined;
    return Buffer.from(Array.isArray(parsed) ? `[${each.out.join(',')}]` : each.out[0]);
  }
  return Buffer.from(`[${[...refusals.map((r) => r.line), ...each.out].join(',')}]`);
}

/**
 * An event stream: parsed by the rules clients use (WHATWG HTML §9.2.6), `message` events through
 * `answer`, refusals first. A stream whose length the upstream declared is one answer known at
 * once: read whole and, when no hook changed anything, sent as the upstream's own bytes in one
 * write. Otherwise events are written out again one by one as they come; a full client socket
 * pauses the upstream.
 */
export function relaySseAnswer(
  proxyRes: IncomingMessage,
  res: ServerResponse,
  status: number,
  statusMessage: string | undefined,
  headers: OutgoingHttpHeaders,
  answer: AnswerPoint,
  refusals: readonly Refusal[],
  maxEventBytes: number,
  onTooLarge: () => void,
  /** A `GET` stream may stay silent for minutes: its headers go at once. A POST's go with its first event. */
  flushNow: boolean,
): void {
  const frames: string[] = [];
  for (const r of refusals) frames.push('event: message\ndata: ' + r.line + '\n\n');
  let changed = refusals.length > 0;
  const declared = Number(proxyRes.headers['content-length']);
  const whole = Number.isFinite(declared) && declared <= maxEventBytes;
  delete headers['content-length'];
  delete headers['transfer-encoding'];
  let headersTimer: NodeJS.Timeout | undefined;
  /**
   * `parts` make one frame. A large one is written part by part (in one corked turn): its data is
   * encoded once, never first copied into a longer string.
   */
  const write = (...parts: string[]) => {
    if (whole) {
      frames.push(parts.join(''));
      return;
    }
    clearTimeout(headersTimer);
    headersTimer = undefined;
    if (res.writableEnded || res.destroyed) return;
    if (parts.length === 1 || parts[1].length < LARGE_PART) res.write(parts.join(''));
    else for (const part of parts) res.write(part);
  };
  const parser = new SseParser(
    (event) => {
      let data = event.data;
      if (event.event === 'message') {
        let parsed: unknown;
        try {
          parsed = JSON.parse(data);
        } catch {
          parsed = undefined;
        }
        const kept = parsed === undefined ? data : answerText(answer, parsed, data);
        if (kept !== event.data) changed = true;
        if (kept === undefined) {
          // Dropped; its id still moves the client's resumption point past it (WHATWG HTML
          // §9.2.6: the last event ID is set even when no event is dispatched).
          if (event.id !== undefined) write(`id: ${event.id}\n\n`);
          return;
        }
        data = kept;
      }
      let head = event.event === 'message' ? '' : `event: ${event.event}\n`;
      if (event.id !== undefined) head += `id: ${event.id}\n`;
      // The parser joins data lines with LF and leaves no CR (WHATWG HTML §9.2.6); a hook's
      // replacement is JSON.stringify's, which has neither. A scan for LF is all it takes.
      if (data.includes('\n') || data.includes('\r')) write(head, data.split(/\r\n|\r|\n/).map((l) => `data: ${l}\n`).join(''), '\n');
      else write(head + 'data: ', data, '\n\n');
    },
    {
      maxEventBytes,
      onTooLarge: () => {
        proxyRes.destroy();
        onTooLarge();
      },
      // The upstream's keep-alives and reconnection time still reach the client.
      onComment: (text) => write(`: ${text}\n\n`),
      onRetry: (ms) => write(`retry: ${ms}\n\n`),
    },
  );
  const chunks: Buffer[] = [];
  if (!whole) {
    res.writeHead(status, statusMessage, headers);
    if (flushNow) res.flushHeaders();
    else if (frames.length === 0) {
      // The headers go with the first event; alone if none comes soon (see flushUnlessData).
      headersTimer = setTimeout(() => {
        headersTimer = undefined;
        if (!res.writableEnded && !res.destroyed) res.flushHeaders();
      }, HEADERS_FALLBACK_MS);
      proxyRes.once('close', () => clearTimeout(headersTimer));
    }
    for (const frame of frames.splice(0)) write(frame);
    corkPerTurn(proxyRes, res);
  }
  proxyRes.on('data', (chunk: Buffer) => {
    if (whole) chunks.push(chunk);
    parser.push(chunk);
    if (!whole && res.writableNeedDrain && !proxyRes.isPaused()) {
      proxyRes.pause();
      res.once('drain', () => proxyRes.resume());
    }
  });
  proxyRes.on('end', () => {
    if (res.writableEnded || res.destroyed) return;
    if (!whole) {
      res.end();
      return;
    }
    const body = changed ? Buffer.from(frames.join('')) : Buffer.concat(chunks);
    res.writeHead(status, statusMessage, { ...headers, 'content-length': body.length });
    res.end(body);
  });
}

/** Above this many characters, an event's data is written on its own rather than copied into its frame. */
const LARGE_PART = 65536;

/** How long a POST's event stream may wait for its first event before its headers go alone. */
export const HEADERS_FALLBACK_MS = 50;

/**
 * A POST's event stream usually brings its answer right away, and the headers go out with it in
 * one write; one that does not (a long tool call without progress) gets them alone after
 * HEADERS_FALLBACK_MS.
 */
export function flushUnlessData(proxyRes: IncomingMessage, res: ServerResponse): void {
  const timer = setTimeout(() => {
    proxyRes.off('data', cancel);
    if (!res.writableEnded && !res.destroyed) res.flushHeaders();
  }, HEADERS_FALLBACK_MS);
  const cancel = () => clearTimeout(timer);
  proxyRes.once('data', cancel);
  proxyRes.once('close', cancel);
}

/**
 * What one read of the upstream brings leaves in one write: the client's socket is corked from
 * the first chunk until the end of that turn of the event loop. When the upstream's stream ends
 * in the same read (its last event and its terminating chunk, the usual end of a POST's stream),
 * `end()` sends the event and the terminating chunk together: one syscall instead of two.
 */
export function corkPerTurn(proxyRes: IncomingMessage, res: ServerResponse): void {
  let corked = false;
  const uncork = () => {
    corked = false;
    // After `end()` the socket may already serve the connection's next response: not ours to uncork.
    if (!res.writableEnded && !res.destroyed) res.uncork();
  };
  proxyRes.on('data', () => {
    if (corked || res.writableEnded || res.destroyed) return;
    corked = true;
    res.cork();
    setImmediate(uncork);
  });
}

/** A verdict with a status answered the whole HTTP request (e.g. `429`): true then. */
export function answeredWhole(res: ServerResponse, admission: Admission): boolean {
  const { reject } = admission;
  if (reject === undefined) return false;
  res.writeHead(reject.status, { ...reject.headers, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(reject.body) }).end(reject.body);
  return true;
}

/**
 * Everything of a request without a session was refused: its answers are the POST's JSON body
 * (MCP 2025-06-18 §Sending Messages to the Server), and no server side is started for it.
 */
export function answeredLocally(res: ServerResponse, admission: Admission): boolean {
  if (admission.refusals.length === 0 || admission.forward !== undefined) return false;
  const body = admission.refusals.length === 1 ? admission.refusals[0].line : `[${admission.refusals.map((r) => r.line).join(',')}]`;
  res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }).end(body);
  return true;
}
