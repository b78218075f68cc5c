// One member of one client session of an aggregate: its own upstream session (a stdio child, a
// remote session) over a channel, the requests the aggregate sends it — each admitted by the
// message pipeline as a request to that server, with the member's own names (README: Aggregates)
// — and the answers matched back through its own `InFlight`.
import type { Channel } from '../bridge/channel';
import { bodyOf } from '../bridge/channel';
import type { JsonRpcMessage } from '../wire/body';
import { HttpError } from '../wire/errors';
import { InFlight, type Pipeline } from '../pipeline/pipeline';
import type { ExchangeBase, JsonRpcId } from '../pipeline/hooks';
import type { ResolvedServer } from '../config';
import { debug } from '../logger';

const log = debug.extend('aggregate');

/** How one request to a member ended, as the aggregate needs to know it. */
export type MemberOutcome =
  | { kind: 'answer'; message: JsonRpcMessage }
  /** The pipeline answered it (a permission, an invalid request): the error the client gets. */
  | { kind: 'refused'; error: { code: number; message: string; data?: unknown } }
  /** No answer: the member is down, too slow, or its session ended. */
  | { kind: 'failed'; why: 'unavailable' | 'timeout' | 'closed' | 'cancelled' };

interface Pending {
  resolve(outcome: MemberOutcome): void;
  timer: NodeJS.Timeout | undefined;
  progressToken: JsonRpcId | undefined;
}

export type MemberState = 'starting' | 'up' | 'down';

/** What a member asks of its aggregate session. */
export interface MemberEvents {
  /** A message the member initiated (a request to the client, a notification). */
  initiated(member: Member, line: string, message: JsonRpcMessage): void;
  /** Its upstream session ended on its own (the child exited, the upstream forgot the session). */
  lost(member: Member, reason: string): void;
}

export class Member {
  state: MemberState = 'starting';
  /** Its `initialize` result, once it answered. */
  init: Record<string, unknown> | undefined;
  channel: Channel | undefined;
  private readonly inFlight: InFlight;
  private readonly pending = new Map<JsonRpcId, Pending>();
  /** Requests the member sent the client, by the id the client was given → the member's own id. */
  readonly reverse = new Map<string, JsonRpcId>();
  private nextId = 0;

  constructor(
    readonly server: ResolvedServer,
    readonly prefix: string,
    private readonly pipeline: Pipeline,
    /** The exchange fields of this member's requests: `server` the member, `aggregate` set. */
    private readonly base: ExchangeBase,
    private readonly events: MemberEvents,
  ) {
    this.inFlight = new InFlight(pipeline, { server: server.name, token: base.token });
  }

  /** Opens the member's channel (spawns, connects); rejects with the channel's `HttpError`. */
  async open(channel: Channel): Promise<void> {
    this.channel = channel;
    await channel.open({
      message: (line, message) => this.onMessage(channel, line, message),
      closed: (reason) => {
        if (this.channel !== channel) return;
        this.down();
        this.events.lost(this, reason);
      },
    });
  }

  /**
   * Sends one request to the member through the pipeline: `server` is the member, the names in
   * `params` are the member's own. Resolves with its answer, the pipeline's refusal, or why there
   * was none; never rejects. A request whose member does not start answering within its `timeout`
   * fails (progress for its `progressToken` counts as an answer starting).
   */
  async request(method: string, params: Record<string, unknown> | undefined, sent?: (id: JsonRpcId) => void): Promise<MemberOutcome> {
    const channel = this.channel;
    if (this.state === 'down' || channel === undefined) return { kind: 'failed', why: 'unavailable' };
    const id = this.nextId++;
    sent?.(id);
    const message: JsonRpcMessage = params === undefined ? { jsonrpc: '2.0', id, method } : { jsonrpc: '2.0', id, method, params };
    const admission = await this.pipeline.admit(this.base, { body: bodyOf([message]), messages: [message], isBatch: false }, this.inFlight);
    if (admission.reject !== undefined) return { kind: 'refused', error: errorOf(admission.reject.body) };
    if (admission.refusals.length > 0) return { kind: 'refused', error: errorOf(admission.refusals[0].line) };
    const forward = admission.forward!;
    if (this.channel !== channel || (this.state as MemberState) === 'down') {
      this.inFlight.fail(id, 'upstream_error');
      return { kind: 'failed', why: 'unavailable' };
    }
    const token = (params?._meta as Record<string, unknown> | undefined)?.progressToken;
    const answered = new Promise<MemberOutcome>((resolve) => {
      const entry: Pending = { resolve, timer: undefined, progressToken: typeof token === 'string' || typeof token === 'number' ? token : undefined };
      entry.timer = setTimeout(() => this.timeOut(id), this.server.timeoutMs);
      entry.timer.unref();
      this.pending.set(id, entry);
    });
    channel.send(forward.body, forward.messages).catch((err: unknown) => {
      log('%s: request %s not taken (%s)', this.server.name, method, (err as Error)?.message);
      this.settle(id, { kind: 'failed', why: err instanceof HttpError && err.status === 504 ? 'timeout' : 'unavailable' }, 'upstream_error');
    });
    return answered;
  }

  /**
   * A notification or a client's answer to the member, as the member expects it. Resolves once
   * the member took it (never rejects), for what must arrive before what follows.
   */
  notify(message: JsonRpcMessage): Promise<void> {
    if (this.state === 'down' || this.channel === undefined) return Promise.resolve();
    return this.channel.send(bodyOf([message]), [message]).catch((err: unknown) => log('%s: message not taken (%s)', this.server.name, (err as Error)?.message));
  }

  /**
   * The client cancelled the request `id` of this member (MCP: Cancellation): told to the member
   * only. It may still answer, but it is no longer late. A member need not answer a cancelled
   * request at all, so it is forgotten quietly after its `timeout` (no timeout reported, no second
   * cancellation): a client cancelling request after request cannot make the session grow.
   */
  cancel(id: JsonRpcId, reason: unknown): void {
    const entry = this.pending.get(id);
    if (entry !== undefined) {
      if (entry.timer !== undefined) clearTimeout(entry.timer);
      entry.timer = setTimeout(() => this.settle(id, { kind: 'failed', why: 'cancelled' }, 'client_gone'), this.server.timeoutMs);
      entry.timer.unref();
    }
    void this.notify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: reason === undefined ? { requestId: id } : { requestId: id, reason } });
  }

  /** The member side is gone: every request of it fails now. */
  down(): void {
    this.state = 'down';
    for (const id of [...this.pending.keys()]) this.settle(id, { kind: 'failed', why: 'unavailable' }, 'upstream_error');
  }

  /** Ends the member's session; resolves when its child or upstream session is gone. */
  async close(): Promise<void> {
    this.state = 'down';
    for (const id of [...this.pending.keys()]) this.settle(id, { kind: 'failed', why: 'closed' }, 'session_closed');
    const channel = this.channel;
    this.channel = undefined;
    await channel?.close();
  }

  get logFields(): Record<string, string | number | undefined> {
    const fields = this.channel?.logFields ?? {};
    return Object.fromEntries(Object.entries(fields).map(([k, v]) => [`${this.prefix}_${k}`, v as string | number | undefined]));
  }

  private onMessage(channel: Channel, line: string, message: JsonRpcMessage): void {
    if (this.channel !== channel) return;
    if (message.method === undefined) {
      // A response: it passes the pipeline's answer point as this member's, or is dropped.
      const id = message.id as JsonRpcId;
      const out = this.inFlight.answer(message, line);
      if (out === undefined) return;
      const answer = out === line ? message : (JSON.parse(out) as JsonRpcMessage);
      this.settle(id, { kind: 'answer', message: answer }, undefined);
      return;
    }
    if (message.method === 'notifications/progress') {
      // Progress means the member is working on it: its timeout no longer applies.
      const token = (message.params as Record<string, unknown> | undefined)?.progressToken;
      for (const entry of this.pending.values()) {
        if (entry.progressToken !== undefined && entry.progressToken === token && entry.timer !== undefined) {
          clearTimeout(entry.timer);
          entry.timer = undefined;
        }
      }
    }
    this.events.initiated(this, line, message);
  }

  private timeOut(id: JsonRpcId): void {
    log('%s: request %s timed out', this.server.name, id);
    this.settle(id, { kind: 'failed', why: 'timeout' }, 'timeout');
    this.cancel(id, 'timeout');
  }

  /** Resolves request `id` once; `failure` reports a request that ended without an answer. */
  private settle(id: JsonRpcId, outcome: MemberOutcome, failure: 'timeout' | 'upstream_error' | 'session_closed' | 'client_gone' | undefined): void {
    const entry = this.pending.get(id);
    if (entry === undefined) return;
    this.pending.delete(id);
    if (entry.timer !== undefined) clearTimeout(entry.timer);
    if (failure !== undefined) {
      this.inFlight.fail(
        id,
        failure,
        failure === 'timeout' ? { event: 'aggregate member timed out', server: this.server.name, aggregate: this.base.aggregate, token: this.base.token, timeout_ms: this.server.timeoutMs } : undefined,
      );
    }
    entry.resolve(outcome);
  }
}

/** The error object of a one-message JSON-RPC error body the pipeline wrote. */
function errorOf(text: string): { code: number; message: string; data?: unknown } {
  const parsed = JSON.parse(text) as JsonRpcMessage | JsonRpcMessage[];
  const first = Array.isArray(parsed) ? parsed[0] : parsed;
  return (first.error as { code: number; message: string; data?: unknown }) ?? { code: -32603, message: 'Internal error' };
}
