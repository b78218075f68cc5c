// Many sessions of each kind, ended every way: afterwards no session, no upstream socket in use
// and no child process may be left. Bridged sessions (a client transport the upstream does not
// speak) included.
import { execFileSync } from 'node:child_process';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { liveSessionCount } from '../lib/mcp-front';
import { agentFor } from '../lib/remote/upstream-agent';
import { EventStreamRequest } from '../lib/remote/event-stream-request';
import { connectClient, type ClientTransportKind } from './helpers/clients';
import { configWith, DEV_TOKEN, EVERYTHING, isAlive, startEverything, startFront, waitFor, type Front, type Upstream } from './helpers/servers';

const PER_KIND = 6;

/**
 * Upstream requests still holding a socket (idle keep-alive sockets in the pool are fine), and
 * legacy SSE streams relayed on sockets of their own (remote/event-stream-request.ts).
 */
function upstreamSocketsInUse(): number {
  const agent = agentFor(new URL('http://127.0.0.1'));
  return Object.values(agent.sockets).reduce((n, list) => n + (list?.length ?? 0), 0) + EventStreamRequest.live;
}

/** Direct children of this process that run the reference server. */
function everythingChildren(): number[] {
  const out = execFileSync('ps', ['-eo', 'pid=,ppid=,args='], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    // Ours only: other test files run in parallel workers and spawn the same server.
    .filter(([, ppid, ...args]) => Number(ppid) === process.pid && args.join(' ').includes(EVERYTHING) && args.includes('stdio'))
    .map(([pid]) => Number(pid));
}

describe('no leaks', () => {
  let sse: Upstream;
  let streamable: Upstream;
  let front: Front;

  beforeAll(async () => {
    [sse, streamable] = await Promise.all([startEverything('sse'), startEverything('streamableHttp')]);
    front = await startFront(
      configWith({
        legacy: { url: `${sse.origin}/sse` },
        modern: { url: `${streamable.origin}/mcp` },
        local: { command: process.execPath, args: [EVERYTHING, 'stdio'], idleTimeout: '3s' },
      }),
    );
  });
  afterAll(async () => {
    await front?.close();
    await Promise.all([sse?.close(), streamable?.close()]);
  });

  const open = (server: string, kind: ClientTransportKind) =>
    Promise.all(Array.from({ length: PER_KIND }, () => connectClient(front.url, server, kind, DEV_TOKEN)));

  const roundTrip = (clients: Client[]) =>
    Promise.all(clients.map(async (c, i) => expect(JSON.stringify(await c.callTool({ name: 'echo', arguments: { message: `m${i}` } }))).toContain(`m${i}`)));

  it('remote, bridged and stdio sessions ended by disconnect, DELETE and close() leave nothing behind', async () => {
    const baselineChildren = everythingChildren();

    // Disconnect: SSE clients go away (remote, bridged to Streamable HTTP, and stdio).
    const sseClients = [...(await open('legacy', 'sse')), ...(await open('modern', 'sse')), ...(await open('local', 'sse'))];
    await roundTrip(sseClients);
    expect(liveSessionCount(front.router)).toBe(3 * PER_KIND);
    await Promise.all(sseClients.map((c) => c.close()));
    await waitFor(() => liveSessionCount(front.router) === 0, 'SSE sessions to end after disconnect');

    // DELETE: Streamable HTTP clients terminate their sessions (remote, bridged to legacy SSE, and stdio).
    const streamableClients = [...(await open('modern', 'streamable')), ...(await open('legacy', 'streamable')), ...(await open('local', 'streamable'))];
    await roundTrip(streamableClients);
    expect(liveSessionCount(front.router)).toBe(3 * PER_KIND);
    await Promise.all(streamableClients.map((c) => (c.transport as StreamableHTTPClientTransport).terminateSession()));
    await Promise.all(streamableClients.map((c) => c.close()));
    expect(liveSessionCount(front.router)).toBe(0);

    // Idle: stdio Streamable sessions whose client vanished without DELETE (SDK clients never send it).
    const idle = await open('local', 'streamable');
    const idlePids = everythingChildren().filter((pid) => !baselineChildren.includes(pid));
    expect(idlePids.length).toBeGreaterThanOrEqual(PER_KIND);
    await Promise.all(idle.map((c) => c.close()));
    await waitFor(() => liveSessionCount(front.router) === 0, 'idle stdio sessions to time out');
    // stdin closed, then SIGTERM and SIGKILL 2 s apart: up to about 6 s.
    await waitFor(() => idlePids.every((pid) => !isAlive(pid)), 'idle children to exit');

    // close(): everything still open is ended by the router.
    const left = [
      ...(await open('legacy', 'sse')),
      ...(await open('modern', 'streamable')),
      ...(await open('legacy', 'streamable')),
      ...(await open('modern', 'sse')),
      ...(await open('local', 'sse')),
    ];
    await roundTrip(left);
    const livePids = everythingChildren().filter((pid) => !baselineChildren.includes(pid));
    expect(livePids).toHaveLength(PER_KIND);
    await front.router.close();
    expect(liveSessionCount(front.router)).toBe(0);
    expect(livePids.filter(isAlive)).toEqual([]);
    await Promise.allSettled(left.map((c) => c.close()));

    await waitFor(() => upstreamSocketsInUse() === 0, 'upstream sockets to be released');
    expect(everythingChildren().filter((pid) => !baselineChildren.includes(pid))).toEqual([]);
  });
});
