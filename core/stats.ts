/** Small statistics shared by labs, benches and measurements: one definition of each, so numbers compare. */

/** Nearest-rank percentile of an ascending-sorted sample (p in 0..100); NaN for an empty one. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** The middle value (the mean of the two middle ones in an even-sized sample), any order in; NaN for none. */
export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** `n` rounded to `places` decimals (default 3: microseconds of a millisecond figure); NaN stays NaN. */
export function round(n: number, places = 3): number {
  const f = 10 ** places;
  return Math.round(n * f) / f;
}
