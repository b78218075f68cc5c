// Aggregates (README: Aggregates): routing and rewriting, through the official SDK client on both
// client transports, with real members — the reference server (stdio, Streamable HTTP, legacy
// SSE) and fixtures that record what reached them, the proof that a member receives its own
// names, URIs and ids while the client sees prefixed ones.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { CreateMessageRequestSchema, ElicitRequestSchema, ListRootsRequestSchema, McpError, ResultSchema, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { startBridgeUpstream, type BridgeUpstream } from './fixtures/bridge-upstream';
import { startCapture, type CaptureServer } from './fixtures/remote-capture';
import { connectClient, INITIALIZE, textOf, type ClientTransportKind } from './helpers/clients';
import { captureLogger, configWith, DEV_TOKEN, EVERYTHING, startEverything, startFront, waitFor, type Front, type Upstream } from './helpers/servers';

const MEMBER = path.join(__dirname, 'fixtures', 'aggregate-member.js');
const FIXTURE_TOOLS = ['echo', 'pid', 'snake_case_tool', 'links', 'ask', 'withdraw', 'progress', 'release', 'hang', 'changed', 'updated'];
const FIXTURE_PROMPTS = ['greet', 'embed', 'third'];
const resourcesOf = (name: string) => [0, 1, 2, 3, 4].map((i) => `mem://${name}/r${i}`);
const templatesOf = (name: string) => ['t', 'u', 'v'].map((t) => `mem://${name}/${t}/{id}`);
/** The length of a client-facing text before it is clipped (lib/logger.ts `MAX_CLIENT_TEXT`). */
const CLIPPED = 128;

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
type Message = Obj & { id?: unknown; method?: string };

let dir: string;
let everythingHttp: Upstream;
let everythingSse: Upstream;
let capture: CaptureServer;
let legacy: BridgeUpstream;
let front: Front;
const logger = captureLogger();
/** The reference server's own lists, read on its own route: what the aggregate must show, prefixed. */
const EV = { tools: [] as string[], prompts: [] as string[], resources: [] as string[], templates: [] as string[] };

const LISTS = {
  tools: ['tools/list', 'tools', 'name'],
  prompts: ['prompts/list', 'prompts', 'name'],
  resources: ['resources/list', 'resources', 'uri'],
  templates: ['resources/templates/list', 'resourceTemplates', 'uriTemplate'],
} as const;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'aggregate-routing-'));
  [everythingHttp, everythingSse, capture, legacy] = await Promise.all([startEverything('streamableHttp'), startEverything('sse'), startCapture(), startBridgeUpstream()]);
  const member = (name: string) => ({ command: process.execPath, args: [MEMBER, `--name=${name}`, `--record=${path.join(dir, `${name}.log`)}`] });
  front = await startFront(
    {
      ...configWith({
        alpha: member('alpha'),
        beta: member('beta'),
        // Long enough for a child to start on a busy machine: the member's `timeout` bounds its initialize too.
        gamma: { ...member('gamma'), timeout: '10s' },
        every: { url: `${everythingHttp.origin}/mcp` },
        evs: { command: process.execPath, args: [EVERYTHING, 'stdio'] },
        evsse: { url: `${everythingSse.origin}/sse` },
        cap: { url: `${capture.origin}/mcp` },
        leg: { url: `${legacy.origin}/legacy/sse` },
      }),
      aggregates: {
        agg: { servers: { alpha: {}, beta: { prefix: 'b2' }, every: { prefix: 'ev' } } },
        dash: { servers: { alpha: { prefix: 'a-1' }, beta: { prefix: 'b' } }, separator: '-' },
        under: { servers: ['beta', 'alpha'], separator: '_' },
        dd: { servers: { alpha: { prefix: 'x' }, beta: { prefix: 'y' } }, separator: '--' },
        mix: { servers: { evs: { prefix: 'es' }, evsse: { prefix: 'ew' } } },
        remote: { servers: ['cap', 'leg'] },
        timed: { servers: ['gamma'] },
      },
    },
    { logger },
  );
  const direct = await connectClient(front.url, 'every', 'streamable', DEV_TOKEN);
  try {
    for (const [kind, [method, array, key]] of Object.entries(LISTS)) EV[kind as keyof typeof EV] = await allPages(direct, method, array, key);
  } finally {
    await direct.close();
  }
});

afterAll(async () => {
  await front?.close();
  await Promise.all([everythingHttp?.close(), everythingSse?.close(), capture?.close(), legacy?.close()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// --- helpers -------------------------------------------------------------------------------------

/** Any request, its result unchecked by the SDK's schemas (names it would refuse to send typed). */
function request(client: Client, method: string, params?: unknown): Promise<Obj> {
  return client.request((params === undefined ? { method } : { method, params }) as never, ResultSchema) as Promise<Obj>;
}

/** The JSON-RPC error a request ended with: its code, and its message as the server wrote it. */
async function refusal(pending: Promise<unknown>): Promise<{ code: number; message: string }> {
  const err = await pending.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof McpError)) throw new Error(`expected a JSON-RPC error, got ${err === undefined ? 'a result' : String(err)}`);
  return { code: err.code, message: err.message.replace(`MCP error ${err.code}: `, '') };
}

async function allPages(client: Client, method: string, array: string, key: string): Promise<string[]> {
  const out: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await request(client, method, cursor === undefined ? {} : { cursor });
    out.push(...(page[array] as Obj[]).map((e) => e[key] as string));
    cursor = page.nextCursor as string | undefined;
  } while (cursor !== undefined);
  return out;
}

/** One list of an aggregate, which must come whole: no `nextCursor`. */
async function whole(client: Client, kind: keyof typeof LISTS): Promise<string[]> {
  const [method, array, key] = LISTS[kind];
  const page = await request(client, method);
  expect(page.nextCursor).toBeUndefined();
  return (page[array] as Obj[]).map((e) => e[key] as string);
}

/** What the fixture member `name` (alpha or beta) of one session (its child's pid) received, in order. */
function received(name: string, pid: number): Message[] {
  let text = '';
  try {
    text = readFileSync(path.join(dir, `${name}.log`), 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${pid} `))
    .map((line) => JSON.parse(line.slice(line.indexOf(' ') + 1)) as Message);
}

async function pidOf(client: Client, tool: string): Promise<number> {
  return Number(textOf(await client.callTool({ name: tool })));
}

/** The tools/call requests a member received, by tool name. */
const calls = (messages: Message[]) => messages.filter((m) => m.method === 'tools/call').map((m) => m.params.name as string);

interface Tap {
  incoming: Message[];
  outgoing: Message[];
  /** Resolves once `count` incoming messages matched `predicate`. */
  until(predicate: (m: Message) => boolean, count?: number): Promise<Message[]>;
  /** Sends a message as is, past the SDK client. */
  raw(message: Message): Promise<void>;
}

/** Every message a connected client sends and receives, as the transport carries it. */
function tap(client: Client): Tap {
  const transport = client.transport as Transport;
  const incoming: Message[] = [];
  const outgoing: Message[] = [];
  const waiters: { predicate: (m: Message) => boolean; count: number; resolve: (ms: Message[]) => void }[] = [];
  const matching = (predicate: (m: Message) => boolean) => incoming.filter(predicate);
  const onmessage = transport.onmessage!;
  transport.onmessage = (message, extra) => {
    incoming.push(message as Message);
    for (const w of [...waiters]) {
      const found = matching(w.predicate);
      if (found.length >= w.count) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(found);
      }
    }
    onmessage.call(transport, message, extra);
  };
  const send = transport.send.bind(transport);
  transport.send = (message, options) => {
    outgoing.push(message as Message);
    return send(message, options);
  };
  return {
    incoming,
    outgoing,
    until(predicate, count = 1) {
      const found = matching(predicate);
      if (found.length >= count) return Promise.resolve(found);
      return new Promise((resolve) => waiters.push({ predicate, count, resolve }));
    },
    raw: (message) => send(message as JSONRPCMessage),
  };
}

// --- both client transports ----------------------------------------------------------------------

describe.each<ClientTransportKind>(['streamable', 'sse'])('aggregate routing over %s', (kind) => {
  let client: Client;
  let seen: Tap;
  let alpha: number;
  let beta: number;
  beforeAll(async () => {
    client = await connectClient(front.url, 'agg', kind, DEV_TOKEN);
    seen = tap(client);
    alpha = await pidOf(client, 'alpha__pid');
    beta = await pidOf(client, 'b2__pid');
  });
  afterAll(async () => {
    await client?.close();
  });

  describe('lists', () => {
    test('every page of every member, prefixed, in config order, without nextCursor', async () => {
      expect(await whole(client, 'tools')).toEqual([...FIXTURE_TOOLS.map((n) => `alpha__${n}`), ...FIXTURE_TOOLS.map((n) => `b2__${n}`), ...EV.tools.map((n) => `ev__${n}`)]);
      expect(await whole(client, 'prompts')).toEqual([...FIXTURE_PROMPTS.map((n) => `alpha__${n}`), ...FIXTURE_PROMPTS.map((n) => `b2__${n}`), ...EV.prompts.map((n) => `ev__${n}`)]);
      expect(await whole(client, 'resources')).toEqual([...resourcesOf('alpha').map((u) => `alpha+${u}`), ...resourcesOf('beta').map((u) => `b2+${u}`), ...EV.resources.map((u) => `ev+${u}`)]);
      expect(await whole(client, 'templates')).toEqual([...templatesOf('alpha').map((u) => `alpha+${u}`), ...templatesOf('beta').map((u) => `b2+${u}`), ...EV.templates.map((u) => `ev+${u}`)]);
      // The fixture's pages are two entries long: the aggregate followed its own cursors.
      const cursors = (method: string) => received('alpha', alpha).filter((m) => m.method === method).slice(-6).map((m) => m.params?.cursor);
      expect(cursors('tools/list')).toEqual([undefined, '2', '4', '6', '8', '10']);
      expect(cursors('resources/list').slice(-3)).toEqual([undefined, '2', '4']);
      expect(cursors('resources/templates/list').slice(-2)).toEqual([undefined, '2']);
    });

    test.each(Object.keys(LISTS) as (keyof typeof LISTS)[])('a client cursor on %s is refused with -32602', async (list) => {
      const before = received('alpha', alpha).length;
      const error = await refusal(request(client, LISTS[list][0], { cursor: '2' }));
      expect(error).toEqual({ code: -32602, message: 'Invalid params: an aggregate answers a list whole, without pages; send no cursor' });
      await client.callTool({ name: 'alpha__echo', arguments: { message: 'after cursor' } });
      expect(received('alpha', alpha).slice(before).map((m) => m.method)).toEqual(['tools/call']);
    });
  });

  describe('requests reach their member in its own names', () => {
    test('tools/call', async () => {
      expect(textOf(await client.callTool({ name: 'alpha__echo', arguments: { message: `to alpha ${kind}` } }))).toBe(`alpha:to alpha ${kind}`);
      expect(textOf(await client.callTool({ name: 'b2__echo', arguments: { message: `to beta ${kind}` } }))).toBe(`beta:to beta ${kind}`);
      expect(textOf(await client.callTool({ name: 'ev__echo', arguments: { message: `to everything ${kind}` } }))).toBe(`Echo: to everything ${kind}`);
      expect(textOf(await client.callTool({ name: 'ev__get-sum', arguments: { a: 2, b: 40 } }))).toContain('42');
      const own = (messages: Message[]) => messages.filter((m) => m.method === 'tools/call' && m.params.name === 'echo').at(-1)!.params;
      expect(own(received('alpha', alpha))).toEqual({ name: 'echo', arguments: { message: `to alpha ${kind}` } });
      expect(own(received('beta', beta))).toEqual({ name: 'echo', arguments: { message: `to beta ${kind}` } });
    });

    test('prompts/get', async () => {
      expect(await client.getPrompt({ name: 'alpha__greet', arguments: { who: 'ada' } })).toEqual({ messages: [{ role: 'user', content: { type: 'text', text: 'alpha:greet:ada' } }] });
      expect(await client.getPrompt({ name: 'b2__greet', arguments: { who: 'bob' } })).toEqual({ messages: [{ role: 'user', content: { type: 'text', text: 'beta:greet:bob' } }] });
      const simple = await client.getPrompt({ name: 'ev__simple-prompt' });
      expect(simple.messages).toEqual([{ role: 'user', content: { type: 'text', text: expect.any(String) } }]);
      const args = await client.getPrompt({ name: 'ev__args-prompt', arguments: { city: 'Lyon' } });
      expect(JSON.stringify(args.messages)).toContain('Lyon');
      expect(received('alpha', alpha).filter((m) => m.method === 'prompts/get').at(-1)!.params).toEqual({ name: 'greet', arguments: { who: 'ada' } });
      expect(received('beta', beta).filter((m) => m.method === 'prompts/get').at(-1)!.params).toEqual({ name: 'greet', arguments: { who: 'bob' } });
    });

    test('resources/read, of a listed resource and through a template', async () => {
      expect(await client.readResource({ uri: 'alpha+mem://alpha/r3' })).toEqual({ contents: [{ uri: 'alpha+mem://alpha/r3', text: 'alpha:mem://alpha/r3' }] });
      expect(await client.readResource({ uri: 'b2+mem://beta/t/7' })).toEqual({ contents: [{ uri: 'b2+mem://beta/t/7', text: 'beta:mem://beta/t/7' }] });
      expect(received('alpha', alpha).filter((m) => m.method === 'resources/read').at(-1)!.params).toEqual({ uri: 'mem://alpha/r3' });
      expect(received('beta', beta).filter((m) => m.method === 'resources/read').at(-1)!.params).toEqual({ uri: 'mem://beta/t/7' });

      const dynamic = await client.readResource({ uri: 'ev+demo://resource/dynamic/text/2' });
      expect(dynamic.contents).toEqual([{ uri: 'ev+demo://resource/dynamic/text/2', mimeType: 'text/plain', text: expect.stringMatching(/^Resource 2: This is a plaintext resource/) }]);
      const listed = `ev+${EV.resources[0]}`;
      const read = await client.readResource({ uri: listed });
      expect(read.contents.map((c) => c.uri)).toEqual([listed]);
    });

    test('resources/subscribe and unsubscribe; notifications/resources/updated arrives prefixed', async () => {
      expect(await client.subscribeResource({ uri: 'alpha+mem://alpha/r1' })).toEqual({});
      const updated = seen.until((m) => m.method === 'notifications/resources/updated');
      await client.callTool({ name: 'alpha__updated', arguments: { uri: 'mem://alpha/r1' } });
      expect(await updated).toEqual([{ jsonrpc: '2.0', method: 'notifications/resources/updated', params: { uri: 'alpha+mem://alpha/r1' } }]);
      expect(await client.unsubscribeResource({ uri: 'alpha+mem://alpha/r1' })).toEqual({});
      const own = received('alpha', alpha).filter((m) => m.method === 'resources/subscribe' || m.method === 'resources/unsubscribe');
      expect(own.map((m) => [m.method, m.params])).toEqual([
        ['resources/subscribe', { uri: 'mem://alpha/r1' }],
        ['resources/unsubscribe', { uri: 'mem://alpha/r1' }],
      ]);
    });

    test('completion/complete by ref/prompt and ref/resource', async () => {
      const byPrompt = await client.complete({ ref: { type: 'ref/prompt', name: 'alpha__greet' }, argument: { name: 'who', value: 'a' } });
      expect(byPrompt.completion.values).toEqual(['alpha:ref/prompt:greet:a']);
      const byResource = await client.complete({ ref: { type: 'ref/resource', uri: 'b2+mem://beta/t/{id}' }, argument: { name: 'id', value: '7' } });
      expect(byResource.completion.values).toEqual(['beta:ref/resource:mem://beta/t/{id}:7']);
      expect(received('alpha', alpha).filter((m) => m.method === 'completion/complete').at(-1)!.params).toEqual({ ref: { type: 'ref/prompt', name: 'greet' }, argument: { name: 'who', value: 'a' } });
      expect(received('beta', beta).filter((m) => m.method === 'completion/complete').at(-1)!.params).toEqual({ ref: { type: 'ref/resource', uri: 'mem://beta/t/{id}' }, argument: { name: 'id', value: '7' } });

      const department = await client.complete({ ref: { type: 'ref/prompt', name: 'ev__completable-prompt' }, argument: { name: 'department', value: 'Mar' } });
      expect(department.completion.values).toEqual(['Marketing']);
      const id = await client.complete({ ref: { type: 'ref/resource', uri: 'ev+demo://resource/dynamic/text/{resourceId}' }, argument: { name: 'resourceId', value: '3' } });
      expect(id.completion.values).toEqual(['3']);
    });
  });

  describe('resource URIs inside results come back prefixed and readable', () => {
    test('a tool’s resource_link and embedded resource', async () => {
      const links = await client.callTool({ name: 'alpha__links' });
      expect(links.content).toEqual([
        { type: 'resource_link', uri: 'alpha+mem://alpha/a', name: 'a' },
        { type: 'resource', resource: { uri: 'alpha+mem://alpha/b', text: 'b' } },
      ]);
      for (const uri of ['alpha+mem://alpha/a', 'alpha+mem://alpha/b']) {
        expect(await client.readResource({ uri })).toEqual({ contents: [{ uri, text: `alpha:${uri.slice('alpha+'.length)}` }] });
      }
    });

    test('a prompt’s embedded resource', async () => {
      expect(await client.getPrompt({ name: 'b2__embed' })).toEqual({ messages: [{ role: 'user', content: { type: 'resource', resource: { uri: 'b2+mem://beta/b', text: 'b' } } }] });
    });

    test('the reference server’s resource links, resource reference and resource prompt', async () => {
      const links = await client.callTool({ name: 'ev__get-resource-links', arguments: { count: 2 } });
      const uris = (links.content as Obj[]).filter((c) => c.type === 'resource_link').map((c) => c.uri as string);
      expect(uris).toEqual(['ev+demo://resource/dynamic/blob/1', 'ev+demo://resource/dynamic/text/2']);
      for (const uri of uris) expect((await client.readResource({ uri })).contents.map((c) => c.uri)).toEqual([uri]);

      const reference = await client.callTool({ name: 'ev__get-resource-reference', arguments: { resourceType: 'Text', resourceId: 4 } });
      const embedded = (reference.content as Obj[]).filter((c) => c.type === 'resource').map((c) => c.resource.uri as string);
      expect(embedded).toEqual(['ev+demo://resource/dynamic/text/4']);
      expect((await client.readResource({ uri: embedded[0] })).contents.map((c) => c.uri)).toEqual(embedded);

      const prompt = await client.getPrompt({ name: 'ev__resource-prompt', arguments: { resourceType: 'Blob', resourceId: '5' } });
      expect(prompt.messages.map((m) => (m.content.type === 'resource' ? m.content.resource.uri : m.content.type))).toEqual(['text', 'ev+demo://resource/dynamic/blob/5']);
    });
  });

  describe('names that reach no member', () => {
    const huge = `zz__${'n'.repeat(1024 * 1024)}`;
    const hugeUri = `zz+mem://${'n'.repeat(1024 * 1024)}`;
    const nameCases: [string, unknown, string][] = [
      ['no member’s prefix', 'nope__echo', 'nope__echo'],
      ['the wrong separator', 'alpha-echo', 'alpha-echo'],
      ['no separator', 'alphaecho', 'alphaecho'],
      ['another case', 'ALPHA__echo', 'ALPHA__echo'],
      ['an empty name after the prefix', 'alpha__', 'alpha__'],
      ['a 1 MB name', huge, `${huge.slice(0, CLIPPED)}…`],
      ['a number', 42, '42'],
      ['null', null, 'null'],
      ['an array holding a good name', ['alpha__echo'], '["alpha__echo"]'],
      ['no name at all', undefined, 'undefined'],
    ];
    const uriCases: [string, unknown, string][] = [
      ['no member’s prefix', 'nope+mem://alpha/r0', 'nope+mem://alpha/r0'],
      ['a tool separator', 'alpha__mem://alpha/r0', 'alpha__mem://alpha/r0'],
      ['an empty URI after the prefix', 'alpha+', 'alpha+'],
      ['a 1 MB URI', hugeUri, `${hugeUri.slice(0, CLIPPED)}…`],
      ['a number', 7, '7'],
      ['an object', { uri: 'alpha+mem://alpha/r0' }, '{"uri":"alpha+mem://alpha/r0"}'],
    ];
    const withName = (field: string, value: unknown) => (value === undefined ? {} : { [field]: value });

    test.each(nameCases)('tools/call with %s: -32602 Unknown tool', async (_, name, shown) => {
      expect(await refusal(request(client, 'tools/call', { ...withName('name', name), arguments: {} }))).toEqual({ code: -32602, message: `Unknown tool: ${shown}` });
    });

    test.each(nameCases)('prompts/get with %s: -32602 Unknown prompt', async (_, name, shown) => {
      expect(await refusal(request(client, 'prompts/get', withName('name', name)))).toEqual({ code: -32602, message: `Unknown prompt: ${shown}` });
      expect(await refusal(request(client, 'completion/complete', { ref: { type: 'ref/prompt', ...withName('name', name) }, argument: { name: 'a', value: '' } }))).toEqual({ code: -32602, message: `Unknown prompt: ${shown}` });
    });

    test.each(uriCases)('resources with %s: -32602 Unknown resource', async (_, uri, shown) => {
      for (const method of ['resources/read', 'resources/subscribe', 'resources/unsubscribe']) {
        expect(await refusal(request(client, method, withName('uri', uri)))).toEqual({ code: -32602, message: `Unknown resource: ${shown}` });
      }
      expect(await refusal(request(client, 'completion/complete', { ref: { type: 'ref/resource', ...withName('uri', uri) }, argument: { name: 'a', value: '' } }))).toEqual({ code: -32602, message: `Unknown resource: ${shown}` });
    });

    test('none of them reached a member', async () => {
      const before = { alpha: received('alpha', alpha).length, beta: received('beta', beta).length };
      await refusal(request(client, 'tools/call', { name: 'alpha__', arguments: {} }));
      await refusal(request(client, 'resources/read', { uri: 'alpha+' }));
      await client.callTool({ name: 'alpha__echo', arguments: { message: 'x' } });
      await client.callTool({ name: 'b2__echo', arguments: { message: 'x' } });
      expect(received('alpha', alpha).slice(before.alpha).map((m) => m.method)).toEqual(['tools/call']);
      expect(received('beta', beta).slice(before.beta).map((m) => m.method)).toEqual(['tools/call']);
    });

    test('a name its member does not have gets the member’s own answer', async () => {
      expect(await refusal(client.callTool({ name: 'alpha__nosuch' }))).toEqual({ code: -32602, message: 'alpha has no tool nosuch' });
      expect(await refusal(client.getPrompt({ name: 'b2__nosuch' }))).toEqual({ code: -32602, message: 'beta has no prompt nosuch' });
      expect(await refusal(client.readResource({ uri: 'alpha+mem://beta/r0' }))).toEqual({ code: -32002, message: 'alpha has no resource mem://beta/r0' });
      expect(calls(received('alpha', alpha)).at(-1)).toBe('nosuch');
    });
  });

  describe('progress and cancellation', () => {
    test('progress of a member’s request reaches the client; the member got the client’s token', async () => {
      const progress: unknown[] = [];
      let release: Promise<unknown> | undefined;
      const result = await client.callTool({ name: 'alpha__progress', arguments: { steps: 3 } }, undefined, {
        onprogress: (p) => {
          progress.push(p);
          if (progress.length === 3) release = client.callTool({ name: 'alpha__release' });
        },
      });
      expect(textOf(result)).toBe('done');
      expect(textOf(await release)).toBe('released');
      expect(progress).toEqual([1, 2, 3].map((i) => ({ progress: i, total: 3 })));
      const sent = seen.outgoing.filter((m) => m.method === 'tools/call' && m.params.name === 'alpha__progress').at(-1)!;
      const got = received('alpha', alpha).filter((m) => m.method === 'tools/call' && m.params.name === 'progress').at(-1)!;
      expect(got.params._meta).toEqual({ progressToken: sent.params._meta.progressToken });
    });

    test('notifications/cancelled reaches only the owning member, with its own id', async () => {
      // The client's ids run ahead of alpha's: the id alpha gets must be its own.
      for (let i = 0; i < 3; i++) await client.callTool({ name: 'b2__echo', arguments: { message: 'ahead' } });
      const tag = `hang-${kind}`;
      const controller = new AbortController();
      const hanging = client.callTool({ name: 'alpha__hang', arguments: { tag } }, undefined, { signal: controller.signal });
      const atAlpha = () => received('alpha', alpha).find((m) => m.method === 'tools/call' && m.params.arguments?.tag === tag);
      await waitFor(() => atAlpha() !== undefined, 'the hanging call at alpha');
      controller.abort('changed my mind');
      await expect(hanging).rejects.toBeTruthy();
      const cancelled = () => received('alpha', alpha).filter((m) => m.method === 'notifications/cancelled');
      await waitFor(() => cancelled().length > 0, 'the cancellation at alpha');

      const sent = seen.outgoing.find((m) => m.method === 'tools/call' && m.params.arguments?.tag === tag)!;
      const clientCancel = seen.outgoing.find((m) => m.method === 'notifications/cancelled' && m.params.requestId === sent.id)!;
      expect(sent.id).not.toEqual(atAlpha()!.id);
      expect(cancelled()).toEqual([{ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: atAlpha()!.id, reason: clientCancel.params.reason } }]);
      // A cancellation of a request already answered, or of none, reaches nobody.
      const answered = seen.outgoing.filter((m) => m.method === 'tools/call' && m.params.name === 'b2__echo').at(-1)!;
      for (const requestId of [answered.id, 'never sent']) await seen.raw({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId } });
      // Anything sent for them would have reached the members before these calls.
      await client.callTool({ name: 'alpha__echo', arguments: { message: 'after the cancellation' } });
      await client.callTool({ name: 'b2__echo', arguments: { message: 'after the cancellation' } });
      expect(cancelled()).toHaveLength(1);
      expect(received('beta', beta).filter((m) => m.method === 'notifications/cancelled')).toEqual([]);
    });
  });

  describe('a cancelled request is not a late one', () => {
    test('its member hears of it once, the client gets no answer for it, and no timeout is logged', async () => {
      const c = await connectClient(front.url, 'timed', kind, DEV_TOKEN);
      const t = tap(c);
      try {
        const pid = await pidOf(c, 'gamma__pid');
        const timeouts = () => logger.entries.filter((e) => e.message === 'aggregate member timed out' && e.fields.aggregate === 'timed').length;
        const before = timeouts();
        const logStart = logger.entries.length;
        const hangs = () => received('gamma', pid).filter((m) => m.method === 'tools/call' && m.params.name === 'hang');
        const controller = new AbortController();
        const cancelled = c.callTool({ name: 'gamma__hang' }, undefined, { signal: controller.signal });
        await waitFor(() => hangs().length === 1, 'the first hanging call at gamma');
        controller.abort('no longer needed');
        await expect(cancelled).rejects.toBeTruthy();
        // Left to time out, and started after the cancelled one: once it has, the other would have too.
        expect(await refusal(c.callTool({ name: 'gamma__hang' }))).toEqual({ code: -32000, message: 'Gateway Timeout: server "gamma" of aggregate "timed" did not answer within 10 s' });
        const [first, second] = hangs();
        const cancellations = () => received('gamma', pid).filter((m) => m.method === 'notifications/cancelled');
        await waitFor(() => cancellations().some((m) => m.params.requestId === second.id), 'the timed-out call’s cancellation at gamma');
        const sent = t.outgoing.find((m) => m.method === 'tools/call' && m.params.name === 'gamma__hang')!;
        const clientCancel = t.outgoing.find((m) => m.method === 'notifications/cancelled')!;
        expect(cancellations().map((m) => m.params)).toEqual([
          { requestId: first.id, reason: clientCancel.params.reason },
          { requestId: second.id, reason: 'timeout' },
        ]);
        expect(t.incoming.filter((m) => m.id === sent.id)).toEqual([]);
        expect(timeouts() - before).toBe(1);
        // Cancelled before the second call began, the first is forgotten before the second timed
        // out: quietly (an audit line ending in `error`, no timeout), so cancelled requests a
        // member never answers cannot pile up in the session.
        const audited = logger.entries.slice(logStart).filter((e) => e.message === 'mcp request' && e.fields.server === 'gamma' && e.fields.aggregate === 'timed' && e.fields.name === 'hang');
        expect(audited.map((e) => e.fields.outcome).sort()).toEqual(['error', 'timeout']);
      } finally {
        await c.close();
      }
    });
  });

  describe('separators and prefixes', () => {
    test.each<[string, string, [server: string, prefix: string][], string[], [string, string][]]>([
      ['dash', '-', [['alpha', 'a-1'], ['beta', 'b']], ['a-1__echo', 'a-1_echo', 'a-1echo', 'b__echo'], []],
      // `beta__echo` is `beta` + `_` + `_echo`: the member's own answer, never a split on the separator.
      ['under', '_', [['beta', 'beta'], ['alpha', 'alpha']], ['beta-echo', 'betaecho', 'alpha--echo'], [['beta__echo', 'beta has no tool _echo']]],
      ['dd', '--', [['alpha', 'x'], ['beta', 'y']], ['x-echo', 'x__echo', 'x_echo', 'y--'], [['x---echo', 'alpha has no tool -echo']]],
    ])('aggregate %s: separator %j', async (name, sep, members, unknown, ownAnswers) => {
      const c = await connectClient(front.url, name, kind, DEV_TOKEN);
      try {
        expect(await whole(c, 'tools')).toEqual(members.flatMap(([, p]) => FIXTURE_TOOLS.map((t) => `${p}${sep}${t}`)));
        expect(await whole(c, 'prompts')).toEqual(members.flatMap(([, p]) => FIXTURE_PROMPTS.map((t) => `${p}${sep}${t}`)));
        expect(await whole(c, 'resources')).toEqual(members.flatMap(([s, p]) => resourcesOf(s).map((u) => `${p}+${u}`)));
        expect(await whole(c, 'templates')).toEqual(members.flatMap(([s, p]) => templatesOf(s).map((u) => `${p}+${u}`)));
        for (const [server, prefix] of members) {
          const pid = await pidOf(c, `${prefix}${sep}pid`);
          expect(textOf(await c.callTool({ name: `${prefix}${sep}echo`, arguments: { message: name } }))).toBe(`${server}:${name}`);
          expect(textOf(await c.callTool({ name: `${prefix}${sep}snake_case_tool` }))).toBe(`${server}:snake`);
          expect((await c.getPrompt({ name: `${prefix}${sep}greet`, arguments: { who: sep } })).messages[0].content).toEqual({ type: 'text', text: `${server}:greet:${sep}` });
          expect((await c.complete({ ref: { type: 'ref/prompt', name: `${prefix}${sep}greet` }, argument: { name: 'who', value: 'z' } })).completion.values).toEqual([`${server}:ref/prompt:greet:z`]);
          expect(calls(received(server, pid))).toEqual(['pid', 'echo', 'snake_case_tool']);
        }
        for (const wrong of unknown) expect(await refusal(c.callTool({ name: wrong }))).toEqual({ code: -32602, message: `Unknown tool: ${wrong}` });
        for (const [sent, answer] of ownAnswers) expect(await refusal(c.callTool({ name: sent }))).toEqual({ code: -32602, message: answer });
      } finally {
        await c.close();
      }
    });
  });

  describe('list_changed', () => {
    test('a member’s list_changed reaches the client once per kind', async () => {
      const c = await connectClient(front.url, 'dash', kind, DEV_TOKEN);
      try {
        const t = tap(c);
        const of = (kind: string) => (m: Message) => m.method === `notifications/${kind}/list_changed`;
        const first = Promise.all(['tools', 'prompts', 'resources'].map((k) => t.until(of(k))));
        await c.callTool({ name: 'a-1-changed', arguments: { kinds: ['tools', 'resources', 'tools', 'prompts', 'resources', 'tools'] } });
        await first;
        // Another change later: everything about the first had reached the client before it.
        const second = t.until(of('prompts'), 2);
        await c.callTool({ name: 'b-changed', arguments: { kinds: ['prompts'] } });
        await second;
        const counts = Object.fromEntries(['tools', 'prompts', 'resources'].map((k) => [k, t.incoming.filter(of(k)).length]));
        expect(counts).toEqual({ tools: 1, prompts: 2, resources: 1 });
        expect(t.incoming.filter(of('prompts'))[1]).toEqual({ jsonrpc: '2.0', method: 'notifications/prompts/list_changed' });
      } finally {
        await c.close();
      }
    });
  });

  describe('server→client requests', () => {
    let c: Client;
    let t: Tap;
    let pids: { alpha: number; beta: number };
    beforeAll(async () => {
      c = await connectClient(front.url, 'dash', kind, DEV_TOKEN, { capabilities: { sampling: {}, elicitation: {}, roots: { listChanged: true } } });
      t = tap(c);
      pids = { alpha: await pidOf(c, 'a-1-pid'), beta: await pidOf(c, 'b-pid') };
    });
    afterAll(async () => {
      await c?.close();
    });
    const answersAt = (server: 'alpha' | 'beta') => received(server, pids[server]).filter((m) => m.method === undefined);
    const asked = (text: string) => ({ method: 'sampling/createMessage', params: { messages: [{ role: 'user', content: { type: 'text', text } }], maxTokens: 5 } });

    test('sampling from both members at once: ids that name their member, answers back to each', async () => {
      let arrived!: () => void;
      const both = new Promise<void>((resolve) => (arrived = resolve));
      let count = 0;
      c.setRequestHandler(CreateMessageRequestSchema, async (req) => {
        if (++count === 2) arrived();
        await both; // both requests are outstanding at once, each numbered 0 by its member
        return { model: 'm', role: 'assistant', content: { type: 'text', text: `answer to ${(req.params.messages[0].content as { text: string }).text}` } };
      });
      const [a, b] = await Promise.all([c.callTool({ name: 'a-1-ask', arguments: asked('from alpha') }), c.callTool({ name: 'b-ask', arguments: asked('from beta') })]);
      expect(JSON.parse(textOf(a))).toEqual({ model: 'm', role: 'assistant', content: { type: 'text', text: 'answer to from alpha' } });
      expect(JSON.parse(textOf(b))).toEqual({ model: 'm', role: 'assistant', content: { type: 'text', text: 'answer to from beta' } });
      expect(t.incoming.filter((m) => m.method === 'sampling/createMessage').map((m) => m.id).sort()).toEqual(['a-1:0', 'b:0']);
      expect(answersAt('alpha')).toEqual([{ jsonrpc: '2.0', id: 0, result: { model: 'm', role: 'assistant', content: { type: 'text', text: 'answer to from alpha' } } }]);
      expect(answersAt('beta')).toEqual([{ jsonrpc: '2.0', id: 0, result: { model: 'm', role: 'assistant', content: { type: 'text', text: 'answer to from beta' } } }]);
    });

    test('elicitation and roots/list', async () => {
      c.setRequestHandler(ElicitRequestSchema, async () => ({ action: 'accept', content: { n: 'zed' } }));
      c.setRequestHandler(ListRootsRequestSchema, async () => ({ roots: [{ uri: 'file:///work', name: 'work' }] }));
      const elicit = { method: 'elicitation/create', params: { message: 'name?', requestedSchema: { type: 'object', properties: { n: { type: 'string' } }, required: ['n'] } } };
      expect(JSON.parse(textOf(await c.callTool({ name: 'a-1-ask', arguments: elicit })))).toEqual({ action: 'accept', content: { n: 'zed' } });
      expect(JSON.parse(textOf(await c.callTool({ name: 'b-ask', arguments: { method: 'roots/list' } })))).toEqual({ roots: [{ uri: 'file:///work', name: 'work' }] });
      expect(t.incoming.filter((m) => m.method === 'elicitation/create').map((m) => m.id)).toEqual(['a-1:1']);
      expect(t.incoming.filter((m) => m.method === 'roots/list').map((m) => m.id)).toEqual(['b:1']);
      expect(answersAt('alpha')[1]).toEqual({ jsonrpc: '2.0', id: 1, result: { action: 'accept', content: { n: 'zed' } } });
      expect(answersAt('beta')[1]).toEqual({ jsonrpc: '2.0', id: 1, result: { roots: [{ uri: 'file:///work', name: 'work' }] } });
      // The client's roots changed: every member hears of it, before anything the client sends next.
      await c.sendRootsListChanged();
      await c.callTool({ name: 'a-1-echo', arguments: { message: 'roots' } });
      await c.callTool({ name: 'b-echo', arguments: { message: 'roots' } });
      for (const server of ['alpha', 'beta'] as const) {
        expect(received(server, pids[server]).filter((m) => m.method === 'notifications/roots/list_changed')).toEqual([{ jsonrpc: '2.0', method: 'notifications/roots/list_changed' }]);
      }
    });

    test('a request its member withdraws: the cancellation names it as the client knows it, and a late answer is dropped', async () => {
      const before = answersAt('alpha').length;
      const own = Number(textOf(await c.callTool({ name: 'a-1-withdraw', arguments: { method: 'roots/list' } })));
      const withdrawn = await t.until((m) => m.method === 'notifications/cancelled');
      expect(withdrawn).toEqual([{ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: `a-1:${own}`, reason: 'withdrawn' } }]);
      expect(t.incoming.filter((m) => m.method === 'roots/list' && m.id === `a-1:${own}`)).toHaveLength(1);
      await t.raw({ jsonrpc: '2.0', id: `a-1:${own}`, result: { roots: [] } });
      expect(textOf(await c.callTool({ name: 'a-1-echo', arguments: { message: 'after' } }))).toBe('alpha:after');
      expect(answersAt('alpha')).toHaveLength(before);
    });

    test('an answer for an id never issued (or already answered) is dropped', async () => {
      const before = { alpha: answersAt('alpha').length, beta: answersAt('beta').length };
      for (const id of ['a-1:7', 'a-1:0', 'a-1:"0"', 'b:1', 'zz:0', 'a-1', 0, 'b:0x']) await t.raw({ jsonrpc: '2.0', id, result: { model: 'late', role: 'assistant', content: { type: 'text', text: 'late' } } });
      await t.raw({ jsonrpc: '2.0', id: 'a-1:1', error: { code: -1, message: 'late' } });
      // Anything relayed would have reached the member before these calls.
      expect(textOf(await c.callTool({ name: 'a-1-echo', arguments: { message: 'still here' } }))).toBe('alpha:still here');
      expect(textOf(await c.callTool({ name: 'b-echo', arguments: { message: 'still here' } }))).toBe('beta:still here');
      expect(answersAt('alpha').length).toBe(before.alpha);
      expect(answersAt('beta').length).toBe(before.beta);
    });
  });

  describe('the reference server as two members (stdio and legacy SSE)', () => {
    let c: Client;
    let t: Tap;
    beforeAll(async () => {
      c = await connectClient(front.url, 'mix', kind, DEV_TOKEN, { capabilities: { sampling: {}, elicitation: {} } });
      t = tap(c);
    });
    afterAll(async () => {
      await c?.close();
    });

    test('lists of both, in config order', async () => {
      expect(await whole(c, 'resources')).toEqual([...EV.resources.map((u) => `es+${u}`), ...EV.resources.map((u) => `ew+${u}`)]);
      expect(await whole(c, 'templates')).toEqual([...EV.templates.map((u) => `es+${u}`), ...EV.templates.map((u) => `ew+${u}`)]);
    });

    test('sampling from both at once, each numbering its requests from 0', async () => {
      let arrived!: () => void;
      const both = new Promise<void>((resolve) => (arrived = resolve));
      let count = 0;
      c.setRequestHandler(CreateMessageRequestSchema, async (req) => {
        if (++count === 2) arrived();
        await both;
        return { model: 'm', role: 'assistant', content: { type: 'text', text: `sampled ${(req.params.messages[0].content as { text: string }).text}` } };
      });
      const [es, ew] = await Promise.all(['es', 'ew'].map((p) => c.callTool({ name: `${p}__trigger-sampling-request`, arguments: { prompt: `to ${p}`, maxTokens: 5 } })));
      expect(textOf(es)).toContain('sampled Resource trigger-sampling-request context: to es');
      expect(textOf(ew)).toContain('sampled Resource trigger-sampling-request context: to ew');
      expect(t.incoming.filter((m) => m.method === 'sampling/createMessage').map((m) => m.id).sort()).toEqual(['es:0', 'ew:0']);
    });

    test('elicitation reaches the client under an id naming its member', async () => {
      c.setRequestHandler(ElicitRequestSchema, async () => ({ action: 'decline' }));
      expect(textOf(await c.callTool({ name: 'ew__trigger-elicitation-request' }))).toContain('declined');
      expect(t.incoming.filter((m) => m.method === 'elicitation/create').map((m) => m.id)).toEqual(['ew:1']);
    });

    test('notifications/resources/updated of a subscribed resource arrives prefixed', async () => {
      const uri = `es+${EV.resources.find((u) => u.startsWith('demo://resource/static/document/'))}`;
      await c.subscribeResource({ uri });
      const updated = t.until((m) => m.method === 'notifications/resources/updated');
      await c.callTool({ name: 'es__toggle-subscriber-updates' });
      expect((await updated)[0]).toEqual({ jsonrpc: '2.0', method: 'notifications/resources/updated', params: { uri } });
      await c.callTool({ name: 'es__toggle-subscriber-updates' });
      await c.unsubscribeResource({ uri });
    });
  });

  describe('remote members (Streamable HTTP and legacy SSE) receive their own names', () => {
    test('tools, prompts, resources, subscriptions and completions', async () => {
      const c = await connectClient(front.url, 'remote', kind, DEV_TOKEN);
      try {
        const tag = `-routing-${kind}`;
        await request(c, 'tools/call', { name: `cap__t${tag}`, arguments: {} });
        await request(c, 'prompts/get', { name: `leg__p${tag}` });
        await request(c, 'resources/read', { uri: `cap+file:///r${tag}` });
        await request(c, 'resources/subscribe', { uri: `leg+file:///s${tag}` });
        await request(c, 'resources/unsubscribe', { uri: `cap+file:///u${tag}` });
        await request(c, 'completion/complete', { ref: { type: 'ref/prompt', name: `leg__c${tag}` }, argument: { name: 'a', value: 'v' } });
        await request(c, 'completion/complete', { ref: { type: 'ref/resource', uri: `cap+file:///{x}${tag}` }, argument: { name: 'x', value: 'v' } });
        const bodies = (entries: { method: string; body: string }[]) => entries.filter((e) => e.method === 'POST' && e.body.includes(tag)).map((e) => JSON.parse(e.body) as Message);
        expect(bodies(capture.log).map((m) => [m.method, m.params])).toEqual([
          ['tools/call', { name: `t${tag}`, arguments: {} }],
          ['resources/read', { uri: `file:///r${tag}` }],
          ['resources/unsubscribe', { uri: `file:///u${tag}` }],
          ['completion/complete', { ref: { type: 'ref/resource', uri: `file:///{x}${tag}` }, argument: { name: 'x', value: 'v' } }],
        ]);
        expect(bodies(legacy.log).map((m) => [m.method, m.params])).toEqual([
          ['prompts/get', { name: `p${tag}` }],
          ['resources/subscribe', { uri: `file:///s${tag}` }],
          ['completion/complete', { ref: { type: 'ref/prompt', name: `c${tag}` }, argument: { name: 'a', value: 'v' } }],
        ]);
      } finally {
        await c.close();
      }
    });
  });
});

// --- Streamable HTTP only: batches and the ids of one session ------------------------------------

describe('batches and ids on an aggregate session (Streamable HTTP)', () => {
  let session: string;
  const headers = (accept = 'application/json') => ({ Authorization: `Bearer ${DEV_TOKEN}`, 'Content-Type': 'application/json', Accept: accept, 'Mcp-Session-Id': session });
  const post = async (body: unknown, signal?: AbortSignal) => {
    const res = await fetch(`${front.url}/agg/mcp`, { method: 'POST', headers: headers(), body: JSON.stringify(body), signal });
    return { status: res.status, body: res.status === 202 ? undefined : ((await res.json()) as Message | Message[]) };
  };
  const call = (id: unknown, name: string, args: Obj = {}) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });
  const byId = (answers: Message[]) => Object.fromEntries(answers.map((a) => [String(a.id), a]));

  beforeAll(async () => {
    const res = await fetch(`${front.url}/agg/mcp`, { method: 'POST', headers: { Authorization: `Bearer ${DEV_TOKEN}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' }, body: JSON.stringify(INITIALIZE) });
    expect(res.status).toBe(200);
    session = res.headers.get('mcp-session-id')!;
    await res.text();
    expect((await post({ jsonrpc: '2.0', method: 'notifications/initialized' })).status).toBe(202);
  });
  afterAll(async () => {
    if (session) await fetch(`${front.url}/agg/mcp`, { method: 'DELETE', headers: headers() });
  });

  test('a batch mixing calls to two members and a list: every answer, by its id', async () => {
    const { status, body } = await post([call('one', 'alpha__echo', { message: 'batch a' }), call('two', 'b2__echo', { message: 'batch b' }), { jsonrpc: '2.0', id: 'three', method: 'prompts/list' }, call('four', 'nope__echo')]);
    expect(status).toBe(200);
    const answers = byId(body as Message[]);
    expect(Object.keys(answers).sort()).toEqual(['four', 'one', 'three', 'two']);
    expect(answers.one).toEqual({ jsonrpc: '2.0', id: 'one', result: { content: [{ type: 'text', text: 'alpha:batch a' }] } });
    expect(answers.two).toEqual({ jsonrpc: '2.0', id: 'two', result: { content: [{ type: 'text', text: 'beta:batch b' }] } });
    expect((answers.three.result.prompts as Obj[]).map((p) => p.name)).toEqual([...FIXTURE_PROMPTS.map((n) => `alpha__${n}`), ...FIXTURE_PROMPTS.map((n) => `b2__${n}`), ...EV.prompts.map((n) => `ev__${n}`)]);
    expect(answers.three.result.nextCursor).toBeUndefined();
    expect(answers.four).toEqual({ jsonrpc: '2.0', id: 'four', error: { code: -32602, message: 'Unknown tool: nope__echo' } });
  });

  test('an id reused in one batch: -32600 for the second, which reaches no member', async () => {
    const { body } = await post([call(5, 'alpha__echo', { message: 'first five' }), call(5, 'b2__echo', { message: 'second five' })]);
    const answers = body as Message[];
    expect(answers).toHaveLength(2);
    expect(answers).toContainEqual({ jsonrpc: '2.0', id: 5, result: { content: [{ type: 'text', text: 'alpha:first five' }] } });
    expect(answers).toContainEqual({ jsonrpc: '2.0', id: 5, error: { code: -32600, message: 'Invalid Request: request id 5 is already in use in this session' } });
    expect(readFileSync(path.join(dir, 'beta.log'), 'utf8')).not.toContain('second five');
  });

  test('an id still in flight, reused in another POST: -32600', async () => {
    const controller = new AbortController();
    const hanging = post(call('held', 'alpha__hang', { tag: 'held in flight' }), controller.signal).catch(() => undefined);
    await waitFor(() => readFileSync(path.join(dir, 'alpha.log'), 'utf8').includes('held in flight'), 'the held call at alpha');
    const { status, body } = await post(call('held', 'b2__echo', { message: 'reused id' }));
    expect({ status, body }).toEqual({ status: 200, body: { jsonrpc: '2.0', id: 'held', error: { code: -32600, message: 'Invalid Request: request id "held" is already in use in this session' } } });
    controller.abort();
    await hanging;
    expect(readFileSync(path.join(dir, 'beta.log'), 'utf8')).not.toContain('reused id');
  });

  test('a null id: -32600, and no member hears of it', async () => {
    const { body } = await post(call(null, 'alpha__echo', { message: 'null id' }));
    expect(body).toEqual({ jsonrpc: '2.0', id: null, error: { code: -32600, message: 'Invalid Request: a request id must be a string or a number, not null' } });
    const { body: after } = await post(call('after-null', 'alpha__echo', { message: 'after null' }));
    expect((after as Message).result).toEqual({ content: [{ type: 'text', text: 'alpha:after null' }] });
    expect(readFileSync(path.join(dir, 'alpha.log'), 'utf8')).not.toContain('"null id"');
  });
});
