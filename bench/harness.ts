/**
 * `npm run bench [-- name ...]`: each bench/<name>.ts exports `default defineBench({...})`. A bench measures its
 * subject next to a baseline in the same run (machines here are noisy) and reports ratios, never absolute promises.
 */
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
