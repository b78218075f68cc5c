// Reading one value of the configuration: a string or `{"$env": "NAME"}` (README: Configuration),
// a duration with its bounds, and the check that keeps a message from quoting what may be a secret.
import { MAX_TIMER_MS, parseDuration } from './durations';
import { isObject, type Problem, type Segment } from './problems';

type Env = Record<string, string | undefined>;

export interface Resolved {
  value: string;
  /** The variable it was read from, when it came from `{"$env": …}`. */
  envName?: string;
}

export class Resolver {
  readonly problems: Problem[] = [];

  private values: string[] | undefined;

  constructor(
    private readonly env: Env,
    private readonly raw: unknown,
  ) {}

  /**
   * Does `s` occur inside a string value of the document (outside `authTokens`, outside
   * principals' `claims`, whose values are group names and the like that principals are often
   * named after, and outside aggregates' `servers`, which hold server names and prefixes) or of
   * the environment? Then it may be a secret, or part of one (`--api-key=…`, a
   * variable with a trailing newline), and a message must not quote it. Collected on first use:
   * only a config that is already wrong needs it.
   */
  occursInValues(s: string): boolean {
    if (this.values === undefined) {
      const values: string[] = [];
      for (const v of Object.values(this.env)) if (typeof v === 'string') values.push(v);
      // A loop, not recursion: the document may be nested deeper than the stack.
      const names = new Set([...principalClaims(this.raw), ...aggregateMembers(this.raw)]);
      const pending: [unknown, string | undefined][] = [[this.raw, undefined]];
      for (let item = pending.pop(); item !== undefined; item = pending.pop()) {
        const [node, key] = item;
        if (typeof node === 'string') values.push(node);
        else if (Array.isArray(node)) {
          if (key !== 'authTokens' && !names.has(node)) for (const n of node) pending.push([n, undefined]);
        } else if (isObject(node) && !names.has(node)) for (const [k, v] of Object.entries(node)) pending.push([v, k]);
      }
      this.values = values;
    }
    return this.values.some((v) => v.includes(s));
  }

  add(at: Segment[], message: string): void {
    this.problems.push({ at, message });
  }

  /**
   * A string or `{"$env": NAME}` → its value. `secret`: an empty value is an error, because an
   * empty token or API key is always a deployment mistake, never an intent.
   */
  string(value: unknown, at: Segment[], secret = false): Resolved | undefined {
    if (typeof value === 'string') {
      if (secret && value === '') {
        this.add(at, 'must not be empty');
        return undefined;
      }
      return { value };
    }
    if (!isObject(value) || Object.keys(value).length !== 1 || typeof value.$env !== 'string' || value.$env === '') {
      return undefined; // reported by the schema
    }
    const name = value.$env;
    const found = Object.hasOwn(this.env, name) ? this.env[name] : undefined;
    if (typeof found !== 'string') {
      this.add(at, `environment variable ${name} is not set`);
      return undefined;
    }
    if (secret && found === '') {
      this.add(at, `environment variable ${name} is empty`);
      return undefined;
    }
    return { value: found, envName: name };
  }

  duration(value: unknown, at: Segment[], fallback: number): number {
    if (value === undefined) return fallback;
    const ms = parseDuration(value);
    if (ms === undefined) return fallback; // reported by the schema
    if (ms === 0) this.add(at, 'must be greater than 0');
    else if (ms > MAX_TIMER_MS) this.add(at, `must be at most ${MAX_TIMER_MS} ms (about 24 days)`);
    return ms;
  }
}

/** The `claims` objects of `proxy.auth.oauth.principals`, as far as the document has that shape. */
function principalClaims(raw: unknown): unknown[] {
  const proxy = isObject(raw) ? raw.proxy : undefined;
  const auth = isObject(proxy) ? proxy.auth : undefined;
  const oauth = isObject(auth) ? auth.oauth : undefined;
  const principals = isObject(oauth) ? oauth.principals : undefined;
  if (!isObject(principals)) return [];
  return Object.values(principals).flatMap((p) => (isObject(p) && isObject(p.claims) ? [p.claims] : []));
}

/** The `servers` of each aggregate (a list or an object), as far as the document has that shape. */
function aggregateMembers(raw: unknown): unknown[] {
  const aggregates = isObject(raw) ? raw.aggregates : undefined;
  if (!isObject(aggregates)) return [];
  return Object.values(aggregates).flatMap((a) => (isObject(a) && typeof a.servers === 'object' && a.servers !== null ? [a.servers] : []));
}

export const fromEnv = (r: Resolved) => (r.envName === undefined ? '' : ` (value of environment variable ${r.envName})`);

/** Token and server names: they go into log lines and URL paths (README: Configuration). */
export const NAME = /^[A-Za-z0-9._-]+$/;
/** Longer names are not quoted in a problem: they are more likely a pasted secret than a name. */
const MAX_QUOTED_NAME = 32;

/**
 * May an unknown `authTokens` entry be quoted? Quoting makes a typo ("stagng") obvious, but the
 * entry may be a pasted token value whose variable is not set where the config is checked (CI).
 * So only what can be a token name, is no longer than names usually are (generated tokens are
 * 43 characters), and occurs in no value of the config or the environment.
 */
export function quotableName(name: string, r: Resolver): boolean {
  return NAME.test(name) && name.length <= MAX_QUOTED_NAME && !r.occursInValues(name);
}
