import { readFile, stat } from 'node:fs/promises';
import { ErrorCodes, WirelabError } from '../errors.ts';
import type { TraceEvent } from './types.ts';

/** A trace event read back from JSON lines: `data` as bytes again, and whether the file cut it. */
export type ReadEvent = TraceEvent & { dataTruncated?: boolean };

export interface ReadTraceOptions {
  /** Events read at most; past it the rest of the file is ignored and `truncated` set. Default 2,000,000. */
  maxEvents?: number;
  /** Larger files are refused (they are read whole). Default 512 MiB. */
  maxFileBytes?: number;
}

export interface ReadTrace {
  events: ReadEvent[];
  /** Lines that were not a trace event (not JSON, or missing proto / cid / dir / kind). */
  badLines: number;
  truncated: boolean;
}

/** Parses the JSON lines a `JsonlSink` wrote (`--trace-file`): hex payloads back to bytes. */
export function parseTraceLines(text: string, options: ReadTraceOptions = {}): ReadTrace {
  const max = options.maxEvents ?? 2_000_000;
  const events: ReadEvent[] = [];
  let badLines = 0;
  let truncated = false;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (events.length >= max) {
      truncated = true;
      break;
    }
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line) as Record<string, unknown>;
    } catch {
      badLines++;
      continue;
    }
    if (typeof o !== 'object' || o === null || typeof o.proto !== 'string' || typeof o.cid !== 'string' || typeof o.kind !== 'string' || (o.dir !== '>' && o.dir !== '<' && o.dir !== '*')) {
      badLines++;
      continue;
    }
    const e = { ...o, summary: typeof o.summary === 'string' ? o.summary : '', t: typeof o.t === 'number' ? o.t : 0 } as unknown as ReadEvent;
    if (typeof o.data === 'string') e.data = Buffer.from(o.data, 'hex');
    else delete e.data;
    events.push(e);
  }
  return { events, badLines, truncated };
}

/** Reads a JSON-lines trace file. */
export async function readTraceFile(path: string, options: ReadTraceOptions = {}): Promise<ReadTrace> {
  let text: string;
  const max = options.maxFileBytes ?? 512 * 1024 * 1024;
  try {
    const size = (await stat(path)).size;
    if (size > max) throw new WirelabError(ErrorCodes.TRACE_FILE, `${path} is ${size} bytes, over maxFileBytes=${max}: cut it first (head -n)`);
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (err instanceof WirelabError) throw err;
    throw new WirelabError(ErrorCodes.TRACE_FILE, `cannot read the trace file ${path}: ${(err as Error).message}`, { cause: err });
  }
  return parseTraceLines(text, options);
}
