// Stdio servers must not outlive the proxy, however it dies. Its exit and signal hooks
// (child-process.ts) cover every death Node can see; `kill -9`, the OOM killer or a crash of the
// runtime leave no chance to run code, and a server that ignores the end of its stdin (the polite
// stop of the MCP stdio transport) would then run forever, with everything it spawned.
//
// The guard is one small process per proxy process, started with the first child: it holds the
// read end of a pipe from the proxy, learns the process group of every child (each child leads
// its own group), and when the pipe reaches end-of-file — the kernel closes the proxy's end when
// the proxy ends, however it ends — sends SIGKILL to those groups and exits.
//
// Why not `prctl(PR_SET_PDEATHSIG)` (through util-linux `setpriv --pdeathsig KILL` as an exec
// wrapper; Node has no binding and a native addon is not an option): it reaches only the direct
// child, not what that child spawned (`npx` → `node`, `uv` → `python`), it depends on a tool that
// slim images lack, and a wrapper turns a missing command from a spawn error (ENOENT, reported at
// once) into an exit code of the wrapper.
//
// Cost, measured on Linux with Node 20: one process per proxy, started with the first child (that
// spawn takes 4-8 ms longer; the watchdog's own start-up runs beside it), holding about 6 MB of
// private memory (RSS 40 MB, proportional share 14 MB: the rest is the Node binary, shared with the
// proxy); per child, a write of a few bytes on the pipe (no measurable change in spawn latency).
// Linux only (where it is tested); elsewhere the exit and signal hooks remain the only guard.
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { debug } from '../logger';

const log = debug.extend('watchdog');

/**
 * The watchdog, run with `node -e`: no file to locate next to the compiled library, and nothing of
 * the proxy in it — it gets an empty environment (the proxy's holds token values) and no arguments
 * but process group ids. Its own group and session (`detached`) keep it out of reach of a signal
 * sent to the proxy's process group; it ignores the termination signals that could still reach
 * it by name, since it exits on its own once the proxy is gone.
 */
const WATCHDOG_SOURCE = `'use strict';
process.title = 'mcp-front-watchdog';
for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(s, () => {});
const groups = new Set();
let partial = '';
process.stdin.setEncoding('ascii');
process.stdin.on('data', (chunk) => {
  const lines = (partial + chunk).split('\\n');
  partial = lines.pop();
  if (partial.length > 32) partial = '';
  for (const line of lines) {
    const pgid = Number(line.slice(1));
    if (!Number.isSafeInteger(pgid) || pgid <= 1) continue;
    if (line[0] === '+') groups.add(pgid);
    else if (line[0] === '-') groups.delete(pgid);
  }
});
const proxyGone = () => {
  for (const pgid of groups) {
    try { process.kill(-pgid, 'SIGKILL'); } catch {}
  }
  process.exit(0);
};
process.stdin.on('end', proxyGone);
process.stdin.on('error', proxyGone);
`;

/** Node's own executable runs `-e`; Electron and single-executable applications would start themselves. */
function supported(): boolean {
  if (process.platform !== 'linux' || process.versions.electron !== undefined) return false;
  try {
    return !(require('node:sea') as { isSea(): boolean }).isSea();
  } catch {
    return true; // a Node without `node:sea` cannot be a single-executable application
  }
}

let enabled: boolean | undefined;
let watchdog: ChildProcess | undefined;
/** Process groups to kill if the proxy dies: what a restarted watchdog must learn again. */
const groups = new Set<number>();

function start(): ChildProcess {
  const child = spawn(process.execPath, ['--max-old-space-size=16', '--v8-pool-size=0', '-e', WATCHDOG_SOURCE], {
    stdio: ['pipe', 'ignore', 'ignore'],
    env: {},
    detached: true,
    shell: false,
    windowsHide: true,
  });
  // It must not keep the proxy alive: the proxy's exit is the very thing it waits for.
  child.unref();
  (child.stdin as Socket).unref();
  child.stdin!.on('error', () => undefined);
  child.once('error', (err) => {
    log('cannot start the watchdog (%s): children may outlive a killed proxy', err.message);
    enabled = false;
    if (watchdog === child) watchdog = undefined;
  });
  child.once('exit', (code, signal) => {
    log('watchdog pid %d exited (%s)', child.pid, signal ?? code);
    if (watchdog !== child) return;
    watchdog = undefined;
    // Killed by someone while children run: replace it at once, it learns every group still alive.
    // One that exits by itself (a runtime that cannot run it) is not restarted in a loop: the next
    // child tries again.
    if (signal !== null && groups.size > 0 && enabled) watchdog = start();
  });
  log('watchdog pid %d started', child.pid);
  for (const pgid of groups) child.stdin!.write(`+${pgid}\n`);
  return child;
}

/** Kill process group `pgid` if this process dies before `unwatchGroup(pgid)`. */
export function watchGroup(pgid: number): void {
  enabled ??= supported();
  if (!enabled) return;
  groups.add(pgid);
  if (watchdog?.stdin?.writable) watchdog.stdin.write(`+${pgid}\n`);
  else watchdog = start();
}

/** The group is gone: its id may be reused by an unrelated process, which must not be killed. */
export function unwatchGroup(pgid: number): void {
  if (!groups.delete(pgid)) return;
  if (watchdog?.stdin?.writable) watchdog.stdin.write(`-${pgid}\n`);
}
