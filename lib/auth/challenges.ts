// The answers of a request refused by authentication or authorization (README: Authentication
// and status codes; OAuth 2.1). Each writes the whole answer — status, `WWW-Authenticate`, JSON
// body — so that the router only says why.
import type { ServerResponse } from 'node:http';
import { JsonRpcCode, sendJsonRpcError } from '../wire/errors';
import type { HoldFailure, ProofFailure } from './authenticate';
import { metadataUrl } from './resource-metadata';
import type { ResolvedConfig, ResolvedServer } from '../config';

/** What a challenge names besides the realm: with OAuth, where the server's metadata is and what it needs. */
export interface ChallengeContext {
  realm: string;
  /** RFC 9728 §5.1 `resource_metadata` and RFC 6750 §3 `scope`, for a server of an OAuth-enabled proxy. */
  oauth?: { metadataUrl: string; scopes: readonly string[] };
}

/**
 * The challenge context of a request to `server` on `route`: with OAuth, the metadata of the
 * resource the client addressed (`/sse` for the legacy message route) and the server's scopes.
 * Computed per refusal only. An unknown server gets the realm alone.
 */
export function challengeFor(config: ResolvedConfig, server: Pick<ResolvedServer, 'name' | 'scopes'> | undefined, route: string): ChallengeContext {
  if (config.oauth === undefined || config.publicUrl === undefined || server === undefined) return { realm: config.name };
  return { realm: config.name, oauth: { metadataUrl: metadataUrl(config.publicUrl, server.name, route === 'mcp' ? 'mcp' : 'sse'), scopes: server.scopes } };
}

/** How long a client waits before asking again while the authorization server is unreachable. */
const ISSUER_RETRY_AFTER = '5';

const DESCRIPTIONS: Record<'malformed_header' | 'invalid_token' | 'expired' | 'wrong_audience', string> = {
  malformed_header: 'malformed Authorization header',
  invalid_token: 'the token is not valid',
  expired: 'the token has expired',
  wrong_audience: 'the token is not meant for this server',
};

/** A header parameter value, quoted (RFC 9110 §5.6.4). */
function quoted(value: string): string {
  return `"${value.replace(/["\\]/g, '\\$&')}"`;
}

function challenge(ctx: ChallengeContext, params: [string, string][]): string {
  const all: [string, string][] = [['realm', ctx.realm], ...params];
  if (ctx.oauth !== undefined) {
    all.push(['resource_metadata', ctx.oauth.metadataUrl]);
    if (ctx.oauth.scopes.length > 0 && !params.some(([k]) => k === 'scope')) all.push(['scope', ctx.oauth.scopes.join(' ')]);
  }
  return `Bearer ${all.map(([k, v]) => `${k}=${quoted(v)}`).join(', ')}`;
}

/**
 * `401` with the challenge of RFC 6750 §3 (`error="invalid_token"` only when a token was sent,
 * §3.1), plus the OAuth parameters an MCP client needs to start its authorization (MCP
 * Authorization: the `resource_metadata` of RFC 9728 §5.1, the `scope` to ask for); `503` with
 * `Retry-After` when the authorization server cannot be reached (never `401`, which would send a
 * client into a login loop); `403` for a valid credential that may not use the server, with
 * `error="insufficient_scope"` and every scope it needs when scopes are missing (the client steps
 * up, MCP Authorization 2025-11-25).
 */
export function sendAuthFailure(res: ServerResponse, reason: ProofFailure | HoldFailure, ctx: ChallengeContext, about: { name?: string; server?: string } = {}): void {
  switch (reason) {
    case 'missing_token':
      return sendJsonRpcError(res, 401, JsonRpcCode.ServerError, 'Unauthorized: a bearer token is required', { headers: { 'WWW-Authenticate': challenge(ctx, []) } });
    case 'malformed_header':
    case 'invalid_token':
    case 'expired':
    case 'wrong_audience':
      return sendJsonRpcError(res, 401, JsonRpcCode.ServerError, `Unauthorized: ${DESCRIPTIONS[reason]}`, {
        headers: { 'WWW-Authenticate': challenge(ctx, [['error', 'invalid_token'], ['error_description', DESCRIPTIONS[reason]]]) },
      });
    case 'issuer_unavailable':
      return sendJsonRpcError(res, 503, JsonRpcCode.ServerError, 'Service Unavailable: the authorization server cannot be reached to verify the token; retry later', {
        headers: { 'Retry-After': ISSUER_RETRY_AFTER },
      });
    case 'forbidden':
      return sendJsonRpcError(res, 403, JsonRpcCode.ServerError, `Forbidden: token "${about.name}" may not use server "${about.server}"`);
    case 'no_principal':
      return sendJsonRpcError(res, 403, JsonRpcCode.ServerError, 'Forbidden: the access token matches no principal of this proxy');
    case 'insufficient_scope': {
      const scopes = ctx.oauth?.scopes ?? [];
      return sendJsonRpcError(res, 403, JsonRpcCode.ServerError, `Forbidden: the access token lacks a scope server "${about.server}" requires (${scopes.join(' ')})`, {
        headers: { 'WWW-Authenticate': challenge(ctx, [['error', 'insufficient_scope'], ['scope', scopes.join(' ')]]) },
      });
    }
  }
}
