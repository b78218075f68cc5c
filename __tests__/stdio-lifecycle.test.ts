// CONTRACT §2 close(), §3 idleTimeout/maxSessions: every way a stdio session ends stops its
// process tree, and the per-server limit answers 503.
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { promisify } from 'node:util';
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { McpFrontConfig } from '../lib/types';
import { connectClient, type ClientTransportKind, INITIALIZE, textOf } from './helpers/clients';
import { readFileSync } from 'node:fs';
import { captureLogger, childPidsOf, configWith, DEV_TOKEN, EVERYTHING, isAlive, PATIENCE_MS, signalProcess, startFront, startFrontHost, waitFor, type Front } from './helpers/servers';

const FIXTURE = path.join(__dirname, 'fixtures', 'stdio-server.js');

/** Processes we did not spawn ourselves send no event when they die: a bounded poll is the only way. */
async function gone(pid: number, withinMs = PATIENCE_MS): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

describe('stdio session lifecycle', () => {
  let front: Front | undefined;
  const logger = captureLogger();

  const start = async (servers: McpFrontConfig['mcpServers']) => {
    front = await startFront(configWith(servers), { logger });
    return front;
  };
  /** The pid of the child of the session that started last (logged with each session start). */
  const lastPid = (): number => {
    const entry = logger.entries.filter((e) => e.message === 'session started' && e.fields.upstream === 'stdio').at(-1);
    return entry!.fields.pid as number;
  };
  /** Resolves when the logger receives `message` (subscribe before acting). */
  const nextLog = (message: string) =>
    new Promise<Record<string, unknown>>((resolve) => {
      const original = logger.info;
      logger.info = (m, fields) => {
        original(m, fields);
        if (m === message) {
          logger.info = original;
          resolve(fields ?? {});
        }
      };
    });

  afterEach(async () => {
    await front?.close();
    front = undefined;
    logger.entries.splice(0);
  });

  it('stops the child when the SSE connection closes', async () => {
    const f = await start({ everything: { command: process.execPath, args: [EVERYTHING, 'stdio'] } });
    const client = await connectClient(f.url, 'everything', 'sse', DEV_TOKEN);
    const pid = lastPid();
    expect(isAlive(pid)).toBe(true);
    const ended = nextLog('session ended');
    await client.close();
    expect((await ended).reason).toBe('client disconnected');
    expect(isAlive(pid)).toBe(false);
  });

  it('stops the child on DELETE and forgets the session id (404 afterwards)', async () => {
    const f = await start({ everything: { command: process.execPath, args: [EVERYTHING, 'stdio'] } });
    const client = await connectClient(f.url, 'everything', 'streamable', DEV_TOKEN);
    const pid = lastPid();
    const transport = client.transport as StreamableHTTPClientTransport;
    const sessionId = transport.sessionId!;
    const ended = nextLog('session ended');
    await transport.terminateSession();
    expect((await ended).reason).toMatch(/DELETE/);
    expect(isAlive(pid)).toBe(false);
    const after = await fetch(`${f.url}/everything/mcp`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${DEV_TOKEN}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', 'Mcp-Session-Id': sessionId },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
    });
    expect(after.status).toBe(404);
    await client.close();
  });

  it('stops the child of an idle Streamable session (clients that never send DELETE)', async () => {
    const f = await start({ everything: { command: process.execPath, args: [EVERYTHING, 'stdio'], idleTimeout: '2s' } });
    const client = await connectClient(f.url, 'everything', 'streamable', DEV_TOKEN);
    const pid = lastPid();
    await client.listTools();
    const ended = nextLog('session ended');
    // The SDK client's close() only drops its streams (FIELD-NOTES): the idle clock starts then.
    await client.close();
    expect((await ended).reason).toBe('idle timeout');
    expect(isAlive(pid)).toBe(false);
  });

  it('keeps a session with an open stream alive past the idle timeout', async () => {
    const f = await start({ everything: { command: process.execPath, args: [EVERYTHING, 'stdio'], idleTimeout: '2s' } });
    const client = await connectClient(f.url, 'everything', 'streamable', DEV_TOKEN);
    // A request that takes twice the idle timeout: its stream is open the whole time. (The idle
    // timeout leaves a busy machine time to go from connect to the call.)
    const result = await client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 4, steps: 2 } });
    expect(textOf(result)).toMatch(/completed/i);
    expect(logger.entries.some((e) => e.message === 'session ended' && e.fields.upstream === 'stdio')).toBe(false);
    await client.close();
  });

  it('router.close() resolves only when every child (and grandchild) is gone', async () => {
    const f = await start({
      everything: { command: process.execPath, args: [EVERYTHING, 'stdio'] },
      tree: { command: process.execPath, args: [FIXTURE, '--grandchild'] },
    });
    const clients = await Promise.all((['sse', 'streamable'] as const).map((kind) => connectClient(f.url, 'everything', kind, DEV_TOKEN)));
    const pids = logger.entries.filter((e) => e.message === 'session started' && e.fields.upstream === 'stdio').map((e) => e.fields.pid as number);
    const tree = await connectClient(f.url, 'tree', 'sse', DEV_TOKEN);
    const family = JSON.parse(textOf(await tree.callTool({ name: 'pid', arguments: {} }))) as { pid: number; grandchild: number };
    expect(isAlive(family.grandchild)).toBe(true);

    await f.router.close();
    for (const pid of [...pids, family.pid]) expect(isAlive(pid)).toBe(false);
    // Left behind by its parent, like `npx`'s node: reached through the process group.
    expect(isAlive(family.grandchild)).toBe(false);
    await Promise.all([...clients, tree].map((c) => c.close()));
  });

  it('kills a child that ignores the end of stdin and SIGTERM', async () => {
    const f = await start({ stubborn: { command: process.execPath, args: [FIXTURE, '--ignore-sigterm'] } });
    const client = await connectClient(f.url, 'stubborn', 'streamable', DEV_TOKEN);
    const { pid } = JSON.parse(textOf(await client.callTool({ name: 'pid', arguments: {} }))) as { pid: number };
    expect(pid).toBe(lastPid());
    await f.router.close();
    expect(isAlive(pid)).toBe(false);
    await client.close();
  });

  it('ends a session and kills its tree when reload() revokes its token', async () => {
    const config = configWith({ tree: { command: process.execPath, args: [FIXTURE, '--grandchild'] } });
    const f = await start(config.mcpServers);
    const client = await connectClient(f.url, 'tree', 'streamable', DEV_TOKEN);
    const family = JSON.parse(textOf(await client.callTool({ name: 'pid', arguments: {} }))) as { pid: number; grandchild: number };
    const ended = nextLog('session ended');
    await f.router.reload({ ...config, proxy: { ...config.proxy, auth: { kind: 'bearer_token', tokens: { prod: 'another-token-value-123456789' } } } });
    expect((await ended).reason).toBe('token revoked');
    expect(isAlive(family.pid)).toBe(false);
    expect(await gone(family.grandchild)).toBe(true);
    await client.close();
  });

  it('kills every spawned tree when the host process exits without closing anything', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [path.join(__dirname, 'fixtures', 'stdio-host.js')]);
    const { pid, grandchild } = JSON.parse(stdout) as { pid: number; grandchild: number };
    expect(await gone(pid)).toBe(true);
    expect(await gone(grandchild)).toBe(true);
  });

  it.each(['SIGTERM', 'SIGINT'] as const)('kills every spawned tree when the host dies of an unhandled %s', async (signal) => {
    const host = spawn(process.execPath, [path.join(__dirname, 'fixtures', 'stdio-host.js'), '--wait'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const [line] = (await once(host.stdout!, 'data')) as [Buffer];
    const { pid, grandchild } = JSON.parse(line.toString()) as { pid: number; grandchild: number };
    try {
      expect(isAlive(pid)).toBe(true);
      const exited = once(host, 'exit');
      host.kill(signal);
      // The host still dies *of the signal*, as it would without mcp-front.
      expect(await exited).toEqual([null, signal]);
      expect(await gone(pid)).toBe(true);
      expect(await gone(grandchild)).toBe(true);
    } finally {
      for (const p of [host.pid!, -pid, grandchild]) {
        try {
          signalProcess(p, 'SIGKILL');
        } catch {
          // already gone: the expected case
        }
      }
    }
  });

  it('kills every spawned tree when the host is killed with SIGKILL (no hook of its own can run)', async () => {
    // As deployed: the token value only in the host's environment, read through `$env`.
    const secret = 'host-env-token-value-0123456789abcdef';
    const config = configWith({ stubborn: { command: process.execPath, args: [FIXTURE, '--ignore-sigterm', '--grandchild'] } });
    config.proxy.auth = { kind: 'bearer_token', tokens: { dev: { $env: 'MCP_FRONT_TEST_TOKEN' } } };
    const host = await startFrontHost(config, { MCP_FRONT_TEST_TOKEN: secret });
    const client = await connectClient(host.url, 'stubborn', 'streamable', secret);
    const { pid, grandchild } = JSON.parse(textOf(await client.callTool({ name: 'pid', arguments: {} }))) as { pid: number; grandchild: number };
    const helpers = childPidsOf(host.process.pid!).filter((p) => p !== pid);
    try {
      expect(isAlive(pid) && isAlive(grandchild)).toBe(true);
      expect(helpers.map((p) => readFileSync(`/proc/${p}/cmdline`, 'latin1')).join('\n')).toContain('mcp-front-watchdog');
      // Whatever the host spawned (the server, and on Linux its watchdog) carries no token value.
      for (const p of [pid, ...helpers]) {
        expect(readFileSync(`/proc/${p}/environ`, 'latin1')).not.toContain(secret);
        expect(readFileSync(`/proc/${p}/cmdline`, 'latin1')).not.toContain(secret);
      }
      await host.close();
      expect(await gone(pid)).toBe(true);
      expect(await gone(grandchild)).toBe(true);
      // Its job done, the watchdog exits too.
      for (const p of helpers) expect(await gone(p)).toBe(true);
    } finally {
      await host.close();
      for (const p of [-pid, grandchild, ...helpers]) {
        try {
          signalProcess(p, 'SIGKILL');
        } catch {
          // already gone: the expected case
        }
      }
      await client.close();
    }
  });

  it('replaces a killed watchdog, which learns the children already running', async () => {
    const host = await startFrontHost(configWith({ stubborn: { command: process.execPath, args: [FIXTURE, '--ignore-sigterm', '--grandchild'] } }));
    const client = await connectClient(host.url, 'stubborn', 'streamable', DEV_TOKEN);
    const { pid, grandchild } = JSON.parse(textOf(await client.callTool({ name: 'pid', arguments: {} }))) as { pid: number; grandchild: number };
    const watchdogs = () => childPidsOf(host.process.pid!).filter((p) => p !== pid);
    // Named once its runtime started, long after the host wrote it the groups (right after the fork).
    const running = (p: number) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'latin1').startsWith('mcp-front-watchdog');
      } catch {
        return false;
      }
    };
    const [first] = watchdogs();
    try {
      await waitFor(() => running(first), 'the watchdog to run');
      signalProcess(first, 'SIGKILL');
      await waitFor(() => watchdogs().some((p) => p !== first && running(p)), 'a new watchdog');
      await host.close();
      expect(await gone(pid)).toBe(true);
      expect(await gone(grandchild)).toBe(true);
    } finally {
      await host.close();
      for (const p of [-pid, grandchild, ...watchdogs()]) {
        try {
          signalProcess(p, 'SIGKILL');
        } catch {
          // already gone: the expected case
        }
      }
      await client.close();
    }
  });

  describe.each<ClientTransportKind>(['sse', 'streamable'])('maxSessions over %s', (kind) => {
    it('answers 503 with Retry-After beyond the limit, and accepts again once a session ended', async () => {
      const f = await start({ one: { command: process.execPath, args: [FIXTURE], maxSessions: 1 } });
      const first = await connectClient(f.url, 'one', kind, DEV_TOKEN);
      const res =
        kind === 'sse'
          ? await fetch(`${f.url}/one/sse`, { headers: { Authorization: `Bearer ${DEV_TOKEN}`, Accept: 'text/event-stream' } })
          : await fetch(`${f.url}/one/mcp`, {
              method: 'POST',
              headers: { Authorization: `Bearer ${DEV_TOKEN}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
              body: JSON.stringify(INITIALIZE),
            });
      expect(res.status).toBe(503);
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(await res.json()).toMatchObject({ jsonrpc: '2.0', error: { code: -32000, message: expect.stringMatching(/maximum of 1 session/) } });

      const ended = nextLog('session ended');
      if (kind === 'streamable') await (first.transport as StreamableHTTPClientTransport).terminateSession();
      await first.close();
      await ended;
      const second = await connectClient(f.url, 'one', kind, DEV_TOKEN);
      expect(textOf(await second.callTool({ name: 'echo', arguments: { message: 'again' } }))).toBe('again');
      await second.close();
    });
  });
});
