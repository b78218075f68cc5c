// The `aggregates` section (README: Aggregates): several configured servers served as one, each
// member under a prefix. What a schema cannot say is checked here: names shared with servers,
// members that exist, prefixes a client can tell apart.
//
// Member names are meant to be server names and prefixes short labels, but either may be a pasted
// secret: one that is neither a configured name nor quotable (resolver.ts) is never quoted.
import { didYouMean, isObject, type Obj, type Problem, type Segment } from './problems';
import { quotableName, type Resolver } from './resolver';
import { nameWords } from './resolve-policy';
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
/** Servers named in an "unknown server" message; a long list would bury the problem. */
const MAX_LISTED = 10;
const NOT_SHOWN = '(not shown: it may be a secret)';

/** What resolving the aggregates borrows from the resolution of servers. */
export interface AggregateContext {
  /** Every name of `mcpServers` (those that failed to resolve included: their problems are reported there) and of `aggregates`. */
  names: AggregateNames;
  servers: ReadonlyMap<string, ResolvedServer>;
  proxy: ResolvedProxy;
  r: Resolver;
  /** `authTokens` read as a server's are (names checked); `omitted` says what leaving it out allows. */
  authTokens(raw: unknown, at: Segment[], omitted: string): Set<string>;
  /** The rules of a server name: aggregates are served on the same routes. */
  checkName(at: Segment[], name: string): void;
}

/** The names of `mcpServers` and of `aggregates`: keys of the document, already in its paths. */
export interface AggregateNames {
  servers: ReadonlySet<string>;
  aggregates: ReadonlySet<string>;
}

/** A member as read from the document, before its checks. */
interface Entry {
  server: string;
  at: Segment[];
  prefix?: unknown;
  prefixAt?: Segment[];
}

/** A member that passed its checks, with where its prefix was decided (for the prefix checks). */
type Placed = ResolvedMember & { at: Segment[] };

export function resolveAggregates(raw: unknown, ctx: AggregateContext): Map<string, ResolvedAggregate> {
  const out = new Map<string, ResolvedAggregate>();
  if (!isObject(raw)) return out;
  for (const [name, value] of Object.entries(raw)) {
    const at: Segment[] = ['aggregates', name];
    ctx.checkName(at, name);
    if (ctx.names.servers.has(name)) ctx.r.add(at, `is also the name of a server; an aggregate is served on the routes of its name, so the two must differ`);
    if (!isObject(value)) continue; // reported by the schema
    out.set(name, resolveAggregate(name, value, ctx));
  }
  return out;
}

function resolveAggregate(name: string, raw: Obj, ctx: AggregateContext): ResolvedAggregate {
  const at: Segment[] = ['aggregates', name];
  const members = resolveMembers(raw.servers, [...at, 'servers'], ctx);
  const separator = typeof raw.separator === 'string' ? (raw.separator as ResolvedAggregate['separator']) : DEFAULT_SEPARATOR;
  const onUnavailable = raw.onUnavailable === 'fail' ? 'fail' : 'omit';
  let authTokens: Set<string>;
  if (raw.authTokens === undefined) {
    // Every token that may use at least one member: the aggregate opens nothing a token could not reach one by one.
    authTokens = new Set();
    for (const m of members) for (const t of ctx.servers.get(m.server)?.authTokens ?? []) authTokens.add(t);
  } else {
    authTokens = ctx.authTokens(raw.authTokens, [...at, 'authTokens'], `every ${nameWords(ctx.proxy).every} allowed on one of its members`);
  }
  // An aggregate is one protected resource (RFC 9728), one URL in front of all its members: the
  // scopes it asks of an access token are those of every member.
  const scopes = new Set<string>(ctx.proxy.oauth.oauth?.scopes ?? []);
  for (const m of members) for (const s of ctx.servers.get(m.server)?.scopes ?? []) scopes.add(s);
  return { name, members, separator, onUnavailable, authTokens, scopes: [...scopes] };
}

function resolveMembers(raw: unknown, at: Segment[], ctx: AggregateContext): ResolvedMember[] {
  const { r } = ctx;
  const placed: Placed[] = [];
  const seen = new Set<string>();
  for (const e of memberEntries(raw, at)) {
    if (seen.has(e.server)) {
      r.add(e.at, `${serverLabel(e.server, ctx)} is listed twice; a server is a member once`);
      continue;
    }
    seen.add(e.server);
    if (!ctx.names.servers.has(e.server)) {
      r.add(e.at, notAServer(e.server, ctx));
      continue;
    }
    const prefix = memberPrefix(e, raw, r);
    if (prefix !== undefined) placed.push({ server: e.server, prefix, at: e.prefixAt ?? e.at });
  }
  checkPrefixesApart(placed, r);
  return placed.map(({ server, prefix }) => ({ server, prefix }));
}

/** The members of `servers`, a list of names or an object of name → options, in document order. */
function memberEntries(raw: unknown, at: Segment[]): Entry[] {
  // Empty and non-string list entries are reported by the schema.
  if (Array.isArray(raw)) return raw.flatMap((server, i) => (typeof server === 'string' && server !== '' ? [{ server, at: [...at, i] }] : []));
  if (!isObject(raw)) return [];
  return Object.entries(raw).map(([server, options]) => {
    const prefix = isObject(options) ? options.prefix : undefined;
    return { server, at: [...at, server], ...(prefix === undefined ? {} : { prefix, prefixAt: [...at, server, 'prefix'] }) };
  });
}

/** A configured server's name is a key of `mcpServers`, already in paths; anything else may be a secret. */
function serverLabel(name: string, ctx: AggregateContext): string {
  return ctx.names.servers.has(name) || quotableName(name, ctx.r) ? `server ${JSON.stringify(name)}` : `a server ${NOT_SHOWN}`;
}

function notAServer(name: string, ctx: AggregateContext): string {
  if (ctx.names.aggregates.has(name)) return `${JSON.stringify(name)} is an aggregate; the members of an aggregate are servers of "mcpServers" (aggregates do not nest)`;
  const shown = name === '' || quotableName(name, ctx.r) ? JSON.stringify(name) : NOT_SHOWN;
  const names = [...ctx.names.servers];
  const listed = names.slice(0, MAX_LISTED).map((n) => JSON.stringify(n)).join(', ') + (names.length > MAX_LISTED ? ', …' : '');
  const hint = didYouMean(name, names) || (names.length === 0 ? '; members are servers of "mcpServers", which has none' : `; members are servers of "mcpServers": ${listed}`);
  return `unknown server ${shown}${hint}`;
}

/** A member's prefix: its `prefix`, else its server's name, which must then be a valid prefix. */
function memberPrefix(e: Entry, servers: unknown, r: Resolver): string | undefined {
  if (e.prefix === undefined) {
    if (PREFIX.test(e.server)) return e.server;
    const suggestion = suggestPrefix(e.server);
    const example = JSON.stringify(suggestion ?? '…');
    // In a list there is nowhere to put a prefix: say how the object form gives one.
    const fix = Array.isArray(servers)
      ? `list the members as an object to give this one a "prefix": {${JSON.stringify(e.server)}: {"prefix": ${example}}}`
      : `give this member a "prefix"${suggestion === undefined ? '' : `, such as ${example}`}`;
    r.add(e.at, `the server name cannot be its prefix (${PREFIX_RULE}); ${fix}`);
    return undefined;
  }
  if (typeof e.prefix !== 'string') return undefined; // reported by the schema
  if (PREFIX.test(e.prefix)) return e.prefix;
  const shown = e.prefix === '' || quotableName(e.prefix, r);
  const suggestion = shown ? suggestPrefix(e.prefix) : undefined;
  r.add(e.prefixAt ?? e.at, `invalid prefix ${shown ? JSON.stringify(e.prefix) : NOT_SHOWN}: ${PREFIX_RULE}${suggestion === undefined ? '' : `; such as ${JSON.stringify(suggestion)}`}`);
  return undefined;
}

/** A valid prefix close to a name (`GitHub` → `github`, `db_read.v2` → `db-read-v2`), if there is one. */
function suggestPrefix(name: string): string | undefined {
  const s = name
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^[^a-z]+/, '')
    .slice(0, 16)
    .replace(/-+$/, '');
  return PREFIX.test(s) ? s : undefined;
}

/**
 * The member of a name is found by its exact prefix and separator, and with `-` a name
 * `gh-x-tool` would be a tool `x-tool` of `gh` and a tool `tool` of `gh-x`: no prefix may start
 * another. Each member is reported once: a longer prefix at itself, an equal one at the later member.
 */
function checkPrefixesApart(members: readonly Placed[], r: Resolver): void {
  members.forEach((b, j) => {
    const a = members.find((m, i) => i !== j && b.prefix.startsWith(m.prefix) && (m.prefix !== b.prefix || i < j));
    if (a === undefined) return;
    r.add(
      b.at,
      a.prefix === b.prefix
        ? `prefix "${b.prefix}" is also the prefix of server "${a.server}"; each member needs a prefix of its own`
        : `prefix "${b.prefix}" starts with the prefix "${a.prefix}" of server "${a.server}"; no prefix may start another`,
    );
  });
}

/**
 * The keys of an aggregate's `servers` object are meant to be server names, but may be a pasted
 * secret, and a path through such a key would quote it: the problem is then reported at the object.
 */
export function hideSecretMembers(problem: Problem, names: AggregateNames, r: Resolver): Problem {
  const { at } = problem;
  const key = at[3];
  if (at[0] !== 'aggregates' || at[2] !== 'servers' || typeof key !== 'string') return problem;
  if (key === '' || names.servers.has(key) || names.aggregates.has(key) || quotableName(key, r)) return problem;
  const message = problem.message.startsWith('unknown server') ? problem.message : `a member whose name is not shown (it may be a secret): ${problem.message}`;
  return { at: at.slice(0, 3), message };
}
