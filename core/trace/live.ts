import { FanoutTracer, NOOP_TRACER, forwardTo } from './tracer.ts';
import type { Dir, EventBody, TraceSink, Tracer } from './types.ts';

/**
 * A tracer whose sinks can be attached and detached while servers run (`wirelab up`'s dashboard). `enabled` is a
 * plain field flipped by attach/detach, so every call site that checks `tracer.enabled` or passes a builder to `emit`
 * sees the change on its next event, and with no sink attached (and no `--trace` base) nothing is built: `emit` is one
 * call and one field read, like the no-op tracer.
 */
export class LiveTracer implements Tracer {
  enabled: boolean;
  readonly #sinks: TraceSink[] = [];
  readonly #fan: FanoutTracer;
  readonly #base: Tracer;
  readonly #fixed: number;

  /** `base` (the tracer the command line asked for: --trace, --trace-file) keeps getting every event. */
  constructor(base: Tracer = NOOP_TRACER) {
    this.#base = base;
    if (base.enabled) this.#sinks.push(forwardTo(base));
    this.#fixed = this.#sinks.length;
    // The array is shared with the fan-out, so attach() is a push and events keep one time origin.
    this.#fan = new FanoutTracer(this.#sinks, { libs: base.libs ?? false });
    this.enabled = this.#sinks.length > 0;
  }

  /** Sinks attached at run time (the base does not count). */
  get watchers(): number {
    return this.#sinks.length - this.#fixed;
  }

  /** Starts sending events to `sink`; returns its detach (idempotent). A sink must not throw. */
  attach(sink: TraceSink): () => void {
    this.#sinks.push(sink);
    this.enabled = true;
    let attached = true;
    return () => {
      if (!attached) return;
      attached = false;
      const i = this.#sinks.indexOf(sink);
      if (i !== -1) this.#sinks.splice(i, 1);
      this.enabled = this.#sinks.length > 0;
    };
  }

  emit(proto: string, cid: string, dir: Dir, kind: string, build: () => EventBody): void {
    if (this.enabled) this.#fan.emit(proto, cid, dir, kind, build);
  }

  async close(): Promise<void> {
    const attached = this.#sinks.splice(this.#fixed);
    this.enabled = this.#sinks.length > 0;
    for (const s of attached) await s.close?.();
    await this.#base.close();
  }
}
