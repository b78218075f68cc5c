// Aggregates (README: Aggregates) through the official Python MCP SDK (the `mcp` package), on its
// Streamable HTTP and legacy SSE clients: the reference server over stdio and over Streamable HTTP
// as two members of one endpoint. Python clients type resource URIs as pydantic `AnyUrl`, so a
// prefixed URI (`<prefix>+<uri>`) must parse as one and survive the round trip back.
// `npm run test:python` (needs python3 and a package index that serves `mcp`: PyPI, or the one
// pip is configured with). The SDK is installed once into a virtual environment under
// node_modules/.cache (MCP_FRONT_PYTHON_VENV overrides the path) and reused by later runs.
import { execFile, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { captureLogger, configWith, DEV_TOKEN, EVERYTHING, startEverything, startFront, type Front, type Upstream } from './helpers/servers';

const run = promisify(execFile);
const ROOT = path.join(__dirname, '..');
const SCRIPT = path.join(__dirname, 'fixtures', 'aggregate_client.py');
const PYTHON = process.env.PYTHON ?? 'python3';
/** The SDK line the script is written against (2.x: `streamable_http_client`, URIs as `str`). */
const REQUIREMENT = 'mcp>=2.3,<3';
/** Hang detectors for a busy machine, not targets: a cold install downloads the SDK. */
const INSTALL_MS = 600_000;
const CLIENT_MS = 120_000;
/** Why the test may stand aside (no python3), and nothing else: any other failure fails it. */
const SKIP_REASONS = /^python3 is not installed/;

type Sdk = { python: string; version: string } | { skipped: string };

/** A file name for this Python and requirement: a new Python or a new requirement gets a new environment. */
function venvDir(): string {
  if (process.env.MCP_FRONT_PYTHON_VENV) return path.resolve(process.env.MCP_FRONT_PYTHON_VENV);
  const which = spawnSync(PYTHON, ['-c', 'import sys; print(sys.executable, sys.version)'], { encoding: 'utf8' });
  const key = crypto.createHash('sha256').update(`${which.stdout}\n${REQUIREMENT}`).digest('hex').slice(0, 12);
  return path.join(ROOT, 'node_modules', '.cache', 'mcp-front-python', key);
}

/**
 * The Python SDK in a virtual environment: reused when a finished one is there, else built in a
 * directory of its own and renamed into place (two runs at once do not share a half-built one).
 */
async function pythonSdk(): Promise<Sdk> {
  const probe = spawnSync(PYTHON, ['--version'], { encoding: 'utf8' });
  if (probe.error !== undefined) return { skipped: `python3 is not installed (${PYTHON}: ${(probe.error as NodeJS.ErrnoException).code})` };
  const dir = venvDir();
  const python = path.join(dir, 'bin', 'python');
  const marker = path.join(dir, 'installed.txt');
  if (!fs.existsSync(marker)) {
    const building = `${dir}.${process.pid}`;
    fs.rmSync(building, { recursive: true, force: true });
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    const t0 = Date.now();
    await run(PYTHON, ['-m', 'venv', building], { timeout: INSTALL_MS });
    const venvMs = Date.now() - t0;
    // --retries 1: where PyPI cannot be resolved, pip's default five retries with back-off take
    // minutes per package before it turns to the other indexes it is configured with.
    const pip = spawnSync(path.join(building, 'bin', 'python'), ['-m', 'pip', 'install', '--disable-pip-version-check', '--no-input', '--retries', '1', REQUIREMENT], {
      encoding: 'utf8',
      timeout: INSTALL_MS,
    });
    if (pip.status !== 0) {
      fs.rmSync(building, { recursive: true, force: true });
      const output = `${pip.stdout}\n${pip.stderr}`;
      // Only a missing python3 excuses this suite: an index without `mcp` is a broken CI image.
      throw new Error(`pip install ${REQUIREMENT} failed (${pip.status ?? pip.signal}):\n${output}`);
    }
    fs.writeFileSync(path.join(building, 'installed.txt'), `${REQUIREMENT}\n`);
    console.info(`Python SDK installed in ${dir}: venv ${venvMs} ms, pip ${Date.now() - t0 - venvMs} ms`);
    try {
      fs.renameSync(building, dir);
    } catch {
      // Another run finished first: use its environment, drop this one.
      fs.rmSync(building, { recursive: true, force: true });
    }
  }
  const { stdout } = await run(python, ['-c', 'from importlib.metadata import version; print(version("mcp"))']);
  return { python, version: stdout.trim() };
}

interface ClientReport {
  server: string;
  protocolVersion: string;
  tools: string[];
  resources: string[];
  templates: string[];
  anyUrl: Record<string, { ok: boolean; scheme?: string; text?: string; error?: string }>;
  reads: Record<string, { sent: string; uri: string; text: boolean }>;
  templateReads: Record<string, { sent: string; uri: string }>;
  calls: Record<string, { isError: boolean; text: string }>;
  unknownTool: string | null;
  sdk: string;
}

const PREFIXES = ['loc', 'rem'];

let sdk: Sdk;
let remote: Upstream;
let front: Front;

beforeAll(async () => {
  sdk = await pythonSdk();
  if ('skipped' in sdk) return;
  remote = await startEverything('streamableHttp');
  front = await startFront(
    {
      ...configWith({
        local: { command: process.execPath, args: [EVERYTHING, 'stdio'] },
        remote: { url: `${remote.origin}/mcp` },
      }),
      aggregates: { all: { servers: { local: { prefix: 'loc' }, remote: { prefix: 'rem' } } } },
    },
    { logger: captureLogger() },
  );
}, INSTALL_MS + 60_000);

afterAll(async () => {
  await front?.close();
  await remote?.close();
});

test('the Python SDK is there, or the reason it is not is one this suite accepts', () => {
  if ('skipped' in sdk) {
    console.warn(`Python SDK tests skipped: ${sdk.skipped}`);
    expect(sdk.skipped).toMatch(SKIP_REASONS);
    return;
  }
  expect(sdk.version).toMatch(/^2\./);
});

describe.each(['streamable', 'sse'] as const)('the Python SDK over %s', (transport) => {
  let report: ClientReport;

  beforeAll(async () => {
    if ('skipped' in sdk) return;
    const endpoint = `${front.url}/all/${transport === 'sse' ? 'sse' : 'mcp'}`;
    const { stdout } = await run(sdk.python, [SCRIPT, endpoint, transport, ...PREFIXES], {
      env: { PATH: process.env.PATH ?? '', MCP_FRONT_TOKEN: DEV_TOKEN },
      timeout: CLIENT_MS,
    });
    report = JSON.parse(stdout) as ClientReport;
  }, CLIENT_MS + 10_000);

  /** Runs `check` when the SDK is there; otherwise asserts why not (the first test logged it). */
  const withSdk = (check: () => void) => () => {
    if ('skipped' in sdk) return expect(sdk.skipped).toMatch(SKIP_REASONS);
    check();
  };

  test(
    'initialize answers as mcp-front/<aggregate>',
    withSdk(() => {
      expect(report.server).toBe('mcp-front/all');
    }),
  );

  test(
    'tools of both members, each under its prefix',
    withSdk(() => {
      expect(report.tools).toEqual(expect.arrayContaining(['loc__echo', 'rem__echo']));
      expect(report.tools.filter((n) => !/^(loc|rem)__/.test(n))).toEqual([]);
    }),
  );

  test(
    'every prefixed resource URI is a pydantic AnyUrl, unchanged, its scheme `<prefix>+<scheme>`',
    withSdk(() => {
      expect(report.resources.length).toBeGreaterThan(0);
      for (const prefix of PREFIXES) expect(report.resources.some((u) => u.startsWith(`${prefix}+`))).toBe(true);
      for (const uri of report.resources) {
        const scheme = uri.slice(0, uri.indexOf(':'));
        expect({ uri, parsed: report.anyUrl[uri] }).toEqual({ uri, parsed: { ok: true, scheme, text: uri } });
        expect(scheme).toMatch(/^(loc|rem)\+[a-z][a-z0-9+.-]*$/);
      }
    }),
  );

  test(
    'resource templates under the prefixes',
    withSdk(() => {
      expect(report.templates.length).toBeGreaterThan(0);
      expect(report.templates.filter((t) => !/^(loc|rem)\+[a-z][a-z0-9+.-]*:/.test(t))).toEqual([]);
    }),
  );

  test(
    'a listed resource and a template’s resource read back under the URI the client sent',
    withSdk(() => {
      for (const prefix of PREFIXES) {
        expect(report.reads[prefix].sent.startsWith(`${prefix}+`)).toBe(true);
        expect(report.reads[prefix]).toEqual({ sent: report.reads[prefix].sent, uri: report.reads[prefix].sent, text: true });
        expect(report.templateReads[prefix].sent.startsWith(`${prefix}+`)).toBe(true);
        expect(report.templateReads[prefix].uri).toBe(report.templateReads[prefix].sent);
      }
    }),
  );

  test(
    'a prefixed tool reaches its member; a name no prefix owns is an unknown tool',
    withSdk(() => {
      expect(report.calls).toEqual({
        loc: { isError: false, text: 'Echo: hello loc' },
        rem: { isError: false, text: 'Echo: hello rem' },
      });
      expect(report.unknownTool).toMatch(/Unknown tool: nope__echo/);
    }),
  );
});
