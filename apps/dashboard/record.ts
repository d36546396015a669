import type { TraceEvent, TraceSink } from '../../core/trace/index.ts';

/** Limits of what the download buttons can export. */
export interface RecordLimits {
  /** Events kept; the oldest go first. Default 50,000. */
  maxEvents: number;
  /** Payload bytes kept (the `bytes` events of socket taps); the oldest events go first. Default 64 MiB. */
  maxBytes: number;
}

export const RECORD_DEFAULTS: Readonly<RecordLimits> = Object.freeze({ maxEvents: 50_000, maxBytes: 64 * 1024 * 1024 });

/** Keeps the events a page saw (payloads copied: a socket's buffer may be reused), capped by count and bytes. */
export class SessionRecorder implements TraceSink {
  readonly wantsWire = true;
  readonly events: TraceEvent[] = [];
  dropped = 0;
  #bytes = 0;
  #head = 0;
  readonly #limits: RecordLimits;

  constructor(limits: Partial<RecordLimits> = {}) {
    this.#limits = { ...RECORD_DEFAULTS, ...limits };
  }

  write(e: TraceEvent): void {
    const event = e.data ? { ...e, data: Buffer.from(e.data) } : e;
    this.events.push(event);
    this.#bytes += event.data?.byteLength ?? 0;
    while (this.events.length - this.#head > this.#limits.maxEvents || (this.#bytes > this.#limits.maxBytes && this.#head < this.events.length - 1)) {
      this.#bytes -= this.events[this.#head]!.data?.byteLength ?? 0;
      this.#head++;
      this.dropped++;
    }
    // Drop the consumed head in one splice now and then (shift per event is O(n)).
    if (this.#head > 1024 && this.#head * 2 > this.events.length) {
      this.events.splice(0, this.#head);
      this.#head = 0;
    }
  }

  /** The events kept, oldest first. */
  kept(): TraceEvent[] {
    return this.#head === 0 ? this.events : this.events.slice(this.#head);
  }

  get size(): number {
    return this.events.length - this.#head;
  }
}
