/**
 * `npm run bench [-- name ...]`: each bench/<name>.ts exports `default defineBench({...})`. A bench measures its
 * subject next to a baseline in the same run (machines here are noisy) and reports ratios, never absolute promises.
 */
import { median } from '../core/stats.ts';

export interface BenchRow {
  /** What was measured, e.g. "wirelab http, tracing off". */
  label: string;
  /** The median of `samples` when there are samples. */
  value: number;
  /** e.g. "req/s", "MB/s", "msg/s". Higher is better unless `lowerIsBetter`. */
  unit: string;
  /** Label of the row this one is compared with; its ratio is printed. */
  baseline?: string;
  lowerIsBetter?: boolean;
  /** A target ratio against the baseline, printed as met or not (never an exit code: a bench informs). */
  target?: number;
  /**
   * One value per interleaved round (round i of every row ran in the same turn), when the bench measured in rounds:
   * the table then shows their min and max, and the ratio is the median of the per-round ratios with their spread.
   */
  samples?: number[];
}

/** A row whose value is the median of its per-round samples. */
export function sampledRow(label: string, samples: number[], unit: string, more: Omit<BenchRow, 'label' | 'value' | 'unit' | 'samples'> = {}): BenchRow {
  return { label, value: median(samples), unit, samples: [...samples], ...more };
}

export interface Bench {
  name: string;
  title: string;
  run(): Promise<BenchRow[]>;
}

export function defineBench(b: Bench): Bench {
  return b;
}

/** A ratio to the baseline row: the median and, over paired rounds, the lowest and highest. */
export interface Ratio {
  median: number;
  min: number;
  max: number;
  /** Rounds the spread is taken over (1 when either row has no samples: min = max = median). */
  rounds: number;
}

/**
 * The row's ratio to its baseline (above 1 is better for the row, whichever way its unit goes). When both rows carry
 * samples of the same rounds, the ratio of each round (both measured in the same turn, so a burst of load elsewhere
 * falls on both) and their median, min and max; otherwise the ratio of the two values.
 */
export function ratioOf(row: BenchRow, rows: BenchRow[]): Ratio | undefined {
  const base = rows.find((r) => r.label === row.baseline);
  if (!base || base.value === 0 || row.value === 0) return undefined;
  const one = (v: number, b: number): number => (row.lowerIsBetter ? b / v : v / b);
  const a = row.samples;
  const b = base.samples;
  if (a && b && a.length === b.length && a.length > 1 && a.every((v, i) => v > 0 && b[i]! > 0)) {
    const per = a.map((v, i) => one(v, b[i]!));
    return { median: median(per), min: Math.min(...per), max: Math.max(...per), rounds: per.length };
  }
  const r = one(row.value, base.value);
  return { median: r, min: r, max: r, rounds: 1 };
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
 * Measures each subject `rounds` times, taking turns (a, b, c, a, b, c...), and returns each one's samples, round by
 * round: drift and another process's burst of work then fall on every subject alike instead of on whichever ran
 * during it. The first subject of a round alternates (a, b, c then b, c, a...) so none is always first after a pause.
 */
export async function interleaved<K extends string, T = number>(subjects: Record<K, () => Promise<T>>, rounds = 5): Promise<Record<K, T[]>> {
  const keys = Object.keys(subjects) as K[];
  const samples = Object.fromEntries(keys.map((k) => [k, [] as T[]])) as Record<K, T[]>;
  for (let i = 0; i < rounds; i++) {
    for (let j = 0; j < keys.length; j++) {
      const k = keys[(i + j) % keys.length]!;
      samples[k].push(await subjects[k]());
    }
  }
  return samples;
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
  // WIRELAB_BENCH_CPU_PROF=<dir>: each server writes a CPU profile there when it stops (node --cpu-prof).
  const prof = process.env.WIRELAB_BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.WIRELAB_BENCH_CPU_PROF}`] : [];
  const child = fork(fileURLToPath(new URL('./fixtures/server.ts', import.meta.url)), [kind], { execArgv: ['--import', 'tsx', ...prof], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
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

/**
 * Each child server of `servers` under its `load`, in interleaved rounds: per server, the rate and the server's CPU µs
 * per operation of every round.
 */
export async function childRounds<K extends string>(servers: Record<K, ChildServer>, load: (kind: K) => () => Promise<number>, rounds: number): Promise<Record<K, { rate: number[]; cpu: number[] }>> {
  const keys = Object.keys(servers) as K[];
  const got = await interleaved(Object.fromEntries(keys.map((k) => [k, () => measureChild(servers[k], load(k))])) as Record<K, () => Promise<{ rate: number; cpuPerOp: number }>>, rounds);
  return Object.fromEntries(keys.map((k) => [k, { rate: got[k].map((m) => m.rate), cpu: got[k].map((m) => m.cpuPerOp) }])) as Record<K, { rate: number[]; cpu: number[] }>;
}

/**
 * The JSON-lines tracer's server CPU rows of one bench (`http` or `ws`, whose fixtures end in -off, -jsonl,
 * -jsonl-lean, -null and -null-all): the full file and --trace-lean against tracing off, then where the full file's
 * cost goes: every event handed to a sink that keeps nothing (summaries only: the floor of tracing each event), then
 * also its details and wire bytes (what -jsonl builds), then the writing.
 */
export function jsonlCostRows(proto: string, cpuOf: (kind: string) => number[], unit: string): BenchRow[] {
  const cpu = { unit, lowerIsBetter: true } as const;
  const off = `wirelab ${proto}, tracing off, server CPU`;
  const built = `wirelab ${proto}, no-op sink (details + wire bytes), server CPU`;
  return [
    sampledRow(`wirelab ${proto}, JSON-lines tracer, server CPU`, cpuOf('jsonl'), unit, { ...cpu, baseline: off, target: 0.85 }),
    sampledRow(`wirelab ${proto}, JSON-lines tracer --trace-lean, server CPU`, cpuOf('jsonl-lean'), unit, { ...cpu, baseline: off, target: 0.85 }),
    sampledRow(`wirelab ${proto}, no-op sink (summaries), server CPU`, cpuOf('null'), unit, { ...cpu, baseline: off }),
    sampledRow(built, cpuOf('null-all'), unit, { ...cpu, baseline: off }),
    sampledRow(`wirelab ${proto}, JSON-lines writing alone, server CPU`, cpuOf('jsonl'), unit, { ...cpu, baseline: built }),
  ];
}
