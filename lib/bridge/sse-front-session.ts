// A legacy HTTP+SSE client's session over a channel (MCP 2024-11-05 transport).
import type { ServerResponse } from 'node:http';
import type { Request, Response } from 'express';
import type { JsonRpcMessage } from '../wire/body';
import type { Admission } from '../pipeline/pipeline';
import { jsonRpcErrorBody } from '../wire/errors';
import { openSseStream, type SseStream } from '../wire/sse';
import { messageEndpoint, type RequestContext } from '../transport';
import { FrontSession } from './front-session';

type JsonRpcId = string | number;

// --- legacy HTTP+SSE ---------------------------------------------------------------------------

/**
 * A legacy session: one `GET /sse` stream carries every server message verbatim; `POST /message`
 * hands the body to the channel and answers `202` once the server side accepted it. Request ids
 * are remembered only so that a server side that ends can be answered for (the client would
 * otherwise wait for its own timeout).
 */
export class SseFrontSession extends FrontSession {
  readonly kind = 'sse' as const;
  private stream: SseStream | undefined;
  private res: ServerResponse | undefined;
  private readonly pending = new Set<JsonRpcId>();
  private initTimer: NodeJS.Timeout | undefined;
  private initId: JsonRpcId | undefined;

  attach(req: Request, res: Response, ctx: RequestContext): void {
    this.res = res;
    this.stream = openSseStream(res, ctx.proxy.keepAliveMs);
    this.stream.send('endpoint', messageEndpoint(req, this.server, this.id));
    this.touch(res);
    res.once('close', () => void this.close('client disconnected'));
  }

  /** Refused requests are answered on the stream, as if the server had answered them. */
  async post(admission: Admission): Promise<void> {
    this.markUsed();
    // Written as they are: a refusal's id may equal a forwarded request's (a reused id), whose
    // own answer is still pending.
    for (const refusal of admission.refusals) if (this.stream) this.sendEvent(this.stream, this.res!, refusal.line);
    const forward = admission.forward;
    if (forward === undefined) return;
    const ids: JsonRpcId[] = [];
    let initialize: JsonRpcId | undefined;
    for (const ex of admission.exchanges) {
      // Before sending: an upstream may answer on its stream before it answers the POST.
      ids.push(ex.id);
      this.pending.add(ex.id);
      if (ex.method === 'initialize') initialize = ex.id;
    }
    try {
      await this.channel.send(forward.body, forward.messages);
    } catch (err) {
      // The POST's own status reports it: no second answer on the stream.
      for (const id of ids) {
        this.pending.delete(id);
        this.inFlight.fail(id, 'upstream_error');
      }
      throw err;
    }
    // From acceptance on: an upstream's time to accept the POST is bounded by the channel.
    if (initialize !== undefined && this.pending.has(initialize) && !this.ending) this.watchInitialize(initialize);
  }

  protected deliver(line: string, message: JsonRpcMessage): void {
    if (message.method === undefined && message.id !== undefined && message.id !== null) {
      this.pending.delete(message.id);
      if (message.id === this.initId) this.clearInitTimer();
    }
    if (this.stream) this.sendEvent(this.stream, this.res!, line);
  }

  /**
   * A server that never answers `initialize` would leave the client waiting on an open stream:
   * `timeout` bounds the handshake. Later requests are bounded by the client's own timeout.
   */
  private watchInitialize(id: JsonRpcId): void {
    this.clearInitTimer();
    this.initId = id;
    const { timeoutMs, noun } = this.owner.options;
    this.initTimer = setTimeout(() => {
      this.inFlight.fail(id, 'timeout', { event: `${noun} did not answer initialize`, server: this.server, timeout_ms: timeoutMs });
      void this.close(`no answer to initialize within ${timeoutMs} ms`);
    }, timeoutMs);
    this.initTimer.unref();
  }

  private clearInitTimer(): void {
    if (this.initTimer) clearTimeout(this.initTimer);
    this.initTimer = undefined;
    this.initId = undefined;
  }

  protected endStreams(code: number, message: string): void {
    this.clearInitTimer();
    const stream = this.stream;
    if (!stream) return;
    for (const id of this.pending) stream.writeRaw('event: message\ndata: ' + jsonRpcErrorBody(code, message, id) + '\n\n');
    this.pending.clear();
    stream.end();
  }

  protected abortStreams(): void {
    this.pending.clear();
    this.res?.destroy();
  }
}
