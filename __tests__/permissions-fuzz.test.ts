// No encoding of a tool name gets a refused tool through (README: Permissions per token): case
// variants, JSON escapes, Unicode look-alikes, batches and duplicate names in the JSON. Whatever
// the proxy forwards must name only the allowed tool under every reading a server may make of it:
// JSON.parse's (the last duplicate wins) and a parser where the first one wins. And no spelling of
// a path gets a resource URI out of the prefix a `*` pattern allows: whatever is forwarded stays
// inside it however a server resolves it.
import path from 'node:path';
import fc from 'fast-check';
import { captureLogger, DEV_TOKEN, startFront, type Front } from './helpers/servers';
import { startCapture, type CaptureServer } from './fixtures/remote-capture';
import { hasDuplicateKeys } from '../lib/wire/duplicate-keys';

const ALLOWED = 'get-sum';
const PREFIX = 'file:///data/public/';
let front: Front;
let capture: CaptureServer;

beforeAll(async () => {
  capture = await startCapture();
  front = await startFront(
    {
      proxy: { auth: { kind: 'bearer_token', tokens: { dev: DEV_TOKEN } } },
      mcpServers: { capture: { url: `${capture.origin}/mcp`, permissions: { dev: { tools: [ALLOWED], resources: [`${PREFIX}*`] } } } },
    },
    { logger: captureLogger() },
  );
});
afterAll(async () => {
  await front?.close();
  await capture?.close();
});

/** A JSON reader where the first of duplicate names wins (as some parsers do). */
function parseFirstWins(text: string): unknown {
  let i = 0;
  const ws = () => {
    while (/\s/.test(text[i] ?? '')) i++;
  };
  const value = (): unknown => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const out: Record<string, unknown> = {};
      ws();
      if (text[i] === '}') return i++, out;
      for (;;) {
        ws();
        const key = value() as string;
        ws();
        i++; // :
        const v = value();
        if (!Object.hasOwn(out, key)) Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
        ws();
        if (text[i++] === '}') return out;
      }
    }
    if (c === '[') {
      i++;
      const out: unknown[] = [];
      ws();
      if (text[i] === ']') return i++, out;
      for (;;) {
        out.push(value());
        ws();
        if (text[i++] === ']') return out;
      }
    }
    const start = i;
    if (c === '"') {
      i++;
      while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
      i++;
    } else while (i < text.length && !/[\s,\]}]/.test(text[i])) i++;
    return JSON.parse(text.slice(start, i));
  };
  return value();
}

/** `s` as a JSON string, each character escaped as `\uXXXX` where `escape` says so. */
const encode = (s: string, escape: boolean[]) =>
  '"' + [...s].map((ch, k) => (escape[k % escape.length] ? [...ch].map((u) => '\\u' + u.charCodeAt(0).toString(16).padStart(4, '0')).join('') : JSON.stringify(ch).slice(1, -1))).join('') + '"';

const candidate = fc.oneof(
  fc.constantFrom(ALLOWED, 'echo', 'Get-sum', 'GET-SUM', 'get-sum ', ' get-sum', 'get-sum\u0000', 'get\u2011sum', 'gеt-sum' /* Cyrillic е */, 'ｇet-sum', 'get-sum\u200b', 'get-su\u006d', 'get-sum\ud800'),
  fc.string({ maxLength: 10 }),
);
const encodedString = (s: fc.Arbitrary<string>) => fc.tuple(s, fc.array(fc.boolean(), { minLength: 1, maxLength: 8 })).map(([v, e]) => encode(v, e));
const nameKey = encodedString(fc.constantFrom('name', 'name', 'name', 'Name', 'nam\u0435'));
const methodPart = fc.constantFrom('"method":"tools/call"', '"m\\u0065thod":"tools/call"', '"method":"tools\\/call"', '"method":"ping","method":"tools/call"', '"method":"tools/call","method":"ping"');
const message = (id: number) =>
  fc
    .tuple(methodPart, fc.array(fc.tuple(nameKey, encodedString(candidate)), { minLength: 1, maxLength: 3 }), fc.boolean())
    .map(([method, names, paramsTwice]) => {
      const params = `{${names.map(([k, v]) => `${k}:${v}`).join(',')},"arguments":{}}`;
      // A second `params` object, before or after: which one is read depends on the parser.
      const other = `"params":{"name":"${ALLOWED}","arguments":{}}`;
      return `{"jsonrpc":"2.0","id":${id},${paramsTwice ? other + ',' : ''}${method},"params":${params}}`;
    });
const body = fc.oneof(message(1), fc.tuple(message(1), message(2)).map(([a, b]) => `[${a},{"jsonrpc":"2.0","id":3,"method":"ping"},${b}]`));

type Msg = { id?: unknown; method?: string; params?: { name?: unknown } };
const messagesOf = (v: unknown): Msg[] => (Array.isArray(v) ? v : [v]) as Msg[];
const refusedCalls = (v: unknown) => messagesOf(v).filter((m) => m.method === 'tools/call' && m.params?.name !== ALLOWED);

it('only the allowed tool ever reaches the server, under any reading of what was forwarded', async () => {
  await fc.assert(
    fc.asyncProperty(body, async (text) => {
      const before = capture.requests().length;
      const res = await fetch(`${front.url}/capture/mcp`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${DEV_TOKEN}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', 'MCP-Protocol-Version': '2025-06-18' },
        body: text,
      });
      // (The recording upstream does not answer batches properly: only the proxy's own answers are read.)
      const raw = await res.text();
      let answer: unknown;
      try {
        answer = JSON.parse(raw);
      } catch {
        answer = undefined;
      }
      // What the proxy read (JSON.parse) as a refused call was answered with -32602.
      for (const m of refusedCalls(JSON.parse(text))) {
        expect(messagesOf(answer)).toContainEqual({ jsonrpc: '2.0', id: m.id, error: { code: -32602, message: expect.stringMatching(/^Unknown tool: /) } });
      }
      for (const forwarded of capture.requests().slice(before)) {
        expect(hasDuplicateKeys(forwarded.body)).toBe(false);
        expect(refusedCalls(JSON.parse(forwarded.body))).toEqual([]);
        expect(refusedCalls(parseFirstWins(forwarded.body))).toEqual([]);
      }
    }),
    { numRuns: 200 },
  );
});

it('the reader of the test is right about duplicates (so the property above can fail)', () => {
  const text = '{"method":"tools/call","params":{"name":"echo","name":"get-sum"}}';
  expect(refusedCalls(JSON.parse(text))).toEqual([]);
  expect(refusedCalls(parseFirstWins(text))).toHaveLength(1);
  expect(hasDuplicateKeys(text)).toBe(true);
  expect(hasDuplicateKeys('{"a":{"n\\u0061me":1,"name":2}}')).toBe(true);
  expect(hasDuplicateKeys('[{"name":1},{"name":2}]')).toBe(false);
  expect(hasDuplicateKeys('{"a":"\\"name\\":","name":1,"b":{"name":2}}')).toBe(false);
});

/** Spellings of a path segment: plain ones (some of them odd), and dot segments, escaped or not. */
const PLAIN_SEGMENTS = ['a', 'b.txt', '...', 'a..b', '.hidden', '%20', '%2520', ''];
const DOT_SEGMENTS = ['.', '..', '%2e', '%2E', '%2e%2e', '%2E%2e', '.%2e', '%2e.', '%252e%252e', '%252E.'];
const SEPARATORS = ['/', '%2f', '%2F', '%5c', '%5C', '\\', '%252f', ';/'];
const ENDINGS = ['', '?q', '#f', ';p'];
const uriArbitrary = fc
  .tuple(
    fc.array(fc.tuple(fc.constantFrom(...PLAIN_SEGMENTS, ...DOT_SEGMENTS), fc.constantFrom('/', '/', ...SEPARATORS)), { minLength: 1, maxLength: 5 }),
    fc.constantFrom(...PLAIN_SEGMENTS),
    fc.constantFrom(...ENDINGS),
  )
  .map(([parts, last, ending]) => ({
    uri: PREFIX + parts.map(([seg, sep]) => seg + sep).join('') + last + ending,
    plain: parts.every(([seg, sep]) => PLAIN_SEGMENTS.includes(seg) && sep === '/') && ending === '',
  }));

const decode = (s: string) => s.replace(/%[0-9a-f]{2}/gi, (e) => String.fromCharCode(parseInt(e.slice(1), 16)));
const resolve = (p: string) => path.posix.normalize(p.replace(/\\/g, '/'));
/** The path a server opens for `uri`, in several ways servers read URIs. */
function readings(uri: string): string[] {
  const text = uri.slice('file://'.length);
  const beforeQuery = text.split(/[?#]/)[0];
  return [
    // The URL Standard (Node's URL: `%2e` segments and `\` resolved), then the path decoded.
    resolve(decode(new URL(uri).pathname)),
    // Decoded once, then resolved (RFC 3986 §2.1, §5.2.4).
    resolve(decode(beforeQuery)),
    // Path parameters dropped first (`..;p` is `..`), as servlet containers do.
    resolve(decode(beforeQuery.split('/').map((seg) => seg.split(';')[0]).join('/'))),
    // Decoded twice.
    resolve(decode(decode(beforeQuery))),
  ];
}
const inside = (p: string) => p === '/data/public' || p.startsWith('/data/public/');

it('no spelling of a path takes a resource out of the prefix its pattern allows', async () => {
  await fc.assert(
    fc.asyncProperty(uriArbitrary, async ({ uri, plain }) => {
      const before = capture.requests().length;
      const res = await fetch(`${front.url}/capture/mcp`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${DEV_TOKEN}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', 'MCP-Protocol-Version': '2025-06-18' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'resources/read', params: { uri } }),
      });
      const answer = (await res.json()) as { error?: unknown };
      const forwarded = capture.requests().slice(before);
      if (answer.error !== undefined) {
        expect(answer).toEqual({ jsonrpc: '2.0', id: 1, error: { code: -32602, message: `Unknown resource: ${uri}` } });
        expect(forwarded).toEqual([]);
      } else {
        expect(forwarded).toHaveLength(1);
        for (const p of readings(uri)) expect(inside(p)).toBe(true);
      }
      // And the rule is no blanket refusal: plain paths still pass.
      if (plain) expect(answer.error).toBeUndefined();
    }),
    { numRuns: 300 },
  );
});

it('the readings of the test see the traversals (so the property above can fail)', () => {
  for (const uri of [`${PREFIX}../x`, `${PREFIX}%2e%2e/x`, `${PREFIX}..%2fx`, `${PREFIX}..\\x`, `${PREFIX}..;p/x`, `${PREFIX}%252e%252e/x`, `${PREFIX}..?q`]) {
    expect(readings(uri).some((p) => !inside(p))).toBe(true);
  }
  expect(readings(`${PREFIX}a..b/.hidden/%20`).every(inside)).toBe(true);
});
