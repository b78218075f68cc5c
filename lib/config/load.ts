// Reading a configuration file (README: Configuration): the file, an optional BOM, JSON (RFC 8259)
// with a syntax error reported by line and column but never by quoting the text, then resolve.ts.
import { readFileSync } from 'node:fs';
import type { McpFrontConfig } from '../types';
import { ConfigError } from './config-error';
import { resolveConfig } from './resolve';

/** Reads a JSON file, validates it (same rules as `mcpFront()`), and returns the config. */
export function loadConfig(path: string, env: Record<string, string | undefined> = process.env): McpFrontConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unknown error';
    throw new ConfigError([{ path: '(file)', message: `cannot read config file ${JSON.stringify(path)}: ${code}` }]);
  }
  // Editors on Windows write a BOM, which JSON.parse rejects.
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    // V8's own message quotes the text around the error, which may be a token value.
    throw new ConfigError([{ path: '(file)', message: `invalid JSON in ${JSON.stringify(path)}${describeJsonError(text)}` }]);
  }
  resolveConfig(raw, env);
  return raw as McpFrontConfig;
}

/** `" at line L, column C: reason"` for the first syntax error in `text`, found by a small scanner. */
function describeJsonError(text: string): string {
  let i = 0;
  function fail(reason: string): never {
    throw Object.assign(new Error(reason), { offset: i });
  }
  function unexpected(): never {
    if (i >= text.length) fail('unexpected end of file');
    if (text[i] === '/') fail('comments are not allowed in JSON');
    if (text[i] === "'") fail('strings must use double quotes');
    fail('unexpected character');
  }
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  };
  const string = () => {
    const start = i++;
    for (;;) {
      const c = text[i];
      if (c === undefined) {
        i = start; // the opening quote is what the reader needs to find
        fail('unterminated string');
      }
      if (c === '"') return void i++;
      if (c < ' ') fail('control character in a string (write it as an escape such as \\n)');
      if (c === '\\') {
        const e = text[i + 1];
        if (e === 'u' ? !/^[0-9A-Fa-f]{4}$/.test(text.slice(i + 2, i + 6)) : !'"\\/bfnrt'.includes(e ?? 'x')) {
          fail('invalid escape sequence in a string');
        }
        i += e === 'u' ? 6 : 2;
      } else i++;
    }
  };
  const value = (): void => {
    const c = text[i];
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']';
      i++;
      ws();
      if (text[i] === close) return void i++;
      for (;;) {
        if (close === '}') {
          if (text[i] !== '"') {
            if (text[i] === '}') fail('trailing comma before "}"');
            if (i >= text.length || text[i] === '/' || text[i] === "'") unexpected();
            fail('expected a property name in double quotes');
          }
          string();
          ws();
          if (text[i] !== ':') fail('expected ":" after a property name');
          i++;
          ws();
        } else if (text[i] === ']') fail('trailing comma before "]"');
        value();
        ws();
        if (text[i] === ',') {
          i++;
          ws();
        } else if (text[i] === close) return void i++;
        else if (i >= text.length) unexpected();
        else fail(`expected "," or "${close}"`);
      }
    }
    if (c === '"') return string();
    for (const lit of ['true', 'false', 'null']) if (text.startsWith(lit, i)) return void (i += lit.length);
    const num = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
    num.lastIndex = i;
    if ((c === '-' || (c >= '0' && c <= '9')) && num.test(text)) return void (i = num.lastIndex);
    unexpected();
  };
  try {
    ws();
    value();
    ws();
    if (i < text.length) fail('unexpected content after the end of the document');
    return '';
  } catch (err) {
    const offset = (err as { offset?: number }).offset;
    if (offset === undefined) return ''; // e.g. nesting too deep for the scanner's stack
    const before = text.slice(0, offset);
    const line = before.split('\n').length;
    const column = offset - before.lastIndexOf('\n');
    return ` at line ${line}, column ${column}: ${(err as Error).message}`;
  }
}
