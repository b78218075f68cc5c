// A member session's channel: the one a bridged session of that server would use, so a member of
// an aggregate is reached exactly as its own route's bridge reaches it (a child per session for
// stdio; one upstream session for a remote server, of its own transport).
import type { Channel } from '../bridge/channel';
import type { ResolvedServer } from '../config';
import { StdioChannel } from '../stdio/stdio-channel';
import { SseUpstreamChannel } from '../remote/sse-channel';
import { StreamableUpstreamChannel } from '../remote/streamable-channel';
import type { ProxySettings, TransportDeps } from '../transport';

export function memberChannel(server: ResolvedServer, deps: TransportDeps, token: string, proxy: ProxySettings): Channel {
  if (server.kind === 'stdio') return new StdioChannel(server, deps.logger, token);
  const report = (info: Parameters<TransportDeps['pipeline']['upstreamError']>[0]) => deps.pipeline.upstreamError({ ...info, token });
  return server.transport === 'sse'
    ? new SseUpstreamChannel(server, deps.logger, proxy.maxEventBytes, report)
    : new StreamableUpstreamChannel(server, deps.logger, proxy.maxEventBytes, report);
}
