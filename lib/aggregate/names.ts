// The names of an aggregate (README: Aggregates): what a client sees is its member's own name
// under the member's prefix — `<prefix><separator><name>` for tools and prompts, `<prefix>+<uri>`
// for resource URIs and templates — and the member of a name is found by its exact prefix and
// separator, never by splitting the name. No prefix starts another (checked with the config), so
// at most one member matches.
import type { JsonRpcId } from '../pipeline/hooks';

export interface Named<M> {
  readonly member: M;
  /** The name (or URI) as the member knows it. */
  readonly name: string;
}

/** The prefixes of one aggregate, for one client session's visible members. */
export class Names<M extends { readonly prefix: string }> {
  constructor(
    private readonly members: readonly M[],
    readonly separator: string,
  ) {}

  /** `<prefix><separator><name>`: a tool or prompt as the client sees it. */
  name(member: M, name: string): string {
    return member.prefix + this.separator + name;
  }

  /**
   * `<prefix>+<uri>`: a resource URI (or URI template) as the client sees it. The prefix becomes
   * part of the scheme (RFC 3986 §3.1 allows `+` in a scheme), so the result is still an absolute
   * URI that clients' URI parsers accept (`gh+file:///x`; `gh__file:///x` is not a URI).
   */
  uri(member: M, uri: string): string {
    return member.prefix + '+' + uri;
  }

  /** The member and its own name of a prefixed tool or prompt name; `undefined` when no prefix matches. */
  memberOfName(name: unknown): Named<M> | undefined {
    if (typeof name !== 'string') return undefined;
    for (const member of this.members) {
      const start = member.prefix + this.separator;
      if (name.length > start.length && name.startsWith(start)) return { member, name: name.slice(start.length) };
    }
    return undefined;
  }

  /** The member and its own URI of a prefixed resource URI or template. */
  memberOfUri(uri: unknown): Named<M> | undefined {
    if (typeof uri !== 'string') return undefined;
    for (const member of this.members) {
      const start = member.prefix + '+';
      if (uri.length > start.length && uri.startsWith(start)) return { member, name: uri.slice(start.length) };
    }
    return undefined;
  }

  /**
   * The id a client sees for a request a member sends it (sampling, elicitation, roots): every
   * member numbers its own requests from 0, so the id names its member — `"<prefix>:<id as JSON>"`.
   */
  reverseId(member: M, id: JsonRpcId): string {
    return member.prefix + ':' + JSON.stringify(id);
  }

  /** The member of a reverse id (the id itself is looked up among the ones issued). */
  memberOfReverseId(id: unknown): M | undefined {
    if (typeof id !== 'string') return undefined;
    for (const member of this.members) if (id.startsWith(member.prefix + ':')) return member;
    return undefined;
  }
}
