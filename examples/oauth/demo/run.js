'use strict';
// The whole OAuth 2.1 flow of the MCP specification (Authorization) on one machine, printed step
// by step: a real authorization server (oidc-provider, the test suite's fixture), mcp-front as the
// resource server in front of server-everything (stdio), and the official MCP SDK client doing
// what Claude.ai, VS Code or mcp-remote do — 401, Protected Resource Metadata (RFC 9728),
// authorization server discovery (RFC 8414), dynamic registration (RFC 7591), authorization with
// PKCE and `resource` (RFC 8707), token — then tools/list and tools/call. Exits 0 when every step
// worked, after stopping everything it started. No token value is ever printed.
//
//   npm run build && node examples/oauth/demo/run.js
const { fork } = require('node:child_process');
const crypto = require('node:crypto');
const { once } = require('node:events');
const http = require('node:http');
const path = require('node:path');
const express = require('express');
const { Client } = require('@modelcontextprotocol/sdk/client/index.js');
const { StreamableHTTPClientTransport } = require('@modelcontextprotocol/sdk/client/streamableHttp.js');
const { UnauthorizedError } = require('@modelcontextprotocol/sdk/client/auth.js');
const { mcpFront } = require('../../..');

const ROOT = path.join(__dirname, '..', '..', '..');
// The authorization server of the test suite: oidc-provider 9 (a devDependency) with open
// registration, PKCE, resource indicators issuing JWT access tokens, and a headless login.
const AUTHORIZATION_SERVER = path.join(ROOT, '__tests__', 'fixtures', 'oidc-provider.mjs');
// server-everything's bin is an ES module; its package.json is requirable and sits next to dist/.
const EVERYTHING = path.join(path.dirname(require.resolve('@modelcontextprotocol/server-everything/package.json')), 'dist', 'index.js');
const HOST = '127.0.0.1';
/** Where mcp-front is mounted in the host app: `publicUrl` includes it. */
const MOUNT = '/gw';
/** The account the headless login logs in, and the claims its tokens carry. */
const ACCOUNT = { id: 'alice', claims: { email: 'alice@acme.com', email_verified: true } };
/**
 * Where the client asks for the authorization code. A desktop client listens there (RFC 8252
 * §7.3); here the login is followed headless and stops at this redirect, so nothing listens.
 */
const REDIRECT_URI = 'http://127.0.0.1:1/callback';
/** Every wait of the demo ends within this (a hang detector: a busy machine is slow). */
const PATIENCE_MS = 60_000;

let stepNumber = 0;
function step(what, outcome) {
  stepNumber++;
  console.log(`${String(stepNumber).padStart(2)}. ${what}`);
  if (outcome) console.log(`    ${outcome}`);
}

/** A JWT's claims, to show what the token says (never the token itself). */
function claimsOf(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
}

// --- the authorization server ------------------------------------------------------------------

/** Starts oidc-provider on a loopback port; resolves { issuer, pid, stop() }. */
async function startAuthorizationServer() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: `demo-${crypto.randomBytes(4).toString('hex')}`, alg: 'RS256', use: 'sig' };
  // Its stderr is kept for a failure only: on Node 20 oidc-provider warns that it prefers Node 22.
  const child = fork(AUTHORIZATION_SERVER, [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], execArgv: [] });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const exited = once(child, 'exit');
  child.send({
    port: 0,
    issuerPath: '',
    jwk,
    accessTokenTtl: 3600,
    discovery: 'all',
    clients: [],
    accountId: ACCOUNT.id,
    accountClaims: ACCOUNT.claims,
  });
  const answer = await Promise.race([
    once(child, 'message').then(([message]) => message),
    exited.then(([code]) => Promise.reject(new Error(`the authorization server exited (${code}):\n${stderr}`))),
    timeout('the authorization server did not start'),
  ]);
  return {
    issuer: answer.issuer,
    pid: child.pid,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * What a browser does with the authorization URL: follows the authorization server's redirects
 * (its cookies kept) through the login and the consent, which the demo server grants without a
 * page, until it redirects to the client's `redirect_uri`. Returns the authorization code.
 */
async function headlessLogin(authorizationUrl) {
  const cookies = new Map();
  let url = new URL(authorizationUrl);
  const authorizationServer = url.origin;
  for (let hop = 0; hop < 20; hop++) {
    const res = await fetch(url, { redirect: 'manual', headers: { cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; ') } });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair.indexOf('=');
      cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
    await res.arrayBuffer();
    const location = res.headers.get('location');
    if (location === null) throw new Error(`the login stopped at ${url.pathname} with ${res.status}`);
    url = new URL(location, url);
    if (url.origin !== authorizationServer) break;
  }
  const code = url.searchParams.get('code');
  if (url.origin + url.pathname !== REDIRECT_URI || code === null) throw new Error(`no authorization code: ${url.search}`);
  return code;
}

// --- the MCP client's side ---------------------------------------------------------------------

/**
 * The client's OAuth state, in memory (a real client keeps it on disk or in its backend): its
 * registration, the PKCE verifier of the authorization in progress, and its tokens.
 */
class DemoOAuthProvider {
  constructor() {
    this.client = undefined;
    this.verifier = undefined;
    this.saved = undefined;
    /** The code the login ended with, for `finishAuth`. */
    this.code = undefined;
  }
  get redirectUrl() {
    return REDIRECT_URI;
  }
  get clientMetadata() {
    return {
      client_name: 'mcp-front OAuth demo',
      redirect_uris: [REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      // A public client (a desktop app holds no secret): PKCE protects the code (OAuth 2.1 §7.5).
      token_endpoint_auth_method: 'none',
    };
  }
  clientInformation() {
    return this.client;
  }
  saveClientInformation(information) {
    this.client = information;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens) {
    this.saved = tokens;
  }
  saveCodeVerifier(verifier) {
    this.verifier = verifier;
  }
  codeVerifier() {
    return this.verifier;
  }
  async redirectToAuthorization(authorizationUrl) {
    const p = authorizationUrl.searchParams;
    step(
      `authorize: GET ${authorizationUrl.origin}${authorizationUrl.pathname} (the user's browser)`,
      `client_id=${p.get('client_id')}, code_challenge_method=${p.get('code_challenge_method')}, scope=${p.get('scope')}, resource=${p.get('resource')}`,
    );
    this.code = await headlessLogin(authorizationUrl);
    console.log(`    login as ${ACCOUNT.id} (headless), consent → redirect to ${REDIRECT_URI} with an authorization code`);
  }
}

/**
 * The client's `fetch`, printing each exchange the SDK makes (MCP requests and OAuth requests
 * alike) with what it shows of the flow.
 */
function tracingFetch(mcpUrl) {
  return async (input, init = {}) => {
    const url = new URL(input instanceof Request ? input.url : input);
    const method = init.method ?? 'GET';
    const res = await fetch(input, init);
    const headers = new Headers(init.headers);
    const where = `${method} ${url.origin}${url.pathname}`;
    if (url.href === mcpUrl) {
      const rpc = typeof init.body === 'string' ? JSON.parse(init.body).method : 'open the event stream';
      const bearer = headers.has('authorization') ? 'Bearer access token' : 'no token';
      const challenge = res.headers.get('www-authenticate');
      step(`${where} (${rpc}, ${bearer}) → ${res.status}`, challenge ? `WWW-Authenticate: ${challenge}` : undefined);
    } else if (url.pathname.includes('/.well-known/oauth-protected-resource')) {
      const body = res.ok ? await res.clone().json() : {};
      step(`${where} → ${res.status} (Protected Resource Metadata, RFC 9728)`, res.ok ? `resource=${body.resource}, authorization_servers=${body.authorization_servers}, scopes_supported=${body.scopes_supported}` : undefined);
    } else if (url.pathname.includes('/.well-known/')) {
      const body = res.ok ? await res.clone().json() : {};
      step(
        `${where} → ${res.status} (authorization server metadata)`,
        res.ok ? `issuer=${body.issuer}, registration_endpoint=${body.registration_endpoint}, code_challenge_methods_supported=${body.code_challenge_methods_supported}` : undefined,
      );
    } else if (method === 'POST' && res.status === 201) {
      const body = await res.clone().json();
      step(`${where} → ${res.status} (dynamic client registration, RFC 7591)`, `client_id=${body.client_id}, a public client (token_endpoint_auth_method=${body.token_endpoint_auth_method})`);
    } else if (method === 'POST' && init.body instanceof URLSearchParams && init.body.get('grant_type') === 'authorization_code') {
      const body = res.ok ? await res.clone().json() : {};
      const claims = res.ok ? claimsOf(body.access_token) : {};
      step(
        `${where} → ${res.status} (token: grant_type=authorization_code, code_verifier, resource=${init.body.get('resource')})`,
        res.ok ? `a JWT access token (not shown): aud=${claims.aud}, scope=${claims.scope}, sub=${claims.sub}, email=${claims.email}, expires in ${body.expires_in} s` : undefined,
      );
    } else {
      step(`${where} → ${res.status}`);
    }
    return res;
  };
}

// --- mcp-front ---------------------------------------------------------------------------------

/** mcp-front's log lines on stderr, and the pid of every stdio server it starts (to check they stop). */
function demoLogger(pids) {
  const line = (level) => (message, fields = {}) => {
    if (message === 'session started' && typeof fields.pid === 'number') pids.add(fields.pid);
    const rest = Object.entries(fields)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    process.stderr.write(`[mcp-front] ${level} ${message}${rest ? ` ${rest}` : ''}\n`);
  };
  return { info: line('INFO'), warn: line('WARN'), error: line('ERROR'), debug: () => undefined };
}

async function startMcpFront(issuer, pids) {
  const app = express();
  const server = http.createServer(app);
  await new Promise((resolve) => server.listen(0, HOST, resolve));
  // The URL clients use, mount path included: resource URLs and the metadata derive from it.
  const publicUrl = `http://${HOST}:${server.address().port}${MOUNT}`;
  const config = {
    version: '1.0',
    proxy: {
      name: 'mcp-front OAuth demo',
      publicUrl,
      auth: {
        kind: 'bearer_token',
        oauth: {
          issuer,
          scopes: ['mcp:tools'],
          principals: { staff: { claims: { email: '*@acme.com', email_verified: true } } },
        },
      },
    },
    mcpServers: {
      // process.execPath rather than "node": the same Node that runs the demo, whatever PATH says.
      everything: { command: process.execPath, args: [EVERYTHING, 'stdio'] },
    },
  };
  const router = mcpFront(config, { logger: demoLogger(pids) });
  // The metadata at the host's root too, where RFC 9728 §3.1 puts it (README: OAuth 2.1).
  app.use(router.wellKnown);
  app.use(MOUNT, router);
  return {
    url: `${publicUrl}/everything/mcp`,
    async stop() {
      await router.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

// --- the run -----------------------------------------------------------------------------------

function timeout(what) {
  return new Promise((_, reject) => setTimeout(() => reject(new Error(`${what} within ${PATIENCE_MS} ms`)), PATIENCE_MS).unref());
}

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function flow(mcpUrl) {
  const provider = new DemoOAuthProvider();
  const fetchFn = tracingFetch(mcpUrl);
  const clientInfo = { name: 'mcp-front-oauth-demo', version: '1.0.0' };
  const first = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider, fetch: fetchFn });
  try {
    // No token yet: the 401 starts the authorization; the SDK stops at the redirect to the login.
    await new Client(clientInfo).connect(first);
    throw new Error('connected without authorization');
  } catch (err) {
    if (!(err instanceof UnauthorizedError)) throw err;
  }
  // The user's browser came back to the client with the code: the client redeems it.
  await first.finishAuth(provider.code);

  const client = new Client(clientInfo);
  await client.connect(new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider, fetch: fetchFn }));
  try {
    const { tools } = await client.listTools();
    console.log(`    tools/list: ${tools.length} tools (${tools.map((t) => t.name).slice(0, 4).join(', ')}, …)`);
    const result = await client.callTool({ name: 'echo', arguments: { message: 'hello through OAuth' } });
    console.log(`    tools/call echo: ${JSON.stringify(result.content[0].text)}`);
    if (!tools.some((t) => t.name === 'echo') || result.content[0].text !== 'Echo: hello through OAuth') throw new Error('unexpected answer');
  } finally {
    await client.close();
  }
}

async function main() {
  const started = [];
  const stdioPids = new Set();
  let asPid;
  try {
    const authorizationServer = await startAuthorizationServer();
    started.push(authorizationServer);
    asPid = authorizationServer.pid;
    const front = await startMcpFront(authorizationServer.issuer, stdioPids);
    started.push(front);
    console.log('mcp-front OAuth 2.1 demo');
    console.log(`  authorization server  ${authorizationServer.issuer} (oidc-provider, pid ${asPid})`);
    console.log(`  mcp-front             ${front.url} (server-everything over stdio)`);
    console.log('');
    await Promise.race([flow(front.url), timeout('the flow did not finish')]);
  } finally {
    // mcp-front first (it stops its stdio server), then the authorization server.
    for (const s of started.reverse()) await s.stop();
  }
  const left = [asPid, ...stdioPids].filter(isAlive);
  if (left.length > 0) throw new Error(`still running: ${left.join(', ')}`);
  console.log('');
  console.log(`stopped: mcp-front, server-everything (pid ${[...stdioPids].join(', ')}), the authorization server (pid ${asPid})`);
}

main().catch((err) => {
  process.stderr.write(`${err.stack}\n`);
  process.exitCode = 1;
});
