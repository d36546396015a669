import { FanoutTracer, NOOP_TRACER, forwardTo } from './tracer.ts';
import type { Tracer } from './types.ts';

/**
 * `wirelab up`'s tracer: the fan-out (core/trace/tracer.ts) with the command line's tracer (--trace, --trace-file) as
 * a fixed first sink, and the dashboard's sinks attached and detached while servers run. With no page watching and no
 * `--trace`, `enabled` is false and nothing is built.
 */
export class LiveTracer extends FanoutTracer {
  readonly #base: Tracer;
  readonly #fixed: number;

  /** `base` (the tracer the command line asked for: --trace, --trace-file) keeps getting every event. */
  constructor(base: Tracer = NOOP_TRACER) {
    super([], { libs: base.libs ?? false });
    this.#base = base;
    if (base.enabled) this.attach(forwardTo(base));
    this.#fixed = this.sinkCount;
  }

  /** Sinks attached at run time (the base does not count). */
  get watchers(): number {
    return this.sinkCount - this.#fixed;
  }

  /** Closes the attached sinks, then the base. */
  override async close(): Promise<void> {
    await super.close();
    await this.#base.close();
  }
}
