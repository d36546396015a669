export type { Dir, Ends, EventBody, Role, TraceEvent, TraceSink, Tracer } from './types.ts';
export { FanoutTracer, NOOP_TRACER, createTracer, forwardTo, nextCid, type TracerOptions } from './tracer.ts';
export { MemorySink } from './memory.ts';
export { JsonlSink } from './jsonl.ts';
export { PrettySink } from './pretty.ts';
export { hexDump, oneLine, preview } from './hex.ts';
export { REDACTED, redactLine } from './redact.ts';
export { addressOf, convOf, endsOf, lineMask, socketEnds, tapSocket, type WireMask } from './ends.ts';
export { LiveTracer } from './live.ts';
