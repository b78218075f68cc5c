// 2026-07-28 stateless requests on an aggregate (README: Aggregates; docs/protocol-2026-07-28.md).
// A modern request stands alone, but an aggregate's members are sessions: mcp-front serves the
// request itself, over member sessions it keeps for each token (and client capabilities), in the
// registry like any session — so members need not speak 2026-07-28. `Mcp-Name` was checked
// against the body at the edge (`readInbound`); the body's name is rewritten for the member on
// the way, as in a session.
import type { ServerResponse } from 'node:http';
import type { JsonRpcMessage } from '../wire/body';
import { HttpError, JsonRpcCode, sendHttpError, sendJsonRpcError, shuttingDown } from '../wire/errors';
import { CLIENT_CAPABILITIES, LEGACY_VERSIONS, MODERN_VERSION, UNSUPPORTED_VERSION, type Classification } from '../wire/revisions';
import type { StatelessRequests } from '../bridge/front-options';
import type { Exchange, JsonRpcId } from '../pipeline/hooks';
import type { SessionHandle, SessionRegistry } from '../sessions/registry';
import type { RequestContext } from '../transport';
import type { Logger } from '../types';
import { AggregateChannel, type AggregateShared } from './aggregate-channel';

/** The modern versions an aggregate serves. */
const MODERN = [MODERN_VERSION];
/** The `_meta` keys of the 2026-07-28 envelope: the aggregate's, not the members' (they are in sessions). */
const ENVELOPE = 'io.modelcontextprotocol/';
/** Member sessions kept per token, one per set of client capabilities; the least recently used goes beyond. */
const MAX_PER_TOKEN = 4;

type Waiter = (message: JsonRpcMessage) => void;

/** One set of member sessions, serving the modern requests of one token with one set of capabilities. */
class SharedAggregate {
  readonly channel: AggregateChannel;
  handle: SessionHandle | undefined;
  private next = 0;
  /** The aggregate's merged `initialize` result, for `server/discover`. */
  init: Record<string, unknown> = {};
  private readonly waiting = new Map<JsonRpcId, Waiter>();
  ready: Promise<void>;

  constructor(
    shared: AggregateShared,
    ctx: RequestContext,
    private readonly onClosed: (reason: string) => void,
  ) {
    this.channel = new AggregateChannel(shared, ctx);
    this.ready = Promise.resolve();
  }

  async open(id: string, capabilities: unknown, clientInfo: unknown): Promise<void> {
    await this.channel.open({
      message: (_line, message) => this.fromChannel(message),
      closed: (reason) => this.onClosed(reason),
      session: { id, route: 'stateless' },
    });
    const init = await this.request('initialize', { protocolVersion: LEGACY_VERSIONS[0], capabilities: legacyCapabilities(capabilities), clientInfo: clientInfo ?? { name: 'mcp-front', version: '1' } });
    if (init.error !== undefined) throw new HttpError(502, JsonRpcCode.ServerError, `Bad Gateway: ${(init.error as { message?: string }).message ?? 'initialize failed'}`);
    this.init = (init.result ?? {}) as Record<string, unknown>;
    await this.channel.send(Buffer.alloc(0), [{ jsonrpc: '2.0', method: 'notifications/initialized' }]);
  }

  /** One request through the channel under an id of its own (clients' ids may collide). */
  request(method: string, params: Record<string, unknown> | undefined): Promise<JsonRpcMessage> {
    const id = `s${this.next++}`;
    const answered = new Promise<JsonRpcMessage>((resolve) => this.waiting.set(id, resolve));
    void this.channel.send(Buffer.alloc(0), [{ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) }]).catch((err: unknown) => {
      const waiter = this.waiting.get(id);
      this.waiting.delete(id);
      waiter?.({ jsonrpc: '2.0', id, error: { code: JsonRpcCode.ServerError, message: (err as Error).message } });
    });
    return answered;
  }

  fail(message: string): void {
    for (const [id, waiter] of this.waiting) waiter({ jsonrpc: '2.0', id, error: { code: JsonRpcCode.ServerError, message } });
    this.waiting.clear();
  }

  private fromChannel(message: JsonRpcMessage): void {
    if (message.method === undefined) {
      const waiter = this.waiting.get(message.id as JsonRpcId);
      this.waiting.delete(message.id as JsonRpcId);
      waiter?.(message);
      return;
    }
    // A stateless client takes no requests (2026-07-28 has multi round-trip results instead): a
    // member's sampling, elicitation or roots request is refused at once rather than left waiting.
    if (message.id !== undefined && message.id !== null) {
      void this.channel.send(Buffer.alloc(0), [{ jsonrpc: '2.0', id: message.id, error: { code: -32601, message: 'Method not found: a stateless 2026-07-28 client takes no requests' } }]).catch(() => undefined);
    }
  }
}

export class StatelessAggregate implements StatelessRequests {
  private closed = false;
  private readonly live = new Map<string, SharedAggregate>();

  constructor(
    private readonly shared: AggregateShared,
    private readonly sessions: SessionRegistry,
    private readonly logger: Logger,
    private readonly idleTimeoutMs: number,
  ) {}

  async handle(res: ServerResponse, ctx: RequestContext, classified: Extract<Classification, { kind: 'modern' }>, flight: Exchange | undefined): Promise<void> {
    const { message, version } = classified;
    if (message.id === undefined || message.id === null || flight === undefined) {
      res.writeHead(202).end();
      return;
    }
    const id = message.id as JsonRpcId;
    if (!MODERN.includes(version)) {
      return sendJsonRpcError(res, 400, UNSUPPORTED_VERSION, `Unsupported protocol version: ${version}`, { id, data: { supported: MODERN, requested: version } });
    }
    const params = (message.params ?? {}) as Record<string, unknown>;
    const meta = (params._meta ?? {}) as Record<string, unknown>;
    try {
      if (this.closed) throw shuttingDown(this.shared.aggregate.name);
      const target = await this.sharedFor(ctx, meta[CLIENT_CAPABILITIES], meta[`${ENVELOPE}clientInfo`]);
      target.handle?.busy();
      let answer: JsonRpcMessage;
      try {
        answer = message.method === 'server/discover' ? discovered(target.init) : await target.request(message.method!, withoutEnvelope(params));
      } finally {
        target.handle?.idle();
      }
      const body = JSON.stringify({ ...answer, id });
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }).end(body);
    } catch (err) {
      if (res.headersSent) return;
      if (err instanceof HttpError) sendHttpError(res, err, id);
      else sendJsonRpcError(res, 502, JsonRpcCode.ServerError, `Bad Gateway: aggregate "${this.shared.aggregate.name}" failed`, { id });
    }
  }

  /** The member sessions of this token and these capabilities, opened on first use. */
  private async sharedFor(ctx: RequestContext, capabilities: unknown, clientInfo: unknown): Promise<SharedAggregate> {
    const key = `${ctx.identity}\n${JSON.stringify(capabilities ?? {})}`;
    const found = this.live.get(key);
    if (found !== undefined && !(found.handle?.ending ?? false)) {
      await found.ready;
      return found;
    }
    const refused = this.sessions.refusal(ctx.token, this.shared.aggregate.name);
    if (refused) throw refused;
    this.evictBeyond(ctx.identity);
    const target = new SharedAggregate(this.shared, ctx, (reason) => void target.handle?.end(reason));
    target.handle = this.sessions.open({
      server: this.shared.aggregate.name,
      kind: 'stateless',
      upstream: 'aggregate',
      token: ctx.token,
      identity: ctx.identity,
      owner: this,
      subject: target,
      idleTimeoutMs: this.idleTimeoutMs,
      fields: () => target.channel.logFields,
      teardown: async (reason) => {
        if (this.live.get(key) === target) this.live.delete(key);
        target.fail(`session closed: ${reason}`);
        await target.channel.close();
      },
    });
    this.live.set(key, target);
    target.ready = target.open(target.handle.id, capabilities, clientInfo);
    try {
      await target.ready;
    } catch (err) {
      void target.handle.end(`members unavailable (${(err as Error).message})`);
      throw err;
    }
    target.handle.start();
    target.handle.idle();
    return target;
  }

  private evictBeyond(identity: string): void {
    const mine = [...this.live.entries()].filter(([k]) => k.startsWith(`${identity}\n`));
    if (mine.length < MAX_PER_TOKEN) return;
    const [, oldest] = mine.sort(([, a], [, b]) => (a.handle?.lastUsed ?? 0) - (b.handle?.lastUsed ?? 0))[0];
    this.logger.debug('stateless aggregate sessions evicted', { aggregate: this.shared.aggregate.name });
    void oldest.handle?.end('evicted: more client capabilities than kept per token');
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.sessions.closeOwned(this, 'server closed');
  }
}

/** `server/discover` (2026-07-28 §Versioning): the aggregate's own, from its merged `initialize`. */
function discovered(init: Record<string, unknown>): JsonRpcMessage {
  const { capabilities, instructions, serverInfo } = init;
  return {
    jsonrpc: '2.0',
    result: {
      supportedVersions: MODERN,
      capabilities: capabilities ?? {},
      ...(instructions === undefined ? {} : { instructions }),
      resultType: 'complete',
      _meta: { [`${ENVELOPE}serverInfo`]: serverInfo },
    },
  };
}

/** The params of a modern request as a member session takes them: without the 2026-07-28 envelope. */
function withoutEnvelope(params: Record<string, unknown>): Record<string, unknown> {
  const meta = params._meta as Record<string, unknown> | undefined;
  if (meta === undefined) return params;
  const kept = Object.fromEntries(Object.entries(meta).filter(([k]) => !k.startsWith(ENVELOPE)));
  const { _meta: _, ...rest } = params;
  return Object.keys(kept).length === 0 ? rest : { ...rest, _meta: kept };
}

/** A stateless client answers no server requests: its capabilities for them are not passed on. */
function legacyCapabilities(capabilities: unknown): Record<string, unknown> {
  if (typeof capabilities !== 'object' || capabilities === null) return {};
  const { sampling: _s, elicitation: _e, roots: _r, ...rest } = capabilities as Record<string, unknown>;
  return rest;
}
