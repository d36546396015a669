import type { Dir, EventBody, Role, TraceEvent, TraceSink, Tracer } from './types.ts';
import { round } from '../stats.ts';

class NoopTracer implements Tracer {
  readonly enabled = false;
  readonly libs = false;
  readonly wire = false;
  emit(): void {}
  async close(): Promise<void> {}
}

/** The tracer every server and client uses when none is given. */
export const NOOP_TRACER: Tracer = new NoopTracer();

export interface TracerOptions {
  /** Let the libraries' own debug logs through (`--trace-libs`). Default false. */
  libs?: boolean;
  /** Connections whose role and conversation are remembered to stamp later events; the oldest is forgotten past it. Default 10,000. */
  maxConnections?: number;
}

/** performance.timeOrigin, read once: its getter costs microseconds a call. */
const ORIGIN = performance.timeOrigin;

/** Epoch milliseconds now, µs precision. */
function epochMs(now: number): number {
  return Math.round((ORIGIN + now) * 1000) / 1000;
}

/** Hands each event to every sink of `sinks` (the array is kept, not copied: core/trace/live.ts adds to it at run time). */
export class FanoutTracer implements Tracer {
  readonly enabled = true;
  readonly libs: boolean;
  readonly wire: boolean;
  readonly #start = performance.now();
  readonly #sinks: TraceSink[];
  /** cid -> the role and conversation of its connection, learnt from the connect / accept event. */
  readonly #conns = new Map<string, { role: Role; conv: string }>();
  readonly #maxConns: number;

  constructor(sinks: TraceSink[], options: TracerOptions) {
    this.#sinks = sinks;
    this.libs = options.libs ?? false;
    this.wire = sinks.some((s) => s.wantsWire === true);
    this.#maxConns = options.maxConnections ?? 10_000;
  }

  emit(proto: string, cid: string, dir: Dir, kind: string, build: () => EventBody): void {
    const body = build();
    const now = performance.now();
    const t = round(now - this.#start);
    const ts = epochMs(now);
    // One object literal each (spreading a shared head object costs microseconds an event).
    const event: TraceEvent = typeof body === 'string' ? { t, ts, proto, cid, dir, kind, summary: body } : { t, ts, proto, cid, dir, kind, ...body };
    if (event.conv !== undefined && event.role !== undefined) {
      // Datagram events of a server socket carry their own ends; only a connection's ends are remembered for its cid.
      if (event.local !== undefined && !event.conv.startsWith('udp:')) {
        if (this.#conns.size >= this.#maxConns) this.#conns.delete(this.#conns.keys().next().value!);
        this.#conns.set(cid, { role: event.role, conv: event.conv });
      }
    } else {
      const known = this.#conns.get(cid);
      if (known) {
        event.role ??= known.role;
        event.conv ??= known.conv;
      }
    }
    for (const sink of this.#sinks) sink.write(event);
  }

  async close(): Promise<void> {
    for (const sink of this.#sinks) await sink.close?.();
  }
}

/** A tracer that hands each event to every sink; with no sinks it is the no-op tracer. */
export function createTracer(sinks: TraceSink[], options: TracerOptions = {}): Tracer {
  return sinks.length === 0 ? NOOP_TRACER : new FanoutTracer(sinks, options);
}

/**
 * A sink that re-emits every event on another tracer: a lab records for its own checks and still honours --trace.
 * The event keeps its absolute time, role and conversation.
 */
export function forwardTo(tracer: Tracer): TraceSink {
  return {
    wantsWire: tracer.wire === true,
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
