// Session ids: the one generator for every transport.
import { randomBytes } from 'node:crypto';

/**
 * 32 random bytes, base64url: unguessable, and safe in a header, a query string and a log line
 * (MCP Streamable HTTP transport, §Session Management: "globally unique and cryptographically
 * secure", visible ASCII only). With `prefix`, `<prefix>.<random>`: base64url has no `.`, so the
 * prefix (an instance id, when several instances share a front) is always recoverable.
 */
export function newSessionId(prefix?: string): string {
  const random = randomBytes(32).toString('base64url');
  return prefix === undefined ? random : `${prefix}.${random}`;
}
