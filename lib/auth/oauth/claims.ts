// Reading an access token's claims, whether from a JWT (RFC 9068) or an introspection answer
// (RFC 7662): they share their claim names.

/** `aud` as a list: a string is a one-element list; anything else is no audience. */
export function audienceList(aud: unknown): readonly string[] {
  if (typeof aud === 'string') return [aud];
  if (Array.isArray(aud)) return aud.filter((a): a is string => typeof a === 'string');
  return [];
}

/**
 * The granted scopes: `scope` is a space-separated string (RFC 9068 §2.2.3, RFC 7662 §2.2);
 * Okta sends `scp` as an array and Entra as a space-separated string. Both are read.
 */
export function scopeSet(claims: Readonly<Record<string, unknown>>): ReadonlySet<string> {
  const scopes = new Set<string>();
  for (const claim of [claims.scope, claims.scp]) {
    const words = typeof claim === 'string' ? claim.split(' ') : Array.isArray(claim) ? claim : [];
    for (const word of words) if (typeof word === 'string' && word !== '') scopes.add(word);
  }
  return scopes;
}

/** Does `aud` contain one of `accepted` (exact string comparison)? */
export function audienceAccepted(aud: readonly string[], accepted: readonly string[]): boolean {
  return aud.some((a) => accepted.includes(a));
}

/**
 * The claim called `name`. A name that is not a claim of its own but holds dots is a path into
 * nested objects: Keycloak puts roles in `realm_access.roles`. The whole name is looked up first,
 * because some claim names are URLs with dots (Auth0's namespaced claims,
 * `https://acme.com/roles`). Own properties only: a claim named `constructor` or `__proto__` is
 * data, not a way into the prototype.
 */
export function claimAt(claims: Readonly<Record<string, unknown>>, name: string): unknown {
  if (Object.hasOwn(claims, name)) return claims[name];
  if (!name.includes('.')) return undefined;
  let value: unknown = claims;
  for (const step of name.split('.')) {
    if (value === null || typeof value !== 'object' || Array.isArray(value) || !Object.hasOwn(value, step)) return undefined;
    value = (value as Record<string, unknown>)[step];
  }
  return value;
}
