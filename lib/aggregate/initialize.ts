// The aggregate's own answer to `initialize` (README: Aggregates): it is one server to the client,
// `mcp-front/<aggregate>`, whose lists change whenever a member's do or a member comes and goes.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ResolvedAggregate } from '../config';
import type { Member } from './member';

/** The package's version, as `serverInfo.version` (lib/aggregate and dist/aggregate are both two levels down). */
const VERSION = (JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;

type Obj = Record<string, unknown>;

/**
 * The merged `initialize` result: `listChanged` on every list (members come and go), a capability
 * any member has for what is routed to members (subscriptions, completions, logging), and the
 * members' instructions, each under its prefix so the model can tell whose they are.
 */
export function mergedInitialize(aggregate: ResolvedAggregate, up: readonly Member[], protocolVersion: string): Obj {
  const has = (path: (caps: Obj) => unknown) => up.some((m) => {
    const caps = m.init?.capabilities;
    return typeof caps === 'object' && caps !== null && path(caps as Obj) !== undefined && path(caps as Obj) !== false;
  });
  const resources: Obj = { listChanged: true };
  if (has((c) => (c.resources as Obj | undefined)?.subscribe)) resources.subscribe = true;
  const capabilities: Obj = { tools: { listChanged: true }, prompts: { listChanged: true }, resources };
  if (has((c) => c.completions)) capabilities.completions = {};
  if (has((c) => c.logging)) capabilities.logging = {};
  const instructions = up
    .filter((m) => typeof m.init?.instructions === 'string' && (m.init.instructions as string).trim() !== '')
    .map((m) => `## ${m.prefix}${aggregate.separator}* (server "${m.server.name}")\n${(m.init!.instructions as string).trim()}`)
    .join('\n\n');
  return {
    protocolVersion,
    capabilities,
    serverInfo: { name: `mcp-front/${aggregate.name}`, version: VERSION },
    ...(instructions === '' ? {} : { instructions }),
  };
}
