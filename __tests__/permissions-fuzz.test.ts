// No encoding of a tool name gets a refused tool through (README: Permissions per token): case
// variants, JSON escapes, Unicode look-alikes, batches and duplicate names in the JSON. Whatever
// the proxy forwards must name only the allowed tool under every reading a server may make of it:
// JSON.parse's (the last duplicate wins) and a parser where the first one wins.
import fc from 'fast-check';
import { captureLogger, DEV_TOKEN, startFront, type Front } from './helpers/servers';
import { startCapture, type CaptureServer } from './fixtures/remote-capture';
import { hasDuplicateKeys } from '../lib/wire/duplicate-keys';

const ALLOWED = 'get-sum';
let front: Front;
let capture: CaptureServer;

beforeAll(async () => {
  capture = await startCapture();
  front = await startFront(
    {
      proxy: { auth: { kind: 'bearer_token', tokens: { dev: DEV_TOKEN } } },
      mcpServers: { capture: { url: `${capture.origin}/mcp`, permissions: { dev: { tools: [ALLOWED] } } } },
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
