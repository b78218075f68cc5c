// `router.drain()` (README: Running several instances): new sessions are refused with 503 while
// live sessions keep working, /health says "draining", and everything closes once requests in
// flight are done or the drain timeout has passed.
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { connectClient, INITIALIZE, textOf } from './helpers/clients';
import { configWith, DEV_TOKEN, EVERYTHING, startFront, type Front } from './helpers/servers';
import { liveSessionCount } from '../lib/mcp-front';

let front: Front | undefined;
const clients: Client[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => undefined)));
  await front?.close();
  front = undefined;
});

async function start(): Promise<Front> {
  front = await startFront(configWith({ everything: { command: process.execPath, args: [EVERYTHING, 'stdio'] } }, { drainTimeout: '1m' }));
  return front;
}

const auth = { Authorization: `Bearer ${DEV_TOKEN}` };

describe('router.drain()', () => {
  it.each(['sse', 'streamable'] as const)('keeps a live %s session working, refuses new sessions, then closes', async (kind) => {
    const f = await start();
    const client = await connectClient(f.url, 'everything', kind, DEV_TOKEN);
    clients.push(client);

    // A request in flight that outlasts the drain timeout (as an open stream does): the drain
    // waits for it until the timeout, then closes it.
    let progressed!: () => void;
    const inFlight = new Promise<void>((resolve) => (progressed = resolve));
    const longCall = client
      .callTool({ name: 'trigger-long-running-operation', arguments: { duration: 60, steps: 60 } }, undefined, {
        onprogress: () => progressed(),
        timeout: 120_000,
      })
      .then(
        () => 'answered',
        () => 'cut',
      );
    await inFlight;

    let drained = false;
    const draining = f.router.drain(8_000).then(() => (drained = true));

    const health = await fetch(`${f.url}/health`);
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ status: 'draining' });

    const echoed = await client.callTool({ name: 'echo', arguments: { message: 'still here' } });
    expect(textOf(echoed)).toContain('still here');

    const initialize = await fetch(`${f.url}/everything/mcp`, {
      method: 'POST',
      headers: { ...auth, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
      body: JSON.stringify(INITIALIZE),
    });
    expect(initialize.status).toBe(503);
    expect(initialize.headers.get('retry-after')).toBe('1');
    expect(await initialize.json()).toEqual({ jsonrpc: '2.0', id: null, error: { code: -32000, message: expect.stringContaining('draining') } });
    const sse = await fetch(`${f.url}/everything/sse`, { headers: { ...auth, Accept: 'text/event-stream' } });
    expect(sse.status).toBe(503);
    await sse.text();
    expect(drained).toBe(false);

    await draining;
    expect(await longCall).toBe('cut');
    expect(liveSessionCount(f.router)).toBe(0);
    expect((await fetch(`${f.url}/health`)).status).toBe(503);
  });

  it('resolves as soon as nothing is in flight, and refuses nothing before it is called', async () => {
    const f = await start();
    const before = await fetch(`${f.url}/health`);
    expect(before.status).toBe(200);
    await before.text();
    // No request in flight: the drain does not wait for its (long) timeout.
    await f.router.drain();
    expect((await fetch(`${f.url}/everything/mcp`, { method: 'POST', headers: auth })).status).toBe(503);
  });
});
