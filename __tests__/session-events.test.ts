// Session events are the same for every kind of session (README: Logs and debugging): one
// `session started` and one `session ended` at `info`, with the client's transport and the
// upstream's, for stdio children, remote passthrough sessions and bridged ones alike.
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { connectClient, textOf, type ClientTransportKind } from './helpers/clients';
import { captureLogger, configWith, DEV_TOKEN, EVERYTHING, startEverything, startFront, waitFor, type Front, type Upstream } from './helpers/servers';

const logger = captureLogger();
let sseUpstream: Upstream;
let streamableUpstream: Upstream;
let front: Front;

beforeAll(async () => {
  [sseUpstream, streamableUpstream] = await Promise.all([startEverything('sse'), startEverything('streamableHttp')]);
  front = await startFront(
    configWith({
      local: { command: process.execPath, args: [EVERYTHING, 'stdio'] },
      legacy: { url: `${sseUpstream.origin}/sse` },
      modern: { url: `${streamableUpstream.origin}/mcp` },
    }),
    { logger },
  );
});

afterAll(async () => {
  await front?.close();
  await Promise.allSettled([sseUpstream?.close(), streamableUpstream?.close()]);
});

/** Ends the session the way its client does: a Streamable client's DELETE, an SSE client's disconnect. */
async function end(client: Client, kind: ClientTransportKind): Promise<void> {
  if (kind === 'streamable') await (client.transport as StreamableHTTPClientTransport).terminateSession();
  await client.close();
}

test.each([
  ['local', 'sse', 'stdio', 'client disconnected'],
  ['local', 'streamable', 'stdio', 'client ended the session (DELETE)'],
  ['legacy', 'sse', 'sse', 'client disconnected'],
  ['legacy', 'streamable', 'sse', 'client ended the session (DELETE)'],
  ['modern', 'sse', 'streamable-http', 'client disconnected'],
  ['modern', 'streamable', 'streamable-http', 'deleted'],
] as const)('server %s over %s (upstream %s): one INFO line at start and one at the end', async (server, kind, upstream, reason) => {
  const mine = (message: string) => logger.entries.filter((e) => e.message === message && e.fields.server === server && e.fields.transport === kind);
  const client = await connectClient(front.url, server, kind, DEV_TOKEN);
  expect(textOf(await client.callTool({ name: 'echo', arguments: { message: 'hi' } }))).toBe('Echo: hi');
  expect(mine('session started')).toEqual([
    { level: 'info', message: 'session started', fields: expect.objectContaining({ server, token: 'dev', transport: kind, upstream }) },
  ]);
  if (upstream === 'stdio') expect(mine('session started')[0].fields.pid).toEqual(expect.any(Number));

  await end(client, kind);
  await waitFor(() => mine('session ended').length > 0, `the end of the ${kind} session of ${server}`);
  expect(mine('session ended')).toEqual([
    { level: 'info', message: 'session ended', fields: expect.objectContaining({ server, token: 'dev', transport: kind, upstream, reason }) },
  ]);
  expect(logger.text()).not.toContain(DEV_TOKEN);
});
