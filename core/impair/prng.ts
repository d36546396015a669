/**
 * A small seeded PRNG (mulberry32) so an impaired run replays exactly: the same seed and the same sequence of
 * datagrams or connections give the same fates. Math.random cannot be seeded, and the algorithm must never change
 * under a replay, so it lives here rather than in a package whose algorithm may move.
 */
export class Prng {
  #state: number;
  readonly seed: number;

  constructor(seed: number) {
    this.seed = seed >>> 0;
    this.#state = this.seed;
  }

  /** A float in [0, 1). */
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return p > 0 && (p >= 1 || this.next() < p);
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** `mean ± spread`, uniform. */
  around(mean: number, spread: number): number {
    return spread <= 0 ? mean : mean - spread + this.next() * 2 * spread;
  }

  /** A new generator derived from this seed and a label, so two streams (upstream, downstream) never interfere. */
  fork(label: string): Prng {
    let h = this.seed ^ 0x9e3779b9;
    for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193) >>> 0;
    return new Prng(h);
  }
}

/** A seed from the clock, for runs that did not ask for one (the seed is still reported so the run can be replayed). */
export function randomSeed(): number {
  return (Date.now() ^ (performance.now() * 1000)) >>> 0;
}
