// Aggregates (README: Aggregates): a client session's member sessions — one per member, opened in
// parallel, ended with it whichever way it ends, every stdio child reaped — and members that are
// down at the start, die mid-session or come back, under `onUnavailable` "omit" and "fail".
// Real members (the stdio fixture, server-everything, a recording Streamable HTTP upstream) and
// the official SDK client on both client transports.
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError, ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { liveSessionCount } from '../lib/mcp-front';
import type { McpFrontConfig } from '../lib/types';
import { startBridgeUpstream, type BridgeUpstream } from './fixtures/bridge-upstream';
import { openEventStream } from './fixtures/remote-streams';
import { connectClient, INITIALIZE, postModern, textOf, type ClientTransportKind } from './helpers/clients';
import {
  captureLogger,
  childPidsOf,
  configWith,
  DEV_TOKEN,
  EVERYTHING,
  freePort,
  isAlive,
  PATIENCE_MS,
  PROD_TOKEN,
  signalProcess,
  startFront,
  startServerProcess,
  waitFor,
  type Front,
  type LogEntry,
  type Upstream,
} from './helpers/servers';

const FIXTURE = path.join(__dirname, 'fixtures', 'stdio-server.js');
/** The stdio fixture's tools, in its order. */
const FIXTURE_TOOLS = ['pid', 'crash', 'big', 'echo', 'hang', 'hold', 'fail', 'flood', 'unrelayable', 'progress'];
const KINDS: ClientTransportKind[] = ['streamable', 'sse'];
const stdio = (extra: Record<string, unknown> = {}) => ({ command: process.execPath, args: [FIXTURE], ...extra });

/**
 * The stdio fixture, started only while `flag` exists (else it exits at once with code 3): a
 * member that is down until the test creates the file, and stays down after a kill while the file
 * is gone.
 */
const flaky = (flag: string) => ({
  command: process.execPath,
  args: ['-e', `require('fs').existsSync(${JSON.stringify(flag)}) || process.exit(3); require(${JSON.stringify(FIXTURE)})`],
});

let scratch: string;
beforeAll(() => {
  scratch = mkdtempSync(path.join(tmpdir(), 'mcp-front-aggregate-'));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
let flags = 0;
/** A flag file path of its own (not created). */
const newFlag = () => path.join(scratch, `flag-${++flags}`);

/** `promise`, or a failure naming `what` once PATIENCE_MS have passed: a hang fails with what was awaited. */
function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), PATIENCE_MS);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** captureLogger, plus the `n`th next entry that matches (subscribe before acting). */
function watchedLogger() {
  const logger = captureLogger();
  const waiters: { match: (e: LogEntry) => boolean; left: number; resolve: (e: LogEntry) => void }[] = [];
  for (const level of ['info', 'warn', 'error', 'debug'] as const) {
    const record = logger[level];
    logger[level] = (message, fields) => {
      record(message, fields);
      const entry = logger.entries.at(-1)!;
      for (const w of [...waiters]) {
        if (!w.match(entry) || --w.left > 0) continue;
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(entry);
      }
    };
  }
  const next = (match: (e: LogEntry) => boolean, n = 1) => within(new Promise<LogEntry>((resolve) => waiters.push({ match, left: n, resolve })), 'a log line');
  return Object.assign(logger, { next });
}
type WatchedLogger = ReturnType<typeof watchedLogger>;

const isEntry = (message: string, fields: Record<string, unknown> = {}) => (e: LogEntry) =>
  e.message === message && Object.entries(fields).every(([k, v]) => e.fields[k] === v);

/** The `session started` lines of an aggregate, in order: their fields name every stdio member's pid (`<prefix>_pid`). */
const started = (logger: WatchedLogger, aggregate: string) => logger.entries.filter(isEntry('session started', { server: aggregate }));

/** The proxy's guard against its own death (lib/stdio/watchdog.ts): one per process, not a member's child. */
const isWatchdog = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('mcp-front-watchdog');
  } catch {
    return false;
  }
};
/** Children of this process that were not there in `before`: the proxy runs here, so its stdio children are. */
const newChildren = (before: number[]) =>
  childPidsOf(process.pid)
    .filter((pid) => !before.includes(pid) && !isWatchdog(pid))
    .sort();

/** Resolves at the next `notifications/tools/list_changed` the client receives (register before acting). */
function listChanges(client: Client): { next(): Promise<void>; count: number } {
  const waiting: (() => void)[] = [];
  const state = {
    count: 0,
    next: () => within(new Promise<void>((resolve) => waiting.push(resolve)), 'notifications/tools/list_changed'),
  };
  client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
    state.count++;
    for (const resolve of waiting.splice(0)) resolve();
  });
  return state;
}

const toolNames = async (client: Client) => (await client.listTools()).tools.map((t) => t.name);
const prefixed = (prefix: string, names: string[] = FIXTURE_TOOLS) => names.map((n) => `${prefix}__${n}`);

/** The error a client gets for a call to a member that is down (README: Aggregates: it names the member). */
const unavailable = (server: string, aggregate: string) =>
  expect.objectContaining({ code: -32000, message: `MCP error -32000: Server "${server}" of aggregate "${aggregate}" is unavailable`, data: { server, prefix: server, aggregate } });

async function callError(client: Client, name: string, args: Record<string, unknown> = {}): Promise<McpError> {
  const err = await client.callTool({ name, arguments: args }).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof McpError)) throw new Error(`expected a JSON-RPC error for ${name}, got ${String(err)}`);
  return err;
}

const rawHeaders = (token: string, sessionId?: string) => ({
  Authorization: `Bearer ${token}`,
  'Content-Type': 'application/json',
  Accept: 'application/json, text/event-stream',
  ...(sessionId === undefined ? {} : { 'Mcp-Session-Id': sessionId, 'MCP-Protocol-Version': '2025-06-18' }),
});

/** The `initialize` POSTs that reached the recording upstream's Streamable HTTP route. */
const upstreamInitializes = (up: BridgeUpstream) => up.log.filter((s) => s.type === 'request' && s.path === '/modern/mcp' && s.method === 'POST' && s.body.includes('"initialize"'));
/** The session ids the recording upstream was sent a DELETE for. */
const upstreamDeletes = (up: BridgeUpstream) => up.log.filter((s) => s.type === 'request' && s.path === '/modern/mcp' && s.method === 'DELETE').map((s) => s.headers['mcp-session-id']);

describe('one member session per client session, ended with it', () => {
  let up: BridgeUpstream;
  let front: Front;
  const logger = watchedLogger();

  beforeAll(async () => {
    up = await startBridgeUpstream();
    front = await startFront(
      {
        ...configWith({ a: stdio(), b: stdio(), r: { url: `${up.origin}/modern/mcp` } }),
        aggregates: { all: { servers: ['a', 'b', 'r'] } },
      },
      { logger },
    );
  });
  afterAll(async () => {
    await front?.close();
    await up?.close();
  });

  test.each(KINDS)('%s: two client sessions hold a child of each stdio member and an upstream session of the remote one each; ending them (DELETE, or the client going away) ends them all', async (kind) => {
    const before = childPidsOf(process.pid);
    const initsBefore = upstreamInitializes(up).length;
    const logBefore = up.log.length;
    const startsBefore = started(logger, 'all').length;
    const clients = [await connectClient(front.url, 'all', kind, DEV_TOKEN), await connectClient(front.url, 'all', kind, DEV_TOKEN)];
    const sessions = started(logger, 'all').slice(startsBefore);
    expect(sessions.map((s) => s.fields.transport)).toEqual([kind, kind]);

    // Two stdio members, two client sessions: four children, and they are the ones logged.
    const pids = sessions.flatMap((s) => [s.fields.a_pid as number, s.fields.b_pid as number]);
    expect(new Set(pids).size).toBe(4);
    expect(newChildren(before)).toEqual([...pids].sort());
    // Each client session reaches its own children.
    for (const [i, client] of clients.entries()) {
      expect(JSON.parse(textOf(await client.callTool({ name: 'a__pid', arguments: {} }))).pid).toBe(sessions[i].fields.a_pid);
      expect(JSON.parse(textOf(await client.callTool({ name: 'b__pid', arguments: {} }))).pid).toBe(sessions[i].fields.b_pid);
    }
    // One upstream session of the remote member per client session.
    expect(upstreamInitializes(up).slice(initsBefore)).toHaveLength(2);
    const upstreamIds = new Set(up.log.slice(logBefore).filter((s) => s.type === 'request' && s.method === 'POST').map((s) => s.headers['mcp-session-id']).filter((id) => id !== undefined));
    expect(upstreamIds.size).toBe(2);
    expect(liveSessionCount(front.router)).toBe(2);

    const from = logger.entries.length;
    const ended = logger.next(isEntry('session ended', { server: 'all' }), 2);
    for (const client of clients) {
      if (kind === 'streamable') await (client.transport as StreamableHTTPClientTransport).terminateSession();
      await client.close();
    }
    await ended;
    const reason = kind === 'streamable' ? 'client ended the session (DELETE)' : 'client disconnected';
    expect(logger.entries.slice(from).filter(isEntry('session ended', { server: 'all' })).map((e) => e.fields.reason)).toEqual([reason, reason]);
    // A session ends once every member's session is gone: no child is left by then.
    expect(pids.filter(isAlive)).toEqual([]);
    expect(newChildren(before)).toEqual([]);
    for (const id of upstreamIds) await within(up.waitFor((s) => s.method === 'DELETE' && s.headers['mcp-session-id'] === id), 'the DELETE upstream');
    expect(liveSessionCount(front.router)).toBe(0);
  });

  test('a session id ended by DELETE is unknown afterwards (404)', async () => {
    const client = await connectClient(front.url, 'all', 'streamable', DEV_TOKEN);
    const transport = client.transport as StreamableHTTPClientTransport;
    const sessionId = transport.sessionId!;
    await transport.terminateSession();
    await client.close();
    const after = await fetch(`${front.url}/all/mcp`, { method: 'POST', headers: rawHeaders(DEV_TOKEN, sessionId), body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }) });
    expect(after.status).toBe(404);
    await after.arrayBuffer();
    expect(liveSessionCount(front.router)).toBe(0);
  });
});

describe('members are opened in parallel', () => {
  let barrier: { origin: string; arrivals: string[]; close(): Promise<void> };
  let front: Front;

  /**
   * Two Streamable HTTP servers (`/one/mcp`, `/two/mcp`) that answer `initialize` only once both
   * received one: opened one after the other, the first would wait for the second forever and be
   * left out when its timeout ends.
   */
  async function startBarrier() {
    const arrivals: string[] = [];
    let held: (() => void)[] = [];
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const member = (req.url ?? '').split('/')[1];
        if (req.method === 'DELETE') return void res.writeHead(200).end();
        if (req.method !== 'POST') return void res.writeHead(405, { Allow: 'POST, DELETE' }).end();
        const msg = JSON.parse(Buffer.concat(chunks).toString()) as { id?: number; method: string };
        if (msg.id === undefined) return void res.writeHead(202).end();
        const answer = (result: object, headers: Record<string, string> = {}) =>
          res.writeHead(200, { 'Content-Type': 'application/json', ...headers }).end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result }));
        if (msg.method === 'tools/list') return answer({ tools: [{ name: 'hello', inputSchema: { type: 'object' } }] });
        if (msg.method !== 'initialize') return answer({});
        arrivals.push(member);
        held.push(() => answer({ protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: member, version: '1' } }, { 'Mcp-Session-Id': `${member}-${arrivals.length}` }));
        if (held.length === 2) {
          for (const release of held) release();
          held = [];
        }
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return {
      origin: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
      arrivals,
      async close() {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      },
    };
  }

  beforeAll(async () => {
    barrier = await startBarrier();
    front = await startFront({
      ...configWith({ one: { url: `${barrier.origin}/one/mcp`, timeout: '30s' }, two: { url: `${barrier.origin}/two/mcp`, timeout: '30s' } }),
      aggregates: { pair: { servers: ['one', 'two'] } },
    });
  });
  afterAll(async () => {
    await front?.close();
    await barrier?.close();
  });

  test.each(KINDS)('%s: both members get initialize before either answers, and both are up', async (kind) => {
    const arrived = barrier.arrivals.length;
    const client = await connectClient(front.url, 'pair', kind, DEV_TOKEN);
    expect(barrier.arrivals.slice(arrived).sort()).toEqual(['one', 'two']);
    expect(await toolNames(client)).toEqual(['one__hello', 'two__hello']);
    await client.close();
  });
});

describe('every way a session ends reaps every child', () => {
  let up: BridgeUpstream;
  let front: Front | undefined;
  const logger = watchedLogger();
  const servers = () => ({ a: stdio({ idleTimeout: '2s' }), b: stdio({ idleTimeout: '2s' }), r: { url: `${up.origin}/modern/mcp` } });
  const config = (tokens: Record<string, string> = { dev: DEV_TOKEN, prod: PROD_TOKEN }): McpFrontConfig => ({
    version: '1.0',
    proxy: { auth: { kind: 'bearer_token', tokens } },
    mcpServers: servers(),
    aggregates: { all: { servers: ['a', 'b', 'r'] } },
  });
  /** The stdio pids of the aggregate sessions started since `from`. */
  const pidsSince = (from: number) => started(logger, 'all').slice(from).flatMap((s) => [s.fields.a_pid as number, s.fields.b_pid as number]);

  beforeAll(async () => {
    up = await startBridgeUpstream();
  });
  afterEach(async () => {
    await front?.close();
    front = undefined;
  });
  afterAll(() => up?.close());

  test('idle timeout: a Streamable session whose client never sends DELETE', async () => {
    front = await startFront(config(), { logger });
    const before = childPidsOf(process.pid);
    const from = started(logger, 'all').length;
    const client = await connectClient(front.url, 'all', 'streamable', DEV_TOKEN);
    const pids = pidsSince(from);
    expect(newChildren(before)).toEqual([...pids].sort());
    await client.listTools();
    const ended = logger.next(isEntry('session ended', { server: 'all' }));
    // The SDK client's close() only drops its streams: the idle clock starts then.
    await client.close();
    expect((await ended).fields.reason).toBe('idle timeout');
    expect(pids.filter(isAlive)).toEqual([]);
    expect(newChildren(before)).toEqual([]);
    expect(liveSessionCount(front.router)).toBe(0);
  });

  test('router.close(): sessions on both transports end, and it resolves once every child is gone', async () => {
    front = await startFront(config(), { logger });
    const before = childPidsOf(process.pid);
    const from = started(logger, 'all').length;
    const deletes = upstreamDeletes(up).length;
    const clients = [await connectClient(front.url, 'all', 'streamable', DEV_TOKEN), await connectClient(front.url, 'all', 'sse', DEV_TOKEN)];
    const pids = pidsSince(from);
    expect(pids).toHaveLength(4);
    expect(newChildren(before)).toEqual([...pids].sort());
    expect(liveSessionCount(front.router)).toBe(2);
    await front.router.close();
    expect(pids.filter(isAlive)).toEqual([]);
    expect(newChildren(before)).toEqual([]);
    expect(liveSessionCount(front.router)).toBe(0);
    // Each member session of the remote member was ended upstream.
    await waitFor(() => upstreamDeletes(up).length === deletes + 2, 'a DELETE upstream for each session');
    for (const c of clients) await c.close();
  });

  test('a reload that revokes the token ends its sessions on both transports, and only those', async () => {
    front = await startFront(config(), { logger });
    const before = childPidsOf(process.pid);
    const from = started(logger, 'all').length;
    const dev = [await connectClient(front.url, 'all', 'streamable', DEV_TOKEN), await connectClient(front.url, 'all', 'sse', DEV_TOKEN)];
    const devPids = pidsSince(from);
    const prod = await connectClient(front.url, 'all', 'streamable', PROD_TOKEN);
    const prodPids = pidsSince(from + 2);
    expect(newChildren(before)).toEqual([...devPids, ...prodPids].sort());
    const devSession = (dev[0].transport as StreamableHTTPClientTransport).sessionId!;

    await front.router.reload(config({ prod: PROD_TOKEN }));
    expect(devPids.filter(isAlive)).toEqual([]);
    expect(newChildren(before)).toEqual([...prodPids].sort());
    expect(liveSessionCount(front.router)).toBe(1);
    expect(logger.entries.filter(isEntry('session ended', { server: 'all', token: 'dev' })).slice(-2).map((e) => e.fields.reason)).toEqual(['token revoked', 'token revoked']);
    // The other token's session goes on, with its own children.
    expect(JSON.parse(textOf(await prod.callTool({ name: 'a__pid', arguments: {} }))).pid).toBe(prodPids[0]);
    const gone = await fetch(`${front.url}/all/mcp`, { method: 'POST', headers: rawHeaders(PROD_TOKEN, devSession), body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list' }) });
    expect(gone.status).toBe(404);
    await gone.arrayBuffer();
    for (const c of [...dev, prod]) await c.close();
  });

  // 2026-07-28 requests have no session of their own: the member sessions that serve them are one
  // registry session per token, ended like any other, and a restricted token gets no further.
  test('stateless requests: member sessions of their own, ended by revocation and close(), and only the token’s members', async () => {
    const tokens = { dev: DEV_TOKEN, prod: PROD_TOKEN };
    // The default idle timeout: a stateless session has no stream to keep it busy between
    // requests, and 2 s may pass between two of them on a busy machine.
    const restricted = (b: string[] = ['dev'], tokens: Record<string, string> = { dev: DEV_TOKEN, prod: PROD_TOKEN }): McpFrontConfig => ({
      ...config(tokens),
      mcpServers: { ...servers(), a: stdio(), b: stdio({ authTokens: b }) },
    });
    front = await startFront(restricted(), { logger });
    const before = childPidsOf(process.pid);
    const from = started(logger, 'all').length;
    const url = `${front.url}/all/mcp`;
    const call = async (token: string, id: number, name: string) => (await (await postModern(url, token, id, 'tools/call', { name, arguments: {} })).json()) as { id: number; result?: { content: { text: string }[] }; error?: unknown };
    const devPid = JSON.parse((await call(DEV_TOKEN, 1, 'b__pid')).result!.content[0].text).pid as number;
    const prodA = await call(PROD_TOKEN, 2, 'a__pid');
    // prod may not use b: its name reads like one no member has, and b is not started for prod.
    expect(await call(PROD_TOKEN, 3, 'b__pid')).toEqual({ jsonrpc: '2.0', id: 3, error: { code: -32602, message: 'Unknown tool: b__pid' } });
    const sessions = started(logger, 'all').slice(from);
    expect(sessions.map((e) => [e.fields.token, e.fields.transport, 'b_pid' in e.fields])).toEqual([
      ['dev', 'stateless', true],
      ['prod', 'stateless', false],
    ]);
    expect(sessions[0].fields.b_pid).toBe(devPid);
    const pids = sessions.flatMap((e) => [e.fields.a_pid, e.fields.b_pid]).filter((p): p is number => typeof p === 'number');
    expect(JSON.parse(prodA.result!.content[0].text).pid).toBe(sessions[1].fields.a_pid);
    expect(newChildren(before)).toEqual([...pids].sort());
    expect(liveSessionCount(front.router)).toBe(2);

    await front.router.reload(restricted(['prod'], { prod: PROD_TOKEN }));
    expect([devPid, sessions[0].fields.a_pid as number].filter(isAlive)).toEqual([]);
    expect(liveSessionCount(front.router)).toBe(1);
    await front.router.close();
    expect(pids.filter(isAlive)).toEqual([]);
    expect(newChildren(before)).toEqual([]);
    expect(liveSessionCount(front.router)).toBe(0);
  });
});

describe('a member down, with onUnavailable "omit" (the default)', () => {
  let front: Front | undefined;
  const logger = watchedLogger();
  afterEach(async () => {
    await front?.close();
    front = undefined;
  });

  const startWith = async (b: object) => {
    front = await startFront({ ...configWith({ a: stdio(), b }), aggregates: { all: { servers: ['a', 'b'] } } }, { logger });
    return front;
  };
  const available = (server: string) => logger.next(isEntry('aggregate member available', { aggregate: 'all', server }));

  test.each(KINDS)('%s: down at the start — the session opens without it, a call to it fails at once naming it, and once it is back the client hears list_changed and sees its tools', async (kind) => {
    const flag = newFlag();
    const f = await startWith(flaky(flag));
    const client = await connectClient(f.url, 'all', kind, DEV_TOKEN);
    const changes = listChanges(client);
    expect(client.getServerVersion()?.name).toBe('mcp-front/all');
    expect(await toolNames(client)).toEqual(prefixed('a'));
    expect(await callError(client, 'b__echo', { message: 'x' })).toEqual(unavailable('b', 'all'));
    expect(textOf(await client.callTool({ name: 'a__echo', arguments: { message: 'still here' } }))).toBe('still here');

    const back = available('b');
    writeFileSync(flag, '');
    await back;
    // Logged before the notification is sent (in a later turn): waiting now cannot miss it.
    await changes.next();
    expect(await toolNames(client)).toEqual([...prefixed('a'), ...prefixed('b')]);
    expect(textOf(await client.callTool({ name: 'b__echo', arguments: { message: 'back' } }))).toBe('back');
    await client.close();
  });

  test('a remote member whose server starts later on its port', async () => {
    const port = await freePort();
    const f = await startWith({ url: `http://127.0.0.1:${port}/mcp` });
    const client = await connectClient(f.url, 'all', 'sse', DEV_TOKEN);
    const changes = listChanges(client);
    expect(await toolNames(client)).toEqual(prefixed('a'));
    expect(await callError(client, 'b__echo', { message: 'x' })).toEqual(unavailable('b', 'all'));

    const back = available('b');
    let remote: Upstream | undefined;
    try {
      remote = await startServerProcess(['--require', path.join(__dirname, 'fixtures', 'report-port.js'), EVERYTHING, 'streamableHttp'], { PORT: String(port) }, /^test server listening on port (\d+)$/m);
      await back;
      await changes.next();
      const names = await toolNames(client);
      expect(names.slice(0, FIXTURE_TOOLS.length)).toEqual(prefixed('a'));
      expect(names).toContain('b__echo');
      expect(names.slice(FIXTURE_TOOLS.length).every((n) => n.startsWith('b__'))).toBe(true);
      expect(textOf(await client.callTool({ name: 'b__echo', arguments: { message: 'remote back' } }))).toContain('remote back');
      await client.close();
    } finally {
      await f.close();
      front = undefined;
      await remote?.close();
    }
  });

  test.each(KINDS)('%s: a member whose child dies mid-session — its calls fail at once naming it, the others go on, and it is started again', async (kind) => {
    const flag = newFlag();
    writeFileSync(flag, '');
    const f = await startWith(flaky(flag));
    const client = await connectClient(f.url, 'all', kind, DEV_TOKEN);
    const changes = listChanges(client);
    expect(await toolNames(client)).toEqual([...prefixed('a'), ...prefixed('b')]);
    const aPid = JSON.parse(textOf(await client.callTool({ name: 'a__pid', arguments: {} }))).pid as number;
    const bPid = JSON.parse(textOf(await client.callTool({ name: 'b__pid', arguments: {} }))).pid as number;

    // A call the child never answers, and its retries fail until the flag is back.
    rmSync(flag);
    const hanging = callError(client, 'b__hang');
    // Answered after `hang` was read (one stdin, in order): the call is at the child when it dies.
    await client.callTool({ name: 'b__echo', arguments: { message: 'before' } });
    const lost = logger.next(isEntry('aggregate member unavailable', { aggregate: 'all', server: 'b' }));
    signalProcess(bPid, 'SIGKILL');
    // The member's timeout (30 s by default) is far away: this is the death, not a timeout.
    expect(await hanging).toEqual(unavailable('b', 'all'));
    await lost;
    expect(await callError(client, 'b__echo', { message: 'x' })).toEqual(unavailable('b', 'all'));
    expect(textOf(await client.callTool({ name: 'a__echo', arguments: { message: 'a goes on' } }))).toBe('a goes on');
    expect(JSON.parse(textOf(await client.callTool({ name: 'a__pid', arguments: {} }))).pid).toBe(aPid);
    expect(isAlive(bPid)).toBe(false);

    const back = available('b');
    writeFileSync(flag, '');
    await back;
    await changes.next();
    expect(await toolNames(client)).toEqual([...prefixed('a'), ...prefixed('b')]);
    const newPid = JSON.parse(textOf(await client.callTool({ name: 'b__pid', arguments: {} }))).pid as number;
    expect(newPid).not.toBe(bPid);
    expect(isAlive(newPid)).toBe(true);
    await client.close();
  });
});

describe('a member down, with onUnavailable "fail"', () => {
  let up: BridgeUpstream;
  let front: Front;
  const logger = watchedLogger();
  const flag = () => path.join(scratch, 'never-created');

  beforeAll(async () => {
    up = await startBridgeUpstream();
    front = await startFront(
      {
        ...configWith({
          a: stdio(),
          exits: flaky(flag()),
          missing: { command: path.join(scratch, 'no-such-command') },
          healthy: stdio(),
          refused: { url: `http://127.0.0.1:1/mcp` },
          legacy: { url: `http://127.0.0.1:1/sse` },
        }),
        aggregates: {
          'with-exits': { servers: ['a', 'exits'], onUnavailable: 'fail' },
          'with-missing': { servers: ['a', 'missing'], onUnavailable: 'fail' },
          'with-refused': { servers: ['a', 'refused'], onUnavailable: 'fail' },
          'with-legacy': { servers: ['a', 'legacy'], onUnavailable: 'fail' },
          'with-healthy': { servers: ['a', 'healthy'], onUnavailable: 'fail' },
        },
      },
      { logger },
    );
  });
  afterAll(async () => {
    await front?.close();
    await up?.close();
  });

  const nothingLeft = async (before: number[]) => {
    await waitFor(() => newChildren(before).length === 0, 'every child of the refused session to exit');
    expect(liveSessionCount(front.router)).toBe(0);
  };

  test.each([
    ['exits', 'a stdio member that exits at start'],
    ['missing', 'a stdio member whose command does not exist'],
    ['refused', 'a remote Streamable HTTP member that refuses connections'],
    ['legacy', 'a remote SSE member that refuses connections'],
  ])('Streamable HTTP: initialize answers 502 naming %s (%s); no session, no child left', async (name) => {
    const before = childPidsOf(process.pid);
    const res = await fetch(`${front.url}/with-${name}/mcp`, { method: 'POST', headers: rawHeaders(DEV_TOKEN), body: JSON.stringify(INITIALIZE) });
    expect(res.status).toBe(502);
    expect(res.headers.get('mcp-session-id')).toBeNull();
    expect(await res.json()).toEqual({
      jsonrpc: '2.0',
      id: 1,
      error: { code: -32000, message: expect.stringMatching(new RegExp(`^Bad Gateway: server "${name}" of aggregate "with-${name}" is unavailable \\(.+\\)$`)) },
    });
    await nothingLeft(before);
  });

  test.each([
    ['missing', 'a stdio member whose command does not exist'],
    ['legacy', 'a remote SSE member that refuses connections'],
  ])('legacy SSE: GET /sse answers 502 naming %s (%s), which fails before any initialize; no session, no child left', async (name) => {
    const before = childPidsOf(process.pid);
    const res = await fetch(`${front.url}/with-${name}/sse`, { headers: { Authorization: `Bearer ${DEV_TOKEN}` } });
    expect(res.status).toBe(502);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toEqual({
      jsonrpc: '2.0',
      id: null,
      error: { code: -32000, message: expect.stringMatching(new RegExp(`^Bad Gateway: server "${name}" of aggregate "with-${name}" is unavailable \\(.+\\)$`)) },
    });
    await nothingLeft(before);
  });

  test.each([
    ['exits', 'a stdio member that exits at start'],
    ['refused', 'a remote Streamable HTTP member that refuses connections'],
  ])('legacy SSE: with %s (%s), the initialize POST answers 502 naming it, once, and the stream ends; no session, no child left', async (name) => {
    const before = childPidsOf(process.pid);
    const lost = name === 'exits' ? logger.next(isEntry('aggregate member unavailable', { aggregate: 'with-exits', server: 'exits' })) : undefined;
    const stream = await openEventStream(`${front.url}/with-${name}/sse`, { headers: { Authorization: `Bearer ${DEV_TOKEN}` } });
    expect(stream.status).toBe(200);
    const endpoint = await stream.nextMatching((e) => e.event === 'endpoint');
    // The child is gone before the client's initialize: that initialize is what fails.
    await lost;
    const res = await fetch(new URL(endpoint.data, front.url), { method: 'POST', headers: rawHeaders(DEV_TOKEN), body: JSON.stringify(INITIALIZE) });
    expect(res.status).toBe(502);
    expect(await res.json()).toEqual({
      jsonrpc: '2.0',
      id: 1,
      error: { code: -32000, message: expect.stringMatching(new RegExp(`^Bad Gateway: server "${name}" of aggregate "with-${name}" is unavailable \\(.+\\)$`)) },
    });
    // The request was answered by its POST: the stream ends without a second answer to it.
    const events: string[] = [];
    for (;;) {
      const event = await stream.next().catch(() => undefined);
      if (event === undefined) break;
      if (event.event !== '') events.push(event.data);
    }
    expect(events).toEqual([]);
    await nothingLeft(before);
  });

  test.each(KINDS)('%s: a member that dies after initialize ends the client session, and every other member’s with it', async (kind) => {
    const before = childPidsOf(process.pid);
    const client = await connectClient(front.url, 'with-healthy', kind, DEV_TOKEN);
    const pids = [JSON.parse(textOf(await client.callTool({ name: 'a__pid', arguments: {} }))).pid as number, JSON.parse(textOf(await client.callTool({ name: 'healthy__pid', arguments: {} }))).pid as number];
    const ended = logger.next(isEntry('session ended', { server: 'with-healthy' }));
    signalProcess(pids[1], 'SIGKILL');
    expect((await ended).fields.reason).toBe('member "healthy" ended');
    expect(pids.filter(isAlive)).toEqual([]);
    expect(newChildren(before)).toEqual([]);
    expect(liveSessionCount(front.router)).toBe(0);
    await client.close();
  });
});
