// The session events, for whoever wants them: the default logs one line each (README: Logs and
// debugging); metrics, tracing or an audit log are another observer.
import type { LogFields, Logger } from '../types';

/** The client's transport: legacy HTTP+SSE, Streamable HTTP, or stateless 2026-07-28 requests. */
export type SessionKind = 'sse' | 'streamable' | 'stateless';

/**
 * What the session reaches: a stdio child, a remote server over either HTTP transport, or the
 * members of an aggregate (README: Aggregates), whose own kinds are their requests' `upstream`.
 */
export type UpstreamKind = 'stdio' | 'sse' | 'streamable-http' | 'aggregate';

export interface SessionInfo {
  readonly id: string;
  /** Name of the server it belongs to. */
  readonly server: string;
  /** Name of the token that opened it. */
  readonly token: string;
  readonly kind: SessionKind;
  readonly upstream: UpstreamKind;
  /** More fields of its log lines, e.g. the child's `pid`. */
  readonly fields: LogFields;
}

/** Told when a session starts (the client was given its id) and when it has ended. */
export interface SessionObserver {
  sessionStarted(info: SessionInfo): void;
  sessionEnded(info: SessionInfo, reason: string): void;
}

/** The default observer: `session started` / `session ended` at `info`, never the session id. */
export function loggingObserver(logger: Logger): SessionObserver {
  const fields = (info: SessionInfo): LogFields => ({
    server: info.server,
    token: info.token,
    transport: info.kind,
    upstream: info.upstream,
    ...info.fields,
  });
  return {
    sessionStarted: (info) => logger.info('session started', fields(info)),
    sessionEnded: (info, reason) => logger.info('session ended', { ...fields(info), reason }),
  };
}
