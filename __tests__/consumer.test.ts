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

  describe('OAuth from the installed tarball, outside jest', () => {
    // A resolve hook (node --import) records every resolution of `jose`, which is ESM-only: the
    // CommonJS build can only reach it through `import()`, which goes through these hooks.
    const hooks = () => {
      fs.writeFileSync(
        path.join(dir, 'jose-hooks.mjs'),
        `import { appendFileSync } from 'node:fs';
         export async function resolve(specifier, context, next) {
           const resolved = await next(specifier, context);
           if (specifier === 'jose' || resolved.url.includes('/node_modules/jose/')) appendFileSync(process.env.JOSE_LOG, resolved.url + '\\n');
           return resolved;
         }`,
      );
      fs.writeFileSync(path.join(dir, 'jose-register.mjs'), `import { register } from 'node:module';\nregister('./jose-hooks.mjs', import.meta.url);\n`);
    };
    const runHooked = (file: string, source: string) => {
      hooks();
      fs.writeFileSync(path.join(dir, file), source);
      const log = path.join(dir, `${file}.jose.log`);
      fs.rmSync(log, { force: true });
      const out = execFileSync(process.execPath, ['--import', './jose-register.mjs', file], { cwd: dir, encoding: 'utf8', env: { PATH: process.env.PATH, JOSE_LOG: log } });
      return { out, jose: fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').filter(Boolean) : [] };
    };
    const quiet = '{ logger: { info() {}, warn() {}, error() {}, debug() {} } }';

    it('verifies an access token end to end: jose is a dependency of the package, loaded with import() from the CommonJS build', () => {
      const { out, jose } = runHooked(
        'oauth.js',
        `const crypto = require('node:crypto');
         const http = require('node:http');
         const express = require('express');
         const { mcpFront } = require('mcp-front');
         const listen = (server) => new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve('http://127.0.0.1:' + server.address().port)));
         (async () => {
           // The authorization server, as little of it as a resource server asks for: discovery and keys.
           const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
           const jwks = JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256', use: 'sig' }] });
           let issuer;
           const as = http.createServer((req, res) => {
             const body = req.url === '/.well-known/openid-configuration' ? JSON.stringify({ issuer, jwks_uri: issuer + '/jwks' }) : req.url === '/jwks' ? jwks : undefined;
             res.writeHead(body ? 200 : 404, { 'content-type': 'application/json' }).end(body || '{}');
           });
           issuer = await listen(as);
           const app = express();
           const server = http.createServer(app);
           const base = await listen(server);
           const router = mcpFront({
             proxy: { publicUrl: base, auth: { kind: 'bearer_token', oauth: { issuer, scopes: ['mcp:tools'], principals: { staff: { claims: { email: '*@acme.com' } } } } } },
             mcpServers: { api: { url: 'http://127.0.0.1:9/mcp' } },
           }, ${quiet});
           app.use(router);
           // An RS256 access token (RFC 9068) signed here with node:crypto: the only jose is mcp-front's.
           const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
           const now = Math.floor(Date.now() / 1000);
           const input = b64({ alg: 'RS256', kid: 'k1', typ: 'at+jwt' }) + '.' + b64({ iss: issuer, sub: 'alice', aud: base + '/api/mcp', iat: now, exp: now + 600, scope: 'mcp:tools', email: 'alice@acme.com' });
           const token = input + '.' + crypto.sign('sha256', Buffer.from(input), privateKey).toString('base64url');
           const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'c', version: '1' } } });
           const post = (auth) => fetch(base + '/api/mcp', { method: 'POST', headers: { ...auth, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' }, body });
           const out = {};
           const anonymous = await post({});
           out.anonymous = anonymous.status + ' ' + anonymous.headers.get('www-authenticate');
           // Accepted: the request reaches the (refused) upstream.
           out.bearer = (await post({ Authorization: 'Bearer ' + token })).status;
           out.forged = (await post({ Authorization: 'Bearer ' + token.slice(0, -4) + 'AAAA' })).status;
           out.metadata = (await (await fetch(base + '/.well-known/oauth-protected-resource/api/mcp')).json()).authorization_servers[0] === issuer;
           await router.close();
           server.close();
           as.close();
           console.log(JSON.stringify(out));
         })();`,
      );
      const result = JSON.parse(out) as Record<string, unknown>;
      expect(result).toEqual({
        anonymous: expect.stringMatching(/^401 Bearer realm="[^"]+", resource_metadata="http:\/\/127\.0\.0\.1:\d+\/\.well-known\/oauth-protected-resource\/api\/mcp", scope="mcp:tools"$/),
        bearer: 502,
        forged: 401,
        metadata: true,
      });
      // jose came through import(), from the consumer's install of the tarball's dependencies, in
      // the version range the package declares (the MCP SDK depends on jose too: the declaration
      // is what makes it ours).
      expect(jose.length).toBeGreaterThan(0);
      const root = /^file:\/\/(.*\/node_modules\/jose)\//.exec(jose[0])?.[1];
      expect(root?.startsWith(`${fs.realpathSync(dir)}/node_modules/`)).toBe(true);
      const declared = JSON.parse(fs.readFileSync(path.join(dir, 'node_modules/mcp-front/package.json'), 'utf8')).dependencies.jose as string;
      const minimum = /^\^(\d+)\.(\d+)\.(\d+)$/.exec(declared)!.slice(1).map(Number);
      const installed = (JSON.parse(fs.readFileSync(path.join(root!, 'package.json'), 'utf8')).version as string).split('.').map(Number);
      expect(installed[0]).toBe(minimum[0]);
      expect(installed[1] * 1e6 + installed[2]).toBeGreaterThanOrEqual(minimum[1] * 1e6 + minimum[2]);
    });

    it('a router without oauth never loads jose', () => {
      const { out, jose } = runHooked(
        'no-oauth.js',
        `const express = require('express');
         const { mcpFront } = require('mcp-front');
         const router = mcpFront(${config}, ${quiet});
         const server = express().use(router).listen(0, '127.0.0.1', async () => {
           const base = 'http://127.0.0.1:' + server.address().port;
           const statuses = [];
           for (const token of ['consumer-test-token-0123456789', 'a.b.c', 'wrong']) {
             const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'c', version: '1' } } });
             statuses.push((await fetch(base + '/api/mcp', { method: 'POST', headers: { Authorization: 'Bearer ' + token, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' }, body })).status);
           }
           statuses.push((await fetch(base + '/health', { headers: { Authorization: 'Bearer a.b.c' } })).status);
           await router.close();
           server.close();
           console.log(JSON.stringify({ statuses, required: Object.keys(require.cache).some((f) => f.includes('/node_modules/jose/')) }));
         });`,
      );
      expect(JSON.parse(out)).toEqual({ statuses: [502, 401, 401, 200], required: false });
      expect(jose).toEqual([]);
    });
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
