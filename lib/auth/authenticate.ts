// Who a request is (README: Authentication and status codes; OAuth 2.1). Two ways of proving it,
// both RFC 6750 bearer tokens: a static token (compared in constant time, first) and an OAuth
// access token of the configured authorization server (verified by auth/oauth.ts). Either yields
// a principal *name* in one namespace, which is all that the rest of the path, the sessions, the
// policies and the log lines use; nothing after this file knows how it was proven.
import { digest, parseAuthorization, TokenIndex } from './bearer';
import { audienceAccepted, CLOCK_TOLERANCE_S, createOAuthVerifier, matchPrincipal, type OAuthVerifier, type VerifiedToken, type VerifyResult } from './oauth';
import type { ResolvedConfig, ResolvedOAuth, ResolvedServer } from '../config';
import type { Logger } from '../types';

/** Why a credential was refused before any server was involved: `401`, or `503` when the issuer could not be asked. */
export type ProofFailure = 'missing_token' | 'malformed_header' | 'invalid_token' | 'expired' | 'issuer_unavailable';

/** Why a proven credential may not use a server: `401` (`wrong_audience`) or `403`. */
export type HoldFailure = 'wrong_audience' | 'no_principal' | 'forbidden' | 'insufficient_scope';

/** A proven credential: a static token's name, or a verified access token and the principal it matched. */
export type Credential = { kind: 'static'; name: string } | { kind: 'oauth'; token: VerifiedToken; principal: string | undefined };

export type Proof = { ok: true; credential: Credential } | { ok: false; reason: ProofFailure };

/** What a credential is held against: a server, or an aggregate (README: Aggregates), by the same rules. */
export type Guarded = Pick<ResolvedServer, 'name' | 'authTokens' | 'scopes'>;

/** Who may use a server, for the rest of the request's path. */
export interface Principal {
  /** The token's or principal's name: what `authTokens`, `permissions`, limits and log lines use. */
  readonly name: string;
  /** Whose sessions it may use (`RequestContext.identity`). */
  readonly identity: string;
  /** The OAuth user (`sub`), for log lines. */
  readonly subject?: string;
  /**
   * When an access token stops being accepted (ms since the epoch): its `exp` and the clock skew
   * allowed on it. Streams opened with it end then, not sooner: a stream opened with a token
   * still accepted must not end at once, or its client reopens it in a loop.
   */
  readonly expiresAt?: number;
}

export type Hold = { ok: true; principal: Principal } | { ok: false; reason: HoldFailure; name?: string };

/** What a server expects of an access token: its resource URLs (RFC 8707) and its scopes. */
export interface ResourceOf {
  /** `<publicUrl>/<server>/mcp` and `/sse`, then `oauth.audiences`: an `aud` naming one of them is for this server. */
  readonly audiences: readonly string[];
  readonly scopes: readonly string[];
}

/**
 * The authentication of one configuration: static tokens and, when configured, OAuth. Built once
 * per config (a reload keeps the OAuth verifier, its keys and its cache, while `oauth` is
 * unchanged).
 */
export class Authenticator {
  readonly tokens: TokenIndex;
  private readonly resources = new Map<string, ResourceOf>();
  /** Every server's resource URLs and `oauth.audiences`: an access token naming none of them is not meant for this proxy. */
  private readonly proxyAudiences = new Set<string>();
  private readonly proofs = new WeakMap<VerifiedToken, Proof>();
  private readonly holds = new WeakMap<Credential, Map<string, Hold>>();
  /** Each static token's proof and its hold on the servers that list it: built here, once. */
  private readonly staticProofs = new Map<string, Proof & { ok: true }>();
  private readonly staticHolds = new Map<string, Hold>();

  constructor(
    config: ResolvedConfig,
    readonly oauth: { config: ResolvedOAuth; verifier: OAuthVerifier } | undefined,
  ) {
    this.tokens = new TokenIndex(config.tokens);
    for (const name of config.tokens.keys()) {
      this.staticProofs.set(name, { ok: true, credential: { kind: 'static', name } });
      this.staticHolds.set(name, { ok: true, principal: { name, identity: name } });
    }
    if (oauth === undefined || config.publicUrl === undefined) return;
    for (const server of [...config.servers.values(), ...config.aggregates.values()]) {
      const base = `${config.publicUrl}/${encodeURIComponent(server.name)}`;
      const resource: ResourceOf = { audiences: [`${base}/mcp`, `${base}/sse`, ...oauth.config.audiences], scopes: server.scopes };
      this.resources.set(server.name, resource);
      for (const audience of resource.audiences) this.proxyAudiences.add(audience);
    }
  }

  /**
   * Proves the `Authorization` header: synchronous for a static token, for an OAuth access token
   * verified before (the verifier's cache) and for every failure that needs no authorization
   * server; a promise only while the authorization server is asked.
   */
  prove(header: string | undefined): Proof | Promise<Proof> {
    const parsed = parseAuthorization(header);
    if ('reason' in parsed) return { ok: false, reason: parsed.reason };
    const hashed = digest(parsed.token);
    const name = this.tokens.matchDigest(hashed);
    if (name !== undefined) return this.staticProofs.get(name)!;
    if (this.oauth === undefined) return { ok: false, reason: 'invalid_token' };
    // The same SHA-256 is the token cache's key (auth/oauth/token-cache.ts): hashed once.
    const verified = this.oauth.verifier.verify(parsed.token, hashed.toString('base64'));
    return verified instanceof Promise ? verified.then((v) => this.proofOf(v)) : this.proofOf(verified);
  }

  /**
   * A verified token's proof, its principal matched once per token and config: the verifier's
   * cache hands out the very same result object for each request with that token, and the
   * principals of this config do not change (a reload builds a new authenticator).
   */
  private proofOf(verified: VerifyResult): Proof {
    if (!verified.ok) return verified;
    let proof = this.proofs.get(verified.token);
    if (proof === undefined) {
      const principal = matchPrincipal(this.oauth!.config.principals, verified.token.claims);
      proof = { ok: true, credential: { kind: 'oauth', token: verified.token, principal } };
      this.proofs.set(verified.token, proof);
    }
    return proof;
  }

  /**
   * The credential held against `server`: an access token must be meant for it (its `aud`), match
   * a principal, be listed in `authTokens` and carry the server's scopes; a static token must be
   * listed.
   */
  hold(credential: Credential, server: Guarded): Hold {
    if (credential.kind === 'static') {
      const { name } = credential;
      if (!server.authTokens.has(name)) return { ok: false, reason: 'forbidden', name };
      return this.staticHolds.get(name) ?? { ok: true, principal: { name, identity: name } };
    }
    // What an access token may do on a server depends only on the token and this config: decided
    // once, as its principal is (`proofOf`), and the same answer for each of its requests.
    let byServer = this.holds.get(credential);
    if (byServer === undefined) this.holds.set(credential, (byServer = new Map()));
    let held = byServer.get(server.name);
    if (held === undefined) byServer.set(server.name, (held = this.holdAccessToken(credential, server)));
    return held;
  }

  private holdAccessToken(credential: Credential & { kind: 'oauth' }, server: Guarded): Hold {
    const { token, principal } = credential;
    const resource = this.resources.get(server.name);
    // A token meant for another resource is not valid here (RFC 8707 §2; MCP Authorization, Token Audience Binding).
    if (resource === undefined || (token.audienceBound && !audienceAccepted(token.aud, resource.audiences))) return { ok: false, reason: 'wrong_audience' };
    if (principal === undefined) return { ok: false, reason: 'no_principal' };
    if (!server.authTokens.has(principal)) return { ok: false, reason: 'forbidden', name: principal };
    for (const scope of resource.scopes) if (!token.scopes.has(scope)) return { ok: false, reason: 'insufficient_scope', name: principal };
    return {
      ok: true,
      principal: {
        name: principal,
        // The user, not the token: a refreshed token of the same user keeps its sessions.
        identity: `${principal}\n${token.iss}\n${token.sub ?? ''}`,
        ...(token.sub === undefined ? {} : { subject: token.sub }),
        expiresAt: (token.exp + CLOCK_TOLERANCE_S) * 1000,
      },
    };
  }

  /**
   * The principal of a credential for routes that name no server (`/health`, `/metrics`). An
   * access token must still be meant for this proxy, for one of its servers or an
   * `oauth.audiences` entry (RFC 8707 §2; MCP Authorization, Token Audience Binding): a token the
   * same authorization server issued for another API proves nothing here.
   */
  principalOf(credential: Credential): { ok: true; name: string } | { ok: false; reason: 'wrong_audience' | 'no_principal' } {
    if (credential.kind === 'static') return { ok: true, name: credential.name };
    if (credential.token.audienceBound && !credential.token.aud.some((a) => this.proxyAudiences.has(a))) return { ok: false, reason: 'wrong_audience' };
    return credential.principal === undefined ? { ok: false, reason: 'no_principal' } : { ok: true, name: credential.principal };
  }

  close(): void {
    this.oauth?.verifier.close();
  }
}

/**
 * What a name's credential is, to tell on reload whether it changed (RFC 6750 §3.1: a revoked
 * credential is no longer valid): a token's value; for a principal, its claims, its place in the
 * order (which decides ties) and the issuer and audiences its tokens are checked against. A name
 * that is gone has none.
 */
export function credentialOf(config: ResolvedConfig, name: string): string | undefined {
  const value = config.tokens.get(name);
  if (value !== undefined) return `token\n${value}`;
  const oauth = config.oauth;
  const index = oauth?.principals.findIndex((p) => p.name === name) ?? -1;
  if (oauth === undefined || index === -1) return undefined;
  const claims = [...oauth.principals[index].claims].map(([claim, alternatives]) => [claim, alternatives]);
  return `principal\n${JSON.stringify([index, oauth.issuer, oauth.audiences, claims, config.publicUrl])}`;
}

/**
 * The authenticator of `config`: the previous one's OAuth verifier is kept while `oauth` did not
 * change, so that its keys and its cache of verified tokens survive a reload.
 */
export function authenticatorFor(config: ResolvedConfig, previous: Authenticator | undefined, logger: Logger): Authenticator {
  const oauth = config.oauth;
  if (oauth === undefined) {
    previous?.close();
    return new Authenticator(config, undefined);
  }
  const kept = previous?.oauth !== undefined && verifierKey(previous.oauth.config) === verifierKey(oauth) ? previous.oauth.verifier : undefined;
  if (kept === undefined) previous?.close();
  const verifier = kept ?? createOAuthVerifier(oauth, { logger });
  if (kept === undefined) verifier.warmUp();
  return new Authenticator(config, { config: oauth, verifier });
}

/** What a verifier depends on: principals, audiences and scopes are decided here, per request. */
function verifierKey(oauth: ResolvedOAuth): string {
  return JSON.stringify([oauth.issuer, oauth.jwksUri, oauth.algorithms, oauth.introspection]);
}
