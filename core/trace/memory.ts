import type { TraceEvent, TraceSink } from './types.ts';

export interface MemorySinkOptions {
  /** Events kept; older ones are dropped past it. Default 100,000. */
  maxEvents?: number;
}

/** Keeps events in memory so a lab or a test can check what happened on the wire. */
export class MemorySink implements TraceSink {
  readonly events: TraceEvent[] = [];
  dropped = 0;
  readonly #max: number;

  constructor(options: MemorySinkOptions = {}) {
    this.#max = options.maxEvents ?? 100_000;
  }

  write(event: TraceEvent): void {
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
