import { createTracer, JsonlSink, PrettySink, type TraceSink, type Tracer } from '../core/trace/index.ts';

export interface TraceFlags {
  trace?: boolean;
  'trace-file'?: string;
  hex?: boolean;
}

/** The tracer the command line asked for: `--trace` (terminal, on stderr), `--trace-file x.jsonl`, `--hex`. */
export function tracerFromFlags(flags: TraceFlags): Tracer {
  const sinks: TraceSink[] = [];
  // --hex alone implies --trace: dumps are only useful with the lines they belong to.
  if (flags.trace || flags.hex) sinks.push(new PrettySink({ stream: process.stderr, hex: flags.hex ?? false }));
  if (flags['trace-file']) sinks.push(new JsonlSink(flags['trace-file']));
  return createTracer(sinks);
}
