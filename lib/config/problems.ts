// Problems found in a configuration and how they are reported (README: Configuration): ajv errors
// translated into plain sentences with a did-you-mean, paths written as `proxy.auth.tokens["a b"]`
// (JSON Pointer, RFC 6901, turned back into segments), sorted into document order and deduplicated.
//
// Secrets: a message never quotes a value that may be one (token, header or env value, anything
// read through `$env`); only key names, `$env` variable names and values known not to be secret are.
import type { ErrorObject } from 'ajv';
import type { ConfigProblem } from '../types';

export type Segment = string | number;

export interface Problem {
  at: Segment[];
  message: string;
}

export type Obj = Record<string, unknown>;

export function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const IDENTIFIER = /^[A-Za-z_$][\w$-]*$/;

function formatPath(at: readonly Segment[]): string {
  let out = '';
  for (const seg of at) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (IDENTIFIER.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** A JSON pointer → segments, telling array indices from object keys by looking at the data. */
function pointerToSegments(pointer: string, data: unknown): Segment[] {
  const out: Segment[] = [];
  if (pointer === '') return out;
  let cur: unknown = data;
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(cur)) {
      out.push(Number(key));
      cur = cur[Number(key)];
    } else {
      out.push(key);
      cur = isObject(cur) && Object.hasOwn(cur, key) ? cur[key] : undefined;
    }
  }
  return out;
}

/** Optimal string alignment distance: a swap of two neighbours ("nmae") counts as one edit. */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The closest candidate to a mistyped name, if one is close enough to be a likely typo. */
function closest(word: string, candidates: Iterable<string>): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/[-_]/g, '');
  const w = norm(word);
  let best: string | undefined;
  let bestScore = Infinity;
  for (const c of candidates) {
    const n = norm(c);
    let score = editDistance(w, n);
    // `type` for `transportType`, `servers` for `mcpServers`: a fragment of the real name. It
    // ranks behind a true one-edit typo, or `authThrotle` would suggest `auth` (its prefix).
    if (score > 1 && Math.min(w.length, n.length) >= 4 && (n.includes(w) || w.includes(n))) score = 1.5;
    if (score <= Math.max(1.5, Math.floor(n.length / 3)) && score < bestScore) {
      best = c;
      bestScore = score;
    }
  }
  return best;
}

export const didYouMean = (word: string, candidates: Iterable<string>): string => {
  const guess = closest(word, candidates);
  return guess === undefined ? '' : `; did you mean "${guess}"?`;
};

const ENV_REF_SCHEMA = '#/$defs/stringOrEnv/';
const DURATION_SCHEMA = '#/$defs/duration/';
const STRING_OR_ENV_HINT = 'must be a string or {"$env": "NAME"}';
const DURATION_HINT = 'must be a duration: milliseconds, or a string such as "500ms", "30s", "5m" or "1h"';

const TYPE_NAMES: Record<string, string> = {
  object: 'an object',
  array: 'an array',
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
};

/** What a `minProperties: 1` map holds, by its key. */
const AT_LEAST_ONE: Record<string, string> = { tokens: 'token', principals: 'principal', claims: 'claim' };

/** `aggregates.<name>.servers`: a list of server names or an object of them. */
const isMemberList = (at: Segment[]) => at.length === 3 && at[0] === 'aggregates' && at[2] === 'servers';
/** `aggregates.<name>.servers.<server>`: one member's options. */
const isMemberOptions = (at: Segment[]) => at.length === 4 && at[0] === 'aggregates' && at[2] === 'servers' && typeof at[3] === 'string';

/** `"string"` or a union such as `["boolean", "integer", "string", "array"]` → words. */
function typeNames(type: unknown): string {
  const names = (Array.isArray(type) ? type : String(type).split(',')).map((t) => TYPE_NAMES[String(t)] ?? String(t));
  return names.length <= 2 ? names.join(' or ') : `${names.slice(0, -1).join(', ')}, or ${names[names.length - 1]}`;
}

/** An ajv error → a readable problem. Never quotes the offending value (it may be a secret). */
export function fromAjv(e: ErrorObject, data: unknown): Problem {
  const at = pointerToSegments(e.instancePath, data);
  const params = e.params as Record<string, unknown>;
  const inEnvRef = e.schemaPath.startsWith(ENV_REF_SCHEMA);
  const inDuration = e.schemaPath.startsWith(DURATION_SCHEMA);

  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(params.additionalProperty);
      if (inEnvRef) {
        const hint = key === 'env' || key === 'ENV' || key === 'name' ? '; did you mean "$env"?' : '';
        return { at: [...at, key], message: `unknown key "${key}": an environment reference is just {"$env": "NAME"}${hint}` };
      }
      const known = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {});
      // An aggregate's `members` is the natural guess, and too far from `servers` for a did-you-mean.
      const hint = key === 'members' && known.includes('servers') ? '; did you mean "servers"?' : didYouMean(key, known);
      return { at: [...at, key], message: `unknown key "${key}"${hint}` };
    }
    case 'required': {
      const key = String(params.missingProperty);
      if (inEnvRef) return { at, message: STRING_OR_ENV_HINT };
      const hint = key === 'kind' ? ' (use "bearer_token")' : key === 'mcpServers' ? ' (use {} for no servers)' : key === 'servers' ? ' (the names of its member servers)' : '';
      return { at: [...at, key], message: `is required${hint}` };
    }
    case 'type': {
      if (inEnvRef) return { at, message: STRING_OR_ENV_HINT };
      if (inDuration) return { at, message: DURATION_HINT };
      if (isMemberList(at)) return { at, message: 'must be a list of server names (["github", "files"]) or an object of them ({"github": {"prefix": "gh"}, "files": {}})' };
      if (isMemberOptions(at)) return { at, message: 'must be an object: {"prefix": "…"}, or {} for the defaults' };
      return { at, message: `must be ${typeNames(params.type)}` };
    }
    case 'minLength':
      if (e.schemaPath.includes('%24env')) return { at, message: 'must be the name of an environment variable' };
      return { at, message: 'must not be empty' };
    case 'pattern':
      if (inDuration) return { at, message: DURATION_HINT };
      // The version is not a secret, and quoting it makes the mismatch obvious.
      return { at, message: `unsupported version ${JSON.stringify(e.data)}; this release reads version "1.0" (any "1.x")` };
    case 'minimum':
      if (inDuration) return { at, message: DURATION_HINT };
      return { at, message: 'must be a positive integer' };
    case 'maximum':
      return { at, message: `must be at most ${String(params.limit)}` };
    case 'minProperties':
      if (isMemberList(at)) return { at, message: 'must list at least one server' };
      return { at, message: `must define at least one ${AT_LEAST_ONE[String(at[at.length - 1])] ?? 'entry'}` };
    case 'minItems':
      if (isMemberList(at)) return { at, message: 'must list at least one server' };
      return { at, message: 'must list at least one value' };
    case 'const': {
      // `"kind": "oauth"` is the natural guess; OAuth sits beside the static tokens instead.
      const hint = e.data === 'oauth' ? '; OAuth 2.1 access tokens are configured in "oauth", beside "tokens"' : '';
      return { at, message: `must be ${JSON.stringify(params.allowedValue)} (the only supported kind)${hint}` };
    }
    case 'enum':
      return { at, message: `must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}` };
    default:
      return { at, message: e.message ?? `fails ${e.keyword}` };
  }
}

const MAX_ORDER_DEPTH = 16;

/** Sorts problems into the order their paths appear in the document, so a report reads top-down. */
function inDocumentOrder(problems: Problem[], data: unknown): Problem[] {
  const order = new Map<string, number>();
  const walk = (value: unknown, at: Segment[]) => {
    order.set(formatPath(at), order.size);
    // Problems sit no deeper than the schema reaches; without a bound, a hostile document nested
    // thousands of levels deep would overflow the stack (a RangeError instead of a ConfigError).
    if (at.length >= MAX_ORDER_DEPTH) return;
    if (Array.isArray(value)) value.forEach((v, i) => walk(v, [...at, i]));
    else if (isObject(value)) for (const [k, v] of Object.entries(value)) walk(v, [...at, k]);
  };
  walk(data, []);
  const rank = (at: Segment[]): number => {
    for (let n = at.length; n >= 0; n--) {
      const r = order.get(formatPath(at.slice(0, n)));
      if (r !== undefined) return r;
    }
    return 0;
  };
  return problems
    .map((p, i) => ({ p, i, r: rank(p.at) }))
    .sort((a, b) => a.r - b.r || a.i - b.i)
    .map(({ p }) => p);
}

export function toConfigProblems(problems: Problem[], data: unknown): ConfigProblem[] {
  const seen = new Set<string>();
  const out: ConfigProblem[] = [];
  for (const p of inDocumentOrder(problems, data)) {
    const problem = { path: formatPath(p.at), message: p.message };
    const key = `${problem.path}\0${problem.message}`;
    if (!seen.has(key)) out.push(problem);
    seen.add(key);
  }
  return out;
}
