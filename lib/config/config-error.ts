// The one error a configuration can raise (README: Configuration): every problem at once, each with
// its JSON path, so a deployment is fixed in one edit rather than one restart per mistake.
import type { ConfigProblem } from '../types';

/** Thrown by `mcpFront()`, `reload()` and `loadConfig()`: every problem, each with its JSON path. */
export class ConfigError extends Error {
  readonly problems: ConfigProblem[];

  constructor(problems: ConfigProblem[]) {
    const lines = problems.map((p) => `  ${p.path || '(root)'}: ${p.message}`);
    super(`invalid mcp-front configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${lines.join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}
