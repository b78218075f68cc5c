// The default logger's lines (README: Logs and debugging): one line per event, whatever client
// text a field or a message carries — tool names, URIs, path segments, a trusted X-Forwarded-For.
import { createDefaultLogger, formatLine } from '../lib/logger';
import { configWith, DEV_TOKEN, startFront, startJsonRpcUpstream, waitFor, type Front, type JsonRpcUpstream } from './helpers/servers';

/** Characters a log reader may take for the end of a line or an instruction; none may be written raw. */
const UNSAFE_CHARS = [
  ['LF', '\n'],
  ['CR', '\r'],
  ['ESC', '\u001b'],
  ['DEL', '\u007f'],
  ['U+0080', '\u0080'],
  ['NEL (U+0085)', '\u0085'],
  ['CSI (U+009B)', '\u009b'],
  ['U+009F', '\u009f'],
  ['LINE SEPARATOR (U+2028)', '\u2028'],
  ['PARAGRAPH SEPARATOR (U+2029)', '\u2029'],
  ['RIGHT-TO-LEFT OVERRIDE (U+202E)', '\u202e'],
  ['FIRST STRONG ISOLATE (U+2068)', '\u2068'],
] as const;
const RAW_UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
const AT = new Date('2024-01-15T10:30:45.123Z');

describe('formatLine', () => {
  it.each(UNSAFE_CHARS)('escapes %s in a value as a JSON escape, so the value reads back whole', (_, char) => {
    const name = `read${char}file`;
    const line = formatLine('WARN', 'permission denied', { name, server: 'files' }, AT);
    expect(line).not.toMatch(RAW_UNSAFE);
    const quoted = /^2024-01-15T10:30:45.123Z WARN permission denied name=("[^ ]*") server=files$/.exec(line);
    expect(quoted).not.toBeNull();
    expect(JSON.parse(quoted![1])).toBe(name);
  });

  it.each(UNSAFE_CHARS)('escapes %s in the message too', (_, char) => {
    const escaped = `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`;
    expect(formatLine('WARN', `token "a${char}b" is short`, { code: 'weak' }, AT)).toBe(`2024-01-15T10:30:45.123Z WARN token "a${escaped}b" is short code=weak`);
  });

  it('leaves ordinary non-ASCII text readable: quoted, not escaped', () => {
    expect(formatLine('INFO', 'mcp request', { name: 'café', uri: 'file:///日本/報告.txt' }, AT)).toBe(
      '2024-01-15T10:30:45.123Z INFO mcp request name="café" uri="file:///日本/報告.txt"',
    );
  });
});

describe('client text through a real router and the default logger', () => {
  let upstream: JsonRpcUpstream;
  let front: Front;
  let written = '';

  beforeAll(async () => {
    upstream = await startJsonRpcUpstream();
    const stream = { write: (chunk: string) => ((written += chunk), true) } as unknown as NodeJS.WritableStream;
    front = await startFront(configWith({ files: { url: upstream.url, permissions: { '*': { tools: ['read_file'] } } } }), {
      logger: createDefaultLogger(stream),
      configure: (app) => app.set('trust proxy', true),
    });
  });
  afterAll(async () => {
    await front?.close();
    await upstream?.close();
  });

  it('a tool name with U+2028 and C1 controls, a forwarded address and a path segment with C1 controls stay on their lines, escaped', async () => {
    const name = 'read\u2028file\u0085\u009b2J\u2029';
    const headers = {
      Authorization: `Bearer ${DEV_TOKEN}`,
      'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream',
      // Latin-1 bytes 0x85 and 0x9B: Node reads header bytes as Latin-1, so they are C1 controls.
      'X-Forwarded-For': '10.0.0.7\x85\x9b',
    };
    const call = await fetch(`${front.url}/files/mcp`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: {} } }),
    });
    expect(((await call.json()) as { error: { code: number } }).error.code).toBe(-32602);
    const unknown = await fetch(`${front.url}/files%C2%85%E2%80%A8x/mcp`, { method: 'POST', headers, body: '{}' });
    expect(unknown.status).toBe(404);
    await unknown.text();

    await waitFor(() => written.includes(' mcp request ') && written.includes(' unknown server '), 'the audit and unknown-server lines');
    const lines = written.split('\n').filter((l) => l !== '');
    for (const line of lines) {
      expect(line).toMatch(/^\d{4}-\d\d-\d\dT\S+Z (INFO|WARN|ERROR) /);
      expect(line).not.toMatch(RAW_UNSAFE);
    }
    const fieldOf = (message: string, key: string) => {
      const line = lines.find((l) => l.includes(` ${message} `));
      const value = new RegExp(` ${key}=("(?:[^"\\\\]|\\\\.)*"|\\S+)`).exec(line ?? '')?.[1];
      return value?.startsWith('"') ? (JSON.parse(value) as string) : value;
    };
    expect(fieldOf('permission denied', 'name')).toBe(name);
    expect(fieldOf('mcp request', 'name')).toBe(name);
    expect(fieldOf('auth successful', 'client_ip')).toBe('10.0.0.7\x85\x9b');
    expect(fieldOf('unknown server', 'server')).toBe('files\u0085\u2028x');
  });
});
