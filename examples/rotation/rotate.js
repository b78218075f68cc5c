'use strict';
// Token rotation without downtime, against the standalone command:
//   1. add the new token next to the old one (the proxy reloads its config file)
//   2. check that both work
//   3. move the clients to the new token
//   4. remove the old token (reload): it is refused with 401 at once
//
// It starts `mcp-front --config <file>` on a temporary config (port 0), fronting the reference
// server over stdio, and edits that file the way config tools do: a new file renamed over the old
// one. `--sighup` also sends SIGHUP after each edit, as you would where files are not watched.
// Exit code 0 when every check gave what was expected. Token values are never printed.
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');

const CLI = path.join(__dirname, '..', '..', 'dist', 'cli.js');
const EVERYTHING = path.join(
  path.dirname(require.resolve('@modelcontextprotocol/server-everything/package.json')),
  'dist',
  'index.js',
);
// Generous: a busy machine (a CI runner, a laptop doing other work) is slow, not broken.
const WAIT_MS = 120_000;
const useSighup = process.argv.includes('--sighup');

const OLD = 'ci-2024';
const NEW = 'ci-2025';

function generateToken() {
  return execFileSync(process.execPath, [CLI, 'generate-token'], { encoding: 'utf8' }).trim();
}

function writeConfig(file, tokens) {
  const config = {
    version: '1.0',
    proxy: {
      name: 'Rotation Demo',
      addr: '127.0.0.1:0',
      auth: { kind: 'bearer_token', tokens },
    },
    mcpServers: {
      everything: { command: process.execPath, args: [EVERYTHING, 'stdio'] },
    },
  };
  // Write then rename: readers (and the proxy's watcher) never see a half-written file.
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
  fs.renameSync(tmp, file);
}

/** The proxy's log lines, and a way to wait for the next one that matches. */
function watchLog(stream) {
  const lines = [];
  const waiters = [];
  readline.createInterface({ input: stream }).on('line', (line) => {
    lines.push(line);
    for (const w of [...waiters]) {
      if (w.re.test(line)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  return {
    lines,
    next(re, what) {
      return new Promise((resolve, reject) => {
        const waiter = { re, resolve };
        waiters.push(waiter);
        setTimeout(() => {
          if (!waiters.includes(waiter)) return;
          waiters.splice(waiters.indexOf(waiter), 1);
          reject(new Error(`timed out after ${WAIT_MS} ms waiting for the proxy to log ${what}`));
        }, WAIT_MS).unref();
      });
    },
  };
}

/** Opens an MCP session with `token` and ends it; returns the HTTP status of the initialize. */
async function tryToken(base, token) {
  const res = await fetch(`${base}/everything/mcp`, {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${token}`,
      'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream',
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'rotate.js', version: '1.0.0' } },
    }),
  });
  await res.text();
  const session = res.headers.get('mcp-session-id');
  if (session) {
    // Ends the session now, so the stdio server behind it stops instead of idling.
    await fetch(`${base}/everything/mcp`, {
      method: 'DELETE',
      headers: { Authorization: `Bearer ${token}`, 'Mcp-Session-Id': session },
    }).then((r) => r.text());
  }
  return res.status;
}

let failures = 0;
async function expectStatus(base, name, token, expected) {
  const status = await tryToken(base, token);
  const ok = status === expected;
  if (!ok) failures++;
  console.log(`      ${name.padEnd(8)} -> ${status} ${ok ? (status === 401 ? '(refused, as expected)' : 'ok') : `UNEXPECTED, wanted ${expected}`}`);
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-front-rotation-'));
  const file = path.join(dir, 'config.json');
  const oldToken = generateToken();
  const newToken = generateToken();
  writeConfig(file, { [OLD]: oldToken });

  const proxy = spawn(process.execPath, [CLI, '--config', file], { stdio: ['ignore', 'inherit', 'pipe'] });
  const log = watchLog(proxy.stderr);
  const exited = new Promise((resolve) => proxy.once('exit', (code, signal) => resolve({ code, signal })));
  const cleanup = () => {
    if (proxy.exitCode === null && proxy.signalCode === null) proxy.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  };

  // Edits the config and waits for the proxy's verdict on it.
  async function edit(tokens) {
    const verdict = log.next(/ (config reloaded|reload refused)\b/, '"config reloaded"');
    writeConfig(file, tokens);
    if (useSighup) proxy.kill('SIGHUP');
    const line = await verdict;
    if (/reload refused/.test(line)) throw new Error(`the proxy refused the new config: ${line}`);
    console.log(`      proxy: ${line.replace(/^\S+ /, '')}`);
  }

  try {
    const listening = await Promise.race([
      log.next(/ listening .*port=(\d+)/, '"listening"'),
      exited.then(({ code }) => {
        throw new Error(`the proxy exited (${code}) before listening`);
      }),
    ]);
    const base = `http://127.0.0.1:${/port=(\d+)/.exec(listening)[1]}`;
    console.log(`mcp-front is running on ${base} (config: ${file}, reload by ${useSighup ? 'SIGHUP' : 'file change'})`);
    console.log(`   0. clients use "${OLD}"`);
    await expectStatus(base, OLD, oldToken, 200);
    await expectStatus(base, NEW, newToken, 401);

    console.log(`   1. add "${NEW}" next to "${OLD}"`);
    await edit({ [OLD]: oldToken, [NEW]: newToken });

    console.log('   2. both tokens work');
    await expectStatus(base, OLD, oldToken, 200);
    await expectStatus(base, NEW, newToken, 200);

    console.log(`   3. move every client to "${NEW}" (deploy the new value; watch \`grep "auth successful token=${OLD}"\` go quiet)`);
    await expectStatus(base, NEW, newToken, 200);

    console.log(`   4. remove "${OLD}"`);
    await edit({ [NEW]: newToken });
    await expectStatus(base, OLD, oldToken, 401);
    await expectStatus(base, NEW, newToken, 200);

    proxy.kill('SIGTERM');
    const { code, signal } = await exited;
    if (code !== 0) throw new Error(`the proxy exited with ${code ?? signal} on SIGTERM`);
  } catch (err) {
    process.stderr.write(`rotation failed: ${err.message}\nproxy log:\n${log.lines.map((l) => `  ${l}`).join('\n')}\n`);
    cleanup();
    process.exit(1);
  }
  cleanup();
  if (failures > 0) {
    process.stderr.write(`rotation failed: ${failures} check(s) gave an unexpected status\nproxy log:\n${log.lines.map((l) => `  ${l}`).join('\n')}\n`);
    process.exit(1);
  }
  console.log('rotation complete: the old token is refused, the new one works, and nothing was restarted');
}

main();
