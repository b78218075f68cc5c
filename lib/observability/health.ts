// The last known state of each server, for authenticated `/health` (README: Monitoring), from
// what traffic and children already tell: an answer or a started session says `up`; an upstream
// failure, a timeout or a child that exited says `down`, with when and how. No probe is sent:
// a probe would start children and sessions on servers nobody uses, and an idle server's state
// is honestly `unknown`. An aggregate has no state of its own: its requests are its members'
// (README: Aggregates), and its state is said from theirs.
import type { PipelineHook, UpstreamErrorInfo } from '../pipeline/hooks';

export type ServerState = 'up' | 'down' | 'unknown';

export interface ServerHealth {
  state: ServerState;
  /** Absent until something failed. */
  lastFailure?: { at: string; kind: string };
}

/** `degraded`: some members are down, and sessions open without them. */
export type AggregateState = ServerState | 'degraded';

export interface AggregateHealth {
  state: AggregateState;
  /** Each member's state; its `lastFailure` is under `servers`. */
  members: Record<string, ServerState>;
}

export interface HealthHook extends PipelineHook {
  /** The states of `servers`, `unknown` for those nothing is known about yet. */
  report(servers: Iterable<string>): Record<string, ServerHealth>;
  /** An aggregate's state from those of `members` (the ones the asking token sees). */
  reportAggregate(members: readonly string[], onUnavailable: 'omit' | 'fail'): AggregateHealth;
  /** A server removed or changed by a reload starts over as `unknown`. */
  forget(server: string): void;
}

/** A failure's kind from the errno or status code of the upstream error. */
export function failureKind(info: UpstreamErrorInfo): string {
  const { code } = info;
  if (code === 'ECONNREFUSED') return 'refused';
  if (code === 'UPSTREAM_TIMEOUT' || code === 'ETIMEDOUT' || code === 'ESOCKETTIMEDOUT') return 'timeout';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'unresolved';
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'STREAM_ENDED') return 'reset';
  if (code.startsWith('HTTP_')) return `http_${code.slice(5)}`;
  return 'error';
}

/**
 * `down` when no session could reach a member — every member down, or one down with
 * `onUnavailable: "fail"`, which fails `initialize` with `502`; `degraded` when some are down;
 * `up` when none is down and one is up (a member nobody has used yet is `unknown`, no reason to
 * doubt the others); `unknown` when nothing is known of any.
 */
export function aggregateState(members: readonly ServerState[], onUnavailable: 'omit' | 'fail'): AggregateState {
  const down = members.filter((s) => s === 'down').length;
  if (down > 0) return down === members.length || onUnavailable === 'fail' ? 'down' : 'degraded';
  return members.includes('up') ? 'up' : 'unknown';
}

export function healthHook(): HealthHook {
  const states = new Map<string, ServerHealth>();
  const up = (server: string) => {
    const s = states.get(server);
    if (s === undefined) states.set(server, { state: 'up' });
    else s.state = 'up';
  };
  const down = (server: string, kind: string) => {
    states.set(server, { state: 'down', lastFailure: { at: new Date().toISOString(), kind } });
  };
  return {
    // An answer only matters while the server is not known to be up: once it is, its answers
    // need not be read for health's sake, and the passthrough can relay them unread
    // (bench/README.md). A failure turns it `down` again, and the next answers are looked at.
    appliesTo: (base) => states.get(base.server)?.state !== 'up',
    answer(ex) {
      up(ex.server);
      return undefined;
    },
    failed(ex, outcome) {
      if (outcome === 'timeout') down(ex.server, 'timeout');
    },
    sessionStarted(info) {
      // An aggregate's session says no more than its members' answers do.
      if (info.upstream !== 'aggregate') up(info.server);
    },
    sessionEnded(info, reason) {
      // The channel's reason when the child ended on its own (not when the proxy stopped it).
      if (info.upstream === 'stdio' && reason.startsWith('stdio server exited')) down(info.server, 'exited');
    },
    upstreamError(info) {
      // A 4xx that judges the client's message says nothing about the server's health.
      if (!info.refused) down(info.server, failureKind(info));
    },
    report(servers) {
      const out: Record<string, ServerHealth> = {};
      for (const name of servers) {
        const s = states.get(name);
        out[name] = s === undefined ? { state: 'unknown' } : { ...s };
      }
      return out;
    },
    reportAggregate(members, onUnavailable) {
      const out: Record<string, ServerState> = {};
      for (const name of members) out[name] = states.get(name)?.state ?? 'unknown';
      return { state: aggregateState(Object.values(out), onUnavailable), members: out };
    },
    forget(server) {
      states.delete(server);
    },
  };
}
