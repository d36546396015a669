/**
 * Ack deadlines of one group with one timer: every delivery of a group waits the same ackWaitMs, so deadlines come
 * in the order deliveries (and inProgress renewals, which move an entry to the back) were made. An insertion-ordered
 * Map is that queue: O(1) to add, renew and remove, and the timer only ever waits for the front.
 */
export class Deadlines<T> {
  private readonly due = new Map<T, number>();
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;

  constructor(private readonly onExpire: (item: T) => void) {}

  /** Starts (or restarts: inProgress) the deadline of `item`, `ms` from now. */
  set(item: T, ms: number): void {
    this.due.delete(item);
    const at = Date.now() + ms;
    this.due.set(item, at);
    if (at < this.timerAt) this.arm(at);
  }

  delete(item: T): void {
    this.due.delete(item);
  }

  clear(): void {
    this.due.clear();
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  private arm(at: number): void {
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.fire(), Math.max(0, at - Date.now()));
    this.timer.unref();
  }

  private fire(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = Date.now();
    for (const [item, at] of this.due) {
      if (at > now) {
        this.arm(at);
        return;
      }
      this.due.delete(item);
      this.onExpire(item);
    }
  }
}
