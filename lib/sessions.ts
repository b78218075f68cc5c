// Every live session, whatever its transport, bound to the token that opened it (CONTRACT §5).
// One table so that reload() can revoke and close() can end them all in one place.

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

const keyOf = (server: string, kind: SessionKind, id: string) => `${server}\u0000${kind}\u0000${id}`;

export class SessionRegistry {
  private readonly sessions = new Map<string, Session>();

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

  /** Closes every session matching `predicate` and waits for all of them. */
  async closeWhere(predicate: (s: Session) => boolean, reason: string): Promise<void> {
    const doomed = this.list().filter(predicate);
    await Promise.allSettled(doomed.map((s) => s.close(reason)));
    for (const s of doomed) this.remove(s);
  }
}
