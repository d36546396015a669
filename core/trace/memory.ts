import type { TraceEvent, TraceSink } from './types.ts';

export interface MemorySinkOptions {
  /** Events kept; older ones are dropped past it. Default 100,000. */
  maxEvents?: number;
  /** Keep the `bytes` events of socket taps too (and ask for them). Default false: a lab counts protocol events. */
  wire?: boolean;
}

/** Keeps events in memory so a lab or a test can check what happened on the wire. */
export class MemorySink implements TraceSink {
  readonly events: TraceEvent[] = [];
  dropped = 0;
  readonly #max: number;
  readonly wantsWire: boolean;

  constructor(options: MemorySinkOptions = {}) {
    this.#max = options.maxEvents ?? 100_000;
    this.wantsWire = options.wire ?? false;
  }

  write(event: TraceEvent): void {
    if (event.kind === 'bytes' && !this.wantsWire) return;
    if (this.events.length >= this.#max) {
      this.events.shift();
      this.dropped++;
    }
    this.events.push(event);
  }

  find(filter: Partial<Pick<TraceEvent, 'proto' | 'cid' | 'dir' | 'kind'>>): TraceEvent[] {
    return this.events.filter(
      (e) =>
        (filter.proto === undefined || e.proto === filter.proto) &&
        (filter.cid === undefined || e.cid === filter.cid) &&
        (filter.dir === undefined || e.dir === filter.dir) &&
        (filter.kind === undefined || e.kind === filter.kind),
    );
  }
}
