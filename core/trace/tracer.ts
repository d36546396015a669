import type { Dir, EventBody, Role, TraceEvent, TraceSink, Tracer } from './types.ts';
import { round } from '../stats.ts';

class NoopTracer implements Tracer {
  readonly enabled = false;
  readonly libs = false;
  readonly wire = false;
  readonly detail = false;
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

/**
 * Hands each event to every attached sink. Sinks come and go at run time (`attach` returns the detach): `enabled` is a
 * plain field that says "some sink still wants events", so with none attached every call site that checks it, or that
 * passes a builder to `emit`, builds nothing (one call and one field read, like the no-op tracer). `wire` likewise
 * follows the sinks (a socket tapped while it was false stays untapped). The live dashboard (core/trace/live.ts) and
 * the diagram capture (core/export/diagram.ts) are this fan-out with sinks of their own.
 */
export class FanoutTracer implements Tracer {
  enabled = false;
  readonly libs: boolean;
  wire = false;
  detail = false;
  readonly #start = performance.now();
  /** Replaced, never changed in place: a sink that detaches while an event is handed out does not skip another. */
  #sinks: readonly TraceSink[] = [];
  /** cid -> the role and conversation of its connection, learnt from the connect / accept event. */
  readonly #conns = new Map<string, { role: Role; conv: string }>();
  readonly #maxConns: number;

  constructor(sinks: TraceSink[] = [], options: TracerOptions = {}) {
    this.libs = options.libs ?? false;
    this.#maxConns = options.maxConnections ?? 10_000;
    for (const s of sinks) this.attach(s);
  }

  /** Sinks attached now. */
  get sinkCount(): number {
    return this.#sinks.length;
  }

  /**
   * Starts handing events to `sink`; returns its detach (idempotent). A sink with `attached` gets the detach too, so
   * it can leave by itself once it wants nothing more (a diagram that is full). A sink must not throw.
   */
  attach(sink: TraceSink): () => void {
    this.#sinks = [...this.#sinks, sink];
    this.#update();
    let attached = true;
    const detach = (): void => {
      if (!attached) return;
      attached = false;
      this.#sinks = this.#sinks.filter((s) => s !== sink);
      this.#update();
    };
    sink.attached?.(detach);
    return detach;
  }

  #update(): void {
    this.enabled = this.#sinks.length > 0;
    this.wire = this.#sinks.some((s) => s.wantsWire === true);
    this.detail = this.#sinks.some((s) => s.wantsDetail !== false);
  }

  emit(proto: string, cid: string, dir: Dir, kind: string, build: () => EventBody): void {
    if (!this.enabled) return;
    const sinks = this.#sinks;
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
    for (let i = 0; i < sinks.length; i++) sinks[i]!.write(event);
  }

  /** Detaches every sink and closes it (flushing files). */
  async close(): Promise<void> {
    const sinks = this.#sinks;
    this.#sinks = [];
    this.#update();
    for (const sink of sinks) await sink.close?.();
  }
}

/** A tracer that hands each event to every sink; with no sinks it is the no-op tracer. */
export function createTracer(sinks: TraceSink[], options: TracerOptions = {}): Tracer {
  return sinks.length === 0 ? NOOP_TRACER : new FanoutTracer(sinks, options);
}

/**
 * A sink that re-emits every event on another tracer: a lab records for its own checks and still honours --trace.
 * The event keeps its absolute time, role and conversation. What it asks for (wire bytes, details) is read once, here.
 */
export function forwardTo(tracer: Tracer): TraceSink {
  return {
    wantsWire: tracer.wire === true,
    wantsDetail: tracer.detail !== false,
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
