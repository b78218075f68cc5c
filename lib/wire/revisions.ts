// Protocol revisions as they show on the wire: which era a POST without a session speaks, and
// the version constants both eras need (MCP 2026-07-28, docs/protocol-2026-07-28.md; MCP
// 2025-06-18 §Lifecycle). Knowledge of the protocol, not of any transport.
import type { IncomingMessage } from 'node:http';
import type { JsonRpcMessage } from './body';
import { HttpError, JsonRpcCode } from './errors';

export const MODERN_VERSION = '2026-07-28';
/** What a 2025-era stdio server speaks (SDK 1.x `SUPPORTED_PROTOCOL_VERSIONS`). */
export const LEGACY_VERSIONS = ['2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05'];

export const PROTOCOL_VERSION = 'io.modelcontextprotocol/protocolVersion';
export const CLIENT_CAPABILITIES = 'io.modelcontextprotocol/clientCapabilities';
/** Methods whose `Mcp-Name` header mirrors `params.name` / `params.uri` (Streamable HTTP §Request Metadata). */
const NAMED_METHODS: Record<string, 'name' | 'uri'> = { 'tools/call': 'name', 'prompts/get': 'name', 'resources/read': 'uri' };

export const isModernVersion = (v: unknown): v is string => typeof v === 'string' && v >= MODERN_VERSION;

export type Classification = { kind: 'legacy' } | { kind: 'modern'; message: JsonRpcMessage; version: string };

/**
 * Sorts a POST without `Mcp-Session-Id` into the 2025 handshake/legacy traffic or a modern
 * request, with the rules of the specification's versioning section (the v2 SDK's
 * `classifyInboundRequest`). Throws `HttpError` for requests that are neither.
 */
export function classifyPost(req: IncomingMessage, messages: JsonRpcMessage[], isBatch: boolean): Classification {
  if (isBatch) {
    if (messages.some(claims)) throw new HttpError(400, JsonRpcCode.InvalidRequest, 'Invalid Request: 2026-07-28 requests cannot be batched');
    return { kind: 'legacy' };
  }
  const [message] = messages;
  const headerVersion = header(req, 'mcp-protocol-version');
  if (message.method === undefined) return { kind: 'legacy' };
  if (!claims(message)) {
    if (isModernVersion(headerVersion)) {
      throw new HttpError(400, message.method === 'initialize' ? HEADER_MISMATCH : INVALID_PARAMS, `MCP-Protocol-Version ${headerVersion} needs the per-request _meta envelope`);
    }
    return { kind: 'legacy' };
  }
  const meta = message.params!._meta as Record<string, unknown>;
  const version = meta[PROTOCOL_VERSION];
  const capabilities = meta[CLIENT_CAPABILITIES];
  if (typeof version !== 'string' || typeof capabilities !== 'object' || capabilities === null || Array.isArray(capabilities)) {
    throw new HttpError(400, INVALID_PARAMS, `Invalid params: _meta needs "${PROTOCOL_VERSION}" (string) and "${CLIENT_CAPABILITIES}" (object)`);
  }
  // The child sees no HTTP headers: checking them against the body is the bridge's job.
  if (headerVersion !== version) throw mismatch('MCP-Protocol-Version', version, message.id);
  checkMethodAndName(req, message, true);
  return { kind: 'modern', message, version };
}

/** `_meta` is the client's: anything but an object claims nothing (and `in` would throw on it). */
const claims = (m: JsonRpcMessage): boolean => typeof m.params?._meta === 'object' && m.params._meta !== null && PROTOCOL_VERSION in m.params._meta;

/**
 * The body is authoritative, and a header that says otherwise is refused (MCP 2026-07-28,
 * Streamable HTTP §Request Metadata: `400` with `-32020`) on every route, before any policy reads
 * the body and before anything is forwarded: an upstream or an intermediary that routes or
 * decides by `Mcp-Method`/`Mcp-Name` must never see a request whose headers name something else
 * than what the proxy decided on. A 2026-07-28 request must carry them; any other request that
 * carries them is held to them too.
 */
export function checkMetadataHeaders(req: IncomingMessage, messages: JsonRpcMessage[], isBatch: boolean): void {
  const present = req.headers['mcp-method'] !== undefined || req.headers['mcp-name'] !== undefined;
  if (isBatch) {
    // The headers describe one message; a batch of 2026-07-28 requests is refused by classifyPost.
    if (present) throw new HttpError(400, HEADER_MISMATCH, 'Header mismatch: Mcp-Method and Mcp-Name describe one message, not a batch');
    return;
  }
  const [message] = messages;
  const required = claims(message);
  if (present || required) checkMethodAndName(req, message, required);
}

/** `Mcp-Method` equals the method; `Mcp-Name` the name of a named method, and is absent on any other. */
function checkMethodAndName(req: IncomingMessage, message: JsonRpcMessage, required: boolean): void {
  const method = header(req, 'mcp-method');
  if ((required || method !== undefined) && method !== message.method) throw mismatch('Mcp-Method', String(message.method), message.id);
  const name = header(req, 'mcp-name');
  const nameField = message.method !== undefined && Object.hasOwn(NAMED_METHODS, message.method) ? NAMED_METHODS[message.method] : undefined;
  if (nameField === undefined) {
    if (name !== undefined) throw new HttpError(400, HEADER_MISMATCH, `Header mismatch: Mcp-Name must be absent on ${String(message.method)}`, {}, message.id);
    return;
  }
  if ((required || name !== undefined) && decodeHeaderValue(name) !== message.params?.[nameField]) {
    throw mismatch('Mcp-Name', String(message.params?.[nameField]), message.id);
  }
}

const HEADER_MISMATCH = -32020;
const INVALID_PARAMS = -32602;
export const UNSUPPORTED_VERSION = -32022;

function mismatch(name: string, expected: string, id?: unknown): HttpError {
  return new HttpError(400, HEADER_MISMATCH, `Header mismatch: ${name} must be present and equal "${expected}"`, {}, id);
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** `=?base64?…?=` carries values that are not plain header-safe ASCII. */
function decodeHeaderValue(value: string | undefined): string | undefined {
  const m = value === undefined ? null : /^=\?base64\?(.*)\?=$/.exec(value);
  return m ? Buffer.from(m[1], 'base64').toString('utf8') : value;
}
