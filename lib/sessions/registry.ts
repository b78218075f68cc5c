// Every live session, whatever its transport, bound to the token that opened it, and every
// request or stream of a token that is still on its way to becoming one (or to its answer).
// One table so that reload() can revoke and close() can end them all in one walk: a token
// revoked while a stream is starting must not get a live session a moment later.
import type { HttpError } from '../wire/errors';

export type SessionKind = 'sse' | 'streamable';

export interface Session {
  readonly id: string;
  readonly kind: SessionKind;
  /** Name of the server it belongs to. */
  readonly server: string;
  /** Name of the token that opened it. */
  readonly token: string;
  /**
   * Ends the session: open streams closed, the upstream told (`DELETE`) or the child stopped.
   * Idempotent; resolves when everything it owned is gone. Must remove itself from the registry.
   */
  close(reason: string): Promise<void>;
}

/**
 * A request or stream that carries a token but is not (yet) a registered session: a legacy SSE
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
}

const keyOf = (server: string, kind: SessionKind, id: string) => `${server}\u0000${kind}\u0000${id}`;

export class SessionRegistry {
  private readonly sessions = new Map<string, Session>();
  private readonly inFlight = new Set<InFlight>();

  /**
   * Registers a request or stream from its first byte; call the returned function once it is a
   * registered session or answered. Idempotent.
   */
  track(entry: InFlight): () => void {
    this.inFlight.add(entry);
    return () => void this.inFlight.delete(entry);
  }

  /** Requests and streams tracked and not yet done: for leak tests and diagnostics. */
  get inFlightCount(): number {
    return this.inFlight.size;
  }

  add(session: Session): void {
    this.sessions.set(keyOf(session.server, session.kind, session.id), session);
  }

  /** Removes this very session (not a newer one that reused the key). */
  remove(session: Session): void {
    const key = keyOf(session.server, session.kind, session.id);
    if (this.sessions.get(key) === session) this.sessions.delete(key);
  }

  /**
   * The session, or `undefined` when it is unknown *or* belongs to another token: both answer
   * `404`, so a token cannot learn that another token's session exists.
   */
  find(server: string, kind: SessionKind, id: string, token: string): Session | undefined {
    const session = this.sessions.get(keyOf(server, kind, id));
    return session && session.token === token ? session : undefined;
  }

  get size(): number {
    return this.sessions.size;
  }

  list(): Session[] {
    return [...this.sessions.values()];
  }

  /**
   * Aborts every request or stream in flight matching `predicate` (answering `error`), then closes
   * every session matching it, and waits for all of them.
   */
  async closeWhere(predicate: (s: { server: string; token: string }) => boolean, reason: string, error: HttpError): Promise<void> {
    const aborted = [...this.inFlight].filter(predicate);
    for (const entry of aborted) {
      this.inFlight.delete(entry);
      entry.abort(reason, error);
    }
    const doomed = this.list().filter(predicate);
    await Promise.allSettled(doomed.map((s) => s.close(reason)));
    for (const s of doomed) this.remove(s);
  }
}
