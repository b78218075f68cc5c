// `jose` 6 is ESM-only and this package is CommonJS: it is loaded with `import()` (which the
// CommonJS build keeps as a real `import()`), and only by a verifier, so that mcp-front without
// OAuth never loads it (README: OAuth 2.1).
import type * as Jose from 'jose' with { 'resolution-mode': 'import' };

export type { Jose };

let loading: Promise<typeof Jose> | undefined;

export function loadJose(): Promise<typeof Jose> {
  return (loading ??= import('jose'));
}
