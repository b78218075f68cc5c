// One stdio child serving the stateless 2026-07-28 requests of one token (stateless.ts), with the
// JSON-RPC ids and progress tokens rewritten so that concurrent requests never collide.
import type { ServerResponse } from 'node:http';
import { spawnStdioChild, type StdioChild } from './child-process';
import type { StdioServer } from '../config';
import { serializeMessage, type JsonRpcMessage } from '../wire/body';
import { HttpError, JsonRpcCode, sendJsonRpcError } from '../wire/errors';
import { CLIENT_CAPABILITIES, isModernVersion, MODERN_VERSION, PROTOCOL_VERSION, UNSUPPORTED_VERSION } from '../wire/revisions';
import { LineReader, MAX_LINE_BYTES } from './line-reader';
import { debug, logFault } from '../logger';
import type { SessionHandle } from '../sessions/registry';
import { openSseStream, type SseStream } from '../wire/sse';
import type { TransportDeps } from '../transport';
import type { Exchange as PipelineExchange } from '../pipeline/hooks';

const log = debug.extend('stateless');

const DISCOVER_ID = 'mcp-front:discover';

export type Era = { modern: true; versions: string[] } | { modern: false };

/** The child asking `server/discover` was stopped by the proxy (its token revoked), not by itself. */
export class DiscoveryAbandoned extends HttpError {}

interface Exchange {
  /** The pipeline's record of the request: its answer and failures are reported against it. */
  flight: PipelineExchange;
  clientId: string | number;
  progressToken: unknown;
  res: ServerResponse;
  stream: SseStream | undefined;
  timer: NodeJS.Timeout;
}

/**
 * One child serving the modern requests of one token. Registered as a session so that reload()
 * revoking the token, or removing the server, stops it like any other session.
 */
export class SharedChild {
  readonly server: string;
  /** Its session: found by its token, ended by revocation, idle clock, close. */
  private readonly handle: SessionHandle;
  private readonly child: StdioChild;
  private readonly pending = new Map<string, Exchange>();
  private next = 0;
  /** A stdout line over the limit stops the child: its requests get an error, not a hang. */
  private readonly stdout = new LineReader((line) => this.onLine(line), MAX_LINE_BYTES, (limit) => this.onLineTooLong(limit));
  private discoverAnswer: ((m: JsonRpcMessage) => void) | undefined;
  /** The child exited without being asked to, or broke the protocol (a line over the limit). */
  private exitedOnItsOwn = false;

  constructor(
    private readonly config: StdioServer,
    private readonly deps: TransportDeps,
    readonly token: string,
    /** Whose requests it serves (`RequestContext.identity`): one child per token, or per OAuth user. */
    identity: string,
    /** The transport it belongs to. */
    owner: object,
  ) {
    this.server = config.name;
    this.child = spawnStdioChild({ name: config.name, command: config.command, args: config.args, env: config.env, cwd: config.cwd });
    this.handle = deps.sessions.open({
      server: config.name,
      kind: 'stateless',
      upstream: 'stdio',
      token,
      identity,
      owner,
      subject: this,
      idleTimeoutMs: config.idleTimeoutMs,
      fields: () => ({ pid: this.child.pid }),
      teardown: (reason) => this.teardown(reason),
    });
    this.child.process.stdout!.on('data', (chunk: Buffer) => this.guard('server output', () => this.stdout.push(chunk)));
    void this.child.exited.then((info) => {
      if (this.handle.ending) return;
      this.exitedOnItsOwn = true;
      deps.logger.error('stdio server exited', { server: this.server, code: info.code, signal: info.signal, token, transport: 'stateless' });
      void this.close('child exited');
    });
    this.handle.start();
  }

  /**
   * Sends `server/discover` and learns the era; a child that is not modern is stopped. Rejects
   * (and stops the child) when there is no answer to learn from: failed start, exit, timeout.
   */
  async discover(): Promise<Era> {
    let timer: NodeJS.Timeout | undefined;
    const answer = new Promise<JsonRpcMessage | 'timeout' | 'exited'>((resolve) => {
      this.discoverAnswer = resolve;
      timer = setTimeout(() => resolve('timeout'), this.config.timeoutMs);
      timer.unref();
      void this.child.exited.then(() => resolve('exited'));
    });
    try {
      await this.child.started;
    } catch (err) {
      void this.close('failed to start');
      throw new HttpError(502, JsonRpcCode.ServerError, `stdio server "${this.server}" failed to start: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    this.write({
      jsonrpc: '2.0',
      id: DISCOVER_ID,
      method: 'server/discover',
      params: { _meta: { [PROTOCOL_VERSION]: MODERN_VERSION, [CLIENT_CAPABILITIES]: {}, 'io.modelcontextprotocol/clientInfo': { name: 'mcp-front', version: '1' } } },
    });
    const reply = await answer;
    clearTimeout(timer);
    this.discoverAnswer = undefined;
    if (reply === 'timeout') {
      this.deps.logger.warn('stdio server timed out', { server: this.server, transport: 'stateless', method: 'server/discover' });
      void this.close('no answer to server/discover');
      throw new HttpError(504, JsonRpcCode.ServerError, `stdio server "${this.server}" did not answer server/discover within ${this.config.timeoutMs / 1000} s`);
    }
    if (reply === 'exited') {
      const Failure = this.exitedOnItsOwn ? HttpError : DiscoveryAbandoned;
      throw new Failure(502, JsonRpcCode.ServerError, `stdio server "${this.server}" ended before answering server/discover`);
    }
    const result = reply.result as { supportedVersions?: unknown } | undefined;
    const error = reply.error as { code?: number; data?: { supported?: unknown } } | undefined;
    const listed = Array.isArray(result?.supportedVersions) ? result.supportedVersions : error?.code === UNSUPPORTED_VERSION ? error.data?.supported : undefined;
    const versions = Array.isArray(listed) ? listed.filter(isModernVersion) : [];
    log('%s: discover → %o', this.server, versions);
    if (versions.length > 0) return { modern: true, versions };
    // A 2025-only child may have taken the discover as its first message: never reuse it.
    await this.close('not a 2026-07-28 server');
    return { modern: false };
  }

  request(res: ServerResponse, message: JsonRpcMessage, flight: PipelineExchange): void {
    if (this.handle.ending) throw new HttpError(502, JsonRpcCode.ServerError, `stdio server "${this.server}" exited`);
    const ours = `mf:${++this.next}`;
    const params = message.params ?? {};
    const meta = (params._meta ?? {}) as Record<string, unknown>;
    const rewritten: JsonRpcMessage = {
      ...message,
      id: ours,
      params: { ...params, _meta: 'progressToken' in meta ? { ...meta, progressToken: `${ours}:p` } : meta },
    };
    // Before anything is registered: a message that cannot be written out is the client's 400.
    const line = serializeMessage(rewritten);
    const exchange: Exchange = {
      flight,
      clientId: message.id as string | number,
      progressToken: meta.progressToken,
      res,
      stream: undefined,
      timer: setTimeout(() => this.guard('timeout', () => this.timeOut(ours)), this.config.timeoutMs),
    };
    this.pending.set(ours, exchange);
    this.handle.busy();
    // The client giving up cancels the request in the child (it would otherwise work for nobody).
    res.once('close', () => {
      if (this.pending.get(ours) !== exchange) return;
      this.forget(ours);
      this.deps.pipeline.fail(flight, 'client_gone');
      this.write({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: ours, reason: 'client disconnected' } });
    });
    this.write(line);
  }

  /** One message to the child: an object, or its JSON text already made. */
  private write(message: object | string): void {
    if (!this.child.process.stdin!.writable) return;
    this.child.process.stdin!.write((typeof message === 'string' ? message : JSON.stringify(message)) + '\n');
  }

  /**
   * The boundary of every event handler and timer of this child: a fault there ends this child's
   * requests (logged at `error`), never the process and the other tokens' children with it.
   */
  private guard(where: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      logFault(this.deps.logger, 'stdio session failed', { server: this.server, token: this.token, transport: 'stateless', where }, err);
      void this.close(`internal error (${where})`);
    }
  }

  private onLineTooLong(limit: number): void {
    if (this.handle.ending) return;
    this.deps.logger.error('stdio server output line too long', { server: this.server, limit, token: this.token, transport: 'stateless', pid: this.child.pid });
    // The child's fault, like an exit of its own: a discover waiting on it fails with 502.
    this.exitedOnItsOwn = true;
    void this.close('stdio server wrote a line over the size limit');
  }

  private onLine(line: string): void {
    let message: JsonRpcMessage;
    try {
      message = JSON.parse(line) as JsonRpcMessage;
    } catch {
      log('%s: not JSON on stdout, ignored', this.server);
      return;
    }
    if (message.id === DISCOVER_ID && message.method === undefined) {
      this.discoverAnswer?.(message);
      return;
    }
    if (message.method === undefined) {
      const ex = typeof message.id === 'string' ? this.pending.get(message.id) : undefined;
      if (!ex) return;
      // Delivered while still pending: should it fail, close() answers the client for it.
      this.deliver(ex, { ...message, id: ex.clientId }, true);
      this.forget(message.id as string);
      return;
    }
    if (message.id !== undefined && message.id !== null) {
      // Server→client requests do not exist in this revision (input goes through input_required).
      this.write({ jsonrpc: '2.0', id: message.id, error: { code: -32601, message: 'not available to stateless (2026-07-28) requests' } });
      return;
    }
    const token = message.params?.progressToken;
    if (message.method === 'notifications/progress' && typeof token === 'string' && token.endsWith(':p')) {
      const ex = this.pending.get(token.slice(0, -2));
      if (ex) this.deliver(ex, { ...message, params: { ...message.params, progressToken: ex.progressToken } }, false);
      return;
    }
    // A notification naming no request goes to the only request in flight, if there is one.
    if (this.pending.size === 1) this.deliver(this.pending.values().next().value!, message, false);
    else log('%s: unattributable %s dropped', this.server, message.method);
  }

  /** JSON when the answer comes first; an event stream once anything precedes it. */
  private deliver(ex: Exchange, message: JsonRpcMessage, final: boolean): void {
    clearTimeout(ex.timer);
    if (!final) ex.timer = setTimeout(() => this.guard('timeout', () => this.timeOut(this.keyOf(ex))), this.config.timeoutMs);
    // The answer point: a final answer passes the pipeline, which may replace it.
    const body = final ? this.deps.pipeline.answer(ex.flight, message, JSON.stringify(message)) : JSON.stringify(message);
    if (ex.res.writableEnded || ex.res.destroyed) return;
    if (final && !ex.stream) {
      ex.res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
      ex.res.end(body);
      return;
    }
    ex.stream ??= openSseStream(ex.res, 0);
    ex.stream.send('message', body);
    if (final) ex.stream.end();
  }

  private keyOf(ex: Exchange): string {
    for (const [key, value] of this.pending) if (value === ex) return key;
    return '';
  }

  private timeOut(ours: string): void {
    const ex = this.pending.get(ours);
    if (!ex) return;
    this.forget(ours);
    this.write({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: ours, reason: 'timeout' } });
    this.deps.pipeline.fail(ex.flight, 'timeout', { event: 'stdio server timed out', server: this.server, transport: 'stateless' });
    sendJsonRpcError(ex.res, 504, JsonRpcCode.ServerError, `stdio server "${this.server}" did not answer in time`, { id: ex.clientId });
  }

  private forget(ours: string): void {
    const ex = this.pending.get(ours);
    if (!ex) return;
    clearTimeout(ex.timer);
    this.pending.delete(ours);
    this.handle.idle();
  }

  /** Ends it (idempotent); resolves when the child is gone. */
  close(reason: string): Promise<void> {
    return this.handle.end(reason);
  }

  private async teardown(reason: string): Promise<void> {
    for (const [ours, ex] of [...this.pending]) {
      this.forget(ours);
      this.deps.pipeline.fail(ex.flight, 'session_closed');
      // Callers do not wait for close(): a throw here would be an unhandled rejection.
      try {
        sendJsonRpcError(ex.res, 502, JsonRpcCode.ServerError, `stdio server "${this.server}" ended (${reason})`, { id: ex.clientId });
      } catch {
        ex.res.destroy();
      }
    }
    await this.child.stop();
  }
}
