// The config tests' two checks: every problem of a config `resolveConfig` must refuse, with no
// secret in any of them, and "exactly this one problem".
import { resolveConfig } from '../../lib/config';
import { ConfigError } from '../../lib/config/config-error';
import type { ConfigProblem } from '../../lib/types';

type Env = Record<string, string | undefined>;

export function configChecks(secrets: readonly string[], defaultEnv: Env) {
  /** Every problem; and none of them, nor the error's message, holds a secret. */
  function problems(raw: unknown, env: Env = defaultEnv): ConfigProblem[] {
    try {
      resolveConfig(raw, env);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const e = err as ConfigError;
      const text = `${e.message}\n${JSON.stringify(e.problems)}`;
      for (const s of secrets) expect(text).not.toContain(s);
      return e.problems;
    }
    throw new Error('expected resolveConfig to throw ConfigError');
  }

  function expectOnly(raw: unknown, path: string, message: string, env?: Env): void {
    expect(problems(raw, env)).toEqual([{ path, message }]);
  }

  return { problems, expectOnly };
}
