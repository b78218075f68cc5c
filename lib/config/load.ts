// Reading a configuration file (README: Configuration): the file, an optional BOM, JSON (RFC 8259)
// with `//` and `/* */` comments and trailing commas as the MCP Front documentation writes it (read
// by jsonc-parser, the parser of VS Code's settings files), a syntax error reported by line and
// column but never by quoting the text, then resolve.ts.
import { readFileSync } from 'node:fs';
import { type ParseErrorCode, printParseErrorCode, visit } from 'jsonc-parser';
import type { McpFrontConfig } from '../types';
import { ConfigError } from './config-error';
import { resolveConfig } from './resolve';

/** Reads a JSON file (comments and trailing commas allowed), validates it (same rules as `mcpFront()`), and returns the config. */
export function loadConfig(path: string, env: Record<string, string | undefined> = process.env): McpFrontConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unknown error';
    throw new ConfigError([{ path: '(file)', message: `cannot read config file ${JSON.stringify(path)}: ${code}` }]);
  }
  // Editors on Windows write a BOM.
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const parsed = parseJsonWithComments(text);
  if ('error' in parsed) {
    // Never the parser's own text around the error: it may hold a token value.
    throw new ConfigError([{ path: '(file)', message: `invalid JSON in ${JSON.stringify(path)}${parsed.error}` }]);
  }
  resolveConfig(parsed.value, env);
  return parsed.value as McpFrontConfig;
}

interface JsonSyntaxError {
  code: ReturnType<typeof printParseErrorCode>;
  offset: number;
  length: number;
  /** The innermost open container when the error was found, for "expected "," or "]"". */
  inArray: boolean;
}

const OPTIONS = { allowTrailingComma: true, disallowComments: false, allowEmptyContent: false };

/**
 * The document as `JSON.parse` would build it (a `"__proto__"` key stays an own property, where
 * jsonc-parser's `parse()` would set the prototype), or `" at line L, column C: reason"` for the
 * first syntax error.
 */
function parseJsonWithComments(text: string): { value: unknown } | { error: string } {
  let root: unknown;
  let key = '';
  let first: JsonSyntaxError | undefined;
  const open: (Record<string, unknown> | unknown[])[] = [];
  const put = (value: unknown) => {
    const parent = open[open.length - 1];
    if (parent === undefined) root = value;
    else if (Array.isArray(parent)) parent.push(value);
    else Object.defineProperty(parent, key, { value, writable: true, enumerable: true, configurable: true });
  };
  const begin = (container: Record<string, unknown> | unknown[]) => {
    put(container);
    open.push(container);
  };
  const end = () => void open.pop();
  try {
    visit(
      text,
      {
        onObjectBegin: () => begin({}),
        onObjectProperty: (name) => void (key = name),
        onObjectEnd: end,
        onArrayBegin: () => begin([]),
        onArrayEnd: end,
        onLiteralValue: put,
        onError: (code: ParseErrorCode, offset, length) => {
          first ??= { code: printParseErrorCode(code), offset, length, inArray: Array.isArray(open[open.length - 1]) };
        },
      },
      OPTIONS,
    );
  } catch (err) {
    // The parser recurses once per level: a hostile file nested that deep overflows the stack.
    if (err instanceof RangeError) return { error: ': nested too deeply' };
    throw err;
  }
  if (first === undefined) return { value: root };
  const { offset, reason } = describe(first, text);
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - before.lastIndexOf('\n');
  return { error: ` at line ${line}, column ${column}: ${reason}` };
}

/** A parser error → where a reader should look, and why, in the words of the README. */
function describe(e: JsonSyntaxError, text: string): { offset: number; reason: string } {
  const { offset, length } = e;
  const atEnd = offset >= text.length;
  // At the end of the file, the place to look is right after the last thing written.
  const last = text.trimEnd().length;
  const end = { offset: last, reason: 'unexpected end of file' };
  switch (e.code) {
    case 'InvalidSymbol':
      return { offset, reason: text[offset] === "'" ? 'strings must use double quotes' : 'unexpected character' };
    case 'InvalidNumberFormat':
    case 'UnexpectedEndOfNumber':
      return { offset, reason: 'invalid number' };
    case 'PropertyNameExpected':
      return atEnd ? end : { offset, reason: 'expected a property name in double quotes' };
    case 'ValueExpected':
      return atEnd ? end : { offset, reason: 'expected a value' };
    case 'ColonExpected':
      return atEnd ? end : { offset, reason: 'expected ":" after a property name' };
    case 'CommaExpected':
      return atEnd ? end : { offset, reason: `expected "," or "${e.inArray ? ']' : '}'}"` };
    case 'CloseBraceExpected':
      return { offset: last, reason: 'unexpected end of file (a "}" is missing)' };
    case 'CloseBracketExpected':
      return { offset: last, reason: 'unexpected end of file (a "]" is missing)' };
    case 'EndOfFileExpected':
      return { offset, reason: 'unexpected content after the end of the document' };
    case 'UnexpectedEndOfComment':
      return { offset, reason: 'unterminated comment (a "*/" is missing)' };
    case 'UnexpectedEndOfString':
      // Ended by a line break (which JSON strings cannot hold) or by the end of the file.
      if (offset + length < text.length) return { offset: offset + length, reason: CONTROL_IN_STRING };
      return { offset, reason: 'unterminated string' };
    case 'InvalidCharacter':
      return { offset: inString(text, offset, (c) => c < ' '), reason: CONTROL_IN_STRING };
    case 'InvalidEscapeCharacter':
    case 'InvalidUnicode':
      return { offset: inString(text, offset, (_, escape) => escape !== undefined && !VALID_ESCAPE.test(escape)), reason: BAD_ESCAPE };
    default:
      return { offset, reason: 'unexpected character' };
  }
}

const CONTROL_IN_STRING = 'control character in a string (write it as an escape such as \\n)';
const BAD_ESCAPE = 'invalid escape sequence in a string';
const VALID_ESCAPE = /^\\(?:["\\/bfnrt]|u[0-9A-Fa-f]{4})$/;

/**
 * The parser marks a whole string for a bad character or escape in it: the offset of the first
 * character (or escape, then passed as its text) of the string at `start` that `bad` accepts.
 */
function inString(text: string, start: number, bad: (c: string, escape?: string) => boolean): number {
  for (let i = start + 1; i < text.length && text[i] !== '"'; i++) {
    if (text[i] !== '\\') {
      if (bad(text[i])) return i;
      continue;
    }
    const escape = text.slice(i, text[i + 1] === 'u' ? i + 6 : i + 2);
    if (bad(text[i], escape)) return i;
    i += escape.length - 1;
  }
  return start;
}
