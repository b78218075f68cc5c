// Log output (README: Logs and debugging): one line per event, `<ISO time> <LEVEL> <message> key=value …`.
import createDebug from 'debug';
import type { LogFields, Logger } from './types';

/** Root of the `DEBUG=mcp-front*` namespaces; modules use `debug.extend('…')`. */
export const debug = createDebug('mcp-front');

const faults = debug.extend('fault');

/**
 * Logs an unexpected fault (a bug, or input nobody foresaw) at `error`: `fields` and the error's
 * class (`error=RangeError`), never its message, which may quote a client's body or a server's
 * output, where a token value can hide. The stack's frames go to `DEBUG=mcp-front:fault`.
 */
export function logFault(logger: Logger, message: string, fields: LogFields, err: unknown): void {
  const name = err instanceof Error ? err.name : typeof err;
  logger.error(message, { ...fields, error: name });
  if (!faults.enabled) return;
  const stack = err instanceof Error && typeof err.stack === 'string' ? err.stack : '';
  const frames = stack.split('\n').filter((line) => line.startsWith('    at '));
  faults('%s (%s)\n%s', message, name, frames.join('\n'));
}

/**
 * The longest client text a metric label, a span or an audit line carries, in UTF-16 code units
 * (MCP specification 2025-11-25, Tools: a tool name SHOULD be 1 to 128 characters). A longer name
 * or URI is the client's choice, not the server's, and must not cost a line, a series or a span
 * its size.
 */
export const MAX_CLIENT_TEXT = 128;

/**
 * `text` cut to `MAX_CLIENT_TEXT` with a trailing `…` when it was longer, never in the middle of
 * a surrogate pair (a lone surrogate is not valid UTF-8 in an exposition, an exporter or a log).
 * The cut is a copy: V8 makes a slice of a long string point into it, so a 128-character label or
 * span attribute would keep the client's whole megabyte alive for as long as it is held.
 */
export function clip(text: string): string {
  if (text.length <= MAX_CLIENT_TEXT) return text;
  const last = text.charCodeAt(MAX_CLIENT_TEXT - 1);
  const end = last >= 0xd800 && last <= 0xdbff ? MAX_CLIENT_TEXT - 1 : MAX_CLIENT_TEXT;
  return Buffer.from(`${text.slice(0, end)}…`, 'utf16le').toString('utf16le');
}

// One exit hook for every default logger (a listener each would trip MaxListeners). Loggers are
// few and live as long as their router, so the set is not pruned.
const flushers = new Set<() => void>();
let exitHookInstalled = false;

const BARE = /^[A-Za-z0-9_.:/@\-+,[\]]+$/;

/**
 * What would end a line or change how it reads in a terminal or a log viewer, and that
 * `JSON.stringify` leaves as it is (of the controls it escapes only U+0000–U+001F): DEL and the C1 controls
 * (U+0080–U+009F: NEL ends a line for some readers, CSI starts an escape sequence for others),
 * the line and paragraph separators U+2028 and U+2029, and the bidirectional embeddings,
 * overrides and isolates (U+202A–U+202E, U+2066–U+2069) that reorder what a line shows. Other
 * text, "é" or "日本" included, stays as it is.
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** Every `UNSAFE` character as a JSON `\uXXXX` escape, so that a quoted value still reads back with `JSON.parse`. */
function escapeUnsafe(text: string): string {
  return text.replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Values hold client text (tool names, URIs, path segments, forwarded addresses): one line, whatever they are. */
function formatValue(value: string | number | boolean): string {
  const text = String(value);
  return BARE.test(text) ? text : escapeUnsafe(JSON.stringify(text));
}

export function formatLine(level: string, message: string, fields?: LogFields, now = new Date()): string {
  // Messages are the code's own words, some quoting a configured name: one line too, whatever it is.
  let line = `${now.toISOString()} ${level} ${escapeUnsafe(message)}`;
  if (fields) {
    for (const [key, value] of Object.entries(fields)) {
      if (value === undefined || value === null) continue;
      line += ` ${key}=${formatValue(value)}`;
    }
  }
  return line;
}

/**
 * The default logger: lines on `stream` (stderr); `debug` events go to the `debug` package.
 * Lines of one event-loop turn leave in one write: stderr is synchronous on Linux pipes, and a
 * write per request measurably cost throughput (bench/README.md). Pending lines are flushed on
 * process exit, so none is lost.
 */
export function createDefaultLogger(stream: NodeJS.WritableStream = process.stderr): Logger {
  let pending = '';
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (pending === '') return;
    const out = pending;
    pending = '';
    stream.write(out);
  };
  flushers.add(flush);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => flushers.forEach((f) => f()));
  }
  const write = (level: string) => (message: string, fields?: LogFields) => {
    pending += formatLine(level, message, fields) + '\n';
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
  const verbose = debug.extend('log');
  return {
    info: write('INFO'),
    warn: write('WARN'),
    error: write('ERROR'),
    debug: (message, fields) => {
      if (verbose.enabled) verbose('%s', formatLine('DEBUG', message, fields));
    },
  };
}
