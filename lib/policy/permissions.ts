// Permissions per token on tools, prompts and resources (README: Permissions per token), as one
// module of the message pipeline. It reads the current config on every message, so a reload
// applies to the next message of every live session.
//
// Uses are refused before they reach the server, with the error a server gives for a name it
// does not know (`-32602`, MCP specification, Tools: Error Handling), whether or not the name
// exists upstream, so a token learns nothing about what it may not use. List answers lose what
// the token may not use, and nothing else changes in them.
import type { ResolvedConfig, ResolvedPermissions } from '../config';
import type { JsonRpcMessage } from '../wire/body';
import { clip } from '../logger';
import type { Exchange, PipelineHook, Verdict } from '../pipeline/hooks';
import { compilePatterns, type Matcher, type PatternOptions } from '../patterns';

/** JSON-RPC 2.0 §5.1 "Invalid params": what MCP servers answer for an unknown tool, prompt or resource. */
const INVALID_PARAMS = -32602;

type Kind = 'tools' | 'prompts' | 'resources';
type Rules = Partial<Record<Kind, Matcher>>;

const NOUN: Record<Kind, string> = { tools: 'tool', prompts: 'prompt', resources: 'resource' };

/** The list answers that are filtered: the array of the result, and the field that names an entry. */
const LISTS: Record<string, { kind: Kind; array: string; key: string }> = {
  'tools/list': { kind: 'tools', array: 'tools', key: 'name' },
  'prompts/list': { kind: 'prompts', array: 'prompts', key: 'name' },
  'resources/list': { kind: 'resources', array: 'resources', key: 'uri' },
  // Templates are compared as literal text (README: Permissions per token).
  'resources/templates/list': { kind: 'resources', array: 'resourceTemplates', key: 'uriTemplate' },
};

/**
 * What one request uses: its kind and the names, each of which must be allowed, or `undefined` for
 * a method that uses nothing. `resources/unsubscribe` is not a use: it reveals nothing, and a
 * client must be able to drop a subscription that a reload has since forbidden.
 */
function usedBy(method: string, params: Readonly<Record<string, unknown>> | undefined): { kind: Kind; names: readonly unknown[] } | undefined {
  switch (method) {
    case 'tools/call':
      return { kind: 'tools', names: [params?.name] };
    case 'prompts/get':
      return { kind: 'prompts', names: [params?.name] };
    case 'resources/read':
    case 'resources/subscribe':
      return { kind: 'resources', names: [params?.uri] };
    case 'subscriptions/listen':
      return { kind: 'resources', names: listenedTo(params) };
    case 'completion/complete': {
      // Completion reveals a prompt's arguments or a resource template's values: decided by its `ref`.
      const ref = params?.ref as Record<string, unknown> | undefined;
      if (typeof ref === 'object' && ref !== null && ref.type === 'ref/resource') return { kind: 'resources', names: [ref.uri] };
      return { kind: 'prompts', names: [typeof ref === 'object' && ref !== null ? ref.name : undefined] };
    }
    default:
      return undefined;
  }
}

/**
 * The resources a 2026-07-28 `subscriptions/listen` subscribes to: `notifications.
 * resourceSubscriptions`, an array of URIs (MCP 2026-07-28, schema: SubscriptionFilter), which
 * replaces `resources/subscribe`. A filter or list of another shape is one refused name as a
 * whole, even a string that would be allowed as a URI: a server might read it some other way.
 */
function listenedTo(params: Readonly<Record<string, unknown>> | undefined): readonly unknown[] {
  const filter = params?.notifications;
  if (filter === undefined) return [];
  if (typeof filter !== 'object' || filter === null || Array.isArray(filter)) return [malformed(filter)];
  const uris = (filter as Record<string, unknown>).resourceSubscriptions;
  if (uris === undefined) return [];
  return Array.isArray(uris) ? uris : [malformed(uris)];
}

/** Never a string, so never allowed; named in the refusal as the client sent it. */
const malformed = (value: unknown) => ({ toJSON: () => value });

/**
 * What a `*` in a resource pattern may match (README: Permissions per token). The proxy matches
 * text, but a server resolves dot segments (RFC 3986 §5.2.4) and decodes escapes (RFC 3986 §2.1)
 * before it opens anything, so `file:///data/public/*` must not admit
 * `file:///data/public/../secret`, `…/%2e%2e/secret` or `…/..%2fsecret`. A URI with a dot segment,
 * an encoded `/` or `\`, or a raw `\` (a separator to Windows and to the URL Standard's `file:`
 * parser) is therefore matched by exact patterns only. Escapes count through any number of `%25`
 * (`%252e`), for servers that decode twice.
 */
const RESOURCE_PATTERNS: PatternOptions = {
  globsAdmit: (uri) => !uri.includes('\\') && !ENCODED_SEPARATOR.test(uri) && !DOT_SEGMENT.test(uri),
};
const ENCODED_SEPARATOR = /%(?:25)*(?:2f|5c)/i;
/**
 * `.` or `..`, plain or escaped, between segment delimiters: `/`, the query's `?` and the
 * fragment's `#` (RFC 3986 §3.3), and `;`, where servers that take path parameters end a segment
 * (`..;/`).
 */
const DOT_SEGMENT = /(?:^|[/?#;])(?:\.|%(?:25)*2e){1,2}(?:[/?#;]|$)/i;

export function permissionsHook(currentConfig: () => ResolvedConfig): PipelineHook {
  // Compiled once per config object (a reload makes a new one) and server.
  let compiledFor: ResolvedConfig | undefined;
  let compiled = new Map<string, Map<string, Rules>>();
  const rulesFor = (server: string, token: string): Rules | undefined => {
    const config = currentConfig();
    if (compiledFor !== config) {
      compiledFor = config;
      compiled = new Map();
      for (const [name, s] of config.servers) if (s.permissions) compiled.set(name, compile(s.permissions));
    }
    const entries = compiled.get(server);
    if (entries === undefined) return undefined;
    return entries.get(token) ?? entries.get('*');
  };

  return {
    appliesTo: (base) => rulesFor(base.server, base.token) !== undefined,

    request(ex: Exchange): Verdict | undefined {
      const use = usedBy(ex.method, ex.params);
      if (use === undefined) return undefined;
      const rules = rulesFor(ex.server, ex.token);
      const allows = rules?.[use.kind];
      if (allows === undefined) return undefined;
      // A name that is not a string is refused outright: a server might read it some other way.
      // One refused name refuses the whole request, named by the first.
      const refused = use.names.findIndex((name) => typeof name !== 'string' || !allows(name));
      if (refused === -1) return undefined;
      const name = use.names[refused];
      const shown = typeof name === 'string' ? name : String(JSON.stringify(name));
      // Logged by the pipeline: one line for a request, one summary line for a refused batch.
      const warn = {
        message: 'permission denied',
        fields: { token: ex.token, server: ex.server, method: ex.method, name: clip(shown) },
      };
      return { code: INVALID_PARAMS, message: `Unknown ${NOUN[use.kind]}: ${shown}`, warn };
    },

    answer(ex: Exchange, response: JsonRpcMessage): JsonRpcMessage | undefined {
      const list = LISTS[ex.method];
      if (list === undefined) return undefined;
      const allows = rulesFor(ex.server, ex.token)?.[list.kind];
      if (allows === undefined) return undefined;
      const result = response.result as Record<string, unknown> | undefined;
      if (typeof result !== 'object' || result === null) return undefined;
      const entries = result[list.array];
      if (!Array.isArray(entries)) return undefined;
      const kept = entries.filter((e: unknown) => {
        const name = typeof e === 'object' && e !== null ? (e as Record<string, unknown>)[list.key] : undefined;
        return typeof name === 'string' && allows(name);
      });
      // Unchanged: the server's own bytes go on.
      if (kept.length === entries.length) return undefined;
      return { ...response, result: { ...result, [list.array]: kept } };
    },
  };
}

function compile(permissions: ReadonlyMap<string, ResolvedPermissions>): Map<string, Rules> {
  const out = new Map<string, Rules>();
  for (const [token, p] of permissions) {
    const rules: Rules = {};
    for (const kind of ['tools', 'prompts', 'resources'] as const) {
      const list = p[kind];
      if (list !== undefined) rules[kind] = compilePatterns(list, kind === 'resources' ? RESOURCE_PATTERNS : undefined);
    }
    out.set(token, rules);
  }
  return out;
}
