// A real redis-server (Debian package `redis-server`) for the tests run by `npm run test:redis`:
// started in the foreground on a free loopback port, with no persistence, and stopped by the test.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { freePort } from './servers';

export const REDIS_SERVER = process.env.REDIS_SERVER ?? 'redis-server';
const READY_MS = 15_000;

export interface RedisServer {
  port: number;
  url: string;
  child: ChildProcess;
  /** Stops it (SIGTERM) and waits for its exit. */
  stop(): Promise<void>;
}

/** Starts redis-server on `port` (default: a free one), optionally with a password. */
export async function startRedis(options: { port?: number; password?: string } = {}): Promise<RedisServer> {
  const port = options.port ?? (await freePort());
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  if (options.password !== undefined) args.push('--requirepass', options.password);
  const child = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start within ${READY_MS} ms:\n${output}`)), READY_MS);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (/Ready to accept connections/.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${REDIS_SERVER} (apt-get install -y redis-server): ${err.message}`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited with ${code}:\n${output}`));
    });
  });
  const auth = options.password === undefined ? '' : `:${encodeURIComponent(options.password)}@`;
  return {
    port,
    url: `redis://${auth}127.0.0.1:${port}`,
    child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGCONT'); // in case a test stopped it
      child.kill('SIGTERM');
      await exited;
    },
  };
}
