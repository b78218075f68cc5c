// OAuth 2.0 Protected Resource Metadata (RFC 9728) of each server, which MCP clients fetch to learn
// which authorization server issues tokens for it (MCP Authorization, Authorization Server
// Discovery). Served unauthenticated and to any origin: it holds no secret, and a browser client
// must be able to read it before it has a token (the Origin guard protects the MCP routes).
import { Router, type Request, type Response, type NextFunction } from 'express';
import type { ResolvedConfig } from '../config';

const PREFIX = '/.well-known/oauth-protected-resource';
const ROUTES = new Set(['mcp', 'sse']);

/** `<publicUrl>/<server>/<route>`: the resource a token for this server names in `aud` (RFC 8707). */
export function resourceUrl(publicUrl: string, server: string, route: 'mcp' | 'sse'): string {
  return `${publicUrl}/${encodeURIComponent(server)}/${route}`;
}

/**
 * Where the router serves a server's metadata under its mount path, as the `resource_metadata`
 * of a challenge (RFC 9728 §5.1): always reachable, whether or not the host mounted `wellKnown`.
 */
export function metadataUrl(publicUrl: string, server: string, route: 'mcp' | 'sse'): string {
  return `${publicUrl}${PREFIX}/${encodeURIComponent(server)}/${route}`;
}

/**
 * The metadata routes: under the router's mount path (`base` empty), and — `wellKnown`, for the
 * host's root — at the location RFC 9728 §3.1 derives from the resource URL, the well-known
 * segment inserted before the path (`https://host/.well-known/oauth-protected-resource/gw/db/mcp`
 * for `https://host/gw/db/mcp`). Both read the current config, so they follow reloads.
 */
export function metadataRouter(current: () => ResolvedConfig, atHostRoot: boolean): Router {
  const router = Router();
  router.use(PREFIX, function protectedResourceMetadata(req: Request, res: Response, next: NextFunction) {
    const config = current();
    if (config.oauth === undefined || config.publicUrl === undefined) return next();
    const base = atHostRoot ? new URL(config.publicUrl).pathname.replace(/\/$/, '') : '';
    if (!req.path.startsWith(`${base}/`)) return next();
    const [encoded, route, ...rest] = req.path.slice(base.length + 1).split('/');
    if (rest.length > 0 || !ROUTES.has(route)) return next();
    if (req.method === 'OPTIONS') {
      res.setHeader('Access-Control-Allow-Origin', '*');
      res.setHeader('Access-Control-Allow-Methods', 'GET, OPTIONS');
      const requested = req.headers['access-control-request-headers'];
      if (requested !== undefined) res.setHeader('Access-Control-Allow-Headers', requested);
      res.setHeader('Access-Control-Max-Age', '600');
      return void res.status(204).end();
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    let name: string;
    try {
      name = decodeURIComponent(encoded);
    } catch {
      return next();
    }
    const server = config.servers.get(name) ?? config.aggregates.get(name);
    res.setHeader('Access-Control-Allow-Origin', '*');
    if (server === undefined) {
      res.status(404).json({ error: 'not_found', error_description: `no server named "${name.slice(0, 128)}"` });
      return;
    }
    const scopes = [...server.scopes];
    res.setHeader('Cache-Control', 'public, max-age=300');
    res.json({
      resource: resourceUrl(config.publicUrl, server.name, route as 'mcp' | 'sse'),
      authorization_servers: [config.oauth.issuer],
      scopes_supported: scopes,
      bearer_methods_supported: ['header'],
      resource_name: `${config.name}: ${server.name}`,
    });
  });
  return router;
}
