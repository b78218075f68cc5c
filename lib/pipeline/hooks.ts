// The extension seam of the message pipeline: a policy, a limit, a metric or an audit trail is one
// module implementing `PipelineHook`, plugged into the router, never edits across the transports.
import type { JsonRpcMessage } from '../wire/body';
import type { LogFields } from '../types';
import type { HoldFailure, ProofFailure } from '../auth/authenticate';

import type { SessionInfo, SessionKind, UpstreamKind } from '../sessions/observer';

export type { SessionInfo, UpstreamKind } from '../sessions/observer';

/** The client's transport: legacy HTTP+SSE, a Streamable HTTP session, or a stateless 2026-07-28 request. */
export type ClientRoute = SessionKind;

export type JsonRpcId = string | number;

/** One JSON-RPC request on its way through the proxy (JSON-RPC 2.0 §4: a message with a method and an id). */
export interface Exchange {
  /** The server the request goes to: for a request through an aggregate, the member. */
  readonly server: string;
  /** The aggregate the client addressed, when it did (README: Aggregates); `server` is then its member. */
  readonly aggregate?: string;
  /** Name of the authenticated token (or OAuth principal), never its value. */
  readonly token: string;
  /** The OAuth user (`sub`) of an access token; absent for static tokens. */
  readonly subject?: string;
  /** The session the client presented or was given, when there is one. */
  readonly sessionId: string | undefined;
  readonly route: ClientRoute;
  readonly upstream: UpstreamKind;
  readonly method: string;
  /**
   * The client's own id. `null` only on a request the pipeline itself refuses as invalid (MCP base
   * protocol: a request id MUST NOT be null), which a hook sees in `refused` and, with
   * `countsInvalid`, in `request`.
   */
  readonly id: JsonRpcId | null;
  /** The client's params, as sent: hooks read them, never change them. */
  readonly params: Readonly<Record<string, unknown>> | undefined;
  /** `MCP-Protocol-Version` of the HTTP request, or the 2026-07-28 `_meta` version. */
  readonly protocolVersion: string | undefined;
  /** `performance.now()` when the proxy took the request. */
  readonly startedAt: number;
}

/** A request that went on to the server: its id is one the client can be answered for. */
export type Forwarded = Exchange & { readonly id: JsonRpcId };

/** Everything of an exchange that the HTTP request decides, before its messages are read. */
export type ExchangeBase = Pick<Exchange, 'server' | 'token' | 'subject' | 'sessionId' | 'route' | 'upstream' | 'protocolVersion'> & { readonly aggregate?: string };

/**
 * A request answered by the proxy itself, with a JSON-RPC error (JSON-RPC 2.0 §5.1); it never
 * reaches the server. With `status`, the whole HTTP request is answered with that status and
 * `headers` instead (e.g. `429` and `Retry-After`, RFC 6585 §4), whatever else it carried.
 */
export interface Verdict {
  code: number;
  message: string;
  data?: unknown;
  status?: number;
  headers?: Record<string, string>;
  /**
   * The `WARN` line this refusal deserves. The pipeline writes it: one line for a request, and one
   * line with `count=` and `batch=` for every refusal of a batch with the same message, so that a
   * batch of a thousand refused calls is one line, not a thousand.
   */
  warn?: { message: string; fields: LogFields };
}

/** Why a request ended without an answer from the server. */
export type FailureOutcome = 'timeout' | 'upstream_error' | 'session_closed' | 'client_gone';

export interface UpstreamErrorInfo {
  server: string;
  /** The token whose request or session met it, when one did. */
  token?: string;
  /** The errno code, `UPSTREAM_TIMEOUT`, `STREAM_ENDED` or `HTTP_<status>`. */
  code: string;
  /** The status the client got, when it could still get one. */
  status: number | undefined;
  /** The upstream answered a client message with a `4xx` that judges the message itself. */
  refused?: boolean;
}

/** One module of the pipeline. Every method is optional; hooks run in the order they were given. */
export interface PipelineHook {
  /**
   * `false`: nothing configured for this server and token, so `request` and `answer` are skipped
   * for it, and an answer nobody looks at can pass through unread. Default: always applies.
   */
  appliesTo?(base: ExchangeBase): boolean;
  /** Decides one request; `undefined` lets it through. A batch's requests are decided one by one. */
  request?(ex: Exchange): Verdict | undefined | Promise<Verdict | undefined>;
  /**
   * `request` also sees the requests the pipeline refuses as invalid (a null id, an id already in
   * flight in the session), and only a verdict with a `status` counts for them: a rate limit
   * counts them like any request (README: Limits per token).
   */
  countsInvalid?: boolean;
  /**
   * Sees the response to `ex` on its way back; a returned message replaces it (that one message is
   * serialized again), `undefined` keeps the server's bytes.
   */
  answer?(ex: Exchange, response: JsonRpcMessage, durationMs: number): JsonRpcMessage | undefined;
  /** `ex` ended without an answer from the server: the client got the proxy's error, or nothing. */
  failed?(ex: Exchange, outcome: FailureOutcome, durationMs: number, fields?: LogFields): void;
  sessionStarted?(info: SessionInfo): void;
  sessionEnded?(info: SessionInfo, reason: string): void;
  /** An upstream failed a request or stream (refused, unreachable, too slow, a bad answer). */
  upstreamError?(info: UpstreamErrorInfo): void;
  /**
   * `ex` was answered by the proxy itself: a hook's `verdict` refused it, or refused the batch it
   * was part of. It never reached the server, and no `answer` or `failed` follows.
   */
  refused?(ex: Exchange, verdict: Verdict, durationMs: number): void;
  /** A request to a route failed authentication (RFC 6750 §3.1), before any exchange exists. */
  authFailed?(reason: AuthFailureReason): void;
  /** `reload()` took a new configuration, or refused it. */
  configReloaded?(result: 'success' | 'failure'): void;
}

/**
 * Why a request was refused before reaching a server: the words of `auth failed reason=…` — no,
 * a malformed, an unknown or an expired token, an authorization server that could not be asked
 * (README: Authentication and status codes), a valid credential the server does not accept (an
 * access token for another server, matching no principal, lacking a scope, a token the server
 * does not list), or a client over its budget of failed authentications.
 */
export type AuthFailureReason = ProofFailure | HoldFailure | 'throttled';
