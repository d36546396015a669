/** A token bucket: `burst` tokens, refilled at `perSecond`; one publish takes one token. */
export class TokenBucket {
  #tokens: number;
  #last = performance.now();
  constructor(
    readonly perSecond: number,
    readonly burst: number,
  ) {
    this.#tokens = burst;
  }

  /** Takes a token: false when the bucket is empty (the publish is refused with WL_ERR_PUBSUB_RATE). */
  take(): boolean {
    const now = performance.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#last) / 1000) * this.perSecond);
    this.#last = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
