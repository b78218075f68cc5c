// The `aggregates` section (README: Aggregates): several configured servers served as one, each
// member under a prefix. What a schema cannot say is checked here: names shared with servers,
// members that exist, prefixes a client can tell apart.
import { isObject, type Obj, type Segment } from './problems';
import type { Resolver } from './resolver';
import type { ResolvedProxy } from './resolved-proxy';
import type { ResolvedAggregate, ResolvedMember, ResolvedServer } from './resolved-config';

/**
 * A prefix is the first label of a tool name and the scheme-prefix of a resource URI
 * (`<prefix>+<uri>`): lower-case, so every client and URI parser reads it the same way (RFC 3986
 * §3.1: a scheme is case-insensitive), short, so that prefixed names stay within the 64
 * characters several clients allow.
 */
export const PREFIX = /^[a-z][a-z0-9-]{0,15}$/;
export const PREFIX_RULE = 'a prefix is a lower-case letter, then up to 15 lower-case letters, digits or "-"';
const DEFAULT_SEPARATOR = '__';

/** What resolving an aggregate borrows from the resolution of servers. */
export interface AggregateResolution {
  /** `authTokens` read as a server's are (names checked, omitted = every token). */
  authTokens(raw: unknown, at: Segment[]): Set<string>;
  /** The rules of a server name: aggregates are served on the same routes. */
  checkName(at: Segment[], name: string): void;
}

export function resolveAggregates(raw: unknown, servers: ReadonlyMap<string, ResolvedServer>, proxy: ResolvedProxy, r: Resolver, via: AggregateResolution): Map<string, ResolvedAggregate> {
  const out = new Map<string, ResolvedAggregate>();
  if (!isObject(raw)) return out;
  for (const [name, value] of Object.entries(raw)) {
    const at: Segment[] = ['aggregates', name];
    via.checkName(at, name);
    if (servers.has(name)) r.add(at, `is also the name of a server; an aggregate is served on the routes of its name, so the two must differ`);
    if (!isObject(value)) continue; // reported by the schema
    const resolved = resolveAggregate(name, value, servers, proxy, r, via);
    if (resolved !== undefined) out.set(name, resolved);
  }
  return out;
}

function resolveAggregate(name: string, raw: Obj, servers: ReadonlyMap<string, ResolvedServer>, proxy: ResolvedProxy, r: Resolver, via: AggregateResolution): ResolvedAggregate | undefined {
  const at: Segment[] = ['aggregates', name];
  const members = resolveMembers(raw.servers, [...at, 'servers'], servers, r);
  const separator = typeof raw.separator === 'string' ? (raw.separator as ResolvedAggregate['separator']) : DEFAULT_SEPARATOR;
  const onUnavailable = raw.onUnavailable === 'fail' ? 'fail' : 'omit';
  let authTokens: Set<string>;
  if (raw.authTokens === undefined) {
    // Every token that may use at least one member: the aggregate opens nothing a token could not reach one by one.
    authTokens = new Set();
    for (const m of members) for (const t of servers.get(m.server)?.authTokens ?? []) authTokens.add(t);
  } else authTokens = via.authTokens(raw.authTokens, [...at, 'authTokens']);
  const scopes = new Set<string>(proxy.oauth.oauth?.scopes ?? []);
  for (const m of members) for (const s of servers.get(m.server)?.scopes ?? []) scopes.add(s);
  return { name, members, separator, onUnavailable, authTokens, scopes: [...scopes] };
}

function resolveMembers(raw: unknown, at: Segment[], servers: ReadonlyMap<string, ResolvedServer>, r: Resolver): ResolvedMember[] {
  const entries: { server: string; prefix: unknown; at: Segment[]; prefixAt: Segment[] | undefined }[] = [];
  if (Array.isArray(raw)) {
    raw.forEach((server, i) => {
      if (typeof server === 'string') entries.push({ server, prefix: undefined, at: [...at, i], prefixAt: undefined });
    });
  } else if (isObject(raw)) {
    for (const [server, options] of Object.entries(raw)) {
      const prefix = isObject(options) ? options.prefix : undefined;
      entries.push({ server, prefix, at: [...at, server], prefixAt: prefix === undefined ? undefined : [...at, server, 'prefix'] });
    }
  } else return [];

  const members: ResolvedMember[] = [];
  const seen = new Set<string>();
  for (const e of entries) {
    if (seen.has(e.server)) {
      r.add(e.at, `"${e.server}" is listed twice`);
      continue;
    }
    seen.add(e.server);
    if (!servers.has(e.server)) {
      r.add(e.at, `unknown server ${JSON.stringify(e.server.slice(0, 64))}; members are servers of "mcpServers"`);
      continue;
    }
    if (e.prefix !== undefined && typeof e.prefix !== 'string') continue; // reported by the schema
    const prefix = (e.prefix as string | undefined) ?? e.server;
    if (!PREFIX.test(prefix)) {
      r.add(
        e.prefixAt ?? e.at,
        e.prefixAt === undefined
          ? `server name "${e.server.slice(0, 64)}" cannot be its prefix (${PREFIX_RULE}); give this member a "prefix"`
          : `invalid prefix ${JSON.stringify(prefix.slice(0, 64))}: ${PREFIX_RULE}`,
      );
      continue;
    }
    members.push({ server: e.server, prefix });
  }
  // The member of a name is found by its exact prefix and separator, and `gh` + `-` would read
  // `gh-x__tool` as a tool of `gh` named `x__tool`: no prefix may start another.
  members.forEach((a, i) => {
    members.forEach((b, j) => {
      // Equal prefixes are reported once, at the later member.
      if (i === j || !b.prefix.startsWith(a.prefix) || (a.prefix === b.prefix && j < i)) return;
      const where = entries.find((e) => e.server === b.server);
      const bAt = where?.prefixAt ?? where?.at ?? at;
      r.add(bAt, a.prefix === b.prefix ? `prefix "${b.prefix}" is also the prefix of "${a.server}"` : `prefix "${b.prefix}" starts with the prefix "${a.prefix}" of "${a.server}"; no prefix may start another`);
    });
  });
  return members;
}
