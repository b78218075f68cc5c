// The bridge of a remote server: clients of the *other* HTTP transport than the upstream's get
// one upstream session each, over a channel (README: Bridges between the two HTTP transports).
import type { RemoteServer } from '../config';
import type { Channel } from '../bridge/channel';
import { FrontSessions } from '../bridge/front-sessions';
import type { UpstreamErrorInfo } from '../pipeline/hooks';
import type { TransportDeps } from '../transport';
import { IDLE_SESSION_MS } from './passthrough-session';

/** Builds the channel of one bridged session; upstream failures of it go to `report`. */
type NewChannel = (maxEventBytes: number, report: (info: UpstreamErrorInfo) => void) => Channel;

/**
 * Bridged sessions of one remote server. Sessions end after the remote idle timeout (MCP SDK
 * clients never send `DELETE`), with no `maxSessions`: the upstream bounds its own sessions.
 */
export function remoteBridge(server: RemoteServer, deps: TransportDeps, upstream: 'sse' | 'streamable-http', newChannel: NewChannel): FrontSessions {
  return new FrontSessions(
    {
      server: server.name,
      timeoutMs: server.timeoutMs,
      idleTimeoutMs: IDLE_SESSION_MS,
      maxSessions: Infinity,
      noun: 'upstream',
      logPrefix: 'bridged',
      upstream,
      newChannel: (token, proxy) => newChannel(proxy.maxEventBytes, (info) => deps.pipeline.upstreamError({ ...info, token })),
    },
    deps,
  );
}
