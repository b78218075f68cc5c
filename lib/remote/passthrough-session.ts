// A session of a remote Streamable HTTP upstream, passed through (streamable-passthrough.ts), and
// the client requests that belong to it.
import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import { DEFAULTS, type RemoteServer } from '../config';
import type { SessionHandle } from '../sessions/registry';
import type { TransportDeps } from '../transport';
import { InFlight, type Refusal } from '../pipeline/pipeline';
import type { ExchangeBase, JsonRpcId } from '../pipeline/hooks';

/**
 * MCP SDK clients never send DELETE on close(): a session with no open stream and no
 * request for this long is closed (and DELETEd upstream), or sessions would pile up here and
 * upstream. Same default as a stdio server's `idleTimeout`.
 */
export const IDLE_SESSION_MS = DEFAULTS.idleTimeoutMs;

/** The transport a passthrough session belongs to. */
export interface PassthroughOwner {
  readonly server: RemoteServer;
  /** The session's teardown: its requests ended, the upstream told (`DELETE`). */
  closeSession(session: PassthroughSession, reason: string): Promise<void>;
}

/** One client request on its way through the proxy. */
export interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly body: Buffer;
  /** The id of a single request, for the proxy's own error answers. */
  readonly id: unknown;
  /**
   * Where its requests wait for their answers: the session's (`PassthroughSession.inFlight`), or
   * its own for a request without a session. A `GET` stream of a session reads through the
   * session's, since a resumed stream may bring answers to the session's earlier POSTs.
   */
  readonly inFlight: InFlight | undefined;
  /** The ids of the requests this POST forwarded: what it answers for, fails, or gives back. */
  readonly ids: readonly JsonRpcId[];
  /** What the hooks know of its requests, to ask whether any of them looks at answers. */
  readonly base: ExchangeBase;
  /** Its answer is piped unread (no hook looks at answers): its ids are given back when it ends. */
  piped?: boolean;
  /** Requests the pipeline refused: answered in the same response as the forwarded ones. */
  readonly refusals: Refusal[];
  readonly maxEventBytes: number;
  /** Name of the authenticated token. */
  readonly token: string;
  /** Whose sessions it may use (`RequestContext.identity`). */
  readonly identity: string;
  /** `Mcp-Session-Id` the client presented. */
  readonly sessionId: string | undefined;
  session: PassthroughSession | undefined;
  proxyReq?: ClientRequest;
  proxyRes?: IncomingMessage;
  timer?: NodeJS.Timeout;
  /** Answered by the proxy itself (error, timeout, session closed) or the client is gone. */
  done: boolean;
  /** Its token was revoked before it had a session: whatever session the upstream opens is deleted. */
  revoked?: boolean;
  /** Ends its tracking as a request in flight (requests without a session only). */
  untrack?: () => void;
}

/**
 * A session of the upstream, passed through. The client gets an id of ours (the registry's, with
 * the instance prefix when one is set, bound to the token that opened it), mapped to the
 * upstream's on every request: the upstream's id never reaches the client, so it cannot be used
 * to route or to guess, whatever the upstream's ids look like. Every exchange counts as activity
 * for the idle clock.
 */
export class PassthroughSession {
  /** Live requests and streams of this session, ended when it closes. */
  readonly exchanges = new Set<Exchange>();
  /** Sent along with the closing DELETE (MCP 2025-06-18 §Transports: required after init). */
  protocolVersion: string | undefined;
  /** Ended by the client's DELETE or an upstream `404`: there is nothing to tell the upstream. */
  forgotten = false;
  readonly handle: SessionHandle;
  /**
   * The session's requests waiting for their answers, whichever stream brings them: the POST's
   * own, or a `GET` stream that resumes one (MCP Streamable HTTP §Resumability and Redelivery).
   */
  readonly inFlight: InFlight;

  constructor(
    /** The upstream's `Mcp-Session-Id`: sent upstream only. */
    readonly upstreamId: string,
    token: string,
    identity: string,
    owner: PassthroughOwner,
    deps: TransportDeps,
  ) {
    this.handle = deps.sessions.open({
      server: owner.server.name,
      kind: 'streamable',
      upstream: 'streamable-http',
      token,
      identity,
      owner,
      subject: this,
      idleTimeoutMs: IDLE_SESSION_MS,
      teardown: (reason) => owner.closeSession(this, reason),
    });
    this.inFlight = new InFlight(deps.pipeline, { server: owner.server.name, token });
  }

  /** The id its client uses. */
  get id(): string {
    return this.handle.id;
  }

  get token(): string {
    return this.handle.token;
  }

  get identity(): string {
    return this.handle.identity;
  }

  get ended(): boolean {
    return this.handle.ending;
  }

  /** Ends the session here and upstream (`DELETE`); idempotent. */
  close(reason: string): Promise<void> {
    return this.handle.end(reason);
  }
}
