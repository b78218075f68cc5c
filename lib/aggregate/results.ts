// What crosses an aggregate in the member's names and must reach the client in the aggregate's
// (README: Aggregates): list entries, and the resource URIs inside results — a tool's
// `resource_link` and embedded resources, a prompt's messages, a read's contents — so that a
// client can read what a member points it to through the aggregate.
import type { JsonRpcMessage } from '../wire/body';
import type { JsonRpcId } from '../pipeline/hooks';
import type { Member, MemberOutcome } from './member';

type Obj = Record<string, unknown>;

/** A list method: the array of its result and the field of an entry that names it. */
export interface ListShape {
  readonly array: string;
  readonly key: string;
  /** Names get `<prefix><separator>`, URIs `<prefix>+`. */
  readonly naming: 'name' | 'uri';
  /** The `notifications/…/list_changed` of this kind. */
  readonly changed: string;
}

export const LISTS: Readonly<Record<string, ListShape>> = {
  'tools/list': { array: 'tools', key: 'name', naming: 'name', changed: 'notifications/tools/list_changed' },
  'prompts/list': { array: 'prompts', key: 'name', naming: 'name', changed: 'notifications/prompts/list_changed' },
  'resources/list': { array: 'resources', key: 'uri', naming: 'uri', changed: 'notifications/resources/list_changed' },
  'resources/templates/list': { array: 'resourceTemplates', key: 'uriTemplate', naming: 'uri', changed: 'notifications/resources/list_changed' },
};

/** The entries of one page of a member's list answer, and the cursor of its next page. */
export function pageOf(response: JsonRpcMessage, shape: ListShape): { entries: Obj[]; next: string | undefined } {
  const result = response.result as Obj | undefined;
  const raw = result?.[shape.array];
  const entries = Array.isArray(raw) ? raw.filter((e): e is Obj => typeof e === 'object' && e !== null && typeof (e as Obj)[shape.key] === 'string') : [];
  const cursor = result?.nextCursor;
  return { entries, next: typeof cursor === 'string' && cursor !== '' ? cursor : undefined };
}

/** A member that never ends its list (a cursor loop) is cut here. */
export const MAX_PAGES = 100;

/**
 * Every page of one member's list, following its cursors. A page that fails leaves the member's
 * list as it was (`leftOut` says why); `cut` when the member still had pages after `MAX_PAGES`.
 */
export async function allPages(
  member: Member,
  method: string,
  shape: ListShape,
  sent: (id: JsonRpcId) => void,
): Promise<{ entries: Obj[]; cut: boolean; leftOut?: string }> {
  const entries: Obj[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const outcome: MemberOutcome = await member.request(method, cursor === undefined ? undefined : { cursor }, sent);
    if (outcome.kind !== 'answer' || outcome.message.error !== undefined) return { entries, cut: false, leftOut: outcome.kind };
    const { entries: more, next } = pageOf(outcome.message, shape);
    entries.push(...more);
    if (next === undefined) return { entries, cut: false };
    cursor = next;
  }
  return { entries, cut: true };
}

/** One entry under its client-facing name (a copy: the member's answer is not changed). */
export function renamed(entry: Obj, shape: ListShape, rename: (name: string) => string): Obj {
  return { ...entry, [shape.key]: rename(entry[shape.key] as string) };
}

/**
 * The resource URIs of a result, prefixed: `resources/read` contents, and `resource_link` and
 * embedded `resource` content of `tools/call` and `prompts/get`. Returns `undefined` when nothing
 * needed it (the member's text goes on unchanged).
 */
export function withClientUris(method: string, result: unknown, prefixUri: (uri: string) => string): Obj | undefined {
  if (!isObj(result)) return undefined;
  // Checked before anything is copied: most results (a tool's text) carry no URI at all.
  if (method === 'resources/read' && Array.isArray(result.contents) && result.contents.some(hasUri)) {
    return { ...result, contents: result.contents.map((c) => (hasUri(c) ? { ...c, uri: prefixUri(c.uri) } : c)) };
  }
  const content = (c: unknown) => withPrefixedUri(c, prefixUri);
  if (method === 'tools/call' && Array.isArray(result.content) && result.content.some(carriesUri)) {
    return { ...result, content: result.content.map(content) };
  }
  if (method === 'prompts/get' && Array.isArray(result.messages) && result.messages.some((m) => isObj(m) && carriesUri(m.content))) {
    return { ...result, messages: result.messages.map((m) => (isObj(m) && carriesUri(m.content) ? { ...m, content: content(m.content) } : m)) };
  }
  return undefined;
}

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null;
const hasUri = (v: unknown): v is Obj & { uri: string } => isObj(v) && typeof v.uri === 'string';

/** A `resource_link`, or an embedded `resource` with its URI (MCP: Tools, tool result content). */
function carriesUri(c: unknown): boolean {
  return isObj(c) && ((c.type === 'resource_link' && hasUri(c)) || (c.type === 'resource' && hasUri(c.resource)));
}

function withPrefixedUri(c: unknown, prefixUri: (uri: string) => string): unknown {
  if (!carriesUri(c)) return c;
  const item = c as Obj;
  if (item.type === 'resource_link') return { ...item, uri: prefixUri(item.uri as string) };
  const resource = item.resource as Obj;
  return { ...item, resource: { ...resource, uri: prefixUri(resource.uri as string) } };
}
