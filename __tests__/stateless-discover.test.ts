// The era of a stdio server (2026-07-28 or 2025-only) is learnt from its answer to
// `server/discover` and kept; a first attempt that got no answer (the child did not start, exited,
// or did not answer in time) is not kept: the next request asks again. Requests that arrive while
// an attempt is in flight share it instead of each starting a child.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inFlightCount } from '../lib/mcp-front';
import type { McpFrontConfig } from '../lib/types';
import { captureLogger, configWith, DEV_TOKEN, startFront, waitFor, type Front } from './helpers/servers';
import { postModern } from './helpers/clients';

const CHILD = path.join(__dirname, 'fixtures', 'stateless-stdio-child.js');

describe('server/discover on a stdio server', () => {
  let front: Front | undefined;
  let dir: string;
  const logger = captureLogger();

  beforeEach(() => {
    logger.entries.splice(0);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-front-discover-'));
  });
  afterEach(async () => {
    await front?.close();
    front = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const start = async (server: McpFrontConfig['mcpServers'][string]) => {
    front = await startFront(configWith({ child: server }), { logger });
    return front;
  };

  /** A 2026-07-28 `tools/call echo` with conforming headers: its status and JSON body. */
  const echo = async (f: Front, id: number) => {
    const res = await postModern(`${f.url}/child/mcp`, DEV_TOKEN, id, 'tools/call', { name: 'echo', arguments: { message: `call ${id}` } });
    return { status: res.status, body: (await res.json()) as { id?: unknown; result?: unknown; error?: { code: number; message: string } } };
  };
  const childrenStarted = () => logger.entries.filter((e) => e.message === 'session started' && e.fields.upstream === 'stdio').length;

  it('asks again after a first child that exited before answering', async () => {
    const f = await start({ command: process.execPath, args: [CHILD, `--first-time=exit:${dir}`] });
    const first = await echo(f, 1);
    expect(first.status).toBe(502);
    expect(first.body).toMatchObject({ id: 1, error: { code: -32000, message: expect.stringMatching(/ended before answering server\/discover/) } });

    const second = await echo(f, 2);
    expect(second.status).toBe(200);
    expect(second.body).toMatchObject({ id: 2, result: { content: [{ type: 'text', text: 'call 2' }] } });
    expect(childrenStarted()).toBe(2);
  });

  it('asks again after a first child that did not answer in time, and concurrent requests share that one attempt', async () => {
    const f = await start({ command: process.execPath, args: [CHILD, `--first-time=mute:${dir}`], timeout: 5000 });
    const waiting = [echo(f, 1), echo(f, 2)];
    await waitFor(() => inFlightCount(f.router) === 2, 'both requests to wait for the era');
    const answers = await Promise.all(waiting);
    for (const answer of answers) {
      expect(answer.status).toBe(504);
      expect(answer.body.error?.message).toMatch(/did not answer server\/discover/);
    }
    expect(childrenStarted()).toBe(1);

    const third = await echo(f, 3);
    expect(third.status).toBe(200);
    expect(third.body).toMatchObject({ id: 3, result: { content: [{ text: 'call 3' }] } });
  });

  it('asks again after a first child that could not be started', async () => {
    const cwd = path.join(dir, 'created-later');
    const f = await start({ command: process.execPath, args: [CHILD], cwd });
    const first = await echo(f, 1);
    expect(first.status).toBe(502);
    expect(first.body.error?.message).toMatch(/failed to start/);

    fs.mkdirSync(cwd);
    const second = await echo(f, 2);
    expect(second.status).toBe(200);
    expect(second.body).toMatchObject({ id: 2, result: { content: [{ text: 'call 2' }] } });
  });
});
