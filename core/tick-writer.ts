import type { Writable } from 'node:stream';

/** Frames of up to this many bytes in all are copied into one buffer; larger ones go out corked, uncopied. */
export const TICK_WRITER_COPY_BYTES = 64 * 1024;

/**
 * Frames queued in one turn of the event loop (a fan-out burst, the acks of a group commit, many publishes in flight)
 * leave in one write() at the next tick: one stream write and one syscall for all of them. The native pub/sub door and
 * its client use it.
 */
export class TickWriter {
  readonly socket: Writable;
  readonly #afterFlush?: (ok: boolean) => void;
  #out: Buffer[] = [];
  #bytes = 0;

  /** `afterFlush(ok)` runs after each flush with what the last write() returned. */
  constructor(socket: Writable, afterFlush?: (ok: boolean) => void) {
    this.socket = socket;
    this.#afterFlush = afterFlush;
  }

  /** Queues a frame; false when the socket's buffer with what is queued is past its high-water mark (a sender should pause). */
  push(b: Buffer): boolean {
    if (this.#out.length === 0) process.nextTick(() => this.flush());
    this.#out.push(b);
    this.#bytes += b.length;
    return this.socket.writableLength + this.#bytes < this.socket.writableHighWaterMark;
  }

  /** Writes what is queued now (also before an end or a close). */
  flush(): void {
    if (this.#out.length === 0) return;
    const bufs = this.#out;
    const bytes = this.#bytes;
    this.#out = [];
    this.#bytes = 0;
    if (!this.socket.writable) return;
    let ok: boolean;
    if (bufs.length === 1) ok = this.socket.write(bufs[0]!);
    else if (bytes <= TICK_WRITER_COPY_BYTES) ok = this.socket.write(Buffer.concat(bufs, bytes));
    else {
      this.socket.cork();
      ok = true;
      for (const b of bufs) ok = this.socket.write(b);
      this.socket.uncork();
    }
    this.#afterFlush?.(ok);
  }
}
