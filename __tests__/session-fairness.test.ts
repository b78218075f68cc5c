// maxSessions is shared fairly between tokens: a token that holds every slot of a server cannot
// lock another token out. When the server is full, a new session from a token holding at least
// two sessions fewer than the biggest holder ends that holder's least recently used session;
// otherwise the answer is still 503.
import path from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { liveSessionCount } from '../lib/mcp-front';
import { connectClient, INITIALIZE, textOf, type ClientTransportKind } from './helpers/clients';
import { captureLogger, configWith, DEV_TOKEN, isAlive, PROD_TOKEN, startFront, type Front } from './helpers/servers';

const FIXTURE = path.join(__dirname, 'fixtures', 'stdio-server.js');

describe.each<ClientTransportKind>(['sse', 'streamable'])('maxSessions shared between tokens over %s', (kind) => {
  let front: Front;
  const logger = captureLogger();
  const clients: Client[] = [];

  beforeEach(async () => {
    logger.entries.splice(0);
    front = await startFront(configWith({ shared: { command: process.execPath, args: [FIXTURE], maxSessions: 2 } }), { logger });
  });
  afterEach(async () => {
    await Promise.allSettled(clients.splice(0).map((c) => c.close()));
    await front.close();
  });

  const connect = async (token: string) => {
    const client = await connectClient(front.url, 'shared', kind, token);
    clients.push(client);
    return client;
  };
  const echo = async (client: Client, message: string) => textOf(await client.callTool({ name: 'echo', arguments: { message } }));
  /** The status of a new session's opening request (the stream is not read further). */
  const openStatus = async (token: string) => {
    const headers = { Authorization: `Bearer ${token}` };
    const res =
      kind === 'sse'
        ? await fetch(`${front.url}/shared/sse`, { headers: { ...headers, Accept: 'text/event-stream' } })
        : await fetch(`${front.url}/shared/mcp`, {
            method: 'POST',
            headers: { ...headers, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
            body: JSON.stringify(INITIALIZE),
          });
    await res.body?.cancel();
    return res.status;
  };
  const pidsOf = (token: string) => logger.entries.filter((e) => e.message === 'session started' && e.fields.upstream === 'stdio' && e.fields.token === token).map((e) => e.fields.pid as number);

  it('lets a second token in by ending the first token’s least recently used session, then holds the fair split', async () => {
    const older = await connect(DEV_TOKEN);
    const newer = await connect(DEV_TOKEN);
    // `older` was used last before `newer` was: it is the least recently used one.
    expect(await echo(older, 'a')).toBe('a');
    expect(await echo(newer, 'b')).toBe('b');
    const [olderPid] = pidsOf('dev');
    expect(liveSessionCount(front.router)).toBe(2);

    const admin = await connect(PROD_TOKEN);
    expect(await echo(admin, 'admin')).toBe('admin');

    // dev's least recently used session was ended (its child stopped), its other one lives on.
    expect(logger.entries).toContainEqual({
      level: 'warn',
      message: 'session evicted',
      fields: { server: 'shared', token: 'dev', for_token: 'prod', max_sessions: 2 },
    });
    expect(logger.entries).toContainEqual({
      level: 'info',
      message: 'session ended',
      fields: expect.objectContaining({ token: 'dev', upstream: 'stdio', reason: expect.stringMatching(/^evicted/) }),
    });
    expect(isAlive(olderPid)).toBe(false);
    await expect(echo(older, 'gone')).rejects.toThrow();
    expect(await echo(newer, 'still here')).toBe('still here');
    expect(liveSessionCount(front.router)).toBe(2);

    // One each now: neither token may take the other's slot, both get 503.
    expect(await openStatus(DEV_TOKEN)).toBe(503);
    expect(await openStatus(PROD_TOKEN)).toBe(503);
    expect(await echo(newer, 'after')).toBe('after');
    expect(await echo(admin, 'after')).toBe('after');
  });

  it('still answers 503 to the token that holds the slots', async () => {
    await connect(DEV_TOKEN);
    await connect(DEV_TOKEN);
    expect(await openStatus(DEV_TOKEN)).toBe(503);
    expect(logger.entries.some((e) => e.message === 'session evicted')).toBe(false);
  });
});
