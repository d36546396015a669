/**
 * `npm run bench [-- name ...]`: each bench/<name>.ts exports `default defineBench({...})`. A bench measures its
 * subject next to a baseline in the same run (machines here are noisy) and reports ratios, never absolute promises.
 */
import { median } from '../core/stats.ts';

export interface BenchRow {
  /** What was measured, e.g. "wirelab http, tracing off". */
  label: string;
  value: number;
  /** e.g. "req/s", "MB/s", "msg/s". Higher is better unless `lowerIsBetter`. */
  unit: string;
  /** Label of the row this one is compared with; its ratio is printed. */
  baseline?: string;
  lowerIsBetter?: boolean;
  /** A target ratio against the baseline, printed as met or not (never an exit code: a bench informs). */
  target?: number;
}

export interface Bench {
  name: string;
  title: string;
  run(): Promise<BenchRow[]>;
}

export function defineBench(b: Bench): Bench {
  return b;
}

export function ratioOf(row: BenchRow, rows: BenchRow[]): number | undefined {
  const base = rows.find((r) => r.label === row.baseline);
  if (!base || base.value === 0 || row.value === 0) return undefined;
  return row.lowerIsBetter ? base.value / row.value : row.value / base.value;
}

/** Runs `fn` repeatedly for `ms` and returns operations per second (fn resolves after one operation). */
export async function opsPerSecond(fn: () => Promise<unknown>, ms = 2000, concurrency = 1): Promise<number> {
  let ops = 0;
  const end = performance.now() + ms;
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      await fn();
      ops++;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  return ops / ((performance.now() - started) / 1000);
}

/**
 * Measures each subject `rounds` times, taking turns (a, b, c, a, b, c...), and returns each one's median: drift and
 * another process's burst of work then fall on every subject alike instead of on whichever ran during it.
 */
export async function interleaved<K extends string>(subjects: Record<K, () => Promise<number>>, rounds = 5): Promise<Record<K, number>> {
  const samples = Object.fromEntries(Object.keys(subjects).map((k) => [k, [] as number[]])) as Record<K, number[]>;
  for (let i = 0; i < rounds; i++) {
    for (const k of Object.keys(subjects) as K[]) samples[k].push(await subjects[k]());
  }
  return Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v as number[])])) as Record<K, number>;
}

/** A bench server in a child process (bench/fixtures/server.ts): its port, and its CPU time and count on demand. */
export interface ChildServer {
  port: number;
  sample(): Promise<{ cpu: number; served: number }>;
  stop(): void;
}

export async function startChildServer(kind: string): Promise<ChildServer> {
  const { fork } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const child = fork(fileURLToPath(new URL('./fixtures/server.ts', import.meta.url)), [kind], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m) => resolve((m as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`bench server ${kind} exited with ${code}`)));
  });
  return {
    port,
    sample: () =>
      new Promise((resolve) => {
        child.once('message', (m) => resolve(m as { cpu: number; served: number }));
        child.send('cpu');
      }),
    stop: () => {
      child.send('exit');
    },
  };
}

/**
 * Runs `load` (which returns operations per second) against a child server and also returns the server's CPU time per
 * operation in µs: a number that another process's load disturbs far less than a rate does.
 */
export async function measureChild(server: ChildServer, load: () => Promise<number>): Promise<{ rate: number; cpuPerOp: number }> {
  const a = await server.sample();
  const rate = await load();
  const b = await server.sample();
  return { rate, cpuPerOp: (b.cpu - a.cpu) / Math.max(1, b.served - a.served) };
}
