// The stateless 2026-07-28 revision on stdio servers (docs/protocol-2026-07-28.md §8).
//
// A modern request carries its protocol version and client capabilities in `params._meta` and
// stands alone: no `initialize`, no `Mcp-Session-Id`. The stdio bridge classifies every POST that
// has no session id; modern ones come here. Each server's era is learnt with `server/discover`
// (once it answers: a child that fails to start, exits or times out is asked again by the next
// request); a 2025-only child gets `-32022` (so dual-era clients fall back to
// `initialize`), a modern one serves the requests of each token on one long-lived child, with
// the JSON-RPC ids and progress tokens rewritten so that concurrent clients never collide.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { StdioServer } from '../config';
import type { JsonRpcMessage } from '../wire/body';
import { HttpError, JsonRpcCode, sendHttpError, sendJsonRpcError, shuttingDown } from '../wire/errors';
import { CLIENT_CAPABILITIES, isModernVersion, LEGACY_VERSIONS, PROTOCOL_VERSION, UNSUPPORTED_VERSION } from '../wire/revisions';
import type { RequestContext, TransportDeps } from '../transport';
import { DiscoveryAbandoned, SharedChild, type Era } from './shared-child';

export { LEGACY_VERSIONS, MODERN_VERSION, UNSUPPORTED_VERSION } from '../wire/revisions';

/** Methods whose `Mcp-Name` header mirrors `params.name` / `params.uri` (Streamable HTTP §Request Metadata). */
const NAMED_METHODS: Record<string, 'name' | 'uri'> = { 'tools/call': 'name', 'prompts/get': 'name', 'resources/read': 'uri' };

export type Classification = { kind: 'legacy' } | { kind: 'modern'; message: JsonRpcMessage; version: string };

/**
 * Sorts a POST without `Mcp-Session-Id` into the 2025 handshake/legacy traffic or a modern
 * request, with the rules of the specification's versioning section (the v2 SDK's
 * `classifyInboundRequest`). Throws `HttpError` for requests that are neither.
 */
export function classifyPost(req: IncomingMessage, messages: JsonRpcMessage[], isBatch: boolean): Classification {
  // `_meta` is the client's: anything but an object claims nothing (and `in` would throw on it).
  const claims = (m: JsonRpcMessage) => typeof m.params?._meta === 'object' && m.params._meta !== null && PROTOCOL_VERSION in m.params._meta;
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
  if (headerVersion !== version) throw mismatch('MCP-Protocol-Version', version);
  if (header(req, 'mcp-method') !== message.method) throw mismatch('Mcp-Method', message.method);
  const nameField = NAMED_METHODS[message.method];
  if (nameField !== undefined && decodeHeaderValue(header(req, 'mcp-name')) !== message.params?.[nameField]) {
    throw mismatch('Mcp-Name', String(message.params?.[nameField]));
  }
  return { kind: 'modern', message, version };
}

const HEADER_MISMATCH = -32020;
const INVALID_PARAMS = -32602;

function mismatch(name: string, expected: string): HttpError {
  return new HttpError(400, HEADER_MISMATCH, `Header mismatch: ${name} must be present and equal "${expected}"`);
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

/** Modern requests of one stdio server: its era, and one shared child per token. */
export class StatelessStdio {
  /** The era, once a child answered `server/discover`. */
  private era: Era | undefined;
  /** The `server/discover` in flight: concurrent requests wait for the same one. */
  private discovering: Promise<Era> | undefined;
  private closed = false;

  constructor(
    private readonly server: StdioServer,
    private readonly deps: TransportDeps,
  ) {}

  async handle(res: ServerResponse, ctx: RequestContext, classified: Extract<Classification, { kind: 'modern' }>): Promise<void> {
    const { message, version } = classified;
    if (message.id === undefined || message.id === null) {
      // The revision defines no client notifications over HTTP: accept and drop.
      res.writeHead(202).end();
      return;
    }
    // Tracked from the first byte: a token revoked while its request waits for the era must not
    // get a child afterwards. Once handed to a child, that child (a session) answers for it.
    let revoked = false;
    const untrack = this.deps.sessions.track({
      server: this.server.name,
      token: ctx.token,
      abort: (_reason, error) => {
        revoked = true;
        sendHttpError(res, error, message.id);
      },
    });
    try {
      if (this.closed) throw shuttingDown(this.server.name);
      const era = await this.learnEra(ctx.token).catch((err: unknown) => {
        if (this.closed) throw shuttingDown(this.server.name);
        // The child that was asking was another token's, stopped with it (revoked): ask again.
        if (err instanceof DiscoveryAbandoned && !revoked) return this.learnEra(ctx.token);
        throw err;
      });
      if (revoked) return;
      if (!era.modern || !era.versions.includes(version)) {
        const supported = era.modern ? era.versions : LEGACY_VERSIONS;
        const why = era.modern ? '' : ` (server "${this.server.name}" speaks 2025-era MCP only: initialize a session)`;
        sendJsonRpcError(res, 400, UNSUPPORTED_VERSION, `Unsupported protocol version: ${version}${why}`, {
          id: message.id,
          data: { supported, requested: version },
        });
        return;
      }
      if (this.closed) throw shuttingDown(this.server.name);
      const live = this.deps.sessions.findOwned(this, ctx.token)?.subject as SharedChild | undefined;
      const child = live ?? this.spawn(ctx.token);
      child.request(res, message);
    } catch (err) {
      if (revoked) return;
      if (err instanceof HttpError) sendHttpError(res, err, message.id);
      else sendJsonRpcError(res, 502, JsonRpcCode.ServerError, `stdio server "${this.server.name}" failed: ${(err as Error).message}`, { id: message.id });
    } finally {
      untrack();
    }
  }

  /**
   * The server's era. Only an answer is kept: a failed attempt (the child did not start, exited
   * or timed out) fails the requests waiting for it, and the next request asks a new child.
   */
  private learnEra(token: string): Promise<Era> {
    if (this.era) return Promise.resolve(this.era);
    this.discovering ??= this.spawn(token)
      .discover()
      .then((era) => (this.era = era))
      .finally(() => {
        this.discovering = undefined;
      });
    return this.discovering;
  }

  private spawn(token: string): SharedChild {
    return new SharedChild(this.server, this.deps, token, this);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.deps.sessions.closeOwned(this, 'server closed');
  }
}

