/**
 * A token bucket per client: `burst` tokens, refilled at `perSecond`. A request takes one; an empty bucket answers
 * 429 with Retry-After = the seconds until the next token (rounded up: Retry-After is whole seconds).
 */
export class TokenBuckets {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  #sweepAt = 0;

  constructor(
    readonly burst: number,
    readonly perSecond: number,
  ) {}

  /** Takes a token for `key`: 0 when granted, else the seconds to wait. */
  take(key: string, now = performance.now()): number {
    if (this.burst === 0) return 0;
    if (now > this.#sweepAt) this.#sweep(now);
    let b = this.#buckets.get(key);
    if (!b) {
      b = { tokens: this.burst, at: now };
      this.#buckets.set(key, b);
    } else {
      b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.perSecond);
      b.at = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / this.perSecond));
  }

  /** Drops full buckets now and then, so a stream of distinct clients cannot grow the map for ever. */
  #sweep(now: number): void {
    this.#sweepAt = now + 10_000;
    for (const [k, b] of this.#buckets) {
      if (b.tokens + ((now - b.at) / 1000) * this.perSecond >= this.burst) this.#buckets.delete(k);
    }
  }
}

/** An error a handler throws to answer with `status` (and headers such as Allow or Retry-After): core/errors.ts. */
export { HttpError } from '../../core/errors.ts';
