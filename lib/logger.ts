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

// One exit hook for every default logger (a listener each would trip MaxListeners). Loggers are
// few and live as long as their router, so the set is not pruned.
const flushers = new Set<() => void>();
let exitHookInstalled = false;

const BARE = /^[A-Za-z0-9_.:/@\-+,[\]]+$/;

function formatValue(value: string | number | boolean): string {
  const text = String(value);
  return BARE.test(text) ? text : JSON.stringify(text);
}

export function formatLine(level: string, message: string, fields?: LogFields, now = new Date()): string {
  let line = `${now.toISOString()} ${level} ${message}`;
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
