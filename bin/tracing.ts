import { statSync } from 'node:fs';
import { join } from 'node:path';
import { PcapngSink, type PcapngSummary } from '../core/export/pcapng.ts';
import { RealPcapngSink } from '../core/export/pcapng-real.ts';
import { createTracer, forwardTo, JsonlSink, PrettySink, type TraceSink, type Tracer } from '../core/trace/index.ts';
import { HarFileSink } from '../core/export/har.ts';

export interface TraceFlags {
  trace?: boolean;
  'trace-file'?: string;
  /** With --trace-file: summaries only (JsonlSink `lean`). */
  'trace-lean'?: boolean;
  hex?: boolean;
  'trace-libs'?: boolean;
  pcap?: string;
  /** With --pcap: tcpdump's real packets where core/capture can capture (root), else the synthesized file. */
  'pcap-real'?: boolean;
  /** HAR 1.2 of every HTTP exchange, written when the tracer closes. */
  har?: string;
}

/** True when --pcap names a folder (ends with / or exists as one): `wirelab labs` writes one file per lab there. */
export function pcapIsDir(path: string | undefined): boolean {
  if (!path) return false;
  if (path.endsWith('/')) return true;
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** What a written pcapng holds, on stderr: real packets or synthesized (and why, when real ones were asked). */
function written(summary: PcapngSummary & { real?: boolean; note?: string }, path: string): void {
  const tls = summary.tlsConversations > 0 ? `, ${summary.tlsConversations} of them TLS (the plaintext)` : '';
  const what = summary.real
    ? `real packets captured by tcpdump on lo (TLS as ciphertext)${summary.note ? `; ${summary.note}` : ''}`
    : `headers synthesized from the trace${summary.note ? ` (no real capture: ${summary.note})` : ''}`;
  process.stderr.write(`pcapng: ${path}: ${summary.packets} packets, ${summary.tcpConversations} TCP and ${summary.udpConversations} UDP conversations${tls}; ${what} (open with wireshark or tshark -r)\n`);
}

/** tcpdump starting for --pcap-real sinks: the command awaits them before any traffic (pcapReady). */
const starting = new Set<Promise<void>>();

/** Resolves once every --pcap-real capture listens (or failed, and will write the synthesized file). */
export async function pcapReady(): Promise<void> {
  await Promise.all(starting);
  starting.clear();
}

/** A sink writing `path` when the tracer closes, saying so on stderr; `real`: tcpdump's packets where it can. */
export function pcapSink(path: string, real = false): TraceSink {
  if (!real) return new PcapngSink(path, { onWritten: written });
  const sink = new RealPcapngSink(path, { onWritten: written });
  starting.add(sink.ready);
  return sink;
}

/**
 * The tracer the command line asked for: `--trace` (terminal, on stderr), `--trace-file x.jsonl`, `--hex`,
 * `--trace-libs`, `--pcap out.pcapng` (a folder is left to `wirelab labs`, one file per lab).
 */
export function tracerFromFlags(flags: TraceFlags): Tracer {
  const sinks: TraceSink[] = [];
  // --hex alone implies --trace: dumps are only useful with the lines they belong to.
  if (flags.trace || flags.hex) sinks.push(new PrettySink({ stream: process.stderr, hex: flags.hex ?? false }));
  if (flags['trace-file']) sinks.push(new JsonlSink(flags['trace-file'], { lean: flags['trace-lean'] === true }));
  if (flags.pcap && !pcapIsDir(flags.pcap)) sinks.push(pcapSink(flags.pcap, flags['pcap-real']));
  if (flags.har) sinks.push(new HarFileSink(flags.har));
  return createTracer(sinks, { libs: flags['trace-libs'] ?? false });
}

/** For one lab of `wirelab labs --pcap dir/`: the run's tracer plus a pcapng of this lab, `dir/<id>.pcapng`. */
export function perLabTracer(outer: Tracer, dir: string, id: string, real = false): Tracer {
  const sinks: TraceSink[] = [pcapSink(join(dir, `${id}.pcapng`), real)];
  if (outer.enabled) sinks.push(forwardTo(outer));
  return createTracer(sinks, { libs: outer.libs ?? false });
}
