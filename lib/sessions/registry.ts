// Every session, whatever its transport, and every request or stream of a token that is still on
// its way to becoming one (or to its answer). One table owns the ids, the binding to the token,
// lookup, the idle clock, the counts that `maxSessions` needs, revocation and close: reload() can
// revoke and close() can end them all in one walk, and a token revoked while a stream is starting
// does not get a live session a moment later.
import type { HttpError } from '../wire/errors';
import type { LogFields } from '../types';
import { newSessionId } from './ids';
import type { SessionInfo, SessionKind, SessionObserver, UpstreamKind } from './observer';

export type { SessionInfo, SessionKind, SessionObserver, UpstreamKind } from './observer';

/**
 * A request or stream that carries a token but is not (yet) a started session: a legacy SSE
 * stream waiting for its upstream's `endpoint` event, an `initialize` waiting for its answer, a
 * stateless request waiting for its server.
 */
export interface InFlight {
  /** Name of the server it is for. */
  readonly server: string;
  /** Name of the token it carries. */
  readonly token: string;
  /**
   * Ends it now: the client is answered with `error` (or its stream ended) and whatever it
   * started on the server side is undone. Called at most once.
   */
  abort(reason: string, error: HttpError): void;
  /** It becomes a session when it succeeds (an `initialize`, a legacy SSE stream): counted toward its token's sessions. */
  readonly opening?: boolean;
}

export interface OpenOptions {
  server: string;
  kind: SessionKind;
  upstream: UpstreamKind;
  /** Name of the token (or OAuth principal) that opens it. */
  token: string;
  /**
   * Who finds it again: the token's name, or for an OAuth access token its principal and user
   * (README: OAuth 2.1: another user matching the same principal gets `404`). Default: `token`.
   */
  identity?: string;
  /** The transport that opened it: its counts and its close() cover its own sessions only. */
  owner: object;
  /** The transport's own object for this session, handed back with the handle by `find()`. */
  subject?: unknown;
  /** An id chosen elsewhere (tests); default: a new one, with the instance prefix. */
  id?: string;
  /** Ends after this long with nothing in progress (see `busy()`); default: never. */
  idleTimeoutMs?: number;
  /** More fields of its log lines, read when it starts (a child's `pid`). */
  fields?: () => LogFields;
  /**
   * Releases everything the session holds (streams, the child, the upstream session). Called once,
   * by `end()`; resolves when all of it is gone. Must not reject.
   */
  teardown(reason: string): Promise<void>;
}

/** Orders sessions by last use without clock ties (least recently used = smallest). */
let useClock = 0;

/** One session, as its transport sees it. */
export class SessionHandle implements SessionInfo {
  readonly id: string;
  readonly server: string;
  readonly token: string;
  /** Who finds it (`OpenOptions.identity`). */
  readonly identity: string;
  readonly kind: SessionKind;
  readonly upstream: UpstreamKind;
  readonly owner: object;
  readonly subject: unknown;
  fields: LogFields = {};
  /** Findable, and its client was told its id. */
  started = false;
  /** Set when it starts ending: no longer findable, accepts nothing new. */
  ending = false;
  /** When its client last sent something (a tick of one clock): picks whom to evict. */
  lastUsed = ++useClock;
  private active = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private ended: Promise<void> | undefined;

  constructor(
    private readonly registry: SessionRegistry,
    private readonly options: OpenOptions,
    prefix: string | undefined,
  ) {
    this.id = options.id ?? newSessionId(prefix);
    this.server = options.server;
    this.token = options.token;
    this.identity = options.identity ?? options.token;
    this.kind = options.kind;
    this.upstream = options.upstream;
    this.owner = options.owner;
    this.subject = options.subject;
  }

  /** Its client sent something: now the most recently used. */
  touch(): void {
    this.lastUsed = ++useClock;
  }

  /** A request or stream of it began: the idle clock stops until every one of them is `idle()`. */
  busy(): void {
    this.active++;
    this.stopIdleClock();
  }

  /** One of its requests or streams ended; with none left, the idle clock starts. */
  idle(): void {
    if (this.active > 0) this.active--;
    if (this.active > 0 || this.ending || this.options.idleTimeoutMs === undefined) return;
    this.stopIdleClock();
    this.idleTimer = setTimeout(() => void this.end('idle timeout'), this.options.idleTimeoutMs);
    this.idleTimer.unref();
  }

  /** Counts `res` as activity until it closes. */
  busyUntilClosed(res: NodeJS.EventEmitter): void {
    this.busy();
    res.once('close', () => this.idle());
  }

  /** Makes it findable by its token and tells the observer. */
  start(): void {
    if (this.started || this.ending) return;
    this.started = true;
    this.fields = this.options.fields?.() ?? {};
    this.registry.publish(this);
  }

  /** Ends it: unfindable at once, then torn down, then uncounted. Idempotent. */
  end(reason: string): Promise<void> {
    this.ended ??= this.finish(reason);
    return this.ended;
  }

  private async finish(reason: string): Promise<void> {
    this.ending = true;
    this.stopIdleClock();
    this.registry.unpublish(this);
    try {
      await this.options.teardown(reason);
    } finally {
      this.registry.release(this, reason);
    }
  }

  private stopIdleClock(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }
}

const keyOf = (server: string, kind: SessionKind, id: string) => `${server}\u0000${kind}\u0000${id}`;

const quiet: SessionObserver = { sessionStarted: () => undefined, sessionEnded: () => undefined };

export interface RegistryOptions {
  observer?: SessionObserver;
  /** Prefix of every id minted here (`<instanceId>.`); default: none. */
  instanceId?: string;
  /**
   * The per-token session limit: given the sessions `token` holds (or is opening) on every
   * server, the error that refuses one more, or `undefined`. Default: no limit.
   */
  limit?: (token: string, held: number, server: string) => HttpError | undefined;
}

export class SessionRegistry {
  /** Started sessions, by server, kind and id. */
  private readonly byKey = new Map<string, SessionHandle>();
  /** Every session from `open()` until its teardown is done: what `maxSessions` counts. */
  private readonly all = new Set<SessionHandle>();
  private readonly inFlight = new Set<InFlight>();
  private readonly observer: SessionObserver;
  private instanceId: string | undefined;
  private readonly limit: RegistryOptions['limit'];

  constructor(options: RegistryOptions = {}) {
    this.observer = options.observer ?? quiet;
    this.instanceId = options.instanceId;
    this.limit = options.limit;
  }

  /**
   * May `token` open one more session (on `server`)? The error to answer with when not. Counts
   * every session of the token from `open()` until its teardown is done, and every request or
   * stream of it on its way to becoming one, so concurrent openings cannot overshoot. Every place
   * that opens a session asks this first, in the same tick as its `open()` or its `track()`.
   */
  refusal(token: string, server: string): HttpError | undefined {
    if (this.limit === undefined) return undefined;
    let held = 0;
    for (const h of this.all) if (h.token === token) held++;
    for (const f of this.inFlight) if (f.opening && f.token === token) held++;
    return this.limit(token, held, server);
  }

  /** Prefix of the ids minted from now on (a reload may change it); live sessions keep theirs. */
  setInstanceId(instanceId: string | undefined): void {
    this.instanceId = instanceId;
  }

  /** A new session: counted from now, findable once `start()`ed. */
  open(options: OpenOptions): SessionHandle {
    const handle = new SessionHandle(this, options, this.instanceId);
    this.all.add(handle);
    return handle;
  }

  /**
   * The session, or `undefined` when it is unknown, ending *or* another token's: all answer
   * `404`, so a token cannot learn that another token's session exists.
   */
  find(server: string, kind: SessionKind, id: string, identity: string): SessionHandle | undefined {
    const handle = this.byKey.get(keyOf(server, kind, id));
    return handle && handle.identity === identity ? handle : undefined;
  }

  /** Whether any token holds this id: an upstream must not hand one id to two tokens. */
  has(server: string, kind: SessionKind, id: string): boolean {
    return this.byKey.has(keyOf(server, kind, id));
  }

  /** A started session of `owner` held by `identity`, not ending: a transport with one session per token (or user). */
  findOwned(owner: object, identity: string): SessionHandle | undefined {
    for (const h of this.byKey.values()) if (h.owner === owner && h.identity === identity) return h;
    return undefined;
  }

  /** Sessions of `owner` whose server side may still run (starting, live or ending). */
  countOf(owner: object): number {
    let n = 0;
    for (const h of this.all) if (h.owner === owner) n++;
    return n;
  }

  /**
   * Fair use of a full server (README, `maxSessions`): a new session from a token that holds
   * at least two sessions fewer than the token holding the most ends that token's least recently
   * used session, so that no token can lock the others out by holding every slot. The margin of
   * two makes it settle instead of swapping a slot back and forth: shares converge to within one
   * session of each other, and a token alone on a server may still use every slot.
   */
  evictionFor(owner: object, token: string): SessionHandle | undefined {
    const held = new Map<string, SessionHandle[]>();
    for (const h of this.all) {
      if (h.owner !== owner || h.ending) continue;
      const list = held.get(h.token);
      if (list) list.push(h);
      else held.set(h.token, [h]);
    }
    const mine = held.get(token)?.length ?? 0;
    let victim: SessionHandle | undefined;
    let most = 0;
    for (const [holder, sessions] of held) {
      if (holder === token) continue;
      const lru = sessions.reduce((a, b) => (b.lastUsed < a.lastUsed ? b : a));
      if (sessions.length > most || (sessions.length === most && lru.lastUsed < victim!.lastUsed)) {
        most = sessions.length;
        victim = lru;
      }
    }
    return victim !== undefined && mine + 2 <= most ? victim : undefined;
  }

  /**
   * Registers a request or stream from its first byte; call the returned function once it is a
   * started session or answered. Idempotent.
   */
  track(entry: InFlight): () => void {
    this.inFlight.add(entry);
    return () => void this.inFlight.delete(entry);
  }

  /** Requests and streams tracked and not yet done: for leak tests and diagnostics. */
  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /** Started sessions not ending: for leak tests and diagnostics. */
  get size(): number {
    return this.byKey.size;
  }

  /**
   * Aborts every request or stream in flight matching `predicate` (answering `error`), then ends
   * every session matching it, and waits for all of them.
   */
  async closeWhere(predicate: (s: { server: string; token: string }) => boolean, reason: string, error: HttpError): Promise<void> {
    const aborted = [...this.inFlight].filter(predicate);
    for (const entry of aborted) {
      this.inFlight.delete(entry);
      entry.abort(reason, error);
    }
    await Promise.allSettled([...this.all].filter(predicate).map((h) => h.end(reason)));
  }

  /** Ends every session of `owner` (a transport closing) and waits for all of them. */
  async closeOwned(owner: object, reason: string): Promise<void> {
    await Promise.allSettled([...this.all].filter((h) => h.owner === owner).map((h) => h.end(reason)));
  }

  /** @internal */
  publish(handle: SessionHandle): void {
    this.byKey.set(keyOf(handle.server, handle.kind, handle.id), handle);
    this.observer.sessionStarted(handle);
  }

  /** @internal Removes this very session (not a newer one that reused the key). */
  unpublish(handle: SessionHandle): void {
    const key = keyOf(handle.server, handle.kind, handle.id);
    if (this.byKey.get(key) === handle) this.byKey.delete(key);
  }

  /** @internal */
  release(handle: SessionHandle, reason: string): void {
    if (!this.all.delete(handle)) return;
    if (handle.started) this.observer.sessionEnded(handle, reason);
  }
}
