import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from './cli.ts';
import type { UpRow } from '../../core/registry.ts';

/** A row of `wirelab up --json` (core/registry.ts). */
export type Endpoint = UpRow;

export interface UpProcess {
  child: ChildProcess;
  endpoints: Endpoint[];
  stderr(): string;
  /** Sends SIGTERM and resolves with the exit code and how long it took. */
  stop(): Promise<{ code: number | null; ms: number }>;
}

/**
 * Starts `wirelab up --json` as a real process and waits for its one line of endpoints. Its pub/sub broker keeps its
 * log in a temporary folder of its own (removed when the process exits) unless `env` names one.
 */
export function startUp(args: string[] = ['--port-base', '0'], timeoutMs = 30_000, env: NodeJS.ProcessEnv = {}): Promise<UpProcess> {
  return new Promise((resolve, reject) => {
    const own = env.WIRELAB_PUBSUB_DIR === undefined ? mkdtempSync(join(tmpdir(), 'wirelab-up-pubsub-')) : undefined;
    const child = spawn(process.execPath, [CLI, 'up', '--json', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env, ...(own ? { WIRELAB_PUBSUB_DIR: own } : {}) },
    });
    if (own) child.once('exit', () => rmSync(own, { recursive: true, force: true }));
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`wirelab up printed no endpoint line in ${timeoutMs} ms:\n${out}\n${err}`));
    }, timeoutMs);
    child.stderr.on('data', (d) => (err += d));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`wirelab up exited (${code}) before listening:\n${err}`));
    });
    child.stdout.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl === -1) return;
      clearTimeout(timer);
      const endpoints = JSON.parse(out.slice(0, nl)) as Endpoint[];
      resolve({
        child,
        endpoints,
        stderr: () => err,
        stop: () =>
          new Promise((done) => {
            const t0 = performance.now();
            // Already gone (a test that saw it crash): 'exit' will not come again.
            if (child.exitCode !== null || child.signalCode !== null) return done({ code: child.exitCode, ms: 0 });
            child.removeAllListeners('exit');
            child.once('exit', (code) => done({ code, ms: performance.now() - t0 }));
            child.kill('SIGTERM');
          }),
      });
    });
  });
}

/** SIGKILLs a `wirelab up` process by its PID and resolves when it is gone (at once if it already is). */
export function killUp(up: UpProcess): Promise<void> {
  return new Promise((resolve) => {
    if (up.child.exitCode !== null || up.child.signalCode !== null) return resolve();
    up.child.removeAllListeners('exit');
    up.child.once('exit', () => resolve());
    process.kill(up.child.pid!, 'SIGKILL');
  });
}
