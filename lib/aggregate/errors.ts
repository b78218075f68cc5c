// What a client of an aggregate is told when a request cannot reach a member (README: Aggregates):
// a name no visible member owns reads like an unknown one, as a server says it (`-32602`, MCP
// specification, Tools: Error Handling), so a token learns nothing about members it may not use;
// a member that is down or too slow is named, since the client may use it.
import { clip } from '../logger';
import { HttpError, JsonRpcCode } from '../wire/errors';
import type { Member } from './member';

/** JSON-RPC 2.0 §5.1 "Invalid params". */
export const INVALID_PARAMS = -32602;

export interface JsonRpcErrorObject {
  code: number;
  message: string;
  data?: unknown;
}

/** `Unknown tool: <name as the client sent it>` (clipped: the name is the client's text). */
export function unknownName(noun: string, shown: unknown): JsonRpcErrorObject {
  const text = typeof shown === 'string' ? clip(shown) : clip(JSON.stringify(shown) ?? 'undefined');
  return { code: INVALID_PARAMS, message: `Unknown ${noun}: ${text}` };
}

/** A request to `member` that got no answer: it is down, or did not answer within its `timeout`. */
export function memberError(aggregate: string, member: Member, why: 'unavailable' | 'timeout' | 'closed'): JsonRpcErrorObject {
  const data = { server: member.server.name, prefix: member.prefix, aggregate };
  if (why === 'timeout') {
    return { code: JsonRpcCode.ServerError, message: `Gateway Timeout: server "${member.server.name}" of aggregate "${aggregate}" did not answer within ${member.server.timeoutMs / 1000} s`, data };
  }
  return { code: JsonRpcCode.ServerError, message: `Server "${member.server.name}" of aggregate "${aggregate}" is unavailable`, data };
}

/** `onUnavailable: "fail"`: the session does not open. */
export function memberUnavailable(aggregate: string, member: Member, why: string): HttpError {
  return new HttpError(502, JsonRpcCode.ServerError, `Bad Gateway: server "${member.server.name}" of aggregate "${aggregate}" is unavailable (${why})`);
}
