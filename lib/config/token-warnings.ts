// Soft problems of a token setup: the config is valid, but a token is guessable, ambiguous or kept
// where it should not be. They are warnings, not `ConfigError`s, so a development setup with
// `"dev": "dev-token-123"` still starts. Messages name tokens, never their values.
import type { ResolvedConfig } from './resolved-config';

export interface TokenWarning {
  /** Stable identifier, for filtering: `token_too_short`, `token_low_variety`, `token_duplicate`, `token_literal_in_production`. */
  code: string;
  message: string;
  /** Name of the token concerned (for `token_duplicate`: the names, comma-separated). */
  token?: string;
}

/**
 * 20 characters of base64url carry 120 bits; shorter values are within reach of an online guesser
 * that is not rate limited (`proxy.authThrottle` is off by default).
 */
export const MIN_TOKEN_LENGTH = 20;

/** A random 20+ character token almost never has fewer distinct characters than this. */
export const MIN_DISTINCT_CHARACTERS = 8;

const HOW_TO_FIX = 'generate one with `mcp-front generate-token`';

/** The warnings for a resolved config, each once, in a stable order. */
export function tokenWarnings(
  config: Pick<ResolvedConfig, 'tokens' | 'literalTokens'>,
  env: Record<string, string | undefined> = process.env,
): TokenWarning[] {
  const warnings: TokenWarning[] = [];

  for (const [name, value] of config.tokens) {
    // One warning per weak token: both have the same fix, and two lines would only be noise.
    if (value.length < MIN_TOKEN_LENGTH) {
      warnings.push({
        code: 'token_too_short',
        token: name,
        message: `token "${name}" is shorter than ${MIN_TOKEN_LENGTH} characters and can be guessed; ${HOW_TO_FIX}`,
      });
    } else if (new Set(value).size < MIN_DISTINCT_CHARACTERS) {
      warnings.push({
        code: 'token_low_variety',
        token: name,
        message: `token "${name}" uses fewer than ${MIN_DISTINCT_CHARACTERS} distinct characters and can be guessed; ${HOW_TO_FIX}`,
      });
    }
  }

  // Requests are attributed to one name per value, so `token=` in logs and `authTokens` can no
  // longer tell shared holders apart, and revoking one name does not revoke the value.
  const namesByValue = new Map<string, string[]>();
  for (const [name, value] of config.tokens) {
    const names = namesByValue.get(value);
    if (names) names.push(name);
    else namesByValue.set(value, [name]);
  }
  for (const names of namesByValue.values()) {
    if (names.length < 2) continue;
    warnings.push({
      code: 'token_duplicate',
      token: names.join(','),
      message: `tokens ${listNames(names)} have the same value, so logs and authTokens cannot tell them apart; give each its own value`,
    });
  }

  // A config file is copied, committed and mounted far more widely than the process environment.
  if (env.NODE_ENV === 'production') {
    for (const name of config.literalTokens) {
      warnings.push({
        code: 'token_literal_in_production',
        token: name,
        message: `token "${name}" is written literally in the config while NODE_ENV=production; read it from the environment with {"$env": "NAME"}`,
      });
    }
  }

  return warnings;
}

function listNames(names: string[]): string {
  const quoted = names.map((n) => `"${n}"`);
  return quoted.length === 2 ? quoted.join(' and ') : `${quoted.slice(0, -1).join(', ')} and ${quoted[quoted.length - 1]}`;
}
