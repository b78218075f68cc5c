// The server side of one client session of an aggregate (README: Aggregates): a `Channel`, so the
// client side is the bridge's, on both client transports, and the session is one entry of the
// session registry. It owns one member session per visible member and routes every message:
// requests to the member whose prefix they name (rewritten to the member's own names), lists to
// every member (merged), member-initiated requests to the client under ids that name their member,
// and answers back. Each member request passes the message pipeline as a request to that server.
import type { Channel, ChannelEvents } from '../bridge/channel';
import type { JsonRpcMessage } from '../wire/body';
import { HttpError, JsonRpcCode } from '../wire/errors';
import { LEGACY_VERSIONS } from '../wire/revisions';
import { clip, debug } from '../logger';
import type { Pipeline } from '../pipeline/pipeline';
import type { JsonRpcId } from '../pipeline/hooks';
import type { ResolvedAggregate, ResolvedConfig, ResolvedServer } from '../config';
import type { ProxySettings, RequestContext } from '../transport';
import type { Logger, LogFields } from '../types';
import { Member } from './member';
import { Names } from './names';
import { allPages, LISTS, MAX_PAGES, renamed, withClientUris, type ListShape } from './results';
import { mergedInitialize } from './initialize';
import { INVALID_PARAMS, memberError, memberUnavailable, unknownName, type JsonRpcErrorObject } from './errors';

const log = debug.extend('aggregate');

/** JSON-RPC 2.0 §5.1. */
const METHOD_NOT_FOUND = -32601;
/** Retrying a member that is down: from this delay, doubling, up to the next. */
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 10_000;
/** Member-initiated requests awaiting the client's answer, per member; the oldest is forgotten beyond. */
const MAX_REVERSE = 1000;
/** Several clients cap tool names at 64 characters (README: Aggregates). */
const CLIENT_NAME_LIMIT = 64;

/** What every session of one aggregate shares: built once per aggregate transport. */
export interface AggregateShared {
  readonly aggregate: ResolvedAggregate;
  /** The current configuration: a member's `authTokens` are read on every request. */
  config(): ResolvedConfig;
  /** The router's pipeline: member requests pass it as requests to the member. */
  readonly pipeline: Pipeline;
  readonly logger: Logger;
  /** A new, unopened channel to `server` for a member session. */
  memberChannel(server: ResolvedServer, token: string, proxy: ProxySettings): Channel;
  /** Logs a prefixed name over 64 characters once per aggregate. */
  warnLongName(server: string, name: string): void;
}

/** The routed methods: where a request's member-facing name is, and what the client calls it. */
const NAMED: Record<string, { noun: 'tool' | 'prompt' | 'resource'; field: 'name' | 'uri' }> = {
  'tools/call': { noun: 'tool', field: 'name' },
  'prompts/get': { noun: 'prompt', field: 'name' },
  'resources/read': { noun: 'resource', field: 'uri' },
  'resources/subscribe': { noun: 'resource', field: 'uri' },
  'resources/unsubscribe': { noun: 'resource', field: 'uri' },
};

const KINDS = ['tools', 'prompts', 'resources'] as const;

export class AggregateChannel implements Channel {
  private events: ChannelEvents | undefined;
  private members: Member[] = [];
  private names!: Names<Member>;
  /** The client's `initialize` params: members that come back later are initialized with them. */
  private clientInit: Record<string, unknown> | undefined;
  private clientInitialized = false;
  /** The client's `initialize` was answered: from then on, under "fail", a member lost ends the session. */
  private initializeAnswered = false;
  private closing = false;
  /** Which member requests a client request became, for its cancellation. */
  private readonly sentFor = new Map<JsonRpcId, { member: Member; id: JsonRpcId }[]>();
  private readonly retries = new Map<Member, { timer: NodeJS.Timeout | undefined; delayMs: number }>();
  /** Client requests the client cancelled: never answered (MCP: Cancellation). */
  private readonly cancelled = new Set<JsonRpcId>();
  /** `list_changed` kinds to tell the client in the next turn: once per kind, however many members changed. */
  private readonly changed = new Set<string>();

  constructor(
    private readonly shared: AggregateShared,
    private readonly ctx: RequestContext,
  ) {}

  get logFields(): LogFields {
    return Object.assign({}, ...this.members.map((m) => m.logFields));
  }

  private get agg(): ResolvedAggregate {
    return this.shared.aggregate;
  }

  /** Opens every visible member's session in parallel, each within its `timeout`. */
  async open(events: ChannelEvents): Promise<void> {
    this.events = events;
    const config = this.shared.config();
    const route = events.session?.route ?? 'streamable';
    for (const { server: name, prefix } of this.agg.members) {
      const server = config.servers.get(name);
      // A member the token may not use is not opened at all: the client never learns it exists.
      if (server === undefined || !server.authTokens.has(this.ctx.token)) continue;
      const base = { server: name, aggregate: this.agg.name, token: this.ctx.token, subject: this.ctx.subject, sessionId: events.session?.id, route, upstream: server.transport, protocolVersion: undefined };
      this.members.push(new Member(server, prefix, this.shared.pipeline, base, { initiated: (m, line, msg) => this.fromMember(m, line, msg), lost: (m, reason) => this.lost(m, reason) }));
    }
    this.names = new Names(this.members, this.agg.separator);
    const results = await Promise.all(this.members.map((m) => this.connect(m)));
    const failed = this.members.filter((_, i) => results[i] !== undefined);
    if (failed.length > 0 && this.agg.onUnavailable === 'fail') {
      await Promise.all(this.members.map((m) => m.close()));
      throw this.unavailable(failed[0], results[this.members.indexOf(failed[0])]!);
    }
    for (const m of failed) this.retryLater(m);
  }

  /** Opens `member`'s channel within its timeout; the failure's text, or `undefined`. */
  private async connect(member: Member): Promise<string | undefined> {
    const channel = this.shared.memberChannel(member.server, this.ctx.token, this.ctx.proxy);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${member.server.timeoutMs / 1000} s`)), member.server.timeoutMs);
      timer.unref();
    });
    try {
      await Promise.race([member.open(channel), timeout]);
      member.state = 'starting';
      return undefined;
    } catch (err) {
      member.state = 'down';
      void channel.close().catch(() => undefined);
      return (err as Error).message;
    } finally {
      clearTimeout(timer);
    }
  }

  async send(_body: Buffer, messages: JsonRpcMessage[]): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const m of messages) {
      const wait = this.fromClient(m);
      if (wait !== undefined) waits.push(wait);
    }
    await Promise.all(waits);
  }

  pause(): void {
    for (const m of this.members) m.channel?.pause();
  }

  resume(): void {
    for (const m of this.members) m.channel?.resume();
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const r of this.retries.values()) clearTimeout(r.timer);
    this.retries.clear();
    await Promise.all(this.members.map((m) => m.close()));
  }

  // --- client → members ---------------------------------------------------------------------------

  /** One client message; a promise only for what the client's POST must wait for (`initialize`). */
  private fromClient(message: JsonRpcMessage): Promise<void> | undefined {
    const { method, id } = message;
    if (method === undefined) return this.clientAnswer(message);
    if (id === undefined || id === null) return this.clientNotification(method, message.params);
    const params = message.params as Record<string, unknown> | undefined;
    if (method === 'initialize') return this.initialize(id as JsonRpcId, params ?? {});
    void this.request(id as JsonRpcId, method, params).catch((err: unknown) => {
      log('%s: request failed: %s', this.agg.name, (err as Error)?.message);
      this.reply(id as JsonRpcId, { error: { code: JsonRpcCode.InternalError, message: 'Internal error' } });
    });
    return undefined;
  }

  private async request(id: JsonRpcId, method: string, params: Record<string, unknown> | undefined): Promise<void> {
    if (method === 'ping') return this.reply(id, { result: {} });
    const list = LISTS[method];
    if (list !== undefined) return this.list(id, method, list, params);
    if (method === 'logging/setLevel') return this.everyMember(id, method, params);
    if (method === 'completion/complete') return this.complete(id, params);
    const named = NAMED[method];
    if (named === undefined) return this.reply(id, { error: { code: METHOD_NOT_FOUND, message: `Method not found: ${clip(method)}` } });
    const shown = params?.[named.field];
    const target = named.field === 'name' ? this.names.memberOfName(shown) : this.names.memberOfUri(shown);
    if (target === undefined || !this.allowed(target.member)) return this.unknown(id, named.noun, shown);
    await this.routed(id, method, { ...params, [named.field]: target.name }, target.member, named.noun, shown);
  }

  /** `completion/complete`: routed by its `ref` (a prompt's name or a resource template's URI). */
  private async complete(id: JsonRpcId, params: Record<string, unknown> | undefined): Promise<void> {
    const ref = params?.ref as Record<string, unknown> | undefined;
    const byUri = ref?.type === 'ref/resource';
    const shown = byUri ? ref?.uri : ref?.name;
    const target = byUri ? this.names.memberOfUri(shown) : this.names.memberOfName(shown);
    const noun = byUri ? 'resource' : 'prompt';
    if (target === undefined || !this.allowed(target.member)) return this.unknown(id, noun, shown);
    await this.routed(id, 'completion/complete', { ...params, ref: { ...ref, [byUri ? 'uri' : 'name']: target.name } }, target.member, noun, shown);
  }

  /** A request for one member, in its own names; its answer back in the client's. */
  private async routed(id: JsonRpcId, method: string, params: Record<string, unknown>, member: Member, noun: string, shown: unknown): Promise<void> {
    if (member.state !== 'up') return this.reply(id, { error: this.memberError(member, 'unavailable') });
    const outcome = await member.request(method, params, (sent) => this.sentFor.set(id, [{ member, id: sent }]));
    this.sentFor.delete(id);
    if (outcome.kind === 'refused') {
      // A forbidden name reads like an unknown one, as the client sent it (README: Aggregates).
      if (outcome.error.code === INVALID_PARAMS) return this.unknown(id, noun, shown);
      return this.reply(id, { error: outcome.error });
    }
    if (outcome.kind === 'failed') {
      // A cancelled request the member never answered: forgotten, still unanswered (MCP: Cancellation).
      if (outcome.why === 'cancelled') return void this.cancelled.delete(id);
      return this.reply(id, { error: this.memberError(member, outcome.why) });
    }
    const answer = outcome.message;
    if (answer.error !== undefined) return this.reply(id, { error: answer.error });
    const result = withClientUris(method, answer.result, (uri) => this.names.uri(member, uri));
    this.reply(id, { result: result ?? answer.result });
  }

  /** A list: every page of every member that is up, merged in member order, without `nextCursor`. */
  private async list(id: JsonRpcId, method: string, shape: ListShape, params: Record<string, unknown> | undefined): Promise<void> {
    if (params?.cursor !== undefined) {
      return this.reply(id, { error: { code: INVALID_PARAMS, message: 'Invalid params: an aggregate answers a list whole, without pages; send no cursor' } });
    }
    const parts: { member: Member; id: JsonRpcId }[] = [];
    this.sentFor.set(id, parts);
    const pages = await Promise.all(this.members.map((m) => (m.state === 'up' && this.allowed(m) ? this.pagesOf(m, method, shape, parts) : Promise.resolve([]))));
    this.sentFor.delete(id);
    const entries: Record<string, unknown>[] = [];
    this.members.forEach((member, i) => {
      for (const entry of pages[i]) {
        const out = renamed(entry, shape, (name) => (shape.naming === 'name' ? this.names.name(member, name) : this.names.uri(member, name)));
        const name = out[shape.key] as string;
        if (shape.naming === 'name' && name.length > CLIENT_NAME_LIMIT) this.shared.warnLongName(member.server.name, name);
        entries.push(out);
      }
    });
    this.reply(id, { result: { [shape.array]: entries } });
  }

  private async pagesOf(member: Member, method: string, shape: ListShape, parts: { member: Member; id: JsonRpcId }[]): Promise<Record<string, unknown>[]> {
    const { entries, cut, leftOut } = await allPages(member, method, shape, (sent) => parts.push({ member, id: sent }));
    if (leftOut !== undefined) log('%s: %s of %s left out (%s)', this.agg.name, method, member.server.name, leftOut);
    if (cut) this.shared.logger.warn('aggregate member list cut', { aggregate: this.agg.name, server: member.server.name, method, pages: MAX_PAGES });
    return entries;
  }

  /** `logging/setLevel` and the like: every member that is up, one answer once all did. */
  private async everyMember(id: JsonRpcId, method: string, params: Record<string, unknown> | undefined): Promise<void> {
    const parts: { member: Member; id: JsonRpcId }[] = [];
    this.sentFor.set(id, parts);
    await Promise.all(this.members.filter((m) => m.state === 'up' && this.allowed(m)).map((m) => m.request(method, params, (sent) => parts.push({ member: m, id: sent }))));
    this.sentFor.delete(id);
    this.reply(id, { result: {} });
  }

  private async initialize(id: JsonRpcId, params: Record<string, unknown>): Promise<void> {
    this.clientInit = params;
    const candidates = this.members.filter((m) => m.state === 'starting');
    const failures = await Promise.all(candidates.map((m) => this.initializeMember(m)));
    // Under "fail" a member lost before this answer (a child that exited at start) fails it as one
    // that refused does: this 502, naming it, is the one answer the client gets.
    const down = this.agg.onUnavailable === 'fail' ? this.members.find((m) => m.state !== 'up') : undefined;
    if (down !== undefined) {
      const error = this.unavailable(down, failures[candidates.indexOf(down)] ?? 'its session ended');
      // A legacy SSE session outlives its refused POST: it ends too, with every member's.
      setImmediate(() => this.end(`member "${down.server.name}" unavailable`, error.message));
      throw error;
    }
    for (const m of candidates.filter((_, i) => failures[i] !== undefined)) this.retryLater(m);
    this.initializeAnswered = true;
    const requested = params.protocolVersion;
    const version = typeof requested === 'string' && LEGACY_VERSIONS.includes(requested) ? requested : LEGACY_VERSIONS[0];
    this.reply(id, { result: mergedInitialize(this.agg, this.members.filter((m) => m.state === 'up'), version) });
  }

  /** Sends the client's `initialize` to `member`; the failure's text, or `undefined` once it is up. */
  private async initializeMember(member: Member): Promise<string | undefined> {
    const outcome = await member.request('initialize', this.clientInit);
    if (outcome.kind === 'answer' && outcome.message.error === undefined && typeof outcome.message.result === 'object' && outcome.message.result !== null) {
      member.init = outcome.message.result as Record<string, unknown>;
      member.state = 'up';
      if (this.clientInitialized) await member.notify({ jsonrpc: '2.0', method: 'notifications/initialized' });
      return undefined;
    }
    await member.close();
    member.state = 'down';
    if (outcome.kind === 'answer') return `initialize refused: ${clip(String((outcome.message.error as { message?: unknown })?.message))}`;
    return outcome.kind === 'refused' ? `initialize refused: ${clip(outcome.error.message)}` : `initialize ${outcome.why}`;
  }

  /** A client's answer to a member's request: back to that member under its own id, or dropped. */
  private clientAnswer(message: JsonRpcMessage): undefined {
    const member = this.names.memberOfReverseId(message.id);
    const own = member?.reverse.get(message.id as string);
    if (member === undefined || own === undefined) {
      log('%s: dropped an answer for an id never issued', this.agg.name);
      return undefined;
    }
    member.reverse.delete(message.id as string);
    void member.notify({ ...message, id: own });
    return undefined;
  }

  private clientNotification(method: string, params: Record<string, unknown> | undefined): Promise<void> | undefined {
    if (method === 'notifications/initialized') {
      this.clientInitialized = true;
      // The client's next request must not reach a member before this does (a remote member
      // takes each message on a connection of its own): its POST is answered once all took it.
      return Promise.all(this.members.filter((m) => m.state === 'up').map((m) => m.notify({ jsonrpc: '2.0', method }))).then(() => undefined);
    } else if (method === 'notifications/cancelled') {
      // Only the member that owns the request hears of it, under its own id.
      const parts = this.sentFor.get(params?.requestId as JsonRpcId);
      if (parts !== undefined) this.cancelled.add(params!.requestId as JsonRpcId);
      for (const part of parts ?? []) part.member.cancel(part.id, params?.reason);
    } else if (method === 'notifications/roots/list_changed') {
      for (const m of this.members) if (m.state === 'up') void m.notify({ jsonrpc: '2.0', method });
    } else log('%s: client notification %s not routed', this.agg.name, clip(method));
    return undefined;
  }

  // --- members → client ---------------------------------------------------------------------------

  private fromMember(member: Member, line: string, message: JsonRpcMessage): void {
    const { method, id } = message;
    const params = message.params as Record<string, unknown> | undefined;
    if (id !== undefined && id !== null) {
      // A request to the client (sampling, elicitation, roots): an id that names its member.
      const reverse = this.names.reverseId(member, id as JsonRpcId);
      if (member.reverse.size >= MAX_REVERSE) member.reverse.delete(member.reverse.keys().next().value!);
      member.reverse.set(reverse, id as JsonRpcId);
      return this.emit({ ...message, id: reverse });
    }
    const kind = Object.values(LISTS).find((l) => l.changed === method);
    if (kind !== undefined) return this.listChanged(method!);
    if (method === 'notifications/resources/updated' && typeof params?.uri === 'string') {
      return this.emit({ ...message, params: { ...params, uri: this.names.uri(member, params.uri) } });
    }
    if (method === 'notifications/cancelled') {
      // The member gave up a request it sent the client: named as the client knows it.
      const reverse = this.names.reverseId(member, params?.requestId as JsonRpcId);
      if (!member.reverse.delete(reverse)) return;
      return this.emit({ ...message, params: { ...params, requestId: reverse } });
    }
    this.deliver(line, message);
  }

  /** `list_changed` reaches the client once per kind, however many members sent it in one turn. */
  private listChanged(method: string): void {
    if (this.changed.size === 0) {
      setImmediate(() => {
        const kinds = [...this.changed];
        this.changed.clear();
        if (!this.closing) for (const k of kinds) this.emit({ jsonrpc: '2.0', method: k });
      });
    }
    this.changed.add(method);
  }

  /** A member's session ended on its own: with `fail` the client's session ends, else it is retried. */
  private lost(member: Member, reason: string): void {
    if (this.closing) return;
    this.shared.logger.warn('aggregate member unavailable', { aggregate: this.agg.name, server: member.server.name, token: this.ctx.token, reason: clip(reason) });
    if (this.agg.onUnavailable === 'fail') {
      // Before the client's `initialize` is answered, that answer fails instead (initialize()).
      if (!this.initializeAnswered) return;
      return this.end(`member "${member.server.name}" ended`, `Bad Gateway: member "${member.server.name}" of aggregate "${this.agg.name}" ended`);
    }
    for (const k of KINDS) this.listChanged(`notifications/${k}/list_changed`);
    this.retryLater(member);
  }

  /** Tries `member` again later, backing off; once it is up, the client is told its lists changed. */
  private retryLater(member: Member): void {
    if (this.closing || this.retries.get(member)?.timer !== undefined) return;
    const last = this.retries.get(member)?.delayMs;
    const delayMs = last === undefined ? RETRY_FIRST_MS : Math.min(last * 2, RETRY_MAX_MS);
    const entry = { timer: undefined as NodeJS.Timeout | undefined, delayMs };
    this.retries.set(member, entry);
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      void this.retry(member);
    }, delayMs);
    entry.timer.unref();
  }

  private async retry(member: Member): Promise<void> {
    if (this.closing) return;
    const failure = (await this.connect(member)) ?? (this.clientInit === undefined ? undefined : await this.initializeMember(member));
    if (this.closing) return void member.close();
    if (failure !== undefined) return this.retryLater(member);
    this.retries.delete(member);
    if (member.state !== 'up') return; // opened before the client's initialize: that initializes it
    this.shared.logger.info('aggregate member available', { aggregate: this.agg.name, server: member.server.name, token: this.ctx.token });
    for (const k of KINDS) this.listChanged(`notifications/${k}/list_changed`);
  }

  // --- helpers ------------------------------------------------------------------------------------

  /** The member may still be used by this token (a reload may have taken it away). */
  private allowed(member: Member): boolean {
    return this.shared.config().servers.get(member.server.name)?.authTokens.has(this.ctx.token) ?? false;
  }

  private unknown(id: JsonRpcId, noun: string, shown: unknown): void {
    this.reply(id, { error: unknownName(noun, shown) });
  }

  private memberError(member: Member, why: 'unavailable' | 'timeout' | 'closed'): JsonRpcErrorObject {
    return memberError(this.agg.name, member, why);
  }

  private unavailable(member: Member, why: string): HttpError {
    return memberUnavailable(this.agg.name, member, why);
  }

  private end(reason: string, clientMessage: string): void {
    if (this.closing) return;
    this.events?.closed(reason, clientMessage);
  }

  private reply(id: JsonRpcId, body: { result: unknown } | { error: unknown }): void {
    if (this.cancelled.delete(id)) return;
    this.emit({ jsonrpc: '2.0', id, ...body } as JsonRpcMessage);
  }

  private emit(message: JsonRpcMessage): void {
    this.deliver(JSON.stringify(message), message);
  }

  private deliver(line: string, message: JsonRpcMessage): void {
    if (this.closing || this.events === undefined) return;
    this.events.message(line, message);
  }
}
