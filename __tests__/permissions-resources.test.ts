// Resource permissions beyond a single URI (README: Permissions per token): the 2026-07-28
// `subscriptions/listen` subscribes to a list of URIs, checked like `resources/subscribe`, on the
// stateless route and inside sessions; and a `*` in a resource pattern never matches a URI that
// a server would resolve out of it (dot segments, encoded separators, backslashes).
import path from 'node:path';
import { INITIALIZE, postModern } from './helpers/clients';
import { captureLogger, DEV_TOKEN, PROD_TOKEN, startFront, type Front } from './helpers/servers';
import { startCapture, type CaptureServer } from './fixtures/remote-capture';
import { openEventStream, type EventStream } from './fixtures/remote-streams';
import type { ServerPermissions } from '../lib/types';

const STDIO_SERVER = path.join(__dirname, 'fixtures', 'stdio-server.js');

/** `dev` on every server here; `prod` has no entry and is unrestricted. */
const DEV: ServerPermissions = {
  tools: ['files/*'],
  resources: ['file:///data/public/*', 'file:///data/exact/../kept', 'db://t/{id}'],
};

let front: Front;
let capture: CaptureServer;
const logger = captureLogger();

beforeAll(async () => {
  capture = await startCapture();
  front = await startFront(
    {
      proxy: { auth: { kind: 'bearer_token', tokens: { dev: DEV_TOKEN, prod: PROD_TOKEN } } },
      mcpServers: {
        files: { url: `${capture.origin}/mcp`, permissions: { dev: DEV } },
        'files-sse': { url: `${capture.origin}/legacy/sse`, permissions: { dev: DEV } },
        stdio: { command: process.execPath, args: [STDIO_SERVER, '--modern'], permissions: { dev: DEV } },
      },
    },
    { logger },
  );
});

afterAll(async () => {
  await front?.close();
  await capture?.close();
});

type Answer = { id?: unknown; result?: unknown; error?: { code: number; message: string } };
const unknownResource = (id: number, shown: string) => ({ jsonrpc: '2.0', id, error: { code: -32602, message: `Unknown resource: ${shown}` } });
/** Whether any request that reached the upstream carries `marker`. */
const arrived = (marker: string) => capture.requests().some((e) => e.body.includes(marker));

/** A stateless 2026-07-28 request; the answer (JSON, or the last message of an event stream). */
async function modern(server: string, id: number, method: string, params: Record<string, unknown>, token = DEV_TOKEN): Promise<{ status: number; answer: Answer }> {
  const name = method === 'resources/read' ? (params.uri as string) : undefined;
  const res = await postModern(`${front.url}/${server}/mcp`, token, id, method, params, { name });
  const text = await res.text();
  const lines = /event-stream/.test(res.headers.get('content-type') ?? '') ? text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)) : [text];
  return { status: res.status, answer: JSON.parse(lines[lines.length - 1]) as Answer };
}

const listen = (resourceSubscriptions: unknown, more: Record<string, unknown> = {}) => ({ notifications: { toolsListChanged: true, ...more, resourceSubscriptions } });

describe('subscriptions/listen (2026-07-28) is checked like resources/subscribe', () => {
  it('stateless: every URI allowed → forwarded; one refused → the whole request refused, naming the first', async () => {
    const allowed = await modern('files', 1, 'subscriptions/listen', listen(['file:///data/public/a-listen-ok', 'file:///data/public/b']));
    expect(allowed.status).toBe(200);
    expect(allowed.answer).toEqual({ jsonrpc: '2.0', id: 1, result: {} });
    expect(arrived('a-listen-ok')).toBe(true);

    const refused = await modern('files', 2, 'subscriptions/listen', listen(['file:///data/public/c-listen', 'file:///etc/listen-1', 'file:///etc/listen-2']));
    expect(refused.status).toBe(200);
    expect(refused.answer).toEqual(unknownResource(2, 'file:///etc/listen-1'));
    expect(arrived('c-listen')).toBe(false);
    expect(logger.entries).toContainEqual({ level: 'warn', message: 'permission denied', fields: { token: 'dev', server: 'files', method: 'subscriptions/listen', name: 'file:///etc/listen-1' } });
    expect(logger.text()).not.toContain(DEV_TOKEN);
  });

  it('a traversal out of an allowed prefix is refused in a listen too', async () => {
    const { answer } = await modern('files', 3, 'subscriptions/listen', listen(['file:///data/public/%2e%2e/listen-3']));
    expect(answer).toEqual(unknownResource(3, 'file:///data/public/%2e%2e/listen-3'));
    expect(arrived('listen-3')).toBe(false);
  });

  it('no resource named (list_changed only, or an empty list): forwarded', async () => {
    const none = await modern('files', 4, 'subscriptions/listen', { notifications: { toolsListChanged: true }, marker: 'listen-4' });
    expect(none.answer).toEqual({ jsonrpc: '2.0', id: 4, result: {} });
    const empty = await modern('files', 5, 'subscriptions/listen', { ...listen([]), marker: 'listen-5' });
    expect(empty.answer).toEqual({ jsonrpc: '2.0', id: 5, result: {} });
    expect(arrived('listen-4') && arrived('listen-5')).toBe(true);
  });

  it.each([
    ['a string, even an allowed one', 'listen-6a', listen('file:///data/public/listen-6a'), '"file:///data/public/listen-6a"'],
    ['a non-string entry', 'listen-6b', listen(['file:///data/public/listen-6b', 6]), '6'],
    ['an object', 'listen-6c', listen({ 0: 'file:///etc/listen-6c' }), '{"0":"file:///etc/listen-6c"}'],
    ['null', 'listen-6d', { ...listen(null), marker: 'listen-6d' }, 'null'],
    ['a filter that is an array', 'listen-6e', { notifications: [{ resourceSubscriptions: ['file:///etc/listen-6e'] }] }, '[{"resourceSubscriptions":["file:///etc/listen-6e"]}]'],
  ])('malformed (%s) is refused for a token with resource restrictions, and forwarded for one without', async (_what, marker, params, shown) => {
    const { answer } = await modern('files', 6, 'subscriptions/listen', params);
    expect(answer).toEqual(unknownResource(6, shown));
    expect(arrived(marker)).toBe(false);
    // Nothing to enforce for an unrestricted token: the server judges the shape.
    const prod = await modern('files', 7, 'subscriptions/listen', params, PROD_TOKEN);
    expect(prod.answer).toEqual({ jsonrpc: '2.0', id: 7, result: {} });
    expect(arrived(marker)).toBe(true);
  });

  it('in a Streamable HTTP session', async () => {
    const init = await fetch(`${front.url}/files/mcp`, { method: 'POST', headers: headers(), body: JSON.stringify(INITIALIZE) });
    const sessionId = init.headers.get('mcp-session-id')!;
    await init.text();
    expect(sessionId).toBeTruthy();
    const res = await fetch(`${front.url}/files/mcp`, { method: 'POST', headers: headers(sessionId), body: JSON.stringify(request(8, 'subscriptions/listen', listen(['file:///etc/listen-8']))) });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(unknownResource(8, 'file:///etc/listen-8'));
    expect(arrived('listen-8')).toBe(false);
  });

  it('in a legacy SSE session: 202, and the error on the stream', async () => {
    const stream: EventStream = await openEventStream(`${front.url}/files-sse/sse`, { headers: { Authorization: `Bearer ${DEV_TOKEN}` } });
    try {
      const endpoint = await stream.next();
      const res = await fetch(front.origin + endpoint.data, { method: 'POST', headers: headers(), body: JSON.stringify(request(9, 'subscriptions/listen', listen(['file:///data/public/../listen-9']))) });
      expect(res.status).toBe(202);
      await res.text();
      // Whichever comes first: the proxy's answer on the stream, or the request at the upstream.
      const first = await Promise.race([
        stream.nextMatching((e) => e.event === 'message').then((e) => JSON.parse(e.data) as unknown),
        capture.waitFor((e) => e.body.includes('listen-9')).then(() => 'forwarded'),
      ]);
      expect(first).toEqual(unknownResource(9, 'file:///data/public/../listen-9'));
      expect(arrived('listen-9')).toBe(false);
    } finally {
      stream.close();
      await stream.ended;
    }
  });

  it('on the stateless stdio route: refused by the proxy, an allowed one reaches the child', async () => {
    const refused = await modern('stdio', 10, 'subscriptions/listen', listen(['file:///etc/listen-10']));
    expect(refused.answer).toEqual(unknownResource(10, 'file:///etc/listen-10'));
    // The fixture knows no such method: its own answer proves the request reached it.
    const allowed = await modern('stdio', 11, 'subscriptions/listen', listen(['file:///data/public/x']));
    expect(allowed.answer).toMatchObject({ id: 11, error: { code: -32601, message: 'Method not found: subscriptions/listen' } });
  });

  it('resources/unsubscribe is not checked: it reveals nothing, and drops what a reload forbade', async () => {
    const { answer } = await modern('files', 12, 'resources/unsubscribe', { uri: 'file:///etc/unsubscribe-12' });
    expect(answer).toEqual({ jsonrpc: '2.0', id: 12, result: {} });
    expect(arrived('unsubscribe-12')).toBe(true);
  });
});

const headers = (sessionId?: string) => ({
  Authorization: `Bearer ${DEV_TOKEN}`,
  'Content-Type': 'application/json',
  Accept: 'application/json, text/event-stream',
  'MCP-Protocol-Version': '2025-06-18',
  ...(sessionId ? { 'Mcp-Session-Id': sessionId } : {}),
});
const request = (id: number, method: string, params: Record<string, unknown>) => ({ jsonrpc: '2.0', id, method, params });

describe('a * in a resource pattern does not reach out of its prefix', () => {
  /** One 2025-06-18 batch, so each entry is decided on its own and answered in one exchange. */
  async function decide(method: string, uris: string[]): Promise<Map<string, Answer>> {
    const res = await fetch(`${front.url}/files/mcp`, { method: 'POST', headers: headers(), body: JSON.stringify(uris.map((uri, i) => request(i + 1, method, { uri }))) });
    const answers = (await res.json()) as Answer[];
    return new Map(uris.map((uri, i) => [uri, answers.find((a) => a.id === i + 1)!]));
  }

  const TRAVERSALS = [
    'file:///data/public/../secret',
    'file:///data/public/x/../../secret',
    'file:///data/public/./secret',
    'file:///data/public/..',
    'file:///data/public/%2e%2e/secret',
    'file:///data/public/%2E%2e/secret',
    'file:///data/public/.%2E/secret',
    'file:///data/public/%2e/secret',
    'file:///data/public/%252e%252e/secret',
    'file:///data/public/..%2fsecret',
    'file:///data/public/..%2Fsecret',
    'file:///data/public/..%5csecret',
    'file:///data/public/..%5Csecret',
    'file:///data/public/%252fsecret',
    'file:///data/public/..\\secret',
    'file:///data/public/a\\b',
    'file:///data/public/..?secret',
    'file:///data/public/..#secret',
    'file:///data/public/..;/secret',
  ];
  const PLAIN = ['file:///data/public/a%20b', 'file:///data/public/a..b', 'file:///data/public/.hidden', 'file:///data/public/...', 'file:///data/public/x/y.txt', 'file:///data/public/%2520'];

  it.each(['resources/read', 'resources/subscribe'])('%s: traversal variants refused, unusual but plain URIs allowed', async (method) => {
    const before = capture.requests().length;
    const uris = [...TRAVERSALS, ...PLAIN];
    const answers = await decide(method, uris);
    TRAVERSALS.forEach((uri, i) => expect(answers.get(uri)).toEqual(unknownResource(i + 1, uri)));
    // (The recording upstream answers a batch with one message: only the proxy's own answers are read.)
    for (const uri of PLAIN) expect(answers.get(uri)?.error).toBeUndefined();
    const forwarded = capture.requests().slice(before).map((e) => e.body);
    expect(forwarded).toHaveLength(1);
    expect((JSON.parse(forwarded[0]) as { params: { uri: string } }[]).map((m) => m.params.uri)).toEqual(PLAIN);
  });

  it('on the stateless 2026-07-28 route too', async () => {
    const { answer } = await modern('files', 20, 'resources/read', { uri: 'file:///data/public/%2e%2e/stateless-20' });
    expect(answer).toEqual(unknownResource(20, 'file:///data/public/%2e%2e/stateless-20'));
    expect(arrived('stateless-20')).toBe(false);
  });

  it('an exact pattern still matches exactly, dot segments and all; templates are literal text', async () => {
    const answers = await decide('resources/read', ['file:///data/exact/../kept', 'file:///data/exact/../kept2', 'db://t/{id}']);
    expect(answers.get('file:///data/exact/../kept')?.error).toBeUndefined();
    expect(answers.get('db://t/{id}')?.error).toBeUndefined();
    expect(answers.get('file:///data/exact/../kept2')?.error?.code).toBe(-32602);
  });

  it('tool names are unaffected', async () => {
    const res = await fetch(`${front.url}/files/mcp`, { method: 'POST', headers: headers(), body: JSON.stringify(request(21, 'tools/call', { name: 'files/../tool-21', arguments: {} })) });
    expect(await res.json()).toEqual({ jsonrpc: '2.0', id: 21, result: {} });
    expect(arrived('tool-21')).toBe(true);
  });

  it('the lone * still allows everything', async () => {
    await front.router.reload({
      proxy: { auth: { kind: 'bearer_token', tokens: { dev: DEV_TOKEN, prod: PROD_TOKEN } } },
      mcpServers: { files: { url: `${capture.origin}/mcp`, permissions: { dev: { resources: ['*'] } } } },
    });
    const res = await fetch(`${front.url}/files/mcp`, { method: 'POST', headers: headers(), body: JSON.stringify(request(22, 'resources/read', { uri: 'file:///data/public/../star-22' })) });
    expect(await res.json()).toEqual({ jsonrpc: '2.0', id: 22, result: {} });
    expect(arrived('star-22')).toBe(true);
  });
});
