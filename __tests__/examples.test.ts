// Every example must keep working: configs stay valid against the contract, and the runnable ones
// run. The examples use the built package (dist/), so this suite runs after `npm run build`.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import yaml from 'js-yaml';
import { Registry } from 'prom-client';
import { loadConfig, mcpFront } from '../lib';
import { resolveConfig } from '../lib/config';
import { captureLogger } from './helpers/servers';

const EXAMPLES = path.join(__dirname, '..', 'examples');
const ROOT = path.join(__dirname, '..');
/** A hang detector, not a speed target: examples start the CLI and servers, slow on a busy machine. */
const WAIT_MS = 120_000;

/** Values for every `$env` the examples read; long and random enough to raise no token warning. */
const ENV: Record<string, string> = {
  ...Object.fromEntries(
    ['GATEWAY_TOKEN', 'MCP_TOKEN', 'ADMIN_TOKEN', 'READONLY_TOKEN', 'FILES_TOKEN', 'CI_TOKEN', 'LAPTOP_TOKEN', 'EVERYTHING_API_KEY', 'REMOTE_API_KEY', 'METRICS_TOKEN'].map(
      (name, i) => [name, `${name.toLowerCase()}-${i}-Zq8rT2vX9wK4mN7pL3sB`],
    ),
  ),
  // examples/cluster: one config for every instance.
  MCP_FRONT_ADDR: '127.0.0.1:3000',
  MCP_FRONT_INSTANCE_ID: 'mcp-1',
  REDIS_URL: 'redis://127.0.0.1:6379',
};

function exampleConfigs(): string[] {
  const found: string[] = [];
  for (const dir of fs.readdirSync(EXAMPLES)) {
    const file = path.join(EXAMPLES, dir, 'config.json');
    if (fs.existsSync(file)) found.push(file);
  }
  return found;
}

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});

function run(script: string, args: string[] = [], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [script, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  // 'close', not 'exit': the last output of a process that exits at once may still be in its pipes.
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return {
    child,
    output: () => ({ stdout, stderr }),
    async exit(what: string): Promise<number | null> {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not exit within ${WAIT_MS} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`)), WAIT_MS);
      });
      try {
        return await Promise.race([exited, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

async function initialize(url: string, token: string): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'examples-test', version: '1.0.0' } },
    }),
  });
}

describe('observability example', () => {
  const DIR = path.join(EXAMPLES, 'observability');
  const read = (file: string) => fs.readFileSync(path.join(DIR, file), 'utf8');

  test('every metric the dashboard queries is one mcp-front exports, and it shows them all', async () => {
    const registry = new Registry();
    await mcpFront(loadConfig(path.join(DIR, 'config.json'), ENV), { env: ENV, metrics: registry, logger: captureLogger() }).close();
    const exported = new Set((await registry.getMetricsAsJSON()).map((m) => m.name));
    const dashboard = JSON.parse(read('grafana/dashboards/mcp-front.json')) as { panels: { targets: { expr: string }[] }[]; templating: { list: { query: { query: string } }[] } };
    const exprs = [...dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr)), ...dashboard.templating.list.map((v) => v.query.query)];
    const queried = new Set(exprs.flatMap((e) => e.match(/\bmcp_front_[a-z_]+/g) ?? []).map((n) => n.replace(/_(bucket|sum|count)$/, '')));
    expect(queried.size).toBeGreaterThan(0);
    for (const name of queried) expect(exported).toContain(name);
    for (const name of exported) expect(queried).toContain(name);
    // Histogram series are queried by their bucket series only.
    for (const e of exprs) if (/_seconds/.test(e)) expect(e).toMatch(/_seconds_bucket\b/);
  });

  test('Prometheus scrapes the compose service at /metrics with a token from a file, and compose wires the same names', () => {
    const prometheus = yaml.load(read('prometheus.yml')) as { scrape_configs: { metrics_path: string; authorization: { type: string; credentials_file: string }; static_configs: { targets: string[] }[] }[] };
    const compose = yaml.load(read('docker-compose.yml')) as { services: Record<string, { secrets?: string[]; volumes?: string[]; build?: { dockerfile: string } }>; secrets: Record<string, { environment: string }> };
    const [job] = prometheus.scrape_configs;
    expect(job.metrics_path).toBe('/metrics');
    expect(job.authorization.type).toBe('Bearer');
    expect(job.static_configs[0].targets).toEqual(['mcp-front:8080']);
    expect(Object.keys(compose.services).sort()).toEqual(['grafana', 'mcp-front', 'prometheus']);
    const secret = path.basename(job.authorization.credentials_file);
    expect(compose.services.prometheus.secrets).toContain(secret);
    expect(compose.secrets[secret].environment).toBe('METRICS_TOKEN');
    expect(fs.existsSync(path.join(ROOT, compose.services['mcp-front'].build!.dockerfile))).toBe(true);
    // The config's metrics token is the one Prometheus is given.
    const config = resolveConfig(loadConfig(path.join(DIR, 'config.json'), ENV), ENV);
    const [scraper] = [...config.metrics!.authTokens!];
    expect(config.tokens.get(scraper)).toBe(ENV.METRICS_TOKEN);
    expect(config.addr).toBe(':8080');
  });
});

describe('example configs', () => {
  const configs = exampleConfigs();

  test('there is one per example that ships a config', () => {
    expect(configs.map((f) => path.basename(path.dirname(f))).sort()).toEqual(['aggregates', 'cluster', 'env-tokens', 'existing-app', 'multiple-servers', 'observability', 'permissions', 'standalone']);
  });

  test.each(configs.map((f) => [path.relative(ROOT, f), f]))('%s is valid', (_name, file) => {
    const config = loadConfig(file, ENV);
    const resolved = resolveConfig(config, ENV);
    expect(resolved.servers.size).toBeGreaterThan(0);
    // Examples are copied into real setups: no token value written in them.
    expect(resolved.literalTokens.size).toBe(0);
  });

  test.each(configs.map((f) => [path.relative(ROOT, f), f]))('%s names every variable it needs', (_name, file) => {
    expect(() => loadConfig(file, {})).toThrow(/environment variable/);
  });

  test('the permission example gives each token the documented servers', () => {
    const resolved = resolveConfig(loadConfig(path.join(EXAMPLES, 'multiple-servers', 'config.json'), ENV), ENV);
    const allowed = Object.fromEntries([...resolved.servers].map(([name, s]) => [name, [...s.authTokens].sort()]));
    expect(allowed).toEqual({
      'db-read': ['admin', 'files', 'readonly'],
      'db-write': ['admin'],
      files: ['admin', 'files'],
    });
  });
});

describe('examples/aggregates', () => {
  const FILE = path.join(EXAMPLES, 'aggregates', 'config.json');

  test('mcp-front --check passes and counts the aggregates', async () => {
    const check = run(path.join(ROOT, 'dist', 'cli.js'), ['--check', '--config', FILE], ENV);
    const code = await check.exit('--check aggregates');
    expect({ code, ...check.output() }).toEqual({ code: 0, stdout: 'config OK: 3 servers, 2 aggregates, 2 tokens\n', stderr: '' });
  });

  test('the aggregates its README describes: one of each kind of server, prefixes, who may open them', () => {
    const resolved = resolveConfig(loadConfig(FILE, ENV), ENV);
    expect([...resolved.servers.values()].map((s) => s.transport)).toEqual(['stdio', 'streamable-http', 'sse']);
    const all = resolved.aggregates.get('all')!;
    expect(all.members).toEqual([
      { server: 'everything', prefix: 'ev' },
      { server: 'remote', prefix: 'remote' },
      { server: 'legacy', prefix: 'legacy' },
    ]);
    expect({ separator: all.separator, onUnavailable: all.onUnavailable, authTokens: [...all.authTokens].sort() }).toEqual({ separator: '__', onUnavailable: 'omit', authTokens: ['admin', 'ci'] });
    const ci = resolved.aggregates.get('ci-tools')!;
    expect(ci.members.map((m) => m.prefix)).toEqual(['remote', 'everything']);
    expect({ separator: ci.separator, onUnavailable: ci.onUnavailable, authTokens: [...ci.authTokens] }).toEqual({ separator: '-', onUnavailable: 'fail', authTokens: ['ci'] });
  });
});

describe('examples/oauth', () => {
  const DIR = path.join(EXAMPLES, 'oauth');
  const files = fs.readdirSync(DIR).filter((f) => f.endsWith('.json'));

  test('ships the three documented configurations', () => {
    expect(files.sort()).toEqual(['auth0.json', 'entra.json', 'keycloak.json']);
  });

  // JSON with comments, checked as a user would: `mcp-front --check` of the built command.
  test.each(files)('mcp-front --check %s passes', async (file) => {
    const check = run(path.join(ROOT, 'dist', 'cli.js'), ['--check', '--config', path.join(DIR, file)], ENV);
    const code = await check.exit(`--check ${file}`);
    const { stdout, stderr } = check.output();
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout).toMatch(/^config OK: \d+ servers?, \d+ tokens?, [1-9]\d* principals?\n$/);
  });
});

describe('examples/oauth/demo', () => {
  test('run.js walks the whole OAuth flow with the SDK client, prints no token, and stops everything it started', async () => {
    const demo = run(path.join(EXAMPLES, 'oauth', 'demo', 'run.js'));
    const code = await demo.exit('the OAuth demo');
    const { stdout, stderr } = demo.output();
    if (code !== 0) throw new Error(`run.js exited with ${code}:\n${stdout}\n${stderr}`);
    // The steps of the MCP authorization flow, in this order.
    const steps = [
      /\(initialize, no token\) → 401\n +WWW-Authenticate: Bearer realm="[^"]+", resource_metadata="http:\/\/127\.0\.0\.1:\d+\/gw\/\.well-known\/oauth-protected-resource\/everything\/mcp", scope="mcp:tools"/,
      /GET \S+\/gw\/\.well-known\/oauth-protected-resource\/everything\/mcp → 200 \(Protected Resource Metadata, RFC 9728\)\n +resource=http:\/\/127\.0\.0\.1:\d+\/gw\/everything\/mcp, authorization_servers=http:\/\/127\.0\.0\.1:\d+,/,
      /→ 200 \(authorization server metadata\)/,
      /\/reg → 201 \(dynamic client registration, RFC 7591\)/,
      /code_challenge_method=S256, scope=mcp:tools, resource=http:\/\/127\.0\.0\.1:\d+\/gw\/everything\/mcp/,
      /\/token → 200 \(token: grant_type=authorization_code, code_verifier, resource=\S+\/gw\/everything\/mcp\)\n +a JWT access token \(not shown\): aud=http:\/\/127\.0\.0\.1:\d+\/gw\/everything\/mcp, scope=mcp:tools, sub=alice/,
      /\(initialize, Bearer access token\) → 200/,
      /\(tools\/list, Bearer access token\) → 200\n +tools\/list: \d+ tools \(echo,/,
      /\(tools\/call, Bearer access token\) → 200\n +tools\/call echo: "Echo: hello through OAuth"/,
      /\nstopped: mcp-front, server-everything \(pid \d+\), the authorization server \(pid \d+\)\n$/,
    ];
    let at = 0;
    for (const expected of steps) {
      const found = expected.exec(stdout.slice(at));
      if (found === null) throw new Error(`missing after offset ${at}: ${expected}\n${stdout}`);
      at += found.index + found[0].length;
    }
    // mcp-front's lines (stderr) name the principal and the user.
    expect(stderr).toContain('WARN auth failed reason=missing_token');
    expect(stderr).toMatch(/INFO mcp request token=staff sub=alice server=everything method=tools\/call name=echo outcome=ok/);
    // No access token (a JWT) anywhere in the output.
    expect(stdout + stderr).not.toMatch(/eyJ[\w-]+\.eyJ[\w-]+\./);
    // Its children are gone, not orphaned: the authorization server and the stdio server.
    const pids = [...stdout.matchAll(/pid (\d+)/g)].map((m) => Number(m[1]));
    expect(pids.length).toBeGreaterThanOrEqual(2);
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
  });
});

describe('examples/existing-app', () => {
  // Plain CommonJS, as users write it: required, not imported through ts-jest.
  const { start } = require('../examples/existing-app/server.js') as {
    start(port: number, options: object): Promise<{ url: string; close(): Promise<void> }>;
  };
  let app: { url: string; close(): Promise<void> } | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  test('keeps its own routes and serves mcp-front under /mcp-gateway', async () => {
    app = await start(0, { env: ENV, logger: captureLogger() });

    const home = await fetch(`${app.url}/`);
    expect(home.status).toBe(200);
    expect(await home.text()).toMatch(/existing app/);

    const hello = await fetch(`${app.url}/api/hello`);
    expect(await hello.json()).toEqual({ hello: 'world' });

    const health = await fetch(`${app.url}/mcp-gateway/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok', service: 'mcp-front' });

    const anonymous = await fetch(`${app.url}/mcp-gateway/everything/mcp`, { method: 'POST' });
    expect(anonymous.status).toBe(401);
    // The host app's routes need no token.
    expect((await fetch(`${app.url}/api/hello`)).status).toBe(200);
  });

  test('an authenticated client reaches the stdio server behind /mcp-gateway', async () => {
    app = await start(0, { env: ENV, logger: captureLogger() });
    const res = await initialize(`${app.url}/mcp-gateway/everything/mcp`, ENV.GATEWAY_TOKEN);
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(/"protocolVersion"/);
  });
});

describe('examples/rotation', () => {
  test.each([[[]], [['--sighup']]])('rotate.js %p walks the four steps and ends with the old token refused', async (args) => {
    const script = run(path.join(EXAMPLES, 'rotation', 'rotate.js'), args);
    const code = await script.exit('rotate.js');
    const { stdout, stderr } = script.output();
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    for (const step of ['0. clients use', '1. add "ci-2025"', '2. both tokens work', '3. move every client', '4. remove "ci-2024"']) {
      expect(stdout).toContain(step);
    }
    expect(stdout).toMatch(/ci-2024 +-> 401/);
    expect(stdout).toContain('rotation complete');
    // Generated tokens are 43 base64url characters: none may be printed.
    expect(stdout).not.toMatch(/[A-Za-z0-9_-]{43}/);
  });
});

describe('examples/multiple-servers', () => {
  test('check.js finds exactly the configured permissions', async () => {
    const script = run(path.join(EXAMPLES, 'multiple-servers', 'check.js'));
    const code = await script.exit('check.js');
    const { stdout } = script.output();
    expect(code).toBe(0);
    expect(stdout).toMatch(/^db-write +200 +403 +403 *$/m);
    expect(stdout).not.toMatch(/[A-Za-z0-9_-]{43}/);
  });
});

describe('examples/permissions', () => {
  test('check.js: db-read may only query, admin everything', async () => {
    const script = run(path.join(EXAMPLES, 'permissions', 'check.js'));
    const code = await script.exit('check.js');
    const { stdout, stderr } = script.output();
    expect(code).toBe(0);
    expect(stdout).toMatch(/^db-read +tools\/list: query +query: ok +drop_table: Unknown tool: drop_table$/m);
    expect(stderr).toContain('WARN permission denied token=db-read server=database method=tools/call name=drop_table');
    expect(stdout + stderr).not.toMatch(/[A-Za-z0-9_-]{43}/);
  });
});

describe('examples/demo (npm start)', () => {
  test('prints the endpoints and a token that works, and stops cleanly on SIGINT', async () => {
    const demo = run(path.join(EXAMPLES, 'demo', 'start.js'), [], { PORT: '0' });
    const banner = await new Promise<string>((resolve, reject) => {
      let text = '';
      const timer = setTimeout(() => reject(new Error(`no banner within ${WAIT_MS} ms:\n${text}\n${demo.output().stderr}`)), WAIT_MS);
      readline.createInterface({ input: demo.child.stdout! }).on('line', (line) => {
        text += line + '\n';
        if (/Ctrl-C/.test(line)) {
          clearTimeout(timer);
          resolve(text);
        }
      });
    });
    const url = /Streamable HTTP +(\S+)/.exec(banner)?.[1];
    const token = /Token +(\S+)/.exec(banner)?.[1];
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/everything\/mcp$/);
    expect(banner).toMatch(/SSE +http:\/\/127\.0\.0\.1:\d+\/everything\/sse/);
    expect(banner).toContain('curl');
    expect(banner).toContain('npx @modelcontextprotocol/inspector');

    const res = await initialize(url!, token!);
    expect(res.status).toBe(200);
    await res.text();
    expect((await initialize(url!, 'wrong-token')).status).toBe(401);

    demo.child.kill('SIGINT');
    expect(await demo.exit('the demo')).toBe(0);
  });
});
