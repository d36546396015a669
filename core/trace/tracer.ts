import type { Dir, EventBody, TraceEvent, TraceSink, Tracer } from './types.ts';
import { round } from '../stats.ts';

class NoopTracer implements Tracer {
  readonly enabled = false;
  emit(): void {}
  async close(): Promise<void> {}
}

/** The tracer every server and client uses when none is given. */
export const NOOP_TRACER: Tracer = new NoopTracer();

/** Hands each event to every sink of `sinks` (the array is kept, not copied: core/trace/live.ts adds to it at run time). */
export class FanoutTracer implements Tracer {
  readonly enabled = true;
  readonly #start = performance.now();
  readonly #sinks: TraceSink[];

  constructor(sinks: TraceSink[]) {
    this.#sinks = sinks;
  }

  emit(proto: string, cid: string, dir: Dir, kind: string, build: () => EventBody): void {
    const body = build();
    const event: TraceEvent =
      typeof body === 'string'
        ? { t: round(performance.now() - this.#start), proto, cid, dir, kind, summary: body }
        : { t: round(performance.now() - this.#start), proto, cid, dir, kind, ...body };
    for (const sink of this.#sinks) sink.write(event);
  }

  async close(): Promise<void> {
    for (const sink of this.#sinks) await sink.close?.();
  }
}

/** A tracer that hands each event to every sink; with no sinks it is the no-op tracer. */
export function createTracer(sinks: TraceSink[]): Tracer {
  return sinks.length === 0 ? NOOP_TRACER : new FanoutTracer(sinks);
}

/** A sink that re-emits every event on another tracer: a lab records for its own checks and still honours --trace. */
export function forwardTo(tracer: Tracer): TraceSink {
  return {
    write: (e) => {
      const { t: _t, proto, cid, dir, kind, ...body } = e;
      tracer.emit(proto, cid, dir, kind, () => body);
    },
  };
}

const counters = new Map<string, number>();

/** A process-wide unique connection id such as `tcp#3`. */
export function nextCid(proto: string): string {
  const n = (counters.get(proto) ?? 0) + 1;
  counters.set(proto, n);
  return `${proto}#${n}`;
}
