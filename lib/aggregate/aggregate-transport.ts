// An aggregate's routes (README: Aggregates): `/<aggregate>/sse`, `/message` and `/mcp`, served by
// the bridge's client side (bridge/front-sessions.ts) over one `AggregateChannel` per client
// session. The session is one entry of the session registry, with the aggregate's name; its member
// sessions are the channel's, and end with it.
import type { Request, Response } from 'express';
import { FrontSessions } from '../bridge/front-sessions';
import type { ResolvedAggregate, ResolvedConfig, ResolvedServer } from '../config';
import { clip } from '../logger';
import type { Pipeline } from '../pipeline/pipeline';
import { IDLE_SESSION_MS } from '../remote/passthrough-session';
import type { RequestContext, RouteHandler, TransportDeps } from '../transport';
import { AggregateChannel, type AggregateShared } from './aggregate-channel';
import { memberChannel } from './member-channel';
import { StatelessAggregate } from './stateless';

/** How long the client side waits for any answer: a member's own timeout answers first. */
const BACKSTOP_MS = 1000;

export interface AggregateDeps extends TransportDeps {
  /** Decides each client request once, before it becomes member requests: the limits (README: Limits per token). */
  readonly front: Pipeline;
  config(): ResolvedConfig;
}

export class AggregateTransport implements RouteHandler {
  private readonly front: FrontSessions;
  private readonly stateless: StatelessAggregate;
  /** Prefixed names over 64 characters already logged. */
  private readonly warned = new Set<string>();

  constructor(
    readonly aggregate: ResolvedAggregate,
    /** The member servers as they were when it was built: a reload that changes one builds a new transport. */
    readonly servers: readonly ResolvedServer[],
    deps: AggregateDeps,
  ) {
    const shared: AggregateShared = {
      aggregate,
      config: deps.config,
      pipeline: deps.pipeline,
      logger: deps.logger,
      memberChannel: (server, token, proxy) => memberChannel(server, deps, token, proxy),
      warnLongName: (server, name) => {
        if (this.warned.has(name) || this.warned.size >= 1000) return;
        this.warned.add(name);
        deps.logger.warn('aggregate name over 64 characters', { aggregate: aggregate.name, server, name: clip(name), length: name.length });
      },
    };
    const stdio = servers.filter((s) => s.kind === 'stdio');
    const idleTimeoutMs = stdio.length === 0 ? IDLE_SESSION_MS : Math.max(...stdio.map((s) => s.idleTimeoutMs));
    this.stateless = new StatelessAggregate(shared, deps.sessions, deps.logger, idleTimeoutMs);
    this.front = new FrontSessions(
      {
        server: aggregate.name,
        timeoutMs: Math.max(...servers.map((s) => s.timeoutMs)) + BACKSTOP_MS,
        idleTimeoutMs,
        // Each session holds a child of every stdio member: the smallest of their bounds bounds it.
        maxSessions: stdio.length === 0 ? Infinity : Math.min(...stdio.map((s) => s.maxSessions)),
        noun: 'aggregate',
        upstream: 'aggregate',
        logPrefix: 'aggregate',
        newChannel: (_token, _proxy, ctx: RequestContext) => new AggregateChannel(shared, ctx),
        stateless: this.stateless,
      },
      { sessions: deps.sessions, logger: deps.logger, pipeline: deps.front },
    );
  }

  handleSse(req: Request, res: Response, ctx: RequestContext): void {
    this.front.handleSse(req, res, ctx);
  }

  handleMessage(req: Request, res: Response, ctx: RequestContext): void {
    this.front.handleMessage(req, res, ctx);
  }

  handleMcp(req: Request, res: Response, ctx: RequestContext): void {
    this.front.handleMcp(req, res, ctx);
  }

  async close(): Promise<void> {
    await Promise.all([this.front.close(), this.stateless.close()]);
  }
}
