// The official SDK client over both HTTP transports, with a bearer token.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { ClientCapabilities } from '@modelcontextprotocol/sdk/types.js';

export type ClientTransportKind = 'sse' | 'streamable';

export interface ConnectOptions {
  capabilities?: ClientCapabilities;
  /** More request headers (e.g. `X-Forwarded-For` through a load balancer). */
  headers?: Record<string, string>;
}

/** Connects an SDK client to `${base}/${server}/sse` or `/mcp` with `Authorization: Bearer token`. */
export async function connectClient(
  base: string,
  server: string,
  kind: ClientTransportKind,
  token: string,
  options: ConnectOptions = {},
): Promise<Client> {
  const headers = { ...options.headers, Authorization: `Bearer ${token}` };
  const client = new Client({ name: 'mcp-front-test', version: '1.0.0' }, { capabilities: options.capabilities ?? {} });
  const transport =
    kind === 'sse'
      ? new SSEClientTransport(new URL(`${base}/${server}/sse`), { requestInit: { headers } })
      : new StreamableHTTPClientTransport(new URL(`${base}/${server}/mcp`), { requestInit: { headers } });
  await client.connect(transport);
  return client;
}


/** The text of a tool result: its text content items, joined. */
export const textOf = (result: unknown): string =>
  ((result as { content?: { type: string; text?: string }[] }).content ?? []).map((c) => c.text ?? '').join('');

/** A 2025-06-18 `initialize` request, for raw HTTP tests. */
export const INITIALIZE = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
} as const;

export interface ModernRequestOptions {
  /** The `Mcp-Name` header; default: `params.name` for the named methods, none otherwise. */
  name?: string;
  /** The raw body, instead of the one built from `method` and `params`. */
  body?: string;
  /** More request headers. */
  headers?: Record<string, string>;
}

/**
 * A stateless 2026-07-28 request (`POST <url>` with no session): the protocol version and client
 * capabilities in `params._meta`, and the mirrored `MCP-Protocol-Version`, `Mcp-Method` and
 * `Mcp-Name` headers that revision requires.
 */
export function postModern(url: string, token: string, id: number, method: string, params: Record<string, unknown> = {}, options: ModernRequestOptions = {}): Promise<Response> {
  const name = options.name ?? (method === 'tools/call' || method === 'prompts/get' ? (params.name as string | undefined) : undefined);
  return fetch(url, {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${token}`,
      'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream',
      'MCP-Protocol-Version': '2026-07-28',
      'Mcp-Method': method,
      ...(name !== undefined ? { 'Mcp-Name': name } : {}),
      ...options.headers,
    },
    body:
      options.body ??
      JSON.stringify({
        jsonrpc: '2.0',
        id,
        method,
        params: { ...params, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } },
      }),
  });
}
