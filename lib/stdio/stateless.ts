// The stateless 2026-07-28 revision on stdio servers (docs/protocol-2026-07-28.md §8).
//
// A modern request carries its protocol version and client capabilities in `params._meta` and
// stands alone: no `initialize`, no `Mcp-Session-Id`. The stdio bridge classifies every POST that
// has no session id; modern ones come here. Each server's era is learnt with `server/discover`
// (once it answers: a child that fails to start, exits or times out is asked again by the next
// request); a 2025-only child gets `-32022` (so dual-era clients fall back to
// `initialize`), a modern one serves the requests of each token on one long-lived child, with
// the JSON-RPC ids and progress tokens rewritten so that concurrent clients never collide.
import type { ServerResponse } from 'node:http';
import type { StdioServer } from '../config';
import { HttpError, JsonRpcCode, sendHttpError, sendJsonRpcError, shuttingDown } from '../wire/errors';
import { LEGACY_VERSIONS, UNSUPPORTED_VERSION, type Classification } from '../wire/revisions';
import type { RequestContext, TransportDeps } from '../transport';
import type { Exchange as PipelineExchange } from '../pipeline/hooks';
import { DiscoveryAbandoned, SharedChild, type Era } from './shared-child';

export { LEGACY_VERSIONS, MODERN_VERSION, UNSUPPORTED_VERSION } from '../wire/revisions';

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

  /** `flight` is the pipeline's record of the request (none for a notification). */
  async handle(res: ServerResponse, ctx: RequestContext, classified: Extract<Classification, { kind: 'modern' }>, flight: PipelineExchange | undefined): Promise<void> {
    const { message, version } = classified;
    if (message.id === undefined || message.id === null || flight === undefined) {
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
      const era = await this.learnEra(ctx).catch((err: unknown) => {
        if (this.closed) throw shuttingDown(this.server.name);
        // The child that was asking was another token's, stopped with it (revoked): ask again.
        if (err instanceof DiscoveryAbandoned && !revoked) return this.learnEra(ctx);
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
      const live = this.deps.sessions.findOwned(this, ctx.identity)?.subject as SharedChild | undefined;
      const child = live ?? this.spawn(ctx);
      child.request(res, message, flight);
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
  private learnEra(ctx: RequestContext): Promise<Era> {
    if (this.era) return Promise.resolve(this.era);
    this.discovering ??= this.spawn(ctx)
      .discover()
      .then((era) => (this.era = era))
      .finally(() => {
        this.discovering = undefined;
      });
    return this.discovering;
  }

  private spawn(ctx: RequestContext): SharedChild {
    // A shared child is a session of its token (README: Limits per token, `maxSessions`).
    const refused = this.deps.sessions.refusal(ctx.token, this.server.name);
    if (refused) throw refused;
    return new SharedChild(this.server, this.deps, ctx.token, ctx.identity, this);
  }


  async close(): Promise<void> {
    this.closed = true;
    await this.deps.sessions.closeOwned(this, 'server closed');
  }
}

