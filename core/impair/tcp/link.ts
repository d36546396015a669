import type net from 'node:net';
import type { Tracer } from '../../trace/index.ts';
import type { Prng } from '../prng.ts';
import type { Stream, Toxic } from '../toxics.ts';

/** What a link needs from its proxy: the current toxics (they change at run time) and where to count. */
export interface LinkHost {
  toxicsFor(stream: Stream): Toxic[];
  countToxic(name: string): void;
  countBytes(stream: Stream, n: number): void;
  noteBuffered(bytes: number): void;
  readonly maxBufferBytes: number;
  readonly tracer: Tracer;
}

interface Piece {
  at: number;
  buf: Buffer;
}

/**
 * One direction of one proxied connection: reads from `src`, applies the toxics of its stream, writes to `dst`.
 * Without toxics it is a plain pipe (write, pause on a full socket, resume on drain). With them, chunks wait in a
 * time-ordered queue; past `maxBufferBytes` queued, `src` is paused, so a fast sender behind a bandwidth cap fills the
 * kernel's buffers and TCP's flow control slows it down, instead of this process's memory.
 */
class Direction {
  readonly #queue: Piece[] = [];
  #queued = 0;
  #cursor = 0;
  #timer: NodeJS.Timeout | undefined;
  #waitingDrain = false;
  #pausedForBuffer = false;
  #ended = false;
  #limitPassed = 0;
  #closing = false;

  constructor(
    readonly link: Link,
    readonly stream: Stream,
    readonly src: net.Socket,
    readonly dst: net.Socket,
  ) {
    src.on('data', (chunk: Buffer) => this.#onData(chunk));
    src.on('end', () => {
      this.#ended = true;
      this.#maybeEnd();
    });
  }

  get queued(): number {
    return this.#queued;
  }

  #onData(chunk: Buffer): void {
    if (this.#closing) return;
    const host = this.link.host;
    host.countBytes(this.stream, chunk.length);
    const toxics = this.link.active(this.stream);
    if (toxics.length === 0 && this.#queue.length === 0) {
      this.#write(chunk);
      return;
    }
    let pieces: Buffer[] = [chunk];
    let delay = 0;
    let sliceDelayMs = 0;
    let rate = 0;
    for (const t of toxics) {
      const a = t.attributes;
      switch (t.type) {
        case 'timeout':
          host.countToxic(t.name);
          this.link.trace('*', 'toxic', () => `${t.name}: ${chunk.length} B dropped (timeout ${a.timeout} ms)`);
          this.link.armTimeout(a.timeout!);
          return;
        case 'limit_data': {
          const left = a.bytes! - this.#limitPassed;
          const total = pieces.reduce((n, p) => n + p.length, 0);
          if (total >= left) {
            host.countToxic(t.name);
            pieces = left > 0 ? [Buffer.concat(pieces).subarray(0, left)] : [];
            this.#closing = true;
          }
          this.#limitPassed += Math.min(total, Math.max(left, 0));
          break;
        }
        case 'slicer': {
          host.countToxic(t.name);
          const out: Buffer[] = [];
          for (const p of pieces) {
            for (let off = 0; off < p.length; ) {
              const size = Math.max(1, Math.round(this.link.prng.around(a.average_size!, a.size_variation!)));
              out.push(p.subarray(off, off + size));
              off += size;
            }
          }
          pieces = out;
          sliceDelayMs = a.delay! / 1000;
          break;
        }
        case 'latency':
          host.countToxic(t.name);
          delay += Math.max(0, this.link.prng.around(a.latency!, a.jitter!));
          break;
        case 'bandwidth': {
          host.countToxic(t.name);
          rate = a.rate!;
          // Toxiproxy writes at most 100 ms worth at once, so a big chunk trickles out instead of leaving in one go.
          const most = Math.max(1, Math.floor(rate * 100));
          pieces = pieces.flatMap((p) => {
            const parts: Buffer[] = [];
            for (let off = 0; off < p.length; off += most) parts.push(p.subarray(off, off + most));
            return parts;
          });
          break;
        }
        case 'slow_close':
        case 'reset_peer':
          break; // act on close and on a timer, not on data
      }
    }
    const now = performance.now();
    let at = Math.max(this.#cursor, now + delay);
    pieces.forEach((p, i) => {
      if (i > 0) at += sliceDelayMs;
      if (rate > 0) at += p.length / rate; // rate is KB/s = bytes per ms
      this.#queue.push({ at, buf: p });
      this.#queued += p.length;
    });
    this.#cursor = at;
    if (delay > 0) {
      this.link.host.tracer.emit('impair', this.link.cid, this.stream === 'upstream' ? '>' : '<', 'delay', () => ({
        summary: `${chunk.length} B held ${(at - now).toFixed(1)} ms (latency draw ${delay.toFixed(2)} ms)`,
        bytes: chunk.length,
        meta: { drawMs: delay, heldMs: at - now },
      }));
    }
    host.noteBuffered(this.#queued);
    if (this.#queued > host.maxBufferBytes && !this.#pausedForBuffer) {
      this.#pausedForBuffer = true;
      this.src.pause();
    }
    if (this.#closing) this.src.pause();
    this.#schedule();
  }

  #write(buf: Buffer): void {
    if (this.dst.destroyed) return;
    if (!this.dst.write(buf) && !this.#waitingDrain) {
      this.#waitingDrain = true;
      this.src.pause();
      this.dst.once('drain', () => {
        this.#waitingDrain = false;
        if (!this.#pausedForBuffer && !this.#closing) this.src.resume();
        this.#schedule();
      });
    }
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#waitingDrain) return;
    const head = this.#queue[0];
    if (!head) {
      this.#maybeEnd();
      return;
    }
    const wait = head.at - performance.now();
    if (wait <= 0.5) {
      this.#flush();
      return;
    }
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#flush();
    }, Math.ceil(wait));
  }

  #flush(): void {
    const now = performance.now() + 0.5;
    while (this.#queue.length > 0 && this.#queue[0]!.at <= now && !this.#waitingDrain) {
      const p = this.#queue.shift()!;
      this.#queued -= p.buf.length;
      this.#write(p.buf);
    }
    if (this.#pausedForBuffer && this.#queued <= this.link.host.maxBufferBytes / 2) {
      this.#pausedForBuffer = false;
      if (!this.#waitingDrain && !this.#closing) this.src.resume();
    }
    this.#schedule();
  }

  /** Once the queue is empty: pass the close on (after slow_close), or close the link after limit_data. */
  #maybeEnd(): void {
    if (this.#queue.length > 0 || this.#timer !== undefined) return;
    if (this.#closing) {
      this.link.trace('*', 'toxic', () => `limit_data reached on ${this.stream}: closing both ends`);
      this.link.end();
      return;
    }
    if (!this.#ended) return;
    this.#ended = false;
    const slow = this.link.active(this.stream).find((t) => t.type === 'slow_close');
    if (slow) {
      this.link.host.countToxic(slow.name);
      this.link.trace('*', 'toxic', () => `${slow.name}: close held ${slow.attributes.delay} ms`);
      this.link.later(slow.attributes.delay!, () => this.dst.end());
    } else {
      this.dst.end();
    }
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#queue.length = 0;
    this.#queued = 0;
  }
}

/** One client connection and its upstream connection, with a direction each way. */
export class Link {
  readonly #applies = new Map<string, boolean>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #armed = new Set<string>();
  readonly up: Direction;
  readonly down: Direction;
  #done = false;

  constructor(
    readonly cid: string,
    readonly host: LinkHost,
    readonly prng: Prng,
    readonly client: net.Socket,
    readonly upstream: net.Socket,
  ) {
    this.up = new Direction(this, 'upstream', client, upstream);
    this.down = new Direction(this, 'downstream', upstream, client);
    this.refresh();
  }

  /** The toxics of a stream that apply to this connection: toxicity is drawn once per connection and toxic. */
  active(stream: Stream): Toxic[] {
    const all = this.host.toxicsFor(stream);
    if (all.length === 0) return all;
    return all.filter((t) => {
      let yes = this.#applies.get(t.name);
      if (yes === undefined) {
        yes = this.prng.chance(t.toxicity);
        this.#applies.set(t.name, yes);
      }
      return yes;
    });
  }

  /** Arms the timers of toxics that act on time rather than data (reset_peer); called when toxics change. */
  refresh(): void {
    for (const stream of ['upstream', 'downstream'] as const) {
      for (const t of this.active(stream)) {
        if (t.type !== 'reset_peer' || this.#armed.has(t.name)) continue;
        this.#armed.add(t.name);
        this.later(t.attributes.timeout!, () => {
          this.host.countToxic(t.name);
          this.trace('*', 'toxic', () => `${t.name}: resetting both ends (RST) after ${t.attributes.timeout} ms`);
          this.reset();
        });
      }
    }
  }

  /** The timeout toxic: after `ms` (never when 0) both ends are closed. */
  armTimeout(ms: number): void {
    if (ms === 0 || this.#armed.has('timeout')) return;
    this.#armed.add('timeout');
    this.later(ms, () => {
      this.trace('*', 'toxic', () => `timeout: closing both ends after ${ms} ms`);
      this.client.destroy();
      this.upstream.destroy();
    });
  }

  later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      if (!this.#done) fn();
    }, ms);
    this.#timers.add(timer);
  }

  /** Takes a builder, as Tracer.emit does: with tracing off no summary string is ever made. */
  trace(dir: '>' | '<' | '*', kind: string, summary: () => string): void {
    this.host.tracer.emit('impair', this.cid, dir, kind, summary);
  }

  end(): void {
    this.client.end();
    this.upstream.end();
  }

  reset(): void {
    if (!this.client.destroyed) this.client.resetAndDestroy();
    if (!this.upstream.destroyed) this.upstream.resetAndDestroy();
  }

  /** Both sockets are gone: stop every timer. */
  finish(): void {
    this.#done = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.up.stop();
    this.down.stop();
  }
}
