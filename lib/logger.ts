// Log output (CONTRACT §6): one line per event, `<ISO time> <LEVEL> <message> key=value …`.
import createDebug from 'debug';
import type { LogFields, Logger } from './types';

/** Root of the `DEBUG=mcp-front*` namespaces; modules use `debug.extend('…')`. */
export const debug = createDebug('mcp-front');

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

/** The default logger: lines on `stream` (stderr); `debug` events go to the `debug` package. */
export function createDefaultLogger(stream: NodeJS.WritableStream = process.stderr): Logger {
  const write = (level: string) => (message: string, fields?: LogFields) => {
    stream.write(formatLine(level, message, fields) + '\n');
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
