/** Small statistics for labs: a summary of a sample, and a terminal histogram. Files starting with _ are not labs. */
import { percentile, round } from '../core/stats.ts';

export { percentile };
export function summarize(values: number[]): { p50: number; p90: number; p99: number; mean: number; n: number } {
  const s = [...values].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / (s.length || 1);
  return { p50: percentile(s, 50), p90: percentile(s, 90), p99: percentile(s, 99), mean, n: s.length };
}

export const r2 = (n: number): number => round(n, 2);

/** A one-line histogram on log-spaced buckets shared by every row, so rows can be compared by eye. */
export function sparkline(values: number[], edges: number[]): string {
  const bars = ' ▁▂▃▄▅▆▇█';
  const counts = new Array(edges.length + 1).fill(0) as number[];
  for (const v of values) {
    let i = edges.findIndex((e) => v < e);
    if (i === -1) i = edges.length;
    counts[i]!++;
  }
  const max = Math.max(1, ...counts);
  return counts.map((c) => bars[c === 0 ? 0 : Math.max(1, Math.round((c / max) * 8))]).join('');
}

export function logEdges(min: number, max: number, n: number): number[] {
  const lo = Math.log10(Math.max(min, 1e-3));
  const hi = Math.log10(Math.max(max, min * 1.01, 1e-3));
  return Array.from({ length: n - 1 }, (_, i) => 10 ** (lo + ((hi - lo) * (i + 1)) / n));
}
