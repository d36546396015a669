import { createTracer, JsonlSink, PrettySink, type TraceSink, type Tracer } from '../core/trace/index.ts';
import { HarFileSink } from '../core/export/har.ts';

export interface TraceFlags {
  trace?: boolean;
  'trace-file'?: string;
  hex?: boolean;
  /** HAR 1.2 of every HTTP exchange, written when the tracer closes. */
  har?: string;
}

/** The tracer the command line asked for: `--trace` (terminal, on stderr), `--trace-file x.jsonl`, `--hex`. */
export function tracerFromFlags(flags: TraceFlags): Tracer {
  const sinks: TraceSink[] = [];
  // --hex alone implies --trace: dumps are only useful with the lines they belong to.
  if (flags.trace || flags.hex) sinks.push(new PrettySink({ stream: process.stderr, hex: flags.hex ?? false }));
  if (flags['trace-file']) sinks.push(new JsonlSink(flags['trace-file']));
  if (flags.har) sinks.push(new HarFileSink(flags.har));
  return createTracer(sinks);
}
