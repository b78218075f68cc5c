#!/usr/bin/env node
// The standalone command (README: Command line). The only file in lib/ that writes to stdout: the output of
// `--check`, `generate-token`, `--help` and `--version` is the product here. Everything else is a
// log line on stderr through the default logger.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import express, { type NextFunction, type Request, type Response } from 'express';
import { loadConfig, resolveConfig, type ResolvedConfig } from './config';
import { ConfigError } from './config/config-error';
import { createDefaultLogger } from './logger';
import { mcpFront, reloadRefused } from './mcp-front';
import { tokenWarnings } from './config/token-warnings';
import type { ConfigProblem, Logger, McpFrontConfig, McpFrontOptions, McpFrontRouter, MetricsRegistry } from './types';

const USAGE = `Usage:
  mcp-front --config <file>            run the proxy on proxy.addr
  mcp-front --check --config <file>    validate the config, then exit
  mcp-front generate-token             print a new random token (32 bytes, base64url)
  mcp-front --help | --version

Options:
  -c, --config <file>   the JSON configuration
      --check           validate only: exit 0 when valid, 1 listing every problem
  -h, --help            show this help
  -v, --version         print the version

While running, SIGHUP or saving the file reloads the config (an invalid file is
logged and refused); SIGTERM or SIGINT drains (no new sessions, requests in flight
finish for up to proxy.drainTimeout), then stops. {"$env": "NAME"} values
are read from the environment. Logs go to stderr; DEBUG=mcp-front* adds detail.
`;

/** Exit codes: 1 = the config or the runtime failed, 2 = the command line itself is wrong. */
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

/** Editors and config tools write a file in several steps; one reload after they settle. */
const RELOAD_DEBOUNCE_MS = 200;
/**
 * A shutdown that has not finished this long after the drain timeout is stuck (a child ignoring
 * SIGKILL, a hung socket).
 */
const SHUTDOWN_TIMEOUT_MS = 10_000;
const MAX_INSTANCE_ID = 32;

/**
 * A registry for `proxy.metrics`, with the process metrics prom-client collects (CPU, memory,
 * event loop lag) beside mcp-front's own. prom-client is an optional peer dependency: it is loaded
 * only here, when the config asks for metrics, and its absence is a clear error.
 */
function metricsRegistry(): MetricsRegistry {
  let prom: typeof import('prom-client');
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    prom = require('prom-client') as typeof import('prom-client');
  } catch {
    throw new Error('proxy.metrics needs the prom-client package: npm install prom-client@15');
  }
  const registry = new prom.Registry();
  prom.collectDefaultMetrics({ register: registry });
  return registry;
}

/**
 * The default instance id: the host name (a container's or pod's, in a deployment), with every
 * character an id may not hold replaced by "-", cut to the longest id allowed.
 */
export function instanceIdFromHostname(hostname: string | undefined): string | undefined {
  if (hostname === undefined) return undefined;
  const id = hostname.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, MAX_INSTANCE_ID);
  return id === '' ? undefined : id;
}

export type Command =
  | { kind: 'run'; config: string }
  | { kind: 'check'; config: string }
  | { kind: 'generate-token' }
  | { kind: 'help' }
  | { kind: 'version' };

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function parseCommandLine(argv: string[]): Command {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: 'string', short: 'c' },
        check: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (err) {
    // node:util's messages carry advice about `--` that does not apply here: keep the first sentence.
    throw new UsageError((err as Error).message.split('. ')[0]);
  }
  const { values, positionals } = parsed;
  if (values.help) return { kind: 'help' };
  if (values.version) return { kind: 'version' };

  if (positionals.length > 0) {
    if (positionals[0] !== 'generate-token') throw new UsageError(`unknown command "${positionals[0]}"`);
    if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}"`);
    if (values.config !== undefined || values.check) throw new UsageError('generate-token takes no options');
    return { kind: 'generate-token' };
  }
  if (values.config === undefined || values.config === '') throw new UsageError('--config <file> is required');
  return { kind: values.check ? 'check' : 'run', config: values.config };
}

/** `":8080"` (every interface), `"127.0.0.1:8080"`, `"[::1]:8080"`, `"localhost:0"`, or a bare port. */
export function parseAddr(addr: string): { host?: string; port: number } {
  const match = /^(?:(\[[0-9A-Fa-f:.]+(?:%[\w.-]+)?\]|[^:[\]]*):)?(\d{1,5})$/.exec(addr.trim());
  const port = match ? Number(match[2]) : NaN;
  if (!match || port > 65535) {
    throw new Error(`"${addr}" is not a listen address; write ":8080", "127.0.0.1:8080" or "[::1]:8080"`);
  }
  const host = match[1]?.replace(/^\[(.*)\]$/, '$1');
  return { host: host || undefined, port };
}

function formatAddress(address: AddressInfo): string {
  return address.family === 'IPv6' ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`;
}

/** Resolved relative to this file, so it works from the repository and from an installed package. */
function packageVersion(): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/**
 * The host name is this command's *default* instance id, not an override: it fills in
 * `proxy.instanceId` only where the file has none, so a reload that sets, changes or removes it
 * takes effect for new sessions (README: Running several instances).
 */
function withDefaultInstanceId(config: McpFrontConfig, instanceId: string | undefined): McpFrontConfig {
  if (instanceId === undefined || config.proxy.instanceId !== undefined) return config;
  return { ...config, proxy: { ...config.proxy, instanceId } };
}

interface ReadConfig {
  config: McpFrontConfig;
  resolved: ResolvedConfig;
  listen: ReturnType<typeof parseAddr>;
  /** Whether the instance id is the file's own `proxy.instanceId` or the default. */
  instanceIdFrom: 'proxy.instanceId' | 'HOSTNAME';
}

/** Loads, validates and resolves; the listen address is part of the config for this command. */
function readConfig(file: string, env: NodeJS.ProcessEnv, defaultInstanceId?: string): ReadConfig {
  const written = loadConfig(file, env);
  const config = withDefaultInstanceId(written, defaultInstanceId);
  const resolved = resolveConfig(config, env);
  let listen;
  try {
    listen = parseAddr(resolved.addr);
  } catch (err) {
    throw new ConfigError([{ path: 'proxy.addr', message: (err as Error).message }]);
  }
  return { config, resolved, listen, instanceIdFrom: config === written ? 'proxy.instanceId' : 'HOSTNAME' };
}

/** Says which id the sessions created from now on get, since a load balancer must route on it. */
function logInstanceIdChange(logger: Logger, previous: string | undefined, next: ReadConfig): void {
  const id = next.resolved.instanceId;
  if (id === previous) return;
  if (id === undefined) logger.info('instance id removed; new session ids carry none', { previous });
  else logger.info('instance id changed; new sessions get it', { instance_id: id, from: next.instanceIdFrom, previous });
}

function problemsOf(err: unknown): ConfigProblem[] | undefined {
  return err instanceof ConfigError ? err.problems : undefined;
}

/** One `problem` line per problem, so `grep problem` shows them all (README: Logs and debugging). */
function logRefusal(logger: Logger, message: string, file: string, err: unknown, fields: Record<string, string> = {}): void {
  const problems = problemsOf(err);
  if (!problems) {
    logger.error(message, { config: file, ...fields, error: (err as Error).message });
    return;
  }
  logger.error(message, { config: file, ...fields, problems: problems.length });
  for (const problem of problems) logger.error('problem', { path: problem.path || '(root)', message: problem.message });
}

function check(file: string): number {
  let result;
  try {
    result = readConfig(file, process.env);
  } catch (err) {
    const problems = problemsOf(err);
    const lines = problems
      ? [`${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}`, ...problems.map((p) => `  ${p.path || '(root)'}: ${p.message}`)]
      : [`${file}: ${(err as Error).message}`];
    process.stderr.write(lines.join('\n') + '\n');
    return EXIT_FAILURE;
  }
  const { resolved } = result;
  // Warnings do not fail the check: a weak development token is a choice, not an error.
  for (const warning of tokenWarnings(resolved, process.env)) process.stderr.write(`warning: ${warning.message}\n`);
  const counts = [count(resolved.servers.size, 'server'), count(resolved.tokens.size, 'token')];
  // Like principals, only when there are any: the summary of a config without them reads as before.
  if (resolved.aggregates.size > 0) counts.splice(1, 0, count(resolved.aggregates.size, 'aggregate'));
  if (resolved.oauth !== undefined) counts.push(count(resolved.oauth.principals.length, 'principal'));
  process.stdout.write(`config OK: ${counts.join(', ')}\n`);
  return 0;
}

const count = (n: number, noun: string): string => `${n} ${noun}${n === 1 ? '' : 's'}`;

async function run(file: string): Promise<void> {
  const logger = createDefaultLogger();
  const env = process.env;
  const configPath = path.resolve(file);

  // Reloads run one at a time; triggers that arrive meanwhile fold into one more reload. Until
  // the proxy is up, a trigger is kept for then.
  let router: McpFrontRouter | undefined;
  let listenAddr: string | undefined;
  let lastContent: string | undefined;
  let reloading = false;
  let queued: string | undefined;
  let stopping = false;
  let app: express.Express | undefined;
  let drainTimeoutMs = 0;
  let metricsOn = false;
  let instanceId: string | undefined;
  const hostnameInstanceId = instanceIdFromHostname(env.HOSTNAME);

  async function reloadOnce(proxy: McpFrontRouter, trigger: string): Promise<void> {
    const content = readQuietly(configPath);
    // An unchanged file is no reason to reload (editors touch, rename and chmod); SIGHUP always is.
    if (trigger === 'file' && content !== undefined && content === lastContent) return;
    lastContent = content;
    let next: ReadConfig;
    try {
      next = readConfig(configPath, env, hostnameInstanceId);
    } catch (err) {
      reloadRefused(proxy);
      logRefusal(logger, 'reload refused', configPath, err, { trigger });
      return;
    }
    try {
      if (stopping) return;
      await proxy.reload(next.config);
      app?.set('trust proxy', next.resolved.trustProxy);
      drainTimeoutMs = next.resolved.drainTimeoutMs;
      logInstanceIdChange(logger, instanceId, next);
      instanceId = next.resolved.instanceId;
      if (next.resolved.metrics !== undefined && !metricsOn) {
        logger.warn('proxy.metrics added; restart to serve /metrics');
      }
      if (next.resolved.addr !== listenAddr) {
        logger.warn('proxy.addr changed; restart to listen on it', { addr: next.resolved.addr });
      }
    } catch (err) {
      logRefusal(logger, 'reload refused', configPath, err, { trigger });
    }
  }

  function requestReload(trigger: string): void {
    if (stopping) return;
    if (reloading || !router) {
      queued = trigger === 'SIGHUP' || queued === 'SIGHUP' ? 'SIGHUP' : trigger;
      return;
    }
    const proxy = router;
    reloading = true;
    void (async () => {
      let next: string | undefined = trigger;
      while (next && !stopping) {
        queued = undefined;
        await reloadOnce(proxy, next);
        next = queued;
      }
      reloading = false;
    })();
  }

  // Watch before the first read, so a change made while starting is not lost. The directory, not
  // the file: editors and config tools replace the file by renaming a new one over it, and a
  // watch on the old inode would never fire again.
  let debounce: NodeJS.Timeout | undefined;
  const base = path.basename(configPath);
  let watcher: fs.FSWatcher | undefined;
  try {
    watcher = fs.watch(path.dirname(configPath), { persistent: false }, (_event, name) => {
      // No name: the platform could not say which file changed. `..data`: Kubernetes swaps a
      // symlinked directory to update a mounted ConfigMap. The content check filters the rest.
      const changed = name === null || name === undefined ? undefined : String(name);
      if (changed !== undefined && changed !== base && !changed.startsWith('..')) return;
      clearTimeout(debounce);
      debounce = setTimeout(() => requestReload('file'), RELOAD_DEBOUNCE_MS);
    });
    watcher.on('error', (err) => logger.warn('config watch stopped; reload with SIGHUP', { error: err.message }));
  } catch (err) {
    logger.warn('cannot watch the config; reload with SIGHUP', { error: (err as Error).message });
  }
  process.on('SIGHUP', () => requestReload('SIGHUP'));

  lastContent = readQuietly(configPath);
  let started: { initial: ReadConfig; router: McpFrontRouter } | undefined;
  try {
    // An id written in the config wins; else the host name, which differs between replicas.
    const initial = readConfig(configPath, env, hostnameInstanceId);
    // The internal `serveMetrics` option: only the standalone command answers GET /metrics itself.
    const metrics = initial.resolved.metrics === undefined ? {} : { metrics: metricsRegistry(), serveMetrics: true };
    started = { initial, router: mcpFront(initial.config, { env, logger, ...metrics } as McpFrontOptions) };
  } catch (err) {
    logRefusal(logger, 'config invalid', configPath, err);
    watcher?.close();
    process.exitCode = EXIT_FAILURE;
    return;
  }
  const { initial } = started;
  const front = started.router;
  listenAddr = initial.resolved.addr;
  metricsOn = initial.resolved.metrics !== undefined;
  drainTimeoutMs = initial.resolved.drainTimeoutMs;
  instanceId = initial.resolved.instanceId;

  app = express();
  app.disable('x-powered-by');
  // So that req.ip (client_ip in logs, the auth throttle) is the client behind a load balancer.
  app.set('trust proxy', initial.resolved.trustProxy);
  // The OAuth metadata at the host's root, where RFC 9728 §3.1 puts it (nothing without `oauth`).
  app.use(front.wellKnown);
  app.use(front);
  // Express's default handler prints stack traces: keep the one-line-per-event log format.
  app.use(function jsonError(err: Error, req: Request, res: Response, next: NextFunction) {
    if (res.headersSent) return next(err);
    logger.error('request failed', { error: err.message, path: req.path });
    res.status(500).json({ error: 'internal error' });
  });
  const server = http.createServer(app);

  async function shutdown(signal: NodeJS.Signals): Promise<void> {
    if (stopping) {
      // A second Ctrl-C means "now".
      logger.warn('forced exit', { signal });
      process.exit(EXIT_FAILURE);
    }
    stopping = true;
    logger.info('shutting down', { signal });
    const limit = drainTimeoutMs + SHUTDOWN_TIMEOUT_MS;
    const force = setTimeout(() => {
      logger.error('shutdown timed out', { after_ms: limit });
      process.exit(EXIT_FAILURE);
    }, limit);
    clearTimeout(debounce);
    watcher?.close();
    try {
      // Still listening while draining: new sessions get 503 and /health says "draining", so a
      // load balancer moves traffic away, while live sessions finish their requests. Then it
      // ends SSE streams and sessions and reaps children; only then can the server finish closing.
      await front.drain(drainTimeoutMs);
    } catch (err) {
      logger.error('close failed', { error: (err as Error).message });
      process.exit(EXIT_FAILURE);
    }
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
    clearTimeout(force);
    logger.info('stopped');
    process.exit(0);
  }
  process.on('SIGTERM', (signal) => void shutdown(signal));
  process.on('SIGINT', (signal) => void shutdown(signal));

  try {
    server.listen({ port: initial.listen.port, host: initial.listen.host });
    await once(server, 'listening');
  } catch (err) {
    logger.error('listen failed', { addr: initial.resolved.addr, error: (err as Error).message });
    watcher?.close();
    await front.close();
    process.exit(EXIT_FAILURE);
  }
  if (stopping) return;

  // Before `listening`, so a reader that waits for `listening` has seen every server.
  for (const [name, s] of initial.resolved.servers) logger.info('serving', { server: name, transport: s.transport });
  const address = server.address() as AddressInfo;
  logger.info('listening', { name: initial.resolved.name, addr: formatAddress(address), port: address.port });

  router = front;
  if (queued) {
    const trigger = queued;
    queued = undefined;
    requestReload(trigger);
  }
}

function readQuietly(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

export async function main(argv: string[]): Promise<void> {
  let command: Command;
  try {
    command = parseCommandLine(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`mcp-front: ${err.message}\n\n${USAGE}`);
    process.exitCode = EXIT_USAGE;
    return;
  }
  switch (command.kind) {
    case 'help':
      process.stdout.write(USAGE);
      return;
    case 'version':
      process.stdout.write(`${packageVersion()}\n`);
      return;
    case 'generate-token':
      // 256 bits, URL- and header-safe without quoting.
      process.stdout.write(`${randomBytes(32).toString('base64url')}\n`);
      return;
    case 'check':
      process.exitCode = check(command.config);
      return;
    case 'run':
      await run(command.config);
      return;
  }
}

if (require.main === module) {
  void main(process.argv.slice(2));
}
