// The patterns of `permissions` (README: Permissions per token): exact, case-sensitive text where
// `*` matches any run of characters and nothing else is special. Names are compared as they are,
// code unit by code unit: no case folding and no Unicode normalization, so that `Echo`, `echo`
// and a look-alike of `echo` are three different names, as they are to the server.

/** A compiled pattern list: does it allow `name`? */
export type Matcher = (name: string) => boolean;

const NOTHING: Matcher = () => false;
const EVERYTHING: Matcher = () => true;

export interface PatternOptions {
  /**
   * The names a pattern with a `*` may match at all: a name it refuses is matched only by an
   * exact pattern (or by the lone `*`). Default: every name.
   */
  globsAdmit?: Matcher;
}

/** Compiles a list once per config, not per message. */
export function compilePatterns(patterns: readonly string[], options: PatternOptions = {}): Matcher {
  if (patterns.length === 0) return NOTHING;
  if (patterns.includes('*')) return EVERYTHING;
  const exact = new Set<string>();
  const globs: string[][] = [];
  for (const p of patterns) {
    if (p.includes('*')) globs.push(p.split('*'));
    else exact.add(p);
  }
  if (globs.length === 0) return (name) => exact.has(name);
  const admit = options.globsAdmit ?? EVERYTHING;
  return (name) => exact.has(name) || (admit(name) && globs.some((parts) => globMatch(parts, name)));
}

/**
 * `parts` is a pattern split at its `*`s. Taking each middle part at its leftmost place is
 * enough: a `*`-only glob never needs to backtrack.
 */
function globMatch(parts: readonly string[], name: string): boolean {
  const first = parts[0];
  const last = parts[parts.length - 1];
  if (name.length < first.length + last.length) return false;
  if (!name.startsWith(first) || !name.endsWith(last)) return false;
  let at = first.length;
  const end = name.length - last.length;
  for (let i = 1; i < parts.length - 1; i++) {
    const part = parts[i];
    if (part === '') continue;
    const found = name.indexOf(part, at);
    if (found === -1 || found + part.length > end) return false;
    at = found + part.length;
  }
  return true;
}
