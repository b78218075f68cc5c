// The operating-system side of stdio servers: spawning with a minimal environment, draining
// stderr, and stopping the whole process tree (README: Stdio servers).
import { spawn, type ChildProcess } from 'node:child_process';
import { getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import type debug from 'debug';
import { LineReader } from './line-reader';
import { debug as root } from '../logger';
import { unwatchGroup, watchGroup } from './watchdog';

/**
 * Time a child gets after stdin is closed, and again after SIGTERM, before the next step
 * (the same ladder and value as the SDK's `StdioClientTransport`).
 */
export const DEFAULT_GRACE_MS = 2000;

/**
 * How long to wait, once the child has exited, for its stdout to be read to the end: its last
 * answers are still in the pipe when 'exit' fires, but a grandchild that inherited the pipe may
 * keep it open forever.
 */
const STDIO_DRAIN_MS = 500;

/** Interval of the poll on a process group whose members are not our children (no 'exit' event). */
const GROUP_POLL_MS = 25;

/** Longest stderr line kept while waiting for its end; longer ones are logged in pieces. */
const MAX_STDERR_LINE = 64 * 1024;

const IS_WINDOWS = process.platform === 'win32';

export interface SpawnOptions {
  /** Server name, for the `mcp-front:stdio:<name>` debug namespace. */
  name: string;
  command: string;
  args: readonly string[];
  /** Configured variables only: added to the allowlist, never to the proxy's whole environment. */
  env: Record<string, string>;
  cwd?: string;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Every child that may still have a live process group, for the exit hook. */
const live = new Set<StdioChild>();
let exitHookInstalled = false;

/**
 * A single hook for the whole module, not one per child (a listener per child would trip Node's
 * MaxListeners warning at 11 sessions). It must be synchronous: 'exit' handlers cannot wait.
 */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const killAll = () => {
    for (const child of live) child.signal('SIGKILL');
  };
  process.on('exit', killAll);
  // A fatal signal with no handler ends Node without 'exit': the children, leaders of their own
  // process groups, would outlive it. When nobody else handles the signal, kill them and die of
  // the same signal as before; when the host app handles it (a graceful `router.close()`), stay
  // out of its way.
  if (IS_WINDOWS) return;
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.on(signal, function onFatalSignal() {
      if (process.listenerCount(signal) > 1) return;
      killAll();
      process.removeListener(signal, onFatalSignal);
      process.kill(process.pid, signal);
    });
  }
}

/**
 * The environment of a spawned server: the SDK's allowlist (HOME, LOGNAME, PATH, SHELL, TERM,
 * USER) plus the configured variables. The proxy's own environment holds token values (`$env`),
 * so it is never inherited (README: Security model).
 */
export function childEnvironment(configured: Record<string, string>): Record<string, string> {
  return { ...getDefaultEnvironment(), ...configured };
}

/** A spawned stdio server: its process, its stdio, and the way to stop its whole tree. */
export class StdioChild {
  readonly process: ChildProcess;
  /** Resolves once the process runs; rejects with the spawn error (ENOENT, EACCES, bad cwd). */
  readonly started: Promise<void>;
  /** Resolves when the process has exited, or at once when it never started. */
  readonly exited: Promise<ExitInfo>;
  /**
   * Resolves when the process has exited *and* its stdout was read to the end (bounded), so that
   * answers written just before exiting are still relayed.
   */
  readonly finished: Promise<ExitInfo>;
  private stopping: Promise<void> | undefined;
  private exitInfo: ExitInfo | undefined;
  private readonly log: debug.Debugger;

  constructor(options: SpawnOptions) {
    const stderrLog = root.extend('stdio').extend(options.name);
    this.log = root.extend('stdio');
    // No shell: arguments reach the program as given, nothing is interpreted. `detached` makes the
    // child lead its own process group so that a wrapper's children (npx → node) can be signalled
    // together with `kill(-pid)`; otherwise they survive their parent.
    this.process = spawn(options.command, options.args, {
      cwd: options.cwd,
      env: childEnvironment(options.env),
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
      shell: false,
      windowsHide: true,
    });
    const child = this.process;

    this.started = new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    // Nobody may await `started` (the session ended first): an unhandled rejection would kill the host.
    this.started.catch(() => undefined);

    this.exited = new Promise<ExitInfo>((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      });
      // A spawn failure emits 'error' and 'close' but never 'exit'.
      child.once('error', () => {
        if (child.pid === undefined) {
          this.exitInfo = { code: null, signal: null };
          resolve(this.exitInfo);
        }
      });
    });

    this.finished = new Promise<ExitInfo>((resolve) => {
      child.once('close', (code: number | null, signal: NodeJS.Signals | null) => resolve(this.exitInfo ?? { code, signal }));
      void this.exited.then((info) => {
        const timer = setTimeout(() => resolve(info), STDIO_DRAIN_MS);
        timer.unref();
      });
    });

    // EPIPE when the child is gone: the session notices through 'exit'; unhandled, it would crash the host.
    child.stdin!.on('error', (err) => stderrLog('stdin: %s', err.message));
    child.stdout!.on('error', (err) => stderrLog('stdout: %s', err.message));

    // stderr is always read: a pipe nobody drains fills up (64 KiB) and blocks a chatty child
    // in its next write (the SDK's StdioClientTransport has the same rule for `stderr: 'pipe'`).
    const stderrLines = new LineReader((line) => {
      if (line) stderrLog('%s', line.replace(/\r$/, ''));
    }, MAX_STDERR_LINE, 'split');
    child.stderr!.on('data', (chunk: Buffer) => {
      if (stderrLog.enabled) stderrLines.push(chunk);
    });
    child.stderr!.on('end', () => stderrLines.end());
    child.stderr!.on('error', () => undefined);

    if (child.pid !== undefined) {
      installExitHook();
      live.add(this);
      // The hooks cannot run when the proxy is killed outright (SIGKILL, the OOM killer).
      watchGroup(child.pid);
    }
    void this.exited.then(() => {
      if (!this.groupAlive()) this.untrack();
    });
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  get hasExited(): boolean {
    return this.exitInfo !== undefined;
  }

  /**
   * Stops the whole tree: stdin closed (the polite stop the MCP stdio transport defines), then
   * SIGTERM to the group, then SIGKILL to the group, `graceMs` apart. Resolves when the child
   * has exited and its group is gone (or, for group members we cannot reap, after a bounded wait).
   * Idempotent.
   */
  stop(graceMs = DEFAULT_GRACE_MS): Promise<void> {
    this.stopping ??= this.reap(graceMs);
    return this.stopping;
  }

  private async reap(graceMs: number): Promise<void> {
    if (this.process.pid === undefined) {
      await this.exited;
      return;
    }
    const pid = this.process.pid;
    if (!this.hasExited) {
      this.log('pid %d: closing stdin', pid);
      this.process.stdin!.end();
      if (!(await this.exitWithin(graceMs))) {
        this.log('pid %d: still running %d ms after stdin closed, SIGTERM to its group', pid, graceMs);
        this.signal('SIGTERM');
        if (!(await this.exitWithin(graceMs))) {
          this.log('pid %d: still running %d ms after SIGTERM, SIGKILL to its group', pid, graceMs);
          this.signal('SIGKILL');
          await this.exited;
        }
      }
    }
    // The leader is gone; members of its group (a wrapper's children) may not be. They are not our
    // children, so no 'exit' event tells us: poll, bounded.
    if (this.groupAlive()) {
      this.log('pid %d exited, its process group did not: SIGTERM to the group', pid);
      this.signal('SIGTERM');
      if (!(await this.groupGoneWithin(graceMs))) {
        this.log('process group %d still there %d ms after SIGTERM: SIGKILL', pid, graceMs);
        this.signal('SIGKILL');
        if (!(await this.groupGoneWithin(graceMs))) this.log('process group %d: members remain (zombies nobody reaps?)', pid);
      }
    }
    this.log('pid %d: gone', pid);
    this.untrack();
  }

  /** The group is gone: no hook may signal its id again (the kernel may give it to another process). */
  private untrack(): void {
    if (!live.delete(this)) return;
    if (this.process.pid !== undefined) unwatchGroup(this.process.pid);
  }

  /** Signals the whole process group (the tree), or the process alone on Windows. Never throws. */
  signal(sig: NodeJS.Signals): void {
    const pid = this.process.pid;
    if (pid === undefined) return;
    try {
      if (IS_WINDOWS) this.process.kill(sig);
      else process.kill(-pid, sig);
    } catch {
      // ESRCH: the group is already gone.
    }
  }

  private groupAlive(): boolean {
    const pid = this.process.pid;
    if (pid === undefined || IS_WINDOWS) return false;
    try {
      process.kill(-pid, 0);
      return true;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'EPERM';
    }
  }

  private exitWithin(ms: number): Promise<boolean> {
    if (this.hasExited) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      void this.exited.then(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  private async groupGoneWithin(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (this.groupAlive()) {
      if (Date.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, GROUP_POLL_MS));
    }
    return true;
  }
}

/** Spawns a stdio server. Await `started` before talking to it. */
export function spawnStdioChild(options: SpawnOptions): StdioChild {
  return new StdioChild(options);
}
