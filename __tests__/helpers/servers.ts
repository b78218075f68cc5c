// Real servers for tests: the reference MCP server in its HTTP modes, and mcp-front mounted in a
// real Express app on port 0.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import express from 'express';
import { mcpFront } from '../../lib';
import type { LogFields, Logger, McpFrontConfig, McpFrontOptions, McpFrontRouter } from '../../lib/types';

export const EVERYTHING = path.join(
  path.dirname(require.resolve('@modelcontextprotocol/server-everything/package.json')),
  'dist',
  'index.js',
);

/**
 * An origin whose connections are refused at once: TCP port 1 (tcpmux), which nothing serves. A
 * port taken from `freePort()` and left closed could be bound meanwhile by another test file's
 * listener, turning an expected 502 into an answer.
 */
export const REFUSING_ORIGIN = 'http://127.0.0.1:1';

export async function freePort(): Promise<number> {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as net.AddressInfo;
  srv.close();
  await once(srv, 'close');
  return port;
}

export interface Upstream {
  /** Base URL, e.g. http://127.0.0.1:1234 */
  origin: string;
  child: ChildProcess;
  close(): Promise<void>;
}

/**
 * Starts a node server process and waits for its ready line on stderr. When `ready` captures a
 * group, that is the port it listens on (it was given PORT=0); otherwise `port` is.
 */
export async function startServerProcess(args: string[], env: Record<string, string>, ready: RegExp, port?: number): Promise<Upstream> {
  const child = spawn(process.execPath, args, { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  const listening = await new Promise<number>((resolve, reject) => {
    let seen = '';
    const onData = (chunk: Buffer) => {
      seen += chunk.toString();
      const m = ready.exec(seen);
      if (m) {
        child.stderr!.off('data', onData);
        child.stderr!.resume();
        resolve(m[1] !== undefined ? Number(m[1]) : port!);
      }
    };
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited (${code}): ${seen}`)));
  });
  return {
    origin: `http://127.0.0.1:${listening}`,
    child,
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await once(child, 'exit');
    },
  };
}

/**
 * Starts server-everything in `sse` or `streamableHttp` mode on a port the system gives it (it logs
 * only the port it was told, so fixtures/report-port.js reports the real one).
 */
export async function startEverything(mode: 'sse' | 'streamableHttp'): Promise<Upstream> {
  const reportPort = path.join(__dirname, '..', 'fixtures', 'report-port.js');
  return startServerProcess(['--require', reportPort, EVERYTHING, mode], { PORT: '0' }, /^test server listening on port (\d+)$/m);
}

export interface LogEntry {
  level: 'info' | 'warn' | 'error' | 'debug';
  message: string;
  fields: LogFields;
}

/** A logger that records every call, to assert on log events. */
export function captureLogger(): Logger & { entries: LogEntry[]; text(): string } {
  const entries: LogEntry[] = [];
  const at = (level: LogEntry['level']) => (message: string, fields: LogFields = {}) => {
    entries.push({ level, message, fields });
  };
  return {
    entries,
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    debug: at('debug'),
    text: () => entries.map((e) => `${e.level} ${e.message} ${JSON.stringify(e.fields)}`).join('\n'),
  };
}

export interface Front {
  /** Base URL including the mount path, e.g. http://127.0.0.1:1234/gateway */
  url: string;
  origin: string;
  app: express.Express;
  router: McpFrontRouter;
  server: http.Server;
  close(): Promise<void>;
}

export interface FrontOptions extends McpFrontOptions {
  /** Mount path; default '/'. */
  mount?: string;
  /** Put express.json() before the router, as many host apps do. */
  json?: boolean;
  /** Express app settings hook (e.g. trust proxy), run before the router is mounted. */
  configure?: (app: express.Express) => void;
  /** Also mount `router.wellKnown` at the app's root (RFC 9728 metadata at the host's root). */
  wellKnown?: boolean;
}

/**
 * mcp-front in a real Express app on 127.0.0.1:0. A config given as a function is built once the
 * port is known, from the router's URL (mount path included): `proxy.publicUrl` with OAuth.
 */
export async function startFront(config: McpFrontConfig | ((url: string) => McpFrontConfig), options: FrontOptions = {}): Promise<Front> {
  const { mount = '/', json = false, configure, wellKnown = false, ...frontOptions } = options;
  const app = express();
  configure?.(app);
  if (json) app.use(express.json({ limit: '50mb' }));
  const server = http.createServer(app);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  const url = origin + (mount === '/' ? '' : mount);
  let router: McpFrontRouter;
  try {
    router = mcpFront(typeof config === 'function' ? config(url) : config, { logger: captureLogger(), ...frontOptions });
  } catch (err) {
    server.close();
    throw err;
  }
  if (wellKnown) app.use(router.wellKnown);
  app.use(mount, router);
  return {
    url,
    origin,
    app,
    router,
    server,
    async close() {
      await router.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A config with the given servers and two tokens, `dev` and `prod`. */
export function configWith(mcpServers: McpFrontConfig['mcpServers'], extra: Partial<McpFrontConfig['proxy']> = {}): McpFrontConfig {
  return {
    version: '1.0',
    proxy: {
      name: 'Test Proxy',
      auth: { kind: 'bearer_token', tokens: { dev: DEV_TOKEN, prod: PROD_TOKEN } },
      ...extra,
    },
    mcpServers,
  };
}

export const DEV_TOKEN = 'dev-token-0123456789abcdefghij';
export const PROD_TOKEN = 'prod-token-9876543210zyxwvutsrq';

/**
 * Sends a signal to one process, or to a process group by its negated id. Refuses any id that
 * `kill(2)` reads as more than one process or group (0, -1) or as init (1), so that a pid read too
 * early (an empty file, a missing field) can never signal the test runner's own group.
 */
export function signalProcess(pid: number, signal: NodeJS.Signals): void {
  if (!Number.isSafeInteger(pid) || Math.abs(pid) <= 1) throw new Error(`refusing to signal pid ${pid}`);
  process.kill(pid, signal);
}

/** Is a process (by pid) still alive? */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * How long a test waits for something before it calls it a hang. A failure detector, not a speed
 * target: the suite runs on busy machines (laptops, CI runners, other work on the same cores), where
 * a child process can take seconds to start or exit. Jest's per-test timeout (jest.config.js) stays
 * above it, so a hang fails with the message of what was awaited.
 */
export const PATIENCE_MS = 60_000;

/**
 * Waits for a condition that no event announces (another process's exit, a socket the proxy
 * closes on its side), checking every 10 ms, failing with `what` after `timeoutMs`.
 */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = PATIENCE_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export interface JsonRpcUpstream {
  /** `http://127.0.0.1:<port><path>` */
  url: string;
  /** Every request that reached it, in order. */
  requests: { method: string; url: string; headers: http.IncomingHttpHeaders }[];
  close(): Promise<void>;
}

/** A tiny upstream that answers every request with a JSON-RPC result and records what it got. */
export async function startJsonRpcUpstream(path = '/mcp'): Promise<JsonRpcUpstream> {
  const requests: JsonRpcUpstream['requests'] = [];
  const server = http.createServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id: 1, result: {} }));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${path}`,
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface FrontHost {
  /** Base URL of the proxy in the host process, e.g. http://127.0.0.1:1234 */
  url: string;
  process: ChildProcess;
  /** What the host wrote on stderr so far (its log lines). */
  stderr(): string;
  /** Its memory: current RSS and the peak since it started, in bytes. */
  memory(): Promise<{ rss: number; maxRss: number }>;
  /** SIGKILL, if still running; resolves when it has exited. */
  close(): Promise<void>;
}

/**
 * mcp-front in a process of its own (fixtures/front-host.js), for what a test cannot do to its
 * own process: kill it, or measure its memory. `env` is that process's whole environment but PATH.
 */
export async function startFrontHost(config: McpFrontConfig, env: Record<string, string> = {}): Promise<FrontHost> {
  const child = spawn(process.execPath, [path.join(__dirname, '..', 'fixtures', 'front-host.js')], {
    env: { PATH: process.env.PATH ?? '', ...env, MCP_FRONT_HOST_CONFIG: JSON.stringify(config) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (text: string) => (stderr += text));
  const exited = once(child, 'exit');
  const port = await new Promise<number>((resolve, reject) => {
    let seen = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (text: string) => {
      seen += text;
      if (seen.includes('\n')) resolve((JSON.parse(seen) as { port: number }).port);
    });
    void exited.then(([code]) => reject(new Error(`front host exited (${code}): ${stderr}`)));
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    process: child,
    stderr: () => stderr,
    memory: async () => (await (await fetch(`${url}/host/memory`)).json()) as { rss: number; maxRss: number },
    async close() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** The pids whose parent is `pid` (Linux: from /proc). */
export function childPidsOf(pid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after the command name, which may itself contain spaces and parentheses.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) pids.push(Number(entry));
    } catch {
      // exited while we looked
    }
  }
  return pids;
}
