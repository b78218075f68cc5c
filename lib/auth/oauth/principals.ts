// Which principal an access token is (README: OAuth 2.1): the first principal, in the order
// configured, whose every claim matches.
import type { ResolvedClaimMatch, ResolvedPrincipal } from '../../config/resolved-config';
import { compilePatterns, type Matcher } from '../../patterns';
import { claimAt } from './claims';

type Scalar = string | number | boolean;

// A pattern is compiled the first time it is used and kept as long as its config: the resolved
// config is immutable, so its match objects are the key.
const compiled = new WeakMap<ResolvedClaimMatch, Matcher>();

function patternOf(match: ResolvedClaimMatch & { kind: 'pattern' }): Matcher {
  let matcher = compiled.get(match);
  if (matcher === undefined) {
    matcher = compilePatterns([match.pattern]);
    compiled.set(match, matcher);
  }
  return matcher;
}

/**
 * A string is an exact value or a `*` pattern (the patterns of `permissions`, which match strings
 * only); `true`, `false` and numbers match exactly, with no coercion: `"true"` is not `true`.
 */
function matchesOne(alternatives: readonly ResolvedClaimMatch[], value: unknown): boolean {
  if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') return false;
  return alternatives.some((alt) => (alt.kind === 'exact' ? alt.value === (value as Scalar) : typeof value === 'string' && patternOf(alt)(value)));
}

/** A list of alternatives matches when any does; a claim that is an array, when any element does. */
function claimMatches(alternatives: readonly ResolvedClaimMatch[], value: unknown): boolean {
  return Array.isArray(value) ? value.some((element) => matchesOne(alternatives, element)) : matchesOne(alternatives, value);
}

/** The first principal whose every claim matches, or undefined (README: OAuth 2.1). */
export function matchPrincipal(principals: readonly ResolvedPrincipal[], claims: Readonly<Record<string, unknown>>): string | undefined {
  for (const principal of principals) {
    let all = true;
    for (const [name, alternatives] of principal.claims) {
      if (!claimMatches(alternatives, claimAt(claims, name))) {
        all = false;
        break;
      }
    }
    if (all) return principal.name;
  }
  return undefined;
}
