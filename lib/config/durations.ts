// Durations as the README (Configuration) writes them: milliseconds, or "500ms", "30s", "5m", "1h".
// Shared by the schema (the pattern) and resolution (the value and its timer bound).

export const DURATION_PATTERN = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;

// Node timers silently turn anything above 2^31-1 ms into 1 ms (TimeoutOverflowWarning), so a
// "30d" idle timeout would end sessions at once instead of never.
export const MAX_TIMER_MS = 2 ** 31 - 1;

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `"500ms"`, `"30s"`, `"5m"`, `"1h"` or a number of ms → ms; `undefined` when invalid. */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const m = DURATION_PATTERN.exec(value);
  if (!m) return undefined;
  const ms = Math.round(Number(m[1]) * UNITS[m[2]]);
  return Number.isSafeInteger(ms) ? ms : undefined;
}
