// One message pipeline for every route: each client request is decided by the hooks before it is
// forwarded (`admit`), each server message passes one function on its way back (`answer`), and
// each request that ends without an answer is reported once (`fail`). Transports call these; the
// hooks (hooks.ts) never see a transport.
import { isUtf8 } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import { isRequest, type JsonRpcMessage } from '../wire/body';
import { jsonRpcErrorBody } from '../wire/errors';
import { hasDuplicateKeys } from '../wire/duplicate-keys';
import { logFault } from '../logger';
import type { LogFields, Logger } from '../types';
import { inboundOf, type Inbound } from './inbound';
import type { AuthFailureReason, Exchange, ExchangeBase, FailureOutcome, JsonRpcId, PipelineHook, SessionInfo, UpstreamErrorInfo, Verdict } from './hooks';

/** A request the hooks answered: its JSON-RPC error, as a message and as its one-line text. */
export interface Refusal {
  readonly id: JsonRpcId;
  readonly message: JsonRpcMessage;
  readonly line: string;
}

export interface Admission {
  /** What goes on to the server: the client's own bytes when nothing was refused; none when all was. */
  readonly forward: Inbound | undefined;
  /** Answers for the refused requests, to be given the way the route gives any answer. */
  readonly refusals: Refusal[];
  /** A verdict with a status: the whole HTTP request is answered with it, nothing is forwarded. */
  readonly reject: { status: number; headers: Record<string, string>; body: string } | undefined;
  /** The forwarded requests, for the answer point. */
  readonly exchanges: Exchange[];
}

export class Pipeline {
  private readonly requestHooks: PipelineHook[];
  private readonly answerHooks: PipelineHook[];
  private readonly failedHooks: PipelineHook[];
  private readonly refusedHooks: PipelineHook[];

  constructor(
    readonly hooks: readonly PipelineHook[],
    private readonly logger: Logger,
  ) {
    this.requestHooks = hooks.filter((h) => h.request);
    this.answerHooks = hooks.filter((h) => h.answer);
    this.failedHooks = hooks.filter((h) => h.failed);
    this.refusedHooks = hooks.filter((h) => h.refused);
  }

  /** Some hook looks at the answers of requests of `base`: a route must read them, not pass them through unread. */
  observes(base: ExchangeBase): boolean {
    return this.answerHooks.some((h) => applies(h, base));
  }

  /**
   * Decides every request of `inbound` on its own. Notifications and responses of the client go on
   * as they are. Only when something was refused is the forwarded body rebuilt.
   */
  admit(base: ExchangeBase, inbound: Inbound): Admission | Promise<Admission> {
    const startedAt = performance.now();
    const exchanges: Exchange[] = [];
    for (const m of inbound.messages) if (isRequest(m)) exchanges.push(exchangeOf(base, m, startedAt));
    // Without request hooks nothing can be refused: the client's bytes go on, decided in this tick.
    if (!this.requestHooks.some((h) => applies(h, base))) return { forward: inbound, refusals: [], reject: undefined, exchanges };
    return this.decideAll(inbound, exchanges);
  }

  private async decideAll(inbound: Inbound, requests: Exchange[]): Promise<Admission> {
    const admitted: Exchange[] = [];
    const refused = new Map<JsonRpcMessage, Refusal>();
    let r = 0;
    for (const m of inbound.messages) {
      if (!isRequest(m)) continue;
      const ex = requests[r++];
      const verdict = await this.decide(ex);
      if (verdict === undefined) {
        admitted.push(ex);
        continue;
      }
      if (verdict.status !== undefined) {
        // The whole HTTP request is answered with the status: every request of it not refused
        // already was refused now.
        const before = new Set([...refused.values()].map((f) => f.id));
        for (const q of requests) if (!before.has(q.id)) this.refused(q, verdict);
        const error = (id: unknown) => jsonRpcErrorBody(verdict.code, verdict.message, id, verdict.data);
        const body = inbound.isBatch ? `[${requests.map((q) => error(q.id)).join(',')}]` : error(ex.id);
        return { forward: undefined, refusals: [], reject: { status: verdict.status, headers: verdict.headers ?? {}, body }, exchanges: [] };
      }
      this.refused(ex, verdict);
      const line = jsonRpcErrorBody(verdict.code, verdict.message, ex.id, verdict.data);
      refused.set(m, { id: ex.id, line, message: JSON.parse(line) as JsonRpcMessage });
    }
    if (refused.size === 0) return { forward: decidedAs(inbound), refusals: [], reject: undefined, exchanges: admitted };
    const kept = inbound.messages.filter((m) => !refused.has(m));
    return { forward: kept.length === 0 ? undefined : inboundOf(kept, inbound.isBatch), refusals: [...refused.values()], reject: undefined, exchanges: admitted };
  }

  private async decide(ex: Exchange): Promise<Verdict | undefined> {
    for (const hook of this.requestHooks) {
      if (!applies(hook, ex)) continue;
      const verdict = await hook.request!(ex);
      if (verdict !== undefined) return verdict;
    }
    return undefined;
  }

  /**
   * The answer point: the server's response to `ex` on its way back. Returns the text to send:
   * `line` itself unless a hook replaced the message.
   */
  answer(ex: Exchange, response: JsonRpcMessage, line: string): string {
    if (this.answerHooks.length === 0) return line;
    const duration = performance.now() - ex.startedAt;
    let replaced: JsonRpcMessage | undefined;
    for (const hook of this.answerHooks) {
      if (!applies(hook, ex)) continue;
      try {
        const next = hook.answer!(ex, replaced ?? response, duration);
        if (next !== undefined) replaced = next;
      } catch (err) {
        // A hook's fault must not lose the client's answer, nor reach the event loop.
        logFault(this.logger, 'pipeline hook failed', { server: ex.server, token: ex.token, where: 'answer' }, err);
      }
    }
    return replaced === undefined ? line : JSON.stringify(replaced);
  }

  /** `ex` ended without the server's answer. */
  fail(ex: Exchange, outcome: FailureOutcome, fields?: LogFields): void {
    if (this.failedHooks.length === 0) return;
    const duration = performance.now() - ex.startedAt;
    for (const hook of this.failedHooks) this.run('failed', ex, () => hook.failed!(ex, outcome, duration, fields));
  }

  private refused(ex: Exchange, verdict: Verdict): void {
    if (this.refusedHooks.length === 0) return;
    const duration = performance.now() - ex.startedAt;
    for (const hook of this.refusedHooks) this.run('refused', ex, () => hook.refused!(ex, verdict, duration));
  }

  authFailed(reason: AuthFailureReason): void {
    for (const hook of this.hooks) if (hook.authFailed) this.run('authFailed', { server: '' }, () => hook.authFailed!(reason));
  }

  configReloaded(result: 'success' | 'failure'): void {
    for (const hook of this.hooks) if (hook.configReloaded) this.run('configReloaded', { server: '' }, () => hook.configReloaded!(result));
  }

  sessionStarted(info: SessionInfo): void {
    for (const hook of this.hooks) if (hook.sessionStarted) this.run('sessionStarted', info, () => hook.sessionStarted!(info));
  }

  sessionEnded(info: SessionInfo, reason: string): void {
    for (const hook of this.hooks) if (hook.sessionEnded) this.run('sessionEnded', info, () => hook.sessionEnded!(info, reason));
  }

  upstreamError(info: UpstreamErrorInfo): void {
    for (const hook of this.hooks) if (hook.upstreamError) this.run('upstreamError', info, () => hook.upstreamError!(info));
  }

  private run(where: string, about: { server: string; token?: string }, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      logFault(this.logger, 'pipeline hook failed', { server: about.server, token: about.token, where }, err);
    }
  }
}

/**
 * What the hooks decided on is what the server reads: a body that another parser could read
 * differently (a duplicate name, bytes that are not UTF-8) goes on as the messages the hooks
 * saw, serialized again.
 */
function decidedAs(inbound: Inbound): Inbound {
  if (isUtf8(inbound.body) && !hasDuplicateKeys(inbound.body.toString('utf8'))) return inbound;
  return inboundOf(inbound.messages, inbound.isBatch);
}

function applies(hook: PipelineHook, base: ExchangeBase): boolean {
  return hook.appliesTo === undefined || hook.appliesTo(base);
}

function exchangeOf(base: ExchangeBase, m: JsonRpcMessage, startedAt: number): Exchange {
  return {
    server: base.server,
    token: base.token,
    sessionId: base.sessionId,
    route: base.route,
    upstream: base.upstream,
    protocolVersion: base.protocolVersion,
    method: m.method!,
    id: m.id as JsonRpcId,
    params: m.params,
    startedAt,
  };
}

/**
 * The requests of one session (or one HTTP exchange) still waiting for their answers, by the
 * client's id: a response is matched to its request here, and whatever is left when the session
 * or exchange ends is reported as failed.
 */
export class InFlight {
  private readonly byId = new Map<JsonRpcId, Exchange>();

  constructor(private readonly pipeline: Pipeline) {}

  add(exchanges: readonly Exchange[]): void {
    for (const ex of exchanges) this.byId.set(ex.id, ex);
  }

  /** The answer point for one server message: returns the text to send on. */
  answer(message: JsonRpcMessage, line: string): string {
    if (message.method !== undefined || message.id === undefined || message.id === null) return line;
    const ex = this.byId.get(message.id);
    if (ex === undefined) return line;
    this.byId.delete(message.id);
    return this.pipeline.answer(ex, message, line);
  }

  fail(id: JsonRpcId, outcome: FailureOutcome, fields?: LogFields): void {
    const ex = this.byId.get(id);
    if (ex === undefined) return;
    this.byId.delete(id);
    this.pipeline.fail(ex, outcome, fields);
  }

  failAll(outcome: FailureOutcome, fields?: LogFields): void {
    const all = [...this.byId.values()];
    this.byId.clear();
    for (const ex of all) this.pipeline.fail(ex, outcome, fields);
  }

  get size(): number {
    return this.byId.size;
  }

  /** Some hook looks at the answers still awaited: they must be read, not passed through unread. */
  get observesAnswers(): boolean {
    for (const ex of this.byId.values()) if (this.pipeline.observes(ex)) return true;
    return false;
  }
}

/** The `MCP-Protocol-Version` header of a request (MCP 2025-06-18 §Protocol Version Header). */
export function protocolVersionHeader(headers: Record<string, string | string[] | undefined>): string | undefined {
  const v = headers['mcp-protocol-version'];
  return Array.isArray(v) ? v[0] : v;
}
