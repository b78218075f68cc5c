// CONTRACT §1: the *packed* tarball works from a plain install with require, import and
// TypeScript — so a broken `exports` map or `files` list fails here, not for a user.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(__dirname, '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

describe('packed package', () => {
  let dir: string;
  /** Paths in the tarball, relative to the package root. */
  let packed: string[];

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-front-consumer-'));
    const out = execFileSync(npm, ['pack', '--json', '--pack-destination', dir], { cwd: root, encoding: 'utf8' });
    const [pack] = JSON.parse(out) as { filename: string; files: { path: string }[] }[];
    packed = pack.files.map((f) => f.path);
    const tarball = path.join(dir, pack.filename);
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
    // Everything it needs is in npm's cache after `npm ci`: no network round trips.
    execFileSync(npm, ['install', tarball, 'express@5', '@types/express@5', '@types/node@20', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts'], {
      cwd: dir,
      stdio: 'pipe',
    });
  }, 180_000);

  afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const run = (file: string, source: string) => {
    fs.writeFileSync(path.join(dir, file), source);
    return execFileSync(process.execPath, [file], { cwd: dir, encoding: 'utf8', env: { PATH: process.env.PATH } });
  };

  const config = JSON.stringify({
    proxy: { auth: { kind: 'bearer_token', tokens: { dev: 'consumer-test-token-0123456789' } } },
    mcpServers: { api: { url: 'http://127.0.0.1:9/mcp' } },
  });

  it('loads with require()', () => {
    const out = run(
      'cjs.js',
      `const { mcpFront, loadConfig, ConfigError } = require('mcp-front');
       const router = mcpFront(${config}, { logger: { info() {}, warn() {}, error() {}, debug() {} } });
       let caught;
       try { mcpFront({ proxy: {}, mcpServers: {} }); } catch (e) { caught = e; }
       console.log(typeof router, typeof router.reload, typeof router.close, typeof loadConfig, caught instanceof ConfigError);
       router.close().then(() => console.log('closed'));`,
    );
    expect(out).toBe('function function function function true\nclosed\n');
  });

  it('loads with import', () => {
    const out = run(
      'esm.mjs',
      `import { mcpFront, loadConfig, ConfigError } from 'mcp-front';
       const router = mcpFront(${config}, { logger: { info() {}, warn() {}, error() {}, debug() {} } });
       console.log(typeof router, typeof loadConfig, typeof ConfigError);
       await router.close();`,
    );
    expect(out).toBe('function function function\n');
  });

  it('ships type declarations that type-check in an Express app', () => {
    fs.writeFileSync(
      path.join(dir, 'consumer.ts'),
      `import express from 'express';
       import { mcpFront, type McpFrontConfig, type Logger } from 'mcp-front';
       const config: McpFrontConfig = ${config};
       const logger: Logger = console;
       const router = mcpFront(config, { logger });
       const done: Promise<void> = router.reload(config);
       express().use('/mcp', router);
       void done;`,
    );
    // Without skipLibCheck, so an import in our declarations that does not resolve fails here.
    fs.writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { strict: true, module: 'node16', moduleResolution: 'node16', noEmit: true, types: ['node'] }, files: ['consumer.ts'] }),
    );
    // Throws (with the compiler's output) when the declarations are missing or wrong.
    execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', dir], { cwd: dir, encoding: 'utf8' });
    expect(fs.existsSync(path.join(dir, 'node_modules/mcp-front/dist/index.d.ts'))).toBe(true);
  });

  it('declares the Express types its declarations import as an optional peer dependency', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'node_modules/mcp-front/package.json'), 'utf8'));
    const imported = new Set<string>();
    for (const file of packed.filter((f) => f.endsWith('.d.ts'))) {
      const text = fs.readFileSync(path.join(dir, 'node_modules/mcp-front', file), 'utf8');
      for (const m of text.matchAll(/from '([^'.][^']*)'/g)) imported.add(m[1].startsWith('@') ? m[1].split('/').slice(0, 2).join('/') : m[1].split('/')[0]);
    }
    expect(imported.has('express')).toBe(true);
    expect(pkg.peerDependencies['@types/express']).toBeDefined();
    expect(pkg.peerDependenciesMeta['@types/express']).toEqual({ optional: true });
  });

  it('ships the MIT license text', () => {
    expect(packed).toContain('LICENSE');
    const text = fs.readFileSync(path.join(dir, 'node_modules/mcp-front/LICENSE'), 'utf8');
    expect(text).toMatch(/^MIT License/);
    expect(text).toContain('Copyright (c) 2026 mcp-front contributors');
  });

  it('ships source maps whose sources resolve inside the package', () => {
    const maps = packed.filter((f) => f.endsWith('.js.map'));
    expect(maps.length).toBe(packed.filter((f) => f.endsWith('.js')).length);
    for (const file of maps) {
      const map = JSON.parse(fs.readFileSync(path.join(dir, 'node_modules/mcp-front', file), 'utf8')) as { sources: string[]; sourcesContent?: (string | null)[] };
      map.sources.forEach((source, i) => {
        const inPackage = packed.includes(path.posix.join(path.posix.dirname(file), source));
        const inlined = typeof map.sourcesContent?.[i] === 'string';
        if (!inPackage && !inlined) throw new Error(`${file}: source ${source} is neither shipped nor inlined`);
      });
    }
  });

  it('ships the command line', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'node_modules/mcp-front/package.json'), 'utf8'));
    expect(fs.existsSync(path.join(dir, 'node_modules/mcp-front', pkg.bin['mcp-front']))).toBe(true);
  });
});

describe('packed package in an Express 4 app', () => {
  let dir: string;

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-front-express4-'));
    const out = execFileSync(npm, ['pack', '--json', '--pack-destination', dir], { cwd: root, encoding: 'utf8' });
    const tarball = path.join(dir, JSON.parse(out)[0].filename);
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'consumer4', version: '1.0.0', private: true }));
    execFileSync(npm, ['install', tarball, 'express@4.21', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts'], { cwd: dir, stdio: 'pipe' });
  }, 180_000);

  afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('serves health, authentication, the proxy path and the mount path under Express 4 with express.json()', () => {
    const script = `
      const express = require('express');
      const { mcpFront } = require('mcp-front');
      const TOKEN = 'consumer-test-token-0123456789';
      const app = express();
      app.use(express.json());
      const router = mcpFront({
        proxy: { auth: { kind: 'bearer_token', tokens: { dev: TOKEN } } },
        mcpServers: { api: { url: 'http://127.0.0.1:9/mcp' } },
      }, { logger: { info() {}, warn() {}, error() {}, debug() {} } });
      app.use('/gw', router);
      const server = app.listen(0, '127.0.0.1', async () => {
        const base = 'http://127.0.0.1:' + server.address().port + '/gw';
        const auth = { Authorization: 'Bearer ' + TOKEN, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' };
        const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'c', version: '1' } } });
        const out = { express: require('express/package.json').version.split('.')[0] };
        out.health = (await fetch(base + '/health')).status;
        out.noToken = (await fetch(base + '/api/mcp', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body })).status;
        out.refused = (await fetch(base + '/api/mcp', { method: 'POST', headers: auth, body })).status;
        const ctrl = new AbortController();
        const sse = await fetch(base + '/api/sse', { headers: auth, signal: ctrl.signal });
        const reader = sse.body.getReader();
        let text = '';
        while (!text.includes('\\n\\n')) text += new TextDecoder().decode((await reader.read()).value);
        out.endpoint = /data: (.*)/.exec(text)[1].split('?')[0];
        ctrl.abort();
        await router.close();
        server.close();
        console.log(JSON.stringify(out));
      });`;
    fs.writeFileSync(path.join(dir, 'smoke.js'), script);
    const out = execFileSync(process.execPath, ['smoke.js'], { cwd: dir, encoding: 'utf8', env: { PATH: process.env.PATH } });
    expect(JSON.parse(out)).toEqual({ express: '4', health: 200, noToken: 401, refused: 502, endpoint: '/gw/api/message' });
  });
});
