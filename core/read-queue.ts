import { ErrorCodes, WirelabError } from './errors.ts';

/**
 * What arrived and was not read yet, and the readers waiting for the next message: the receive side the TCP and
 * WebSocket clients and the WebRTC channel share. A message goes to the oldest waiting reader, else it is kept. Once
 * failed, waiting readers get the error at once and later readers get what was kept, then the same error.
 */
export class ReadQueue<T> {
  readonly #items: T[] = [];
  readonly #waiters: Array<{ resolve(m: T): void; reject(e: Error): void }> = [];
  #error?: Error;

  /** Messages kept unread. */
  get length(): number {
    return this.#items.length;
  }

  /** The error reads end with, once the queue failed. */
  get error(): Error | undefined {
    return this.#error;
  }

  /** Hands `m` to a waiting reader or keeps it; false (and not kept) when `max` messages are already unread. */
  offer(m: T, max = Infinity): boolean {
    const w = this.#waiters.shift();
    if (w) w.resolve(m);
    else if (this.#items.length >= max) return false;
    else this.#items.push(m);
    return true;
  }

  /** Takes the oldest unread message away (a drop-oldest policy). */
  shift(): T | undefined {
    return this.#items.shift();
  }

  /** Puts a message back in front (the rest of a read that was split). */
  unshift(m: T): void {
    this.#items.unshift(m);
  }

  /** Ends reading with `err` (the first error wins). */
  fail(err: Error): void {
    this.#error ??= err;
    for (const w of this.#waiters.splice(0)) w.reject(this.#error);
  }

  /** The oldest unread message, or the next to arrive; WL_ERR_TIMEOUT naming `what` after `timeoutMs`. */
  next(timeoutMs: number, what: string): Promise<T> {
    if (this.#items.length > 0) return Promise.resolve(this.#items.shift()!);
    if (this.#error) return Promise.reject(this.#error);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.#waiters.indexOf(waiter);
        if (i !== -1) this.#waiters.splice(i, 1);
        reject(new WirelabError(ErrorCodes.TIMEOUT, `no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = {
        resolve: (m: T): void => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e: Error): void => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.#waiters.push(waiter);
    });
  }
}
