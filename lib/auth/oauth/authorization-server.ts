// The user's authorization server as a resource server sees it (MCP specification, Authorization):
// its metadata (RFC 8414, or OpenID Connect Discovery), its signing keys (its JWKS), and RFC 7662
// introspection. Everything is fetched on demand, with a deadline, and a failure is retried by the
// next request that needs it. Whether the server can be reached is logged once per change:
// `WARN oauth issuer unavailable` when it stops answering, `INFO oauth issuer available` when it
// answers again.
import type { ResolvedOAuth } from '../../config/resolved-config';
import { debug } from '../../logger';
import type { Logger } from '../../types';
import { loadJose, type Jose } from './jose';

const log = debug.extend('oauth');

/** Every request to the authorization server ends within this; it is then unavailable. */
export const FETCH_TIMEOUT_MS = 5_000;
/** Keys older than this are fetched again in the background; the ones held stay in use meanwhile. */
export const KEYS_MAX_AGE_MS = 10 * 60_000;
/**
 * A token signed with a key that is not among those held refetches the keys (the server may have
 * rotated them), but no sooner than this after the last fetch: unknown `kid`s cost the server
 * nothing more.
 */
export const KEYS_COOLDOWN_MS = 30_000;
/** The largest metadata, key set or introspection answer read. */
const MAX_RESPONSE_BYTES = 1024 * 1024;

/** The authorization server cannot say whether a token is valid: the request gets `503`, never `401`. */
export class IssuerUnavailable extends Error {
  constructor(readonly fault: string) {
    super(`the authorization server is unavailable (${fault})`);
    this.name = 'IssuerUnavailable';
  }
}

/** What went wrong with one request to the authorization server, as a short code for the log. */
class IssuerFault extends Error {
  constructor(readonly fault: string) {
    super(fault);
    this.name = 'IssuerFault';
  }
}

type KeyResolver = Jose.LocalJWKSet;
type Metadata = Readonly<Record<string, unknown>>;

const TIMED_OUT = new IssuerFault('timeout');

/**
 * The code that `WARN oauth issuer unavailable` names: an HTTP status (`http_503`), a socket
 * error's code (`ECONNREFUSED`), `timeout`, or the class of anything else. Never a message, which
 * could quote a response.
 */
function faultOf(err: unknown): string {
  if (err instanceof IssuerFault || err instanceof IssuerUnavailable) return err.fault;
  // Not `instanceof Error`: `fetch` fails with errors of its own realm (undici's `TypeError: fetch
  // failed`, its cause the socket's error).
  if (err === null || typeof err !== 'object') return typeof err;
  const { name, cause } = err as { name?: unknown; cause?: { code?: unknown } };
  if (cause !== null && typeof cause === 'object' && typeof cause.code === 'string') return cause.code;
  return typeof name === 'string' ? name : 'object';
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * Where the metadata of `issuer` may be, in the order the MCP specification (Authorization Server
 * Metadata Discovery) has clients try them: RFC 8414 §3.1 inserts the well-known path between the
 * host and the issuer's path; OpenID Connect Discovery appends it to the issuer, and RFC 8414 §5
 * allows it path-inserted too.
 */
export function discoveryUrls(issuer: string): string[] {
  const { origin, pathname } = new URL(issuer);
  const path = pathname.replace(/\/$/, '');
  if (path === '') return [`${origin}/.well-known/oauth-authorization-server`, `${origin}/.well-known/openid-configuration`];
  return [
    `${origin}/.well-known/oauth-authorization-server${path}`,
    `${origin}/.well-known/openid-configuration${path}`,
    `${origin}${path}/.well-known/openid-configuration`,
  ];
}

/** RFC 6749 §2.3.1: the client id and secret are form-encoded before they become Basic credentials. */
function basicCredentials(clientId: string, clientSecret: string): string {
  const encode = (text: string) => new URLSearchParams([['', text]]).toString().slice(1);
  return `Basic ${Buffer.from(`${encode(clientId)}:${encode(clientSecret)}`).toString('base64')}`;
}

async function readBounded(res: Response): Promise<string> {
  if (res.body === null) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += chunk.byteLength;
    if (size > MAX_RESPONSE_BYTES) throw new IssuerFault('response_too_large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export interface AuthorizationServerOptions {
  logger: Logger;
  fetch: typeof fetch;
  now: () => number;
}

export class AuthorizationServer {
  private readonly issuer: string;
  private readonly introspectionAuth: string | undefined;
  private metadataLoading: Promise<Metadata> | undefined;
  private keys: KeyResolver | undefined;
  private keysFetchedAt = Number.NEGATIVE_INFINITY;
  private keysLoading: Promise<KeyResolver> | undefined;
  /** After a failed background refresh of stale keys, the next is not tried before this. */
  private keysRefreshNotBefore = Number.NEGATIVE_INFINITY;
  private available = true;
  private closed = false;
  private readonly requests = new Set<AbortController>();

  constructor(
    private readonly config: ResolvedOAuth,
    private readonly options: AuthorizationServerOptions,
  ) {
    this.issuer = config.issuer;
    const { introspection } = config;
    this.introspectionAuth = introspection && basicCredentials(introspection.clientId, introspection.clientSecret);
  }

  /** Fetches the metadata and keys now, without waiting; a failure is logged, and retried on demand. */
  warmUp(): void {
    const { jwksUri, introspection } = this.config;
    const discover = jwksUri === undefined || (introspection !== undefined && introspection.endpoint === undefined);
    const metadata = discover ? this.reach(() => this.metadata()) : Promise.resolve(undefined);
    metadata
      .then((found) => {
        // A server that only introspects may publish no keys: nothing to fetch, nothing to warn about.
        const keysPublished = jwksUri !== undefined || typeof found?.jwks_uri === 'string';
        if (keysPublished && this.keys === undefined && this.keysLoading === undefined) return this.loadKeys();
        return undefined;
      })
      .catch(() => undefined);
  }

  /**
   * The key that verifies a JWS with this header (jose's key resolver for `jwtVerify`). Throws
   * `IssuerUnavailable` when the keys are needed and cannot be fetched, and jose's
   * `ERR_JWKS_NO_MATCHING_KEY` for a key the server does not have.
   */
  async keyFor(header: Jose.JWSHeaderParameters | undefined, token: Jose.FlattenedJWSInput | undefined): Promise<Jose.CryptoKey> {
    const keys = this.keys ?? (await this.loadKeys());
    this.refreshStaleKeys();
    try {
      return await keys(header, token);
    } catch (err) {
      const unknownKey = (err as { code?: unknown }).code === 'ERR_JWKS_NO_MATCHING_KEY';
      if (!unknownKey || this.options.now() - this.keysFetchedAt < KEYS_COOLDOWN_MS) throw err;
      return (await this.loadKeys())(header, token);
    }
  }

  /** The RFC 7662 answer for `token`, a JSON object; throws `IssuerUnavailable`. */
  introspect(token: string): Promise<Record<string, unknown>> {
    return this.reach(async () => {
      const endpoint = this.config.introspection?.endpoint ?? (await this.metadata()).introspection_endpoint;
      if (typeof endpoint !== 'string') throw new IssuerFault('no_introspection_endpoint');
      return this.request(endpoint, {
        method: 'POST',
        headers: { authorization: this.introspectionAuth!, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
      });
    });
  }

  /** Aborts every request in flight; nothing is logged from now on. */
  close(): void {
    this.closed = true;
    for (const controller of this.requests) controller.abort();
  }

  private loadKeys(): Promise<KeyResolver> {
    this.keysLoading ??= this.reach(async () => {
      const jose = await loadJose();
      const uri = this.config.jwksUri ?? (await this.metadata()).jwks_uri;
      if (typeof uri !== 'string') throw new IssuerFault('no_jwks_uri');
      const jwks = await this.request(uri, { headers: { accept: 'application/jwk-set+json, application/json' } });
      let keys: KeyResolver;
      try {
        keys = jose.createLocalJWKSet(jwks as unknown as Jose.JSONWebKeySet);
      } catch {
        throw new IssuerFault('invalid_jwks');
      }
      this.keys = keys;
      this.keysFetchedAt = this.options.now();
      log('keys fetched from %s', uri);
      return keys;
    }).finally(() => {
      this.keysLoading = undefined;
    });
    return this.keysLoading;
  }

  private refreshStaleKeys(): void {
    const now = this.options.now();
    if (now - this.keysFetchedAt < KEYS_MAX_AGE_MS || now < this.keysRefreshNotBefore || this.keysLoading !== undefined) return;
    this.loadKeys().catch(() => {
      this.keysRefreshNotBefore = this.options.now() + KEYS_COOLDOWN_MS;
    });
  }

  /** The server's metadata, discovered once; a failed discovery is tried again by the next caller. */
  private metadata(): Promise<Metadata> {
    this.metadataLoading ??= this.discover().catch((err: unknown) => {
      this.metadataLoading = undefined;
      throw err;
    });
    return this.metadataLoading;
  }

  private async discover(): Promise<Metadata> {
    let missing = 'no_metadata';
    for (const url of discoveryUrls(this.issuer)) {
      let document: Record<string, unknown>;
      try {
        document = await this.request(url, { headers: { accept: 'application/json' } });
      } catch (err) {
        // Not at this location (or not JSON there): the next one. A server that does not answer
        // at all does not answer at the others either.
        const fault = faultOf(err);
        if (!/^http_4\d\d$|^invalid_json$/.test(fault)) throw err;
        missing = fault;
        continue;
      }
      // RFC 8414 §3.3 and OpenID Connect Discovery §4.3: metadata naming another issuer is not used.
      if (document.issuer !== this.issuer) throw new IssuerFault('issuer_mismatch');
      log('metadata of %s from %s', this.issuer, url);
      return document;
    }
    throw new IssuerFault(missing);
  }

  /**
   * Runs one exchange with the authorization server and records whether it answered. Any failure
   * becomes `IssuerUnavailable`: a request refused for it is answered `503`, not `401`.
   */
  private async reach<T>(exchange: () => Promise<T>): Promise<T> {
    try {
      const result = await exchange();
      this.markAvailable();
      return result;
    } catch (err) {
      if (err instanceof IssuerUnavailable) throw err;
      const fault = this.closed ? 'closed' : faultOf(err);
      this.markUnavailable(fault);
      throw new IssuerUnavailable(fault);
    }
  }

  private markAvailable(): void {
    if (this.available || this.closed) return;
    this.available = true;
    this.options.logger.info('oauth issuer available', { issuer: this.issuer });
  }

  private markUnavailable(fault: string): void {
    if (!this.available || this.closed) return;
    this.available = false;
    this.options.logger.warn('oauth issuer unavailable', { issuer: this.issuer, error: fault });
  }

  /** A GET or POST whose answer must be `200` with a JSON object, within `FETCH_TIMEOUT_MS`. */
  private async request(url: string, init: RequestInit): Promise<Record<string, unknown>> {
    if (this.closed) throw new IssuerFault('closed');
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(TIMED_OUT), FETCH_TIMEOUT_MS);
    this.requests.add(controller);
    try {
      // Not followed: a redirect would carry an introspected token elsewhere (jose does the same for keys).
      const res = await this.options.fetch(url, { ...init, redirect: 'manual', signal: controller.signal });
      if (res.status !== 200) {
        await res.body?.cancel();
        throw new IssuerFault(`http_${res.status}`);
      }
      const text = await readBounded(res);
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        throw new IssuerFault('invalid_json');
      }
      if (!isObject(json)) throw new IssuerFault('invalid_json');
      return json;
    } catch (err) {
      if (controller.signal.reason === TIMED_OUT) throw TIMED_OUT;
      throw err;
    } finally {
      clearTimeout(timer);
      this.requests.delete(controller);
    }
  }
}
