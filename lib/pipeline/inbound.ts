// The edge of the pipeline: every client POST, on every route, is read and parsed here once.
// Transports get the original bytes (forwarded unchanged unless a hook refused part of a batch)
// and the parsed messages, so nothing downstream reads or parses a body again.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { firstByte } from '../wire/body';
import { parseJsonRpc, readBody, serializeMessage, type JsonRpcMessage } from '../wire/body';
import { HttpError, JsonRpcCode, sendHttpError } from '../wire/errors';
import { checkMetadataHeaders } from '../wire/revisions';

export interface Inbound {
  /** The client's bytes, or the rebuilt body once a hook took messages out of a batch. */
  readonly body: Buffer;
  readonly messages: JsonRpcMessage[];
  /** The body is a JSON array: answers to it are an array too (JSON-RPC 2.0 §6). */
  readonly isBatch: boolean;
}

/** The bounds of what one POST may carry (README: Configuration, `proxy.maxBodyBytes` and `proxy.maxBatch`). */
export interface InboundLimits {
  readonly maxBodyBytes: number;
  readonly maxBatch: number;
}

/**
 * Reads (bounded: `413` with a lingering close) and parses (`400` with `-32700`/`-32600`) one
 * POST body; a batch of more than `maxBatch` messages is `400` before anything decides or
 * forwards any of it; `Mcp-Method`/`Mcp-Name` headers that disagree with the body are `400`
 * with `-32020` (MCP 2026-07-28, Streamable HTTP §Request Metadata), on every route, before any
 * policy sees the body. Rejects with `HttpError` for the client's faults.
 */
export async function readInbound(req: IncomingMessage, limits: InboundLimits): Promise<Inbound> {
  const body = await readBody(req, limits.maxBodyBytes);
  const messages = parseJsonRpc(body);
  const isBatch = firstByte(body) === 0x5b; /* [ */
  if (isBatch && messages.length > limits.maxBatch) {
    throw new HttpError(400, JsonRpcCode.InvalidRequest, `Invalid Request: a batch of ${messages.length} messages is over the limit of ${limits.maxBatch} (proxy.maxBatch)`);
  }
  checkMetadataHeaders(req, messages, isBatch);
  return { body, messages, isBatch };
}

/**
 * `readInbound`, answering the client itself when it fails (`413`, `400`, or a connection that
 * broke mid-body is dropped): `undefined` then, and the caller just returns.
 */
export async function readInboundOrReply(req: IncomingMessage, res: ServerResponse, limits: InboundLimits): Promise<Inbound | undefined> {
  try {
    return await readInbound(req, limits);
  } catch (err) {
    if (err instanceof HttpError) sendHttpError(res, err);
    else res.destroy();
    return undefined;
  }
}

/** The body of what is left of a batch: still an array when the client sent one. */
export function inboundOf(messages: JsonRpcMessage[], isBatch: boolean): Inbound {
  return { body: Buffer.from(serializeMessage(isBatch ? messages : messages[0])), messages, isBatch };
}
