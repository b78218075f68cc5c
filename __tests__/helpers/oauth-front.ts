// mcp-front as an OAuth resource server in tests: its config around a real authorization server
// (helpers/oauth.ts), an SDK `OAuthClientProvider` that logs in headless, and raw requests that
// read the whole answer (status, `WWW-Authenticate`, JSON body).
import path from 'node:path';
import type { OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import type { McpFrontConfig, OAuthConfig } from '../../lib/types';
import { INITIALIZE } from './clients';
import { REDIRECT_URI, type AuthorizationServer } from './oauth';

export const STDIO_SERVER = path.join(__dirname, '..', 'fixtures', 'stdio-server.js');
/** The stdio fixture as a server of the config. */
export const stdioServer = (extra: Record<string, unknown> = {}) => ({ command: process.execPath, args: [STDIO_SERVER], ...extra });

/**
 * `staff`: the fixture's account (alice@acme.com) and minted users of acme.com; `machines`: the
 * fixture's `client_credentials` clients (their tokens carry `client_id`, their `sub` is it).
 */
export const PRINCIPALS: OAuthConfig['principals'] = {
  staff: { claims: { email: '*@acme.com', email_verified: true } },
  machines: { claims: { client_id: ['jwt-client', 'opaque-client'] } },
};

export const PROXY_NAME = 'OAuth Proxy';

export interface OAuthConfigOptions {
  oauth?: Partial<OAuthConfig>;
  /** Static tokens beside OAuth. Default: none. */
  tokens?: Record<string, string>;
  proxy?: Partial<McpFrontConfig['proxy']>;
}

/** A config with `oauth` of `as` (scope `mcp:tools` everywhere, PRINCIPALS) and `publicUrl`. */
export function oauthConfig(as: AuthorizationServer, publicUrl: string, mcpServers: McpFrontConfig['mcpServers'], options: OAuthConfigOptions = {}): McpFrontConfig {
  return {
    version: '1.0',
    proxy: {
      name: PROXY_NAME,
      publicUrl,
      auth: {
        kind: 'bearer_token',
        ...(options.tokens === undefined ? {} : { tokens: options.tokens }),
        oauth: { issuer: as.issuer, scopes: ['mcp:tools'], principals: PRINCIPALS, ...options.oauth },
      },
      ...options.proxy,
    },
    mcpServers,
  };
}

/** The payload of a JWT, unverified: what the test wants to know about a token it holds. */
export function payloadOf(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8')) as Record<string, unknown>;
}

export const nowSeconds = () => Math.floor(Date.now() / 1000);

/**
 * An SDK OAuth client in memory, as an app keeps one per server: registered client, tokens and
 * PKCE verifier. Its "browser" is the authorization server's headless login: the redirect is
 * followed at once and the code it ends with is kept for `finishAuth`.
 */
export class HeadlessOAuthProvider implements OAuthClientProvider {
  private client: OAuthClientInformationMixed | undefined;
  private saved: OAuthTokens | undefined;
  private verifier = '';
  private code: string | undefined;
  /** Every authorization URL the SDK sent the user to. */
  readonly authorizationUrls: URL[] = [];
  /** How many times a client was registered (RFC 7591). */
  registrations = 0;

  constructor(private readonly as: AuthorizationServer) {}

  get redirectUrl(): string {
    return REDIRECT_URI;
  }

  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: 'mcp-front e2e',
      redirect_uris: [REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  clientInformation(): OAuthClientInformationMixed | undefined {
    return this.client;
  }

  saveClientInformation(info: OAuthClientInformationMixed): void {
    if (this.client === undefined) this.registrations++;
    this.client = info;
  }

  tokens(): OAuthTokens | undefined {
    return this.saved;
  }

  saveTokens(tokens: OAuthTokens): void {
    this.saved = tokens;
  }

  saveCodeVerifier(verifier: string): void {
    this.verifier = verifier;
  }

  codeVerifier(): string {
    return this.verifier;
  }

  async redirectToAuthorization(url: URL): Promise<void> {
    this.authorizationUrls.push(url);
    const back = await this.as.authorize(url);
    const code = back.searchParams.get('code');
    if (code === null) throw new Error(`authorization refused: ${back.search}`);
    this.code = code;
  }

  /** The code of the last authorization, once. */
  takeCode(): string {
    const code = this.code;
    if (code === undefined) throw new Error('no authorization happened');
    this.code = undefined;
    return code;
  }

  /** The access token the SDK holds now. */
  get accessToken(): string {
    if (this.saved === undefined) throw new Error('no token saved');
    return this.saved.access_token;
  }
}

/** A whole answer, read: status, headers and the body (parsed when JSON). */
export interface Answer {
  status: number;
  headers: Headers;
  body: unknown;
}

async function read(res: Response): Promise<Answer> {
  const text = await res.text();
  let body: unknown = text;
  if ((res.headers.get('content-type') ?? '').includes('application/json') && text !== '') body = JSON.parse(text);
  return { status: res.status, headers: res.headers, body };
}

/** `Authorization: Bearer <token>`, or nothing for `undefined`. */
export const bearer = (token: string | undefined): Record<string, string> => (token === undefined ? {} : { Authorization: `Bearer ${token}` });

/** POSTs a JSON-RPC message to a Streamable HTTP endpoint and reads the answer. */
export async function postMcp(url: string, token: string | undefined, message: object = INITIALIZE, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', ...bearer(token), ...headers },
    body: JSON.stringify(message),
  });
  return read(res);
}

/** Opens a Streamable HTTP session with `initialize` (and `notifications/initialized`); its id. */
export async function openSession(url: string, token: string): Promise<string> {
  const init = await postMcp(url, token);
  const id = init.headers.get('mcp-session-id');
  if (init.status !== 200 || id === null) throw new Error(`initialize: ${init.status} ${JSON.stringify(init.body)}`);
  const initialized = await postMcp(url, token, { jsonrpc: '2.0', method: 'notifications/initialized' }, { 'Mcp-Session-Id': id });
  if (initialized.status !== 202) throw new Error(`notifications/initialized: ${initialized.status}`);
  return id;
}

/** `tools/list` in a session. */
export const listTools = (url: string, token: string, sessionId: string, id = 2) =>
  postMcp(url, token, { jsonrpc: '2.0', id, method: 'tools/list' }, { 'Mcp-Session-Id': sessionId });

/** The parameters of a `WWW-Authenticate: Bearer …` challenge (quoted values unescaped). */
export function challengeParams(header: string | null): Record<string, string> {
  if (header === null) throw new Error('no WWW-Authenticate');
  if (!header.startsWith('Bearer ')) throw new Error(`not a Bearer challenge: ${header}`);
  const params: Record<string, string> = {};
  for (const m of header.slice(7).matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/g)) params[m[1]] = m[2].replace(/\\(.)/g, '$1');
  return params;
}
