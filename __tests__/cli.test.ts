// The standalone command (CONTRACT §8), run as users run it: `node dist/cli.js` in a child process
// on a real port. Needs `npm run build` first (the `pretest` script does it).
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { promisify } from 'node:util';
import { instanceIdFromHostname, parseAddr } from '../lib/cli';
import { openEventStream } from './fixtures/remote-streams';
import { EVERYTHING, isAlive, PATIENCE_MS, startEverything, waitFor, type Upstream } from './helpers/servers';

const ROOT = path.join(__dirname, '..');
const CLI = path.join(ROOT, 'dist', 'cli.js');
const FIXTURES = path.join(__dirname, 'fixtures');
const WAIT_MS = PATIENCE_MS;
const execFileAsync = promisify(execFile);

// Long, varied values: no token warning, and easy to spot if one ever leaks into output.
const TOKEN_A = 'cli-token-A-Zq8rT2vX9wK4mN7pL3sB6yH1';
const TOKEN_B = 'cli-token-B-Jd5fG0hW3eR8tY2uI7oP4aS9';
const TOKEN_C = 'cli-token-C-Mx1cV6bN9qA3zS8dF2gH5jK0';
const SECRETS = [TOKEN_A, TOKEN_B, TOKEN_C, 'literal-secret-value-0123456789'];

function configWithTokens(tokens: Record<string, string>, addr = '127.0.0.1:0') {
  return {
    version: '1.0',
    proxy: { name: 'CLI Test', addr, auth: { kind: 'bearer_token', tokens } },
    mcpServers: { everything: { command: process.execPath, args: [EVERYTHING, 'stdio'] } as Record<string, unknown> },
  };
}

/** Replaces the file the way editors and config tools do: a new file renamed over the old one. */
function replaceFile(file: string, content: unknown): void {
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(content, null, 2));
  fs.renameSync(`${file}.tmp`, file);
}

/** A running `mcp-front` with its log lines, and bounded waits for the next matching one. */
class RunningCli {
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  stdout = '';
  private waiters: { re: RegExp; from: number; resolve: (m: RegExpExecArray) => void }[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(args: string[], env: NodeJS.ProcessEnv = {}) {
    this.child = spawn(process.execPath, [CLI, ...args], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout!.on('data', (c: Buffer) => (this.stdout += c.toString()));
    readline.createInterface({ input: this.child.stderr! }).on('line', (line) => {
      this.lines.push(line);
      for (const w of [...this.waiters]) {
        const m = w.re.exec(line);
        if (m && this.lines.length - 1 >= w.from) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(m);
        }
      }
    });
    // 'close', not 'exit': the last lines of a process that exits at once may still be in its pipes.
    this.exited = new Promise((resolve) => this.child.once('close', (code, signal) => resolve({ code, signal })));
  }

  /** Position in the log: `waitFor(re, what, cli.mark())` waits only for lines logged after it. */
  mark(): number {
    return this.lines.length;
  }

  waitFor(re: RegExp, what: string, from = 0): Promise<RegExpExecArray> {
    for (let i = from; i < this.lines.length; i++) {
      const m = re.exec(this.lines[i]);
      if (m) return Promise.resolve(m);
    }
    return new Promise((resolve, reject) => {
      const waiter = { re, from, resolve };
      this.waiters.push(waiter);
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`timed out after ${WAIT_MS} ms waiting for ${what}; log so far:\n${this.lines.join('\n')}`));
      }, WAIT_MS);
      this.exited.then(() => {
        if (!this.waiters.includes(waiter)) return;
        clearTimeout(timer);
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`mcp-front exited while waiting for ${what}; log:\n${this.lines.join('\n')}`));
      });
      const original = waiter.resolve;
      waiter.resolve = (m) => {
        clearTimeout(timer);
        original(m);
      };
    });
  }

  async exit(what = 'mcp-front to exit'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${WAIT_MS} ms waiting for ${what}; log:\n${this.lines.join('\n')}`)), WAIT_MS);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Waits for `listening … port=N` and returns the base URL. */
  async base(): Promise<string> {
    const m = await this.waitFor(/ INFO listening .*\bport=(\d+)/, 'the "listening" line');
    return `http://127.0.0.1:${m[1]}`;
  }

  output(): string {
    return `${this.stdout}\n${this.lines.join('\n')}`;
  }
}

let tmp: string;
const running: RunningCli[] = [];
const outputs: string[] = [];

beforeAll(() => {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
});

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-front-cli-'));
});

afterEach(async () => {
  for (const cli of running.splice(0)) {
    outputs.push(cli.output());
    if (cli.child.exitCode === null && cli.child.signalCode === null) {
      cli.child.kill('SIGKILL');
      await cli.exited;
    }
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

afterAll(() => {
  // CONTRACT §6: no token value, configured or presented, in any line the command wrote.
  const leaked = SECRETS.filter((secret) => outputs.some((out) => out.includes(secret)));
  expect(leaked).toEqual([]);
});

function start(args: string[], env: NodeJS.ProcessEnv = {}): RunningCli {
  const cli = new RunningCli(args, env);
  running.push(cli);
  return cli;
}

async function runToEnd(args: string[], env: NodeJS.ProcessEnv = {}) {
  const cli = start(args, env);
  const { code } = await cli.exit();
  return { code, stdout: cli.stdout, stderr: cli.lines.join('\n') };
}

function writeConfig(content: unknown, name = 'config.json'): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, JSON.stringify(content, null, 2));
  return file;
}

async function initialize(base: string, token: string): Promise<{ status: number; session: string | null }> {
  const res = await fetch(`${base}/everything/mcp`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'cli-test', version: '1.0.0' } },
    }),
  });
  const body = await res.text();
  if (res.status === 200) expect(body).toMatch(/"protocolVersion"/);
  return { status: res.status, session: res.headers.get('mcp-session-id') };
}

/** Initializes and ends the session at once, so no stdio child is left idling. */
async function statusFor(base: string, token: string): Promise<number> {
  const { status, session } = await initialize(base, token);
  if (session) {
    await fetch(`${base}/everything/mcp`, { method: 'DELETE', headers: { Authorization: `Bearer ${token}`, 'Mcp-Session-Id': session } }).then((r) =>
      r.text(),
    );
  }
  return status;
}

function childPids(pid: number): number[] {
  try {
    return execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .map((s) => Number(s.trim()))
      .filter((n) => n > 0);
  } catch {
    return []; // ps exits 1 when there is none
  }
}

/**
 * The command's children: its stdio servers, and on Linux the watchdog that would kill them if
 * the command were killed outright (it leaves on its own once the command is gone, not before).
 */
function childrenOf(pid: number): { servers: number[]; watchdogs: number[] } {
  const children = childPids(pid);
  const watchdogs = children.filter((child) => {
    try {
      return fs.readFileSync(`/proc/${child}/cmdline`, 'latin1').includes('mcp-front-watchdog');
    } catch {
      return false;
    }
  });
  return { servers: children.filter((child) => !watchdogs.includes(child)), watchdogs };
}

describe('command line', () => {
  test('--help prints the usage on stdout', async () => {
    const { code, stdout } = await runToEnd(['--help']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Usage:/);
    expect(stdout).toContain('--config');
    expect(stdout).toContain('generate-token');
  });

  test('--version prints the package version', async () => {
    const { version } = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const { code, stdout } = await runToEnd(['--version']);
    expect({ code, stdout }).toEqual({ code: 0, stdout: `${version}\n` });
  });

  test.each([
    ['no arguments', [], /--config <file> is required/],
    ['an unknown flag', ['--config', 'x.json', '--verbose'], /Unknown option '--verbose'/],
    ['--config without a value', ['--config'], /argument missing/],
    ['an unknown command', ['serve'], /unknown command "serve"/],
    ['generate-token with options', ['generate-token', '--config', 'x.json'], /generate-token takes no options/],
  ])('%s is a usage error: exit 2, usage on stderr', async (_label, args, message) => {
    const { code, stdout, stderr } = await runToEnd(args);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toMatch(message);
    expect(stderr).toContain('Usage:');
  });

  test('generate-token prints 32 random bytes as base64url, and nothing else', async () => {
    const first = await execFileAsync(process.execPath, [CLI, 'generate-token']);
    const second = await execFileAsync(process.execPath, [CLI, 'generate-token']);
    expect(first.stdout).toMatch(/^[A-Za-z0-9_-]{43}\n$/);
    expect(second.stdout).toMatch(/^[A-Za-z0-9_-]{43}\n$/);
    expect(Buffer.from(first.stdout.trim(), 'base64url')).toHaveLength(32);
    expect(first.stdout).not.toBe(second.stdout);
    expect(first.stderr + second.stderr).toBe('');
  });
});

describe('parseAddr (proxy.addr)', () => {
  test.each([
    [':8080', { host: undefined, port: 8080 }],
    ['127.0.0.1:8080', { host: '127.0.0.1', port: 8080 }],
    ['localhost:0', { host: 'localhost', port: 0 }],
    ['[::1]:8080', { host: '::1', port: 8080 }],
    ['[::]:443', { host: '::', port: 443 }],
  ])('%s', (addr, expected) => {
    expect(parseAddr(addr)).toEqual(expected);
  });

  test.each(['localhost', ':99999', '::1:8080', 'host:port'])('%s is refused', (addr) => {
    expect(() => parseAddr(addr)).toThrow(/not a listen address/);
  });
});

describe('--check', () => {
  test('a valid config: exit 0 and a summary on stdout', async () => {
    const { code, stdout, stderr } = await runToEnd(['--check', '--config', path.join(FIXTURES, 'cli-valid.json')], {
      CLI_DEV_TOKEN: TOKEN_A,
      CLI_PROD_TOKEN: TOKEN_B,
    });
    expect({ code, stdout, stderr }).toEqual({ code: 0, stdout: 'config OK: 2 servers, 2 tokens\n', stderr: '' });
  });

  test('accepts --config=path and -c path', async () => {
    const env = { CLI_DEV_TOKEN: TOKEN_A, CLI_PROD_TOKEN: TOKEN_B };
    const file = path.join(FIXTURES, 'cli-valid.json');
    expect((await runToEnd(['--check', `--config=${file}`], env)).code).toBe(0);
    expect((await runToEnd(['-c', file, '--check'], env)).code).toBe(0);
  });

  test('an invalid config: exit 1 listing every problem with its path', async () => {
    const { code, stdout, stderr } = await runToEnd(['--check', '--config', path.join(FIXTURES, 'cli-invalid.json')]);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/4 problems/);
    expect(stderr).toMatch(/^ {2}proxy\.addr: /m);
    expect(stderr).toMatch(/^ {2}proxy\.auth\.tokens\.prod: .*CLI_UNSET_VARIABLE/m);
    expect(stderr).toMatch(/^ {2}mcpServers\.database\.authTokens\[1\]: .*"stagng"/m);
    expect(stderr).toMatch(/^ {2}mcpServers\.files\.authToken: .*authTokens/m);
  });

  test('weak tokens are warned about on stderr, but the check passes', async () => {
    const { code, stdout, stderr } = await runToEnd(['--check', '--config', path.join(FIXTURES, 'cli-valid.json')], {
      CLI_DEV_TOKEN: 'weak-Qz7',
      CLI_PROD_TOKEN: TOKEN_B,
    });
    expect(code).toBe(0);
    expect(stdout).toBe('config OK: 2 servers, 2 tokens\n');
    expect(stderr).toMatch(/^warning: token "dev" is shorter than 20 characters/);
    expect(stderr).not.toContain('weak-Qz7');
  });

  /** A valid config of OAuth beside one static token: the README's OAuth example. */
  function oauthConfig(): any {
    return {
      proxy: {
        publicUrl: 'https://mcp.example.com/gw',
        auth: {
          kind: 'bearer_token',
          tokens: { ci: { $env: 'CLI_DEV_TOKEN' } },
          oauth: {
            issuer: 'https://idp.example.com/realms/acme',
            introspection: { clientId: 'mcp-front', clientSecret: { $env: 'CLI_PROD_TOKEN' } },
            principals: { 'db-admins': { claims: { groups: 'db-admins' } }, staff: { claims: { email: '*@acme.com' } } },
          },
        },
      },
      mcpServers: {
        database: { url: 'http://127.0.0.1:1/mcp', authTokens: ['ci', 'db-admins'], requiredScopes: ['mcp:db'] },
        files: { command: 'node' },
      },
    };
  }

  test('an OAuth config: the summary counts principals too', async () => {
    const env = { CLI_DEV_TOKEN: TOKEN_A, CLI_PROD_TOKEN: TOKEN_B };
    const ok = await runToEnd(['--check', '--config', writeConfig(oauthConfig())], env);
    expect({ code: ok.code, stdout: ok.stdout, stderr: ok.stderr }).toEqual({ code: 0, stdout: 'config OK: 2 servers, 1 token, 2 principals\n', stderr: '' });
    const config = oauthConfig();
    delete config.proxy.auth.tokens;
    config.mcpServers.database.authTokens = ['staff'];
    config.proxy.auth.oauth.principals = { staff: { claims: { email: '*@acme.com' } } };
    expect((await runToEnd(['--check', '--config', writeConfig(config)], env)).stdout).toBe('config OK: 2 servers, 0 tokens, 1 principal\n');
  });

  test('an OAuth config with four mistakes: exit 1 listing each with its path, no secret', async () => {
    const config = oauthConfig();
    delete config.proxy.publicUrl;
    config.proxy.auth.oauth.principals.ci = { claims: { sub: 'robot' } };
    config.proxy.auth.oauth.issuer = 'http://idp.example.com/realms/acme';
    config.proxy.auth.oauth.issuers = ['https://other.example.com'];
    const { code, stdout, stderr } = await runToEnd(['--check', '--config', writeConfig(config)], { CLI_DEV_TOKEN: TOKEN_A, CLI_PROD_TOKEN: TOKEN_B });
    expect({ code, stdout }).toEqual({ code: 1, stdout: '' });
    expect(stderr.split('\n').slice(1)).toEqual([
      '  proxy.publicUrl: is required with "oauth": the URL clients use to reach this proxy, mount path included (e.g. "https://mcp.example.com/gw"); resource URLs are built from it, never from the Host header',
      '  proxy.auth.oauth.issuer: must be https:// (http:// only on loopback: localhost, 127.0.0.0/8, [::1])',
      '  proxy.auth.oauth.principals.ci: "ci" is also a token name; tokens and principals share one namespace (authTokens, permissions, limits, logs)',
      '  proxy.auth.oauth.issuers: unknown key "issuers"; did you mean "issuer"?',
    ]);
    expect(stderr.split('\n')[0]).toMatch(/: 4 problems$/);
    for (const secret of SECRETS) expect(stderr).not.toContain(secret);
  });

  test('a config with aggregates: the summary counts them; a bad one is listed with its paths', async () => {
    const env = { CLI_DEV_TOKEN: TOKEN_A, CLI_PROD_TOKEN: TOKEN_B };
    const config = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'cli-valid.json'), 'utf8'));
    config.aggregates = { all: { servers: ['database', 'filesystem'] } };
    expect(await runToEnd(['--check', '--config', writeConfig(config)], env)).toEqual({ code: 0, stdout: 'config OK: 2 servers, 1 aggregate, 2 tokens\n', stderr: '' });
    config.aggregates.ops = { servers: { database: { prefix: 'db' } }, authTokens: ['prod'], onUnavailable: 'fail' };
    expect(await runToEnd(['--check', '--config', writeConfig(config)], env)).toEqual({ code: 0, stdout: 'config OK: 2 servers, 2 aggregates, 2 tokens\n', stderr: '' });
    config.aggregates.ops = { servers: { database: { prefix: 'DB' }, filesystem: { prefix: 'db-fs' } }, authTokens: ['prd'] };
    config.aggregates.all.servers.push(TOKEN_A);
    const bad = await runToEnd(['--check', '--config', writeConfig(config)], env);
    expect({ code: bad.code, stdout: bad.stdout }).toEqual({ code: 1, stdout: '' });
    expect(bad.stderr.split('\n').slice(1)).toEqual([
      '  aggregates.all.servers[2]: unknown server (not shown: it may be a secret); members are servers of "mcpServers": "database", "filesystem"',
      '  aggregates.ops.servers.database.prefix: invalid prefix "DB": a prefix is a lower-case letter, then up to 15 lower-case letters, digits or "-"; such as "db"',
      '  aggregates.ops.authTokens[0]: unknown token name "prd"; did you mean "prod"?',
    ]);
    expect(bad.stderr.split('\n')[0]).toMatch(/: 3 problems$/);
    expect(bad.stderr).not.toContain(TOKEN_A);
  });

  test('a config file with comments and trailing commas is valid; a syntax error gives its exact position', async () => {
    const env = { CLI_DEV_TOKEN: TOKEN_A, CLI_PROD_TOKEN: TOKEN_B };
    const commented = fs
      .readFileSync(path.join(FIXTURES, 'cli-valid.json'), 'utf8')
      .replace('"CLI_PROD_TOKEN" } }', '"CLI_PROD_TOKEN" }, } // dev: old token, remove after the rotation')
      .replace('"authTokens": ["dev"] }', '"authTokens": ["dev",], /* dev only */ },');
    const file = path.join(tmp, 'commented.json');
    fs.writeFileSync(file, commented);
    expect(await runToEnd(['--check', '--config', file], env)).toEqual({ code: 0, stdout: 'config OK: 2 servers, 2 tokens\n', stderr: '' });
    fs.writeFileSync(file, commented.replace('/* dev only */', '/* dev only'));
    const bad = await runToEnd(['--check', '--config', file], env);
    const line = commented.split('\n').findIndex((l) => l.includes('/* dev only')) + 1;
    const column = commented.split('\n')[line - 1].indexOf('/*') + 1;
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe(`${file}: 1 problem\n  (file): invalid JSON in ${JSON.stringify(file)} at line ${line}, column ${column}: unterminated comment (a "*/" is missing)`);
  });

  test('a file that is not JSON, or missing: exit 1 saying so', async () => {
    const bad = await runToEnd(['--check', '--config', path.join(FIXTURES, 'cli-bad-json.json')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/invalid JSON .*line 3/);
    const missing = await runToEnd(['--check', '--config', path.join(tmp, 'nope.json')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/ENOENT/);
  });
});

describe('running', () => {
  test('serves /health and authenticated MCP requests on the configured address', async () => {
    const file = writeConfig(configWithTokens({ main: TOKEN_A }));
    const cli = start(['--config', file]);
    const base = await cli.base();
    expect(cli.lines.some((l) => / INFO serving server=everything transport=stdio$/.test(l))).toBe(true);

    const health = await fetch(`${base}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok', service: 'mcp-front' });

    expect(await statusFor(base, TOKEN_A)).toBe(200);
    expect(await statusFor(base, TOKEN_B)).toBe(401);
    await cli.waitFor(/ INFO auth successful token=main /, 'the "auth successful" line');
  });

  test('an invalid config at start: exit 1, every problem logged', async () => {
    const file = writeConfig({ ...configWithTokens({ main: TOKEN_A }), mcpServers: { x: { command: 'node', authTokens: ['nobody'], colour: 'red' } } });
    const cli = start(['--config', file]);
    expect((await cli.exit()).code).toBe(1);
    const log = cli.lines.join('\n');
    expect(log).toMatch(/ ERROR config invalid .*problems=2/);
    expect(log).toMatch(/ ERROR problem path=mcpServers\.x\.authTokens\[0\] /);
    expect(log).toMatch(/ ERROR problem path=mcpServers\.x\.colour /);
  });

  test('a port in use: exit 1 with the reason', async () => {
    const blocker = net.createServer().listen(0, '127.0.0.1');
    await new Promise((resolve) => blocker.once('listening', resolve));
    try {
      const { port } = blocker.address() as net.AddressInfo;
      const file = writeConfig(configWithTokens({ main: TOKEN_A }, `127.0.0.1:${port}`));
      const cli = start(['--config', file]);
      expect((await cli.exit()).code).toBe(1);
      expect(cli.lines.join('\n')).toMatch(/ ERROR listen failed .*EADDRINUSE/);
    } finally {
      blocker.close();
    }
  });

  test('SIGHUP reloads: a new token value works, the old one is refused', async () => {
    // The config is a symlink into another directory: the watcher sees no change there, so only
    // SIGHUP can bring the new value in.
    const real = path.join(tmp, 'real');
    fs.mkdirSync(real);
    const target = path.join(real, 'config.json');
    fs.writeFileSync(target, JSON.stringify(configWithTokens({ main: TOKEN_A })));
    const link = path.join(tmp, 'config.json');
    fs.symlinkSync(target, link);

    const cli = start(['--config', link]);
    const base = await cli.base();
    expect(await statusFor(base, TOKEN_A)).toBe(200);

    fs.writeFileSync(target, JSON.stringify(configWithTokens({ main: TOKEN_B })));
    const mark = cli.mark();
    cli.child.kill('SIGHUP');
    await cli.waitFor(/ INFO config reloaded\b/, 'the "config reloaded" line after SIGHUP', mark);
    expect(await statusFor(base, TOKEN_B)).toBe(200);
    expect(await statusFor(base, TOKEN_A)).toBe(401);
  });

  test('a changed file reloads: the new token works, the removed one is refused', async () => {
    const file = writeConfig(configWithTokens({ main: TOKEN_A }));
    const cli = start(['--config', file]);
    const base = await cli.base();
    expect(await statusFor(base, TOKEN_A)).toBe(200);

    let mark = cli.mark();
    replaceFile(file, configWithTokens({ main: TOKEN_B }));
    await cli.waitFor(/ INFO config reloaded\b/, 'the "config reloaded" line after renaming a new file over the config', mark);
    expect(await statusFor(base, TOKEN_B)).toBe(200);
    expect(await statusFor(base, TOKEN_A)).toBe(401);

    // Written in place this time (editors that truncate and write), and again after the rename.
    mark = cli.mark();
    fs.writeFileSync(file, JSON.stringify(configWithTokens({ main: TOKEN_C })));
    await cli.waitFor(/ INFO config reloaded\b/, 'the "config reloaded" line after writing the config in place', mark);
    expect(await statusFor(base, TOKEN_C)).toBe(200);
    expect(await statusFor(base, TOKEN_B)).toBe(401);
  });

  test('a Kubernetes ConfigMap update (the kubelet swaps a symlinked directory) reloads, every time', async () => {
    // The kubelet's atomic writer: `config.json -> ..data/config.json`, `..data -> ..<timestamp>`;
    // an update writes a new timestamped directory, points `..data_tmp` at it, renames that over
    // `..data` and removes the old directory. config.json itself never changes.
    const mount = path.join(tmp, 'configmap');
    fs.mkdirSync(mount);
    const publish = (n: number, content: object) => {
      const dir = path.join(mount, `..2026_11_28_00_00_0${n}`);
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(content));
      fs.symlinkSync(path.basename(dir), path.join(mount, '..data_tmp'));
      fs.renameSync(path.join(mount, '..data_tmp'), path.join(mount, '..data'));
      return dir;
    };
    let previous = publish(1, configWithTokens({ main: TOKEN_A }));
    fs.symlinkSync('..data/config.json', path.join(mount, 'config.json'));

    const cli = start(['--config', path.join(mount, 'config.json')]);
    const base = await cli.base();
    expect(await statusFor(base, TOKEN_A)).toBe(200);

    for (const [n, token, old] of [
      [2, TOKEN_B, TOKEN_A],
      [3, TOKEN_C, TOKEN_B],
    ] as const) {
      const mark = cli.mark();
      const next = publish(n, configWithTokens({ main: token }));
      fs.rmSync(previous, { recursive: true });
      previous = next;
      await cli.waitFor(/ INFO config reloaded\b/, `the "config reloaded" line after ConfigMap update ${n}`, mark);
      expect(await statusFor(base, token)).toBe(200);
      expect(await statusFor(base, old)).toBe(401);
    }
  });

  test('an invalid new file is refused and logged; the running config stays in force', async () => {
    const file = writeConfig(configWithTokens({ main: TOKEN_A }));
    const cli = start(['--config', file]);
    const base = await cli.base();

    const mark = cli.mark();
    const broken = configWithTokens({ main: TOKEN_B });
    broken.mcpServers.everything.authTokens = ['mian'];
    broken.mcpServers.everything.timeOut = '5s';
    replaceFile(file, broken);
    const refused = await cli.waitFor(/ ERROR reload refused .*problems=(\d+)/, 'the "reload refused" line', mark);
    expect(refused[1]).toBe('2');
    await cli.waitFor(/ ERROR problem path=mcpServers\.everything\.authTokens\[0\] /, 'the authTokens problem', mark);
    await cli.waitFor(/ ERROR problem path=mcpServers\.everything\.timeOut /, 'the timeOut problem', mark);

    expect(await statusFor(base, TOKEN_A)).toBe(200);
    expect(await statusFor(base, TOKEN_B)).toBe(401);
    expect(cli.lines.slice(mark).some((l) => / config reloaded\b/.test(l))).toBe(false);

    // Not JSON at all: refused the same way.
    const mark2 = cli.mark();
    fs.writeFileSync(file, '{ "proxy": ');
    await cli.waitFor(/ ERROR reload refused .*problems=1/, 'the refusal of a truncated file', mark2);
    await cli.waitFor(/ ERROR problem path="?\(file\)"? message=.*invalid JSON/, 'the JSON problem', mark2);
    expect(await statusFor(base, TOKEN_A)).toBe(200);
  });

  test.each(['SIGTERM', 'SIGINT'] as const)('%s: exit 0, open sessions ended, no child left', async (signal) => {
    const file = writeConfig(configWithTokens({ main: TOKEN_A }));
    const cli = start(['--config', file]);
    const base = await cli.base();

    // An open session: its stdio server is a child of the command.
    const { status, session } = await initialize(base, TOKEN_A);
    expect(status).toBe(200);
    expect(session).toBeTruthy();
    const { servers, watchdogs } = childrenOf(cli.child.pid!);
    expect(servers.length).toBeGreaterThan(0);

    cli.child.kill(signal);
    expect(await cli.exit(`mcp-front to exit on ${signal}`)).toEqual({ code: 0, signal: null });
    expect(servers.filter(isAlive)).toEqual([]);
    await waitFor(() => !watchdogs.some(isAlive), 'the watchdog to exit after the command');
    expect(cli.lines.join('\n')).toMatch(new RegExp(` INFO shutting down signal=${signal}`));
  });
});

// A fault while answering, timing out or ending one session ends that session, never the process
// with every session of every token. An id nested 6,000 deep was once kept as pending and
// answered later with `JSON.stringify`, which ran out of stack: the process died at the
// disconnect, the timeout, the DELETE or the bridge's error answer that came after.
describe('GET /metrics (proxy.metrics)', () => {
  test('behind the tokens listed: none or an invalid token 401, a valid one not listed 403, a listed one the exposition', async () => {
    const c = configWithTokens({ main: TOKEN_A, scraper: TOKEN_B });
    const file = writeConfig({ ...c, proxy: { ...c.proxy, metrics: { authTokens: ['scraper'] } } });
    const cli = start(['--config', file]);
    const base = await cli.base();
    expect(await statusFor(base, TOKEN_A)).toBe(200);
    const get = (token?: string) => fetch(`${base}/metrics`, { headers: token === undefined ? {} : { Authorization: `Bearer ${token}` } });
    const none = await get();
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer /);
    await none.text();
    expect((await get(TOKEN_C)).status).toBe(401);
    expect((await get(TOKEN_A)).status).toBe(403);
    const ok = await get(TOKEN_B);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await ok.text();
    expect(text).toContain('mcp_front_requests_total{server="everything",token="main",method="initialize",outcome="ok"} 1');
    expect(text).toMatch(/mcp_front_auth_failures_total\{reason="missing_token"\} [1-9]/);
    expect(text).toMatch(/mcp_front_auth_failures_total\{reason="forbidden"\} [1-9]/);
    // The process metrics prom-client collects are there too.
    expect(text).toContain('process_cpu_seconds_total');
    for (const secret of SECRETS) expect(text).not.toContain(secret);
  });

  test('{} is open; without proxy.metrics there is no /metrics', async () => {
    const c = configWithTokens({ main: TOKEN_A });
    const open = writeConfig({ ...c, proxy: { ...c.proxy, metrics: {} } }, 'open.json');
    const cli = start(['--config', open]);
    const res = await fetch(`${await cli.base()}/metrics`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('# TYPE mcp_front_sessions_active gauge');

    const off = writeConfig(configWithTokens({ main: TOKEN_A }), 'off.json');
    const plain = start(['--config', off]);
    const missing = await fetch(`${await plain.base()}/metrics`);
    expect(missing.status).toBe(404);
    await missing.text();
  });
});

describe('one session cannot end the process', () => {
  const STDIO_SERVER = path.join(FIXTURES, 'stdio-server.js');
  /** About 12 KB: `JSON.parse` takes it, `JSON.stringify` runs out of stack on it. */
  const DEEP = '['.repeat(6000) + ']'.repeat(6000);
  const HANG = `{"jsonrpc":"2.0","id":${DEEP},"method":"tools/call","params":{"name":"hang","arguments":{}}}`;
  const headers = (extra: Record<string, string> = {}) => ({
    Authorization: `Bearer ${TOKEN_A}`,
    'Content-Type': 'application/json',
    Accept: 'application/json, text/event-stream',
    ...extra,
  });
  let legacyUpstream: Upstream;

  beforeAll(async () => {
    legacyUpstream = await startEverything('sse');
  });
  afterAll(() => legacyUpstream?.close());

  async function startFixtureCli(): Promise<{ cli: RunningCli; base: string }> {
    const config = {
      ...configWithTokens({ main: TOKEN_A }),
      mcpServers: {
        // Long enough for a child to start and answer on a busy machine: only the hanging requests outlast it.
        fixture: { command: process.execPath, args: [STDIO_SERVER], timeout: '5s' },
        legacy: { url: `${legacyUpstream.origin}/sse`, timeout: '5s' },
      },
    };
    const cli = start(['--config', writeConfig(config)]);
    return { cli, base: await cli.base() };
  }

  const post = (url: string, body: string, extra: Record<string, string> = {}) => fetch(url, { method: 'POST', headers: headers(extra), body });

  async function openSession(base: string, server = 'fixture'): Promise<string> {
    const res = await post(`${base}/${server}/mcp`, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'cli-test', version: '1' } } }));
    expect(res.status).toBe(200);
    await res.text();
    return res.headers.get('mcp-session-id')!;
  }

  /** Whatever comes back; looked at only once the process has proven it is still up. */
  async function answerOf(res: Response): Promise<{ status: number; body: unknown }> {
    const text = await res.text();
    return { status: res.status, body: text.startsWith('{') ? (JSON.parse(text) as unknown) : text };
  }

  /** The process still serves: a new session calls a tool. */
  async function stillServing(cli: RunningCli, base: string): Promise<void> {
    expect(cli.child.exitCode).toBeNull();
    const session = await openSession(base);
    const res = await post(`${base}/fixture/mcp`, JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { message: 'alive' } } }), { 'Mcp-Session-Id': session });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('alive');
  }

  const INVALID_REQUEST = { status: 400, body: { jsonrpc: '2.0', id: null, error: { code: -32600, message: expect.stringMatching(/^Invalid Request/) } } };

  test('a legacy SSE client that disconnects after sending an id nested 6,000 deep', async () => {
    const { cli, base } = await startFixtureCli();
    const stream = await openEventStream(`${base}/fixture/sse`, { headers: headers() });
    const endpoint = await stream.nextMatching((e) => e.event === 'endpoint');
    const hostile = await post(base + endpoint.data, HANG).then(answerOf);
    stream.close();
    await stream.ended;
    await stillServing(cli, base);
    expect(hostile).toEqual(INVALID_REQUEST);
  });

  test("a Streamable HTTP request with an id nested 6,000 deep that nobody answers before the server's timeout", async () => {
    const { cli, base } = await startFixtureCli();
    const hostile = await post(`${base}/fixture/mcp`, HANG, { 'Mcp-Session-Id': await openSession(base) }).then(answerOf);
    await stillServing(cli, base);
    expect(hostile).toEqual(INVALID_REQUEST);
  });

  test('a Streamable HTTP session ended by DELETE while a request with an id nested 6,000 deep is pending', async () => {
    const { cli, base } = await startFixtureCli();
    const session = await openSession(base);
    const hostile = post(`${base}/fixture/mcp`, HANG, { 'Mcp-Session-Id': session }).then(answerOf, (err: Error) => err);
    // The child answers in order: the ping's answer proves the request above reached it.
    const ping = await post(`${base}/fixture/mcp`, '{"jsonrpc":"2.0","id":3,"method":"ping"}', { 'Mcp-Session-Id': session });
    await ping.text();
    const deleted = await fetch(`${base}/fixture/mcp`, { method: 'DELETE', headers: headers({ 'Mcp-Session-Id': session }) });
    expect(deleted.status).toBe(204);
    await stillServing(cli, base);
    expect(await hostile).toEqual(INVALID_REQUEST);
  });

  test('a Streamable HTTP client bridged to a legacy SSE upstream sending an id nested 6,000 deep', async () => {
    const { cli, base } = await startFixtureCli();
    const hostile = await post(`${base}/legacy/mcp`, HANG, { 'Mcp-Session-Id': await openSession(base, 'legacy') }).then(answerOf, (err: Error) => err);
    await stillServing(cli, base);
    expect(hostile).toEqual(INVALID_REQUEST);
  });

  test('output the proxy cannot relay ends that one session with an error, logged at ERROR; the process serves on', async () => {
    const { cli, base } = await startFixtureCli();
    const other = await openSession(base);
    const session = await openSession(base);
    const mark = cli.mark();

    const res = await post(`${base}/fixture/mcp`, JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'unrelayable', arguments: { depth: 6000 } } }), {
      'Mcp-Session-Id': session,
    });
    expect(res.status).toBe(502);
    expect(await res.json()).toEqual({ jsonrpc: '2.0', id: 2, error: { code: -32000, message: expect.stringContaining('could not relay') } });
    await cli.waitFor(/ ERROR stdio session failed .*where="server output" error=RangeError/, 'the ERROR line of the failed session', mark);

    // That session is over; the other one, and new ones, are not.
    const after = await post(`${base}/fixture/mcp`, '{"jsonrpc":"2.0","id":3,"method":"ping"}', { 'Mcp-Session-Id': session });
    expect(after.status).toBe(404);
    await after.text();
    const ping = await post(`${base}/fixture/mcp`, '{"jsonrpc":"2.0","id":4,"method":"ping"}', { 'Mcp-Session-Id': other });
    expect(ping.status).toBe(200);
    await ping.text();
    await stillServing(cli, base);
  });
});

// Several instances behind a load balancer (README: Running several instances).
describe('several instances', () => {
  const STDIO_SERVER = path.join(FIXTURES, 'stdio-server.js');
  const headers = (extra: Record<string, string> = {}) => ({
    Authorization: `Bearer ${TOKEN_A}`,
    'Content-Type': 'application/json',
    Accept: 'application/json, text/event-stream',
    ...extra,
  });
  const INIT = JSON.stringify({
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'cli-test', version: '1' } },
  });
  const call = (id: number, name: string, args: Record<string, unknown> = {}) =>
    JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });
  const post = (url: string, body: string, extra: Record<string, string> = {}) => fetch(url, { method: 'POST', headers: headers(extra), body });

  function fixtureConfig(proxy: Record<string, unknown> = {}, servers: Record<string, unknown> = {}) {
    const c = configWithTokens({ main: TOKEN_A });
    return { ...c, proxy: { ...c.proxy, ...proxy }, mcpServers: { fixture: { command: process.execPath, args: [STDIO_SERVER] }, ...servers } };
  }

  async function openSession(base: string, server = 'fixture'): Promise<string> {
    const res = await post(`${base}/${server}/mcp`, INIT);
    expect(res.status).toBe(200);
    await res.text();
    return res.headers.get('mcp-session-id')!;
  }

  /**
   * A remote Streamable HTTP server that holds every `tools/call` until the test releases it: a
   * request in flight for exactly as long as the test wants.
   */
  async function startHoldingUpstream() {
    const held: (() => void)[] = [];
    let arrived: (() => void) | undefined;
    const server = http.createServer((req, res) => {
      if (req.method !== 'POST') {
        res.writeHead(req.method === 'DELETE' ? 200 : 405).end();
        return;
      }
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        const msg = JSON.parse(body) as { id?: number; method: string; params?: { protocolVersion?: string } };
        if (msg.id === undefined) {
          res.writeHead(202).end();
          return;
        }
        const result =
          msg.method === 'initialize'
            ? { protocolVersion: msg.params?.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: 'holding', version: '1' } }
            : { content: [{ type: 'text', text: 'released' }] };
        const answer = () => {
          res.writeHead(200, { 'Content-Type': 'application/json', 'Mcp-Session-Id': 'upstream-session' });
          res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result }));
        };
        if (msg.method !== 'tools/call') return answer();
        held.push(answer);
        arrived?.();
      });
    });
    server.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const { port } = server.address() as net.AddressInfo;
    return {
      url: `http://127.0.0.1:${port}/mcp`,
      /** Resolves once a tools/call is being held. */
      holding: () => (held.length > 0 ? Promise.resolve() : new Promise<void>((resolve) => (arrived = resolve))),
      release: () => held.splice(0).forEach((answer) => answer()),
      close: () => {
        server.closeAllConnections();
        return new Promise<void>((resolve) => server.close(() => resolve()));
      },
    };
  }

  test('instanceIdFromHostname: other characters become "-", cut to 32', () => {
    expect(instanceIdFromHostname('web-7f9c')).toBe('web-7f9c');
    expect(instanceIdFromHostname('mcp.front.example.com')).toBe('mcp-front-example-com');
    expect(instanceIdFromHostname('x'.repeat(40))).toBe('x'.repeat(32));
    expect(instanceIdFromHostname('')).toBeUndefined();
    expect(instanceIdFromHostname(undefined)).toBeUndefined();
  });

  test('proxy.addr from $env, the instance id from $HOSTNAME, shown in authenticated /health only', async () => {
    const config = fixtureConfig({ addr: { $env: 'MCP_FRONT_ADDR' } });
    const cli = start(['--config', writeConfig(config)], { MCP_FRONT_ADDR: '127.0.0.1:0', HOSTNAME: 'mcp-front-5d8f.pod.local' });
    const base = await cli.base();
    const open = await fetch(`${base}/health`);
    expect(await open.json()).not.toHaveProperty('instanceId');
    const authed = (await (await fetch(`${base}/health`, { headers: headers() })).json()) as Record<string, unknown>;
    expect(authed).toMatchObject({ status: 'ok', instanceId: 'mcp-front-5d8f-pod-local', configFingerprint: expect.stringMatching(/^[0-9a-f]{32}$/) });
  });

  test('an instance id in the config wins over $HOSTNAME', async () => {
    const cli = start(['--config', writeConfig(fixtureConfig({ instanceId: 'blue-1' }))], { HOSTNAME: 'ignored' });
    const base = await cli.base();
    expect(await (await fetch(`${base}/health`, { headers: headers() })).json()).toMatchObject({ instanceId: 'blue-1' });
  });

  test('$HOSTNAME is a default, not an override: a reload that sets proxy.instanceId applies to new sessions, one that removes it goes back', async () => {
    const file = writeConfig(fixtureConfig());
    const cli = start(['--config', file], { HOSTNAME: 'host-a' });
    const base = await cli.base();
    const first = await openSession(base);
    expect(first).toMatch(/^host-a\./);

    let mark = cli.mark();
    replaceFile(file, fixtureConfig({ instanceId: 'inst-b' }));
    await cli.waitFor(/ INFO config reloaded\b/, 'the reload that sets proxy.instanceId', mark);
    expect(await openSession(base)).toMatch(/^inst-b\./);
    await cli.waitFor(/ INFO instance id changed; new sessions get it instance_id=inst-b from=proxy\.instanceId previous=host-a$/, 'the line that says so', mark);
    // The live session keeps its id and its instance.
    const echoed = await post(`${base}/fixture/mcp`, call(2, 'echo', { message: 'still here' }), { 'Mcp-Session-Id': first });
    expect(echoed.status).toBe(200);
    expect(await echoed.text()).toContain('still here');

    mark = cli.mark();
    replaceFile(file, fixtureConfig());
    await cli.waitFor(/ INFO config reloaded\b/, 'the reload that removes proxy.instanceId', mark);
    expect(await openSession(base)).toMatch(/^host-a\./);
    await cli.waitFor(/ INFO instance id changed; new sessions get it instance_id=host-a from=HOSTNAME previous=inst-b$/, 'the line that says so', mark);
  });

  test('proxy.trustProxy: client_ip and the auth throttle see the client behind the load balancer', async () => {
    const config = fixtureConfig({ trustProxy: 'loopback', authThrottle: { maxFailures: 1, window: '1m' } });
    const cli = start(['--config', writeConfig(config)]);
    const base = await cli.base();
    const as = (ip: string, token: string) =>
      fetch(`${base}/fixture/mcp`, { method: 'POST', headers: { ...headers({ 'X-Forwarded-For': ip }), Authorization: `Bearer ${token}` }, body: INIT });

    const guess = await as('203.0.113.7', 'wrong-token');
    expect(guess.status).toBe(401);
    await guess.text();
    await cli.waitFor(/ WARN auth failed reason=invalid_token client_ip=203\.0\.113\.7 /, 'the failure logged with the forwarded address');
    const refused = await as('203.0.113.7', TOKEN_A);
    expect(refused.status).toBe(429);
    await refused.text();
    // Another client behind the same balancer keeps its own budget.
    const other = await as('198.51.100.2', TOKEN_A);
    expect(other.status).toBe(200);
    await other.text();
    await fetch(`${base}/fixture/mcp`, { method: 'DELETE', headers: headers({ 'Mcp-Session-Id': other.headers.get('mcp-session-id')! }) }).then((r) => r.text());
    expect(cli.lines.join('\n')).toMatch(/ INFO auth successful token=main client_ip=198\.51\.100\.2 /);
  });

  test('SIGTERM drains: live sessions served, new ones 503, /health 503, exit 0 once the request in flight is answered', async () => {
    const upstream = await startHoldingUpstream();
    try {
      const config = fixtureConfig({ drainTimeout: '5m' }, { holding: { url: upstream.url } });
      const cli = start(['--config', writeConfig(config)]);
      const base = await cli.base();
      const live = await openSession(base);
      const heldSession = await openSession(base, 'holding');
      const { servers } = childrenOf(cli.child.pid!);
      expect(servers.length).toBeGreaterThan(0);

      const inFlight = post(`${base}/holding/mcp`, call(2, 'slow'), { 'Mcp-Session-Id': heldSession });
      await upstream.holding();
      const mark = cli.mark();
      cli.child.kill('SIGTERM');
      await cli.waitFor(/ INFO draining in_flight=1 timeout_ms=300000/, 'the draining line', mark);

      const health = await fetch(`${base}/health`);
      expect(health.status).toBe(503);
      expect(await health.json()).toMatchObject({ status: 'draining', service: 'mcp-front' });

      const fresh = await post(`${base}/fixture/mcp`, INIT);
      expect(fresh.status).toBe(503);
      expect(fresh.headers.get('retry-after')).toBe('1');
      expect(await fresh.json()).toEqual({ jsonrpc: '2.0', id: null, error: { code: -32000, message: expect.stringContaining('draining') } });
      const freshSse = await fetch(`${base}/fixture/sse`, { headers: headers({ Accept: 'text/event-stream' }) });
      expect(freshSse.status).toBe(503);
      await freshSse.text();

      const echoed = await post(`${base}/fixture/mcp`, call(3, 'echo', { message: 'still served' }), { 'Mcp-Session-Id': live });
      expect(echoed.status).toBe(200);
      expect(await echoed.text()).toContain('still served');
      expect(cli.child.exitCode).toBeNull();

      upstream.release();
      const answered = await inFlight;
      expect(answered.status).toBe(200);
      expect(await answered.text()).toContain('released');
      expect(await cli.exit('mcp-front to exit after the drain')).toEqual({ code: 0, signal: null });
      expect(servers.filter(isAlive)).toEqual([]);
      expect(cli.lines.join('\n')).not.toMatch(/drain timeout reached/);
    } finally {
      await upstream.close();
    }
  });

  test('a stream that never ends is closed at proxy.drainTimeout, then exit 0 with no child left', async () => {
    const cli = start(['--config', writeConfig(fixtureConfig({ drainTimeout: '1s' }))]);
    const base = await cli.base();
    const stream = await openEventStream(`${base}/fixture/sse`, { headers: headers({ Accept: 'text/event-stream' }) });
    await stream.nextMatching((e) => e.event === 'endpoint');
    const { servers } = childrenOf(cli.child.pid!);
    expect(servers.length).toBeGreaterThan(0);

    cli.child.kill('SIGTERM');
    await stream.ended;
    expect(await cli.exit('mcp-front to exit after the drain timeout')).toEqual({ code: 0, signal: null });
    expect(servers.filter(isAlive)).toEqual([]);
    expect(cli.lines.join('\n')).toMatch(/ INFO drain timeout reached; closing what is left in_flight=1/);
  });
});
