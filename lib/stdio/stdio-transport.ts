// Local stdio servers, reachable over legacy HTTP+SSE and Streamable HTTP (README: Routes).
//
// Isolation model: every MCP session — one legacy SSE connection, or one Streamable HTTP
// `initialize` — gets its own child process (channel-stdio.ts); the client side of both HTTP
// transports is front-sessions.ts. `maxSessions` counts children, `idleTimeout` ends sessions
// whose client vanished without a DELETE (MCP SDK clients never send one on close()).
import type { Request, Response } from 'express';
import { StdioChannel } from './stdio-channel';
import type { StdioServer } from '../config';
import { FrontSessions } from '../bridge/front-sessions';
import { StatelessStdio } from './stateless';
import type { RequestContext, ServerTransport, TransportDeps } from '../transport';

/** A stdio server's transport: spawns one child per session (see the file comment). */
export function createStdioTransport(server: StdioServer, deps: TransportDeps): ServerTransport {
  return new StdioTransport(server, deps);
}

class StdioTransport implements ServerTransport {
  private readonly front: FrontSessions;
  private readonly stateless: StatelessStdio;

  constructor(
    readonly server: StdioServer,
    deps: TransportDeps,
  ) {
    this.stateless = new StatelessStdio(server, deps);
    this.front = new FrontSessions(
      {
        server: server.name,
        timeoutMs: server.timeoutMs,
        idleTimeoutMs: server.idleTimeoutMs,
        maxSessions: server.maxSessions,
        upstream: 'stdio',
        noun: 'stdio server',
        logPrefix: 'stdio',
        newChannel: (token) => new StdioChannel(server, deps.logger, token),
        stateless: this.stateless,
      },
      deps,
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
