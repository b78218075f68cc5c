// The official SDK client over both HTTP transports, with a bearer token.
import http from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { ClientCapabilities } from '@modelcontextprotocol/sdk/types.js';
import { SseParser } from '../../lib/sse';

export type ClientTransportKind = 'sse' | 'streamable';

export interface ConnectOptions {
  capabilities?: ClientCapabilities;
}

/** Connects an SDK client to `${base}/${server}/sse` or `/mcp` with `Authorization: Bearer token`. */
export async function connectClient(
  base: string,
  server: string,
  kind: ClientTransportKind,
  token: string,
  options: ConnectOptions = {},
): Promise<Client> {
  const headers = { Authorization: `Bearer ${token}` };
  const client = new Client({ name: 'mcp-front-test', version: '1.0.0' }, { capabilities: options.capabilities ?? {} });
  const transport =
    kind === 'sse'
      ? new SSEClientTransport(new URL(`${base}/${server}/sse`), { requestInit: { headers } })
      : new StreamableHTTPClientTransport(new URL(`${base}/${server}/mcp`), { requestInit: { headers } });
  await client.connect(transport);
  return client;
}

export interface RawSse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Resolves with the first event of this name (its data). */
  next(event: string): Promise<string>;
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  close(): void;
}

/**
 * A bare SSE reader over node:http — no reconnection, unlike EventSource — so a test can see the
 * moment the proxy ends a stream.
 */
export function openRawSse(url: string, headers: Record<string, string>): Promise<RawSse> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { Accept: 'text/event-stream', ...headers } }, (res) => {
      const seen: { event: string; data: string }[] = [];
      const waiters: { event: string; resolve: (data: string) => void }[] = [];
      const parser = new SseParser(({ event, data }) => {
        const i = waiters.findIndex((w) => w.event === event);
        if (i === -1) seen.push({ event, data });
        else waiters.splice(i, 1)[0].resolve(data);
      });
      res.on('data', (chunk: Buffer) => parser.push(chunk));
      const ended = new Promise<void>((done) => {
        res.once('end', done);
        res.once('close', done);
        res.once('error', () => done());
      });
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        next(event) {
          const i = seen.findIndex((e) => e.event === event);
          if (i !== -1) return Promise.resolve(seen.splice(i, 1)[0].data);
          return new Promise((r) => waiters.push({ event, resolve: r }));
        },
        ended,
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
  });
}
