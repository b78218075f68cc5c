// One message pipeline for every route: each client request is decided by the hooks before it is
// forwarded (`admit`), each server message passes one function on its way back (`answer`), and
// each request that ends without an answer is reported once (`fail`). Transports call these; the
// hooks (hooks.ts) never see a transport.
import { isUtf8 } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import { isRequest, type JsonRpcMessage } from '../wire/body';
import { JsonRpcCode, jsonRpcErrorBody } from '../wire/errors';
import { hasDuplicateKeys } from '../wire/duplicate-keys';
import { debug, logFault } from '../logger';
import type { LogFields, Logger } from '../types';
import { inboundOf, type Inbound } from './inbound';
import type { AuthFailureReason, Exchange, ExchangeBase, FailureOutcome, Forwarded, JsonRpcId, PipelineHook, SessionInfo, UpstreamErrorInfo, Verdict } from './hooks';

const log = debug.extend('pipeline');

/** A request the hooks answered: its JSON-RPC error, as its one-line text. */
export interface Refusal {
  readonly id: JsonRpcId | null;
  readonly line: string;
}

export interface Admission {
  /** What goes on to the server: the client's own bytes when nothing was refused; none when all was. */
  readonly forward: Inbound | undefined;
  /** Answers for the refused requests, to be given the way the route gives any answer. */
  readonly refusals: Refusal[];
  /** A verdict with a status: the whole HTTP request is answered with it, nothing is forwarded. */
  readonly reject: { status: number; headers: Record<string, string>; body: string } | undefined;
  /** The forwarded requests, reserved in the `InFlight` admission was given, for the answer point. */
  readonly exchanges: Forwarded[];
}

/** JSON-RPC 2.0 §4 allows a null id; the MCP base protocol does not (a request id MUST NOT be null). */
const NULL_ID = 'Invalid Request: a request id must be a string or a number, not null';
/**
 * How long one turn of the event loop may spend deciding a batch before it lets other requests
 * in: a large batch must never hold another client's request for long (README: Limits).
 */
const SLICE_MS = 10;

export class Pipeline {
  private readonly requestHooks: PipelineHook[];
  private readonly invalidHooks: PipelineHook[];
  private readonly answerHooks: PipelineHook[];
  private readonly failedHooks: PipelineHook[];
  private readonly refusedHooks: PipelineHook[];

  constructor(
    readonly hooks: readonly PipelineHook[],
    readonly logger: Logger,
  ) {
    this.requestHooks = hooks.filter((h) => h.request);
    this.invalidHooks = this.requestHooks.filter((h) => h.countsInvalid);
    this.answerHooks = hooks.filter((h) => h.answer);
    this.failedHooks = hooks.filter((h) => h.failed);
    this.refusedHooks = hooks.filter((h) => h.refused);
  }

  /** Some hook looks at the answers of requests of `base`: a route must read them, not pass them through unread. */
  observes(base: ExchangeBase): boolean {
    return this.answerHooks.some((h) => applies(h, base));
  }

  /**
   * Decides every request of `inbound` on its own, and reserves the id of each in `inFlight` (the
   * session's requests awaiting answers, or the HTTP request's when there is no session) before
   * anything else can run: an id already reserved there, or earlier in the same batch, and a null
   * id, are Invalid Requests (`-32600`), answered by the proxy and never forwarded (MCP base
   * protocol: an id MUST NOT be null and MUST NOT have been used before in the session). Otherwise
   * two requests with one id would share one answer slot, and an answer meant for one would
   * pass the answer point as the other's. Notifications and responses of the client go on as
   * they are. Only when something was refused is the forwarded body rebuilt.
   */
  admit(base: ExchangeBase, inbound: Inbound, inFlight: InFlight): Admission | Promise<Admission> {
    const startedAt = performance.now();
    const requests: Exchange[] = [];
    let invalid: Map<Exchange, string> | undefined;
    for (const m of inbound.messages) {
      if (!isRequest(m)) continue;
      const ex = exchangeOf(base, m, startedAt);
      requests.push(ex);
      const why = ex.id === null ? NULL_ID : inFlight.reserve(ex as Forwarded) ? undefined : idInUse(ex.id);
      if (why !== undefined) (invalid ??= new Map()).set(ex, why);
    }
    // Without request hooks and invalid requests nothing can be refused: the client's bytes go on, decided in this tick.
    if (invalid === undefined && !this.requestHooks.some((h) => applies(h, base))) {
      return { forward: inbound, refusals: [], reject: undefined, exchanges: requests as Forwarded[] };
    }
    return this.decideAll(inbound, requests, invalid, inFlight);
  }

  private async decideAll(inbound: Inbound, requests: Exchange[], invalid: Map<Exchange, string> | undefined, inFlight: InFlight): Promise<Admission> {
    const admitted: Forwarded[] = [];
    const refused = new Map<JsonRpcMessage, Refusal>();
    const decided = new Set<Exchange>();
    const warnings: NonNullable<Verdict['warn']>[] = [];
    let sliceStart = performance.now();
    let r = 0;
    for (const m of inbound.messages) {
      if (!isRequest(m)) continue;
      const ex = requests[r++];
      // A large batch is decided in slices, each in a turn of its own (README: Limits).
      if (performance.now() - sliceStart > SLICE_MS) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        sliceStart = performance.now();
      }
      const why = invalid?.get(ex);
      const verdict = why === undefined ? await this.decide(ex) : await this.decideInvalid(ex, why);
      if (verdict === undefined) {
        admitted.push(ex as Forwarded);
        continue;
      }
      if (verdict.status !== undefined) {
        // The whole HTTP request is answered with the status: every request of it not refused
        // already was refused now, and none of its ids stays reserved.
        for (const q of requests) {
          if (invalid?.has(q) !== true) inFlight.release(q.id!);
          if (!decided.has(q)) this.refused(q, verdict);
        }
        this.logWarnings(warnings, requests.length);
        const error = (id: unknown) => jsonRpcErrorBody(verdict.code, verdict.message, id, verdict.data);
        const body = inbound.isBatch ? `[${requests.map((q) => error(q.id)).join(',')}]` : error(ex.id);
        return { forward: undefined, refusals: [], reject: { status: verdict.status, headers: verdict.headers ?? {}, body }, exchanges: [] };
      }
      if (why === undefined) inFlight.release(ex.id!);
      decided.add(ex);
      this.refused(ex, verdict);
      if (verdict.warn !== undefined) warnings.push(verdict.warn);
      const line = jsonRpcErrorBody(verdict.code, verdict.message, ex.id, verdict.data);
      refused.set(m, { id: ex.id, line });
    }
    this.logWarnings(warnings, requests.length);
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

  /** An invalid request: counted by the hooks that count every request; `-32600` unless one answers the whole HTTP request. */
  private async decideInvalid(ex: Exchange, why: string): Promise<Verdict> {
    for (const hook of this.invalidHooks) {
      if (!applies(hook, ex)) continue;
      const verdict = await hook.request!(ex);
      if (verdict?.status !== undefined) return verdict;
    }
    return { code: JsonRpcCode.InvalidRequest, message: why };
  }

  /** One `WARN` per kind of refusal of an HTTP request: the first one's fields, and how many there were. */
  private logWarnings(warnings: NonNullable<Verdict['warn']>[], batch: number): void {
    if (warnings.length === 0) return;
    if (warnings.length === 1) {
      this.logger.warn(warnings[0].message, warnings[0].fields);
      return;
    }
    const byMessage = new Map<string, { fields: LogFields; count: number }>();
    for (const w of warnings) {
      const seen = byMessage.get(w.message);
      if (seen === undefined) byMessage.set(w.message, { fields: w.fields, count: 1 });
      else seen.count++;
    }
    for (const [message, { fields, count }] of byMessage) this.logger.warn(message, count === 1 ? fields : { ...fields, count, batch });
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

  /** A refusal decided by another pipeline (an aggregate's, which counts client requests once), for this one's observers. */
  observeRefusal(ex: Exchange, verdict: Verdict, durationMs: number): void {
    for (const hook of this.refusedHooks) this.run('refused', ex, () => hook.refused!(ex, verdict, durationMs));
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
    aggregate: base.aggregate,
    token: base.token,
    subject: base.subject,
    sessionId: base.sessionId,
    route: base.route,
    upstream: base.upstream,
    protocolVersion: base.protocolVersion,
    method: m.method!,
    id: m.id as JsonRpcId | null,
    params: m.params,
    startedAt,
  };
}

/** Client ids in log lines are the client's text: bounded. */
const MAX_LOGGED_ID = 64;
/**
 * Requests of a session whose client stream went away before the answer, kept so that a resumed
 * stream can still bring it (MCP Streamable HTTP §Resumability and Redelivery); beyond this many,
 * the oldest is given up.
 */
const MAX_ABANDONED = 1000;

function idInUse(id: JsonRpcId): string {
  const shown = JSON.stringify(id);
  return `Invalid Request: request id ${shown.length > MAX_LOGGED_ID ? `${shown.slice(0, MAX_LOGGED_ID)}…` : shown} is already in use in this session`;
}

/**
 * The requests of one session (or of one HTTP exchange without a session) still waiting for
 * their answers, by the client's id. The pipeline reserves each id here when it admits the
 * request; the answer point matches each server response to its request here, and a response to
 * no request waiting here is dropped, never relayed: a response reaches the client only through
 * the hooks of the request it answers. Whatever is left when the session or exchange ends is
 * reported as failed.
 */
export class InFlight {
  private readonly byId = new Map<JsonRpcId, Forwarded>();
  /** Ids whose client stream went away; they fail as `client_gone` unless a resumed stream brings their answer. */
  private abandoned: Set<JsonRpcId> | undefined;
  private droppedAnswers = 0;

  constructor(
    private readonly pipeline: Pipeline,
    /** Whose requests these are, for the log line of a dropped answer. */
    private readonly about: { readonly server: string; readonly token: string },
  ) {}

  has(id: JsonRpcId): boolean {
    return this.byId.has(id);
  }

  /** Takes `ex.id` for `ex`; false when the id is already waiting for an answer. */
  reserve(ex: Forwarded): boolean {
    if (this.byId.has(ex.id)) return false;
    this.byId.set(ex.id, ex);
    return true;
  }

  /** Gives an id back without a report: its request was refused, or its answer passed unread. */
  release(id: JsonRpcId): void {
    this.byId.delete(id);
    this.abandoned?.delete(id);
  }

  /**
   * The answer point for one server message: the text to send on, or `undefined` when it is a
   * response to no request waiting here, which must be dropped.
   */
  answer(message: JsonRpcMessage, line: string): string | undefined {
    if (message.method !== undefined) return line;
    const id = message.id;
    const ex = id === undefined || id === null ? undefined : this.byId.get(id);
    if (ex === undefined) {
      this.dropped(id);
      return undefined;
    }
    this.release(ex.id);
    return this.pipeline.answer(ex, message, line);
  }

  /**
   * The client stream that was to carry these answers went away. They stay reserved, since a
   * resumed stream may still deliver them; if none does, they fail as `client_gone` with the
   * session.
   */
  abandon(ids: readonly JsonRpcId[]): void {
    const abandoned = (this.abandoned ??= new Set());
    for (const id of ids) if (this.byId.has(id)) abandoned.add(id);
    for (const id of abandoned) {
      if (abandoned.size <= MAX_ABANDONED) break;
      this.fail(id, 'client_gone');
    }
  }

  fail(id: JsonRpcId, outcome: FailureOutcome, fields?: LogFields): void {
    const ex = this.byId.get(id);
    if (ex === undefined) return;
    const gone = this.abandoned?.has(id) === true;
    this.release(id);
    this.pipeline.fail(ex, gone ? 'client_gone' : outcome, fields);
  }

  failAll(outcome: FailureOutcome, fields?: LogFields): void {
    for (const id of [...this.byId.keys()]) this.fail(id, outcome, fields);
  }

  get size(): number {
    return this.byId.size;
  }

  /** A response to nothing waiting: a replay, a late answer to a failed request, or an upstream's mistake. */
  private dropped(id: unknown): void {
    this.droppedAnswers++;
    const shown = String(JSON.stringify(id ?? null)).slice(0, MAX_LOGGED_ID);
    if (this.droppedAnswers === 1) {
      this.pipeline.logger.warn('dropped an answer to no pending request', { server: this.about.server, token: this.about.token, id: shown });
    } else {
      log('%s: dropped answer %d (id %s)', this.about.server, this.droppedAnswers, shown);
    }
  }
}

/** The `MCP-Protocol-Version` header of a request (MCP 2025-06-18 §Protocol Version Header). */
export function protocolVersionHeader(headers: Record<string, string | string[] | undefined>): string | undefined {
  const v = headers['mcp-protocol-version'];
  return Array.isArray(v) ? v[0] : v;
}
