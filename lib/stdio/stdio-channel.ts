// A stdio server as a channel: one child process per session, newline-delimited JSON-RPC on its
// stdin and stdout (MCP 2025-06-18 §stdio). The child's stdout lines are handed over as they are.
import { existsSync } from 'node:fs';
import { serializeMessage, type JsonRpcMessage } from '../wire/body';
import type { Channel, ChannelEvents } from '../bridge/channel';
import { firstByte } from '../wire/body';
import { DEFAULT_GRACE_MS, spawnStdioChild, type ExitInfo, type StdioChild } from './child-process';
import type { StdioServer } from '../config';
import { HttpError, JsonRpcCode } from '../wire/errors';
import { LineReader, MAX_LINE_BYTES } from './line-reader';
import { debug, logFault } from '../logger';
import type { Logger, LogFields } from '../types';

const log = debug.extend('stdio');

const NEWLINE = 0x0a;

export class StdioChannel implements Channel {
  private child: StdioChild | undefined;
  private events: ChannelEvents | undefined;
  /** `close()` was called: the child's exit is expected, nobody is told. */
  private closing: Promise<void> | undefined;
  /** The server side is over, by `close()` or on its own: nothing more is delivered. */
  private over = false;
  /** A stdout line over the limit ends the session. */
  private readonly stdout = new LineReader((line) => this.onLine(line), MAX_LINE_BYTES, (limit) => this.onLineTooLong(limit));

  constructor(
    private readonly server: StdioServer,
    private readonly logger: Logger,
    /** For the `stdio server exited` line: who was using it. */
    private readonly token: string,
  ) {}

  get logFields(): LogFields {
    return { pid: this.child?.pid };
  }

  async open(events: ChannelEvents): Promise<void> {
    this.events = events;
    const { server } = this;
    const child = spawnStdioChild({ name: server.name, command: server.command, args: server.args, env: server.env, cwd: server.cwd });
    this.child = child;
    child.process.stdout!.on('data', (chunk: Buffer) => {
      // An event handler: a throw here would reach the event loop and end the process.
      try {
        this.stdout.push(chunk);
      } catch (err) {
        this.fault(err);
      }
    });
    void child.finished.then((info) => this.onChildFinished(info));
    try {
      await child.started;
    } catch (err) {
      // Node reports a missing working directory as the command's ENOENT: say which it is.
      const cwdMissing = server.cwd !== undefined && !existsSync(server.cwd);
      const code = cwdMissing ? 'ENOENT: cwd does not exist' : ((err as NodeJS.ErrnoException).code ?? 'unknown');
      this.logger.error('stdio server failed to start', { server: server.name, error: code });
      throw new HttpError(502, JsonRpcCode.ServerError, `Bad Gateway: stdio server "${server.name}" failed to start (${code})`);
    }
  }

  /**
   * One line per message (the stdio transport's framing: newline-delimited, no embedded
   * newlines). A single message whose body has no newline goes as received; anything else is
   * re-serialized, a batch split into its messages (SDK stdio servers do not accept JSON-RPC
   * batches). Resolves when stdin accepted it.
   */
  send(body: Buffer, messages: JsonRpcMessage[]): Promise<void> {
    const stdin = this.child?.process.stdin;
    if (this.over || !stdin || !stdin.writable) return Promise.resolve();
    let flushed: boolean;
    if (messages.length === 1 && body.indexOf(NEWLINE) === -1 && firstByte(body) === 0x7b /* { */) {
      stdin.cork();
      stdin.write(body);
      flushed = stdin.write('\n');
      stdin.uncork();
    } else {
      let text = '';
      for (const m of messages) text += serializeMessage(m) + '\n';
      flushed = stdin.write(text);
    }
    if (flushed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        stdin.off('drain', done);
        stdin.off('close', done);
        resolve();
      };
      stdin.once('drain', done);
      stdin.once('close', done);
    });
  }

  pause(): void {
    this.child?.process.stdout!.pause();
  }

  resume(): void {
    this.child?.process.stdout!.resume();
  }

  /** Stops the process tree (stdin closed, SIGTERM, SIGKILL); resolves when it is gone. */
  close(): Promise<void> {
    this.over = true;
    this.closing ??= this.child ? this.child.stop(DEFAULT_GRACE_MS).then(() => log('%s: pid %d gone', this.server.name, this.child!.pid)) : Promise.resolve();
    return this.closing;
  }

  private onLineTooLong(limit: number): void {
    if (this.over) return;
    this.logger.error('stdio server output line too long', { server: this.server.name, limit, pid: this.child?.pid });
    this.endOnItsOwn('stdio server wrote a line over the size limit', `stdio server "${this.server.name}" wrote a line over the size limit`);
  }

  private onLine(raw: string): void {
    if (this.over) return;
    let line = raw.charCodeAt(raw.length - 1) === 13 /* \r */ ? raw.slice(0, -1) : raw;
    let first = line.charCodeAt(0);
    if (first !== 0x7b /* { */ && first !== 0x5b /* [ */) {
      line = line.trim();
      first = line.charCodeAt(0);
      if (first !== 0x7b && first !== 0x5b) {
        // Servers that print banners or logs on stdout: not protocol, not for the client.
        if (line) log('%s: ignoring non-JSON stdout line (%d chars)', this.server.name, line.length);
        return;
      }
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      log('%s: ignoring malformed JSON on stdout (%d chars)', this.server.name, line.length);
      return;
    }
    if (Array.isArray(parsed)) {
      for (const m of parsed) if (isMessage(m)) this.events!.message(JSON.stringify(m), m);
    } else if (isMessage(parsed)) {
      this.events!.message(line, parsed);
    }
  }

  private onChildFinished(info: ExitInfo): void {
    // A command that never ran is reported by open(), once.
    if (this.over || this.child!.pid === undefined) return;
    // Not asked to stop: the server crashed or quit. Operators see it; clients get errors.
    this.logger.error('stdio server exited', {
      server: this.server.name,
      code: info.code,
      signal: info.signal,
      token: this.token,
      pid: this.child!.pid,
    });
    const how = info.signal ? `signal ${info.signal}` : `code ${info.code}`;
    this.endOnItsOwn(`stdio server exited (${how})`, `stdio server "${this.server.name}" exited (${how})`);
  }

  /** A fault while relaying this child's output ends this session only. */
  private fault(err: unknown): void {
    logFault(this.logger, 'stdio session failed', { server: this.server.name, token: this.token, pid: this.child?.pid, where: 'server output' }, err);
    this.endOnItsOwn('internal error (server output)', `mcp-front could not relay the output of stdio server "${this.server.name}"`);
  }

  private endOnItsOwn(reason: string, clientMessage: string): void {
    if (this.over) return;
    this.over = true;
    this.events?.closed(reason, clientMessage);
  }
}

function isMessage(value: unknown): value is JsonRpcMessage {
  return typeof value === 'object' && value !== null;
}
