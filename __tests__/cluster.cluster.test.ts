// Several instances (README: Running several instances), for real: three mcp-front processes
// (dist/cli.js, one config file, `$env` for the address and the instance id) behind HAProxy and
// nginx, configured from examples/cluster/, with redis-server for the shared counters. Debian's
// `haproxy`, `nginx` and `redis-server` run in the foreground on free loopback ports, started and
// stopped here. `npm run test:cluster`.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { connectClient, INITIALIZE, type ClientTransportKind } from './helpers/clients';
import { startRedis, type RedisServer } from './helpers/redis';
import { DEV_TOKEN, EVERYTHING, freePort, PATIENCE_MS, PROD_TOKEN, startEverything, waitFor, type Upstream } from './helpers/servers';

const ROOT = path.join(__dirname, '..');
const CLI = path.join(ROOT, 'dist', 'cli.js');
const RECIPES = path.join(ROOT, 'examples', 'cluster');
const IDS = ['mcp-1', 'mcp-2', 'mcp-3'] as const;
const TEMP_TOKEN = 'temp-token-Hq3vN8sKx2LmP5rT7wYz';
const MAX_FAILURES = 5;

interface Instance {
  id: string;
  port: number;
  child: ChildProcess;
  log(): string;
  exited: Promise<[number | null, NodeJS.Signals | null]>;
}

interface Balancer {
  name: string;
  url: string;
  child: ChildProcess;
  output(): string;
}

let tmp: string;
let configFile: string;
let redis: RedisServer;
let everythingHttp: Upstream;
let everythingSse: Upstream;
const instances = new Map<string, Instance>();
const balancers: Balancer[] = [];
const clients: Client[] = [];

function writeConfig(tokens: Record<string, unknown>): void {
  const config = {
    version: '1.0',
    proxy: {
      name: 'Cluster test',
      addr: { $env: 'MCP_FRONT_ADDR' },
      instanceId: { $env: 'MCP_FRONT_INSTANCE_ID' },
      // The balancers add X-Forwarded-For; loopback is the balancers' address here.
      trustProxy: ['loopback'],
      store: { redis: { url: { $env: 'REDIS_URL' } } },
      authThrottle: { maxFailures: MAX_FAILURES, window: '10m' },
      drainTimeout: '60s',
      auth: { kind: 'bearer_token', tokens },
    },
    mcpServers: {
      everything: { command: process.execPath, args: [EVERYTHING, 'stdio'] },
      'remote-http': { url: `${everythingHttp.origin}/mcp` },
      'remote-sse': { url: `${everythingSse.origin}/sse` },
    },
  };
  // Renamed over the old file, as config tools do.
  fs.writeFileSync(`${configFile}.new`, JSON.stringify(config, null, 2));
  fs.renameSync(`${configFile}.new`, configFile);
}

async function startInstance(id: string): Promise<Instance> {
  const port = await freePort();
  const child = spawn(process.execPath, [CLI, '--config', configFile], {
    env: {
      PATH: process.env.PATH ?? '',
      MCP_FRONT_ADDR: `127.0.0.1:${port}`,
      MCP_FRONT_INSTANCE_ID: id,
      REDIS_URL: redis.url,
      DEV_TOKEN,
      PROD_TOKEN,
      TEMP_TOKEN,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout!.on('data', (c: Buffer) => (log += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (log += c.toString()));
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  await waitFor(() => / INFO listening /.test(log) || child.exitCode !== null, `instance ${id} to listen`);
  if (child.exitCode !== null) throw new Error(`instance ${id} exited:\n${log}`);
  return { id, port, child, log: () => log, exited };
}

/** A recipe with the example's host names and ports replaced by this test's. */
function fromRecipe(file: string, listen: [RegExp, string]): string {
  let text = fs.readFileSync(path.join(RECIPES, file), 'utf8');
  for (const id of IDS) text = text.split(`${id}:3000`).join(`127.0.0.1:${instances.get(id)!.port}`);
  expect(text).toMatch(listen[0]);
  return text.replace(listen[0], listen[1]);
}

async function listening(port: number, child: ChildProcess, output: () => string, what: string): Promise<void> {
  const deadline = Date.now() + PATIENCE_MS;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${what} exited:\n${output()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what} did not listen within ${PATIENCE_MS} ms:\n${output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function run(name: string, command: string, args: string[]): { child: ChildProcess; output(): string } {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  child.once('error', (err) => (output += `cannot run ${name} (apt-get install -y ${name}): ${err.message}`));
  return { child, output: () => output };
}

async function startHaproxy(): Promise<Balancer> {
  const port = await freePort();
  // Faster checks than the recipe's: a test waits for them.
  const cfg = fromRecipe('haproxy.cfg', [/^ {4}bind :8080$/m, `    bind 127.0.0.1:${port}`]).replace('inter 2s fall 2 rise 2', 'inter 300ms fall 2 rise 1');
  const file = path.join(tmp, 'haproxy.cfg');
  fs.writeFileSync(file, cfg);
  const check = spawnSync('haproxy', ['-c', '-f', file], { encoding: 'utf8' });
  expect({ status: check.status, output: check.stdout + check.stderr }).toMatchObject({ status: 0 });
  const { child, output } = run('haproxy', 'haproxy', ['-f', file, '-db']);
  await listening(port, child, output, 'haproxy');
  return { name: 'haproxy', url: `http://127.0.0.1:${port}`, child, output };
}

async function startNginx(): Promise<Balancer> {
  const port = await freePort();
  const conf = fromRecipe('nginx.conf', [/^ {8}listen 8080;$/m, `        listen 127.0.0.1:${port};`]);
  const prefix = path.join(tmp, 'nginx');
  fs.mkdirSync(path.join(prefix, 'logs'), { recursive: true });
  const file = path.join(prefix, 'nginx.conf');
  fs.writeFileSync(file, conf);
  const globals = `daemon off; pid ${path.join(prefix, 'nginx.pid')}; error_log stderr warn;`;
  const check = spawnSync('nginx', ['-t', '-p', prefix, '-c', file, '-g', globals], { encoding: 'utf8' });
  expect({ status: check.status, output: check.stdout + check.stderr }).toMatchObject({ status: 0 });
  const { child, output } = run('nginx', 'nginx', ['-p', prefix, '-c', file, '-g', globals]);
  await listening(port, child, output, 'nginx');
  return { name: 'nginx', url: `http://127.0.0.1:${port}`, child, output };
}

/** Stops a process: SIGTERM (nginx's master then ends its workers), and waits for its exit. */
async function stop(child: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  await exited;
}

/** The instance a client's session lives on: the prefix of the id it was given. */
function instanceOf(client: Client, kind: ClientTransportKind): string {
  const transport = client.transport as unknown as StreamableHTTPClientTransport & { _endpoint?: URL };
  const id = kind === 'streamable' ? transport.sessionId! : transport._endpoint!.searchParams.get('sessionId')!;
  expect(id).toMatch(/^mcp-\d\.[A-Za-z0-9_-]{43}$/);
  return id.slice(0, id.indexOf('.'));
}

/** A client address of its own (X-Forwarded-For, trusted from the balancers): its own throttle budget. */
let nextAddress = 1;
const ownAddress = () => ({ 'X-Forwarded-For': `10.78.0.${nextAddress++}` });

async function connect(lb: Balancer, server: string, kind: ClientTransportKind, token = DEV_TOKEN): Promise<Client> {
  // Clients of a token about to be revoked fail authentication later: each from an address of its own.
  const headers = token === TEMP_TOKEN ? ownAddress() : {};
  const client = await connectClient(lb.url, server, kind, token, { headers });
  clients.push(client);
  return client;
}

/** Connects until a client lands on `id` (round-robin: within a few tries). */
async function connectTo(lb: Balancer, id: string, server: string, kind: ClientTransportKind, token = DEV_TOKEN): Promise<Client> {
  for (let i = 0; i < 3 * IDS.length; i++) {
    const client = await connect(lb, server, kind, token);
    if (instanceOf(client, kind) === id) return client;
    await client.close();
  }
  throw new Error(`no session on ${id} through ${lb.name}`);
}

const ROUTES: [string, ClientTransportKind][] = [
  ['everything', 'streamable'],
  ['everything', 'sse'],
  ['remote-http', 'streamable'],
  ['remote-http', 'sse'],
  ['remote-sse', 'sse'],
  ['remote-sse', 'streamable'],
];

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-front-cluster-'));
  configFile = path.join(tmp, 'config.json');
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
  [redis, everythingHttp, everythingSse] = await Promise.all([startRedis(), startEverything('streamableHttp'), startEverything('sse')]);
  writeConfig({ dev: { $env: 'DEV_TOKEN' }, prod: { $env: 'PROD_TOKEN' }, temp: { $env: 'TEMP_TOKEN' } });
  for (const instance of await Promise.all(IDS.map(startInstance))) instances.set(instance.id, instance);
  balancers.push(await startHaproxy(), await startNginx());
});

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await Promise.allSettled([...balancers.map((b) => stop(b.child, 'SIGTERM')), ...[...instances.values()].map((i) => stop(i.child))]);
  await Promise.allSettled([redis?.stop(), everythingHttp?.close(), everythingSse?.close()]);
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const lbs = () => balancers.map((b) => [b.name, b] as const);

describe.each(['haproxy', 'nginx'])('through %s', (name) => {
  const lb = () => balancers.find((b) => b.name === name)!;

  test('sessions of every server kind, on both transports, spread over every instance, with no 404', async () => {
    const seen = new Set<string>();
    for (const [server, kind] of ROUTES) {
      const mine: string[] = [];
      for (let i = 0; i < IDS.length; i++) {
        const client = await connect(lb(), server, kind);
        mine.push(instanceOf(client, kind));
        // Requests of the session reach the instance that holds it: any other would answer 404.
        for (let n = 0; n < 3; n++) expect((await client.listTools()).tools.length).toBeGreaterThan(0);
        await client.close();
      }
      for (const id of mine) seen.add(id);
    }
    expect([...seen].sort()).toEqual([...IDS]);
  });

  test("another token's session id is refused (404), wherever it is sent", async () => {
    const client = await connect(lb(), 'remote-http', 'streamable');
    const id = (client.transport as unknown as StreamableHTTPClientTransport).sessionId!;
    const res = await fetch(`${lb().url}/remote-http/mcp`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${PROD_TOKEN}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', 'Mcp-Session-Id': id, 'MCP-Protocol-Version': '2025-06-18' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
    });
    expect(res.status).toBe(404);
    await res.text();
    // The owner's session is untouched.
    expect((await client.listTools()).tools.length).toBeGreaterThan(0);
    await client.close();
  });
});

test('the auth throttle is counted once across instances (Redis), whichever balancer a guess goes through', async () => {
  // A client address of its own (X-Forwarded-For, trusted from the balancers), so that the
  // other tests' client is not throttled.
  const guess = (lb: Balancer) =>
    fetch(`${lb.url}/everything/mcp`, {
      method: 'POST',
      headers: { Authorization: 'Bearer wrong-token-0123456789abcdef', 'X-Forwarded-For': '10.77.0.1', 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
      body: JSON.stringify(INITIALIZE),
    });
  const statuses: number[] = [];
  for (let i = 0; i < MAX_FAILURES + 2; i++) {
    const res = await guess(balancers[i % balancers.length]);
    statuses.push(res.status);
    await res.text();
  }
  // Per instance, each would have allowed MAX_FAILURES: N × MAX_FAILURES guesses in all.
  expect(statuses).toEqual([...Array(MAX_FAILURES).fill(401), 429, 429]);
  // Everyone else is served.
  const client = await connect(balancers[0], 'everything', 'streamable');
  expect((await client.listTools()).tools.length).toBeGreaterThan(0);
  await client.close();
});

test('revocation (the file edited, SIGHUP) reaches every instance', async () => {
  const temps: Client[] = [];
  for (const [, lb] of lbs()) for (const id of IDS) temps.push(await connectTo(lb, id, 'everything', 'streamable', TEMP_TOKEN));

  writeConfig({ dev: { $env: 'DEV_TOKEN' }, prod: { $env: 'PROD_TOKEN' } });
  const marks = new Map([...instances.values()].map((i) => [i.id, i.log().length]));
  for (const instance of instances.values()) instance.child.kill('SIGHUP');
  for (const instance of instances.values()) {
    await waitFor(() => / INFO config reloaded\b/.test(instance.log().slice(marks.get(instance.id))), `${instance.id} to reload`);
  }
  for (const client of temps) await expect(client.listTools()).rejects.toThrow(/Unauthorized/);
  for (const [, lb] of lbs()) {
    for (let i = 0; i < IDS.length; i++) {
      const res = await fetch(`${lb.url}/everything/mcp`, {
        method: 'POST',
        headers: { ...ownAddress(), Authorization: `Bearer ${TEMP_TOKEN}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
        body: JSON.stringify(INITIALIZE),
      });
      expect(res.status).toBe(401);
      await res.text();
    }
  }
  await Promise.allSettled(temps.map((c) => c.close()));
});

test('a draining instance takes no new sessions while its live ones finish', async () => {
  const draining = instances.get('mcp-2')!;
  // A session on it through each balancer, each with a long call in flight when SIGTERM comes.
  const live = await Promise.all(balancers.map((lb) => connectTo(lb, draining.id, 'everything', 'streamable')));
  const progressed = live.map(() => 0);
  const calls = live.map((client, i) =>
    client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 4, steps: 4 } }, undefined, {
      timeout: PATIENCE_MS,
      onprogress: () => void progressed[i]++,
    }),
  );
  // Under way on the instance: each has reported progress.
  await waitFor(() => progressed.every((n) => n > 0), 'the long calls to be under way');
  const mark = draining.log().length;
  draining.child.kill('SIGTERM');
  await waitFor(() => / INFO shutting down /.test(draining.log().slice(mark)), 'mcp-2 to start draining');

  // New sessions go to the others, through both balancers and on both transports.
  for (const lb of balancers) {
    for (const kind of ['streamable', 'sse'] as const) {
      for (let i = 0; i < IDS.length; i++) {
        const client = await connect(lb, 'everything', kind);
        expect(instanceOf(client, kind)).not.toBe(draining.id);
        await client.close();
      }
    }
  }
  // The calls in flight finish with their results.
  for (const result of await Promise.all(calls)) expect(JSON.stringify(result)).toMatch(/completed/i);
  await Promise.allSettled(live.map((c) => c.close()));
  const [code] = await draining.exited;
  expect(code).toBe(0);
  instances.delete(draining.id);
});

test('an instance killed with kill -9: its clients get 404, not 502, and initialize again on the others', async () => {
  const victim = instances.get('mcp-3')!;
  const orphans: [Client, ClientTransportKind][] = [];
  for (const lb of balancers) {
    for (const kind of ['streamable', 'sse'] as const) orphans.push([await connectTo(lb, victim.id, 'remote-http', kind), kind]);
  }
  const others = await Promise.all(balancers.map((lb) => connectTo(lb, 'mcp-1', 'everything', 'streamable')));

  victim.child.kill('SIGKILL');
  await victim.exited;
  instances.delete(victim.id);

  for (const [client] of orphans) {
    const error = await client.listTools().then(
      () => undefined,
      (err: Error) => err.message,
    );
    // The session is gone (404), and the balancer said nothing of its own (a 502/503 page).
    expect(error).toMatch(/Not Found: unknown or ended session/);
  }
  for (const client of others) expect((await client.listTools()).tools.length).toBeGreaterThan(0);
  // Initializing again works, on an instance still alive.
  for (const lb of balancers) {
    for (const kind of ['streamable', 'sse'] as const) {
      const client = await connect(lb, 'remote-http', kind);
      expect(instanceOf(client, kind)).toBe('mcp-1');
      expect((await client.listTools()).tools.length).toBeGreaterThan(0);
      await client.close();
    }
  }
});
