import { writePcapng } from '../../core/export/pcapng.ts';
import { LEAN_KIND } from '../../core/trace/jsonl.ts';
import { readTraceFile, type ReadEvent } from '../../core/trace/read.ts';
import { PrettySink } from '../../core/trace/index.ts';
import { WirelabError } from '../../core/errors.ts';
import Table from 'cli-table3';

export interface TraceCommandFlags {
  proto?: string;
  cid?: string;
  grep?: string;
  hex?: boolean;
  to?: string;
  output?: string;
  json?: boolean;
}

const SUBCOMMANDS = ['show', 'convert', 'stats'];

/** `--cid X`: X's events and those of the other end of the same connection (same conversation). */
export function selectEvents(events: ReadEvent[], flags: TraceCommandFlags): ReadEvent[] | string {
  const protos = flags.proto ? new Set(flags.proto.split(',').map((p) => p.trim()).filter(Boolean)) : undefined;
  let re: RegExp | undefined;
  if (flags.grep !== undefined) {
    try {
      re = new RegExp(flags.grep, 'i');
    } catch (err) {
      return `--grep: ${(err as Error).message}`;
    }
  }
  let cids: Set<string> | undefined;
  if (flags.cid) {
    const convs = new Set(events.filter((e) => e.cid === flags.cid && e.conv).map((e) => e.conv!));
    cids = new Set([flags.cid, ...events.filter((e) => e.conv && convs.has(e.conv)).map((e) => e.cid)]);
  }
  return events.filter(
    (e) =>
      (flags.hex || e.kind !== 'bytes') &&
      (!protos || protos.has(e.proto)) &&
      (!cids || cids.has(e.cid)) &&
      (!re || re.test(e.summary)),
  );
}

interface ProtoStats {
  proto: string;
  events: number;
  connections: number;
  conversations: number;
  bytesToServer: number;
  bytesToClient: number;
}

/** Per protocol: events, connection ids, conversations, payload bytes each way (as traced: both ends when both were). */
export function traceStats(events: ReadEvent[]): ProtoStats[] {
  const by = new Map<string, ProtoStats & { cids: Set<string>; convs: Set<string> }>();
  for (const e of events) {
    let s = by.get(e.proto);
    if (!s) by.set(e.proto, (s = { proto: e.proto, events: 0, connections: 0, conversations: 0, bytesToServer: 0, bytesToClient: 0, cids: new Set(), convs: new Set() }));
    s.events++;
    if (e.role) s.cids.add(e.cid);
    if (e.conv) s.convs.add(e.conv);
    const payload = e.kind === 'bytes' || e.kind === 'read' || e.kind === 'write' || e.kind === 'datagram';
    if (payload && e.bytes !== undefined) {
      if (e.dir === '>') s.bytesToServer += e.bytes;
      else if (e.dir === '<') s.bytesToClient += e.bytes;
    }
  }
  return [...by.values()]
    .map(({ cids, convs, ...s }) => ({ ...s, connections: cids.size, conversations: convs.size }))
    .sort((a, b) => b.events - a.events);
}

/** `wirelab trace show|convert|stats <file.jsonl>`. */
export async function traceCommand(args: string[], flags: TraceCommandFlags): Promise<number> {
  const [sub, file] = args as [string, string];
  if (!SUBCOMMANDS.includes(sub)) {
    console.error(`wirelab trace: unknown subcommand "${sub}"; one of ${SUBCOMMANDS.join(', ')} (wirelab trace --help)`);
    return 2;
  }
  if (sub === 'convert' && ((flags.to ?? 'pcapng') !== 'pcapng' || !flags.output)) {
    console.error(`wirelab trace convert: ${flags.output ? `--to ${flags.to}: only pcapng is known` : 'missing -o out.pcapng'} (wirelab trace --help)`);
    return 2;
  }
  let read;
  try {
    read = await readTraceFile(file);
  } catch (err) {
    if (!(err instanceof WirelabError)) throw err;
    console.error(`wirelab trace: ${err.message}`);
    return 1;
  }
  if (read.badLines > 0) console.error(`wirelab trace: ${read.badLines} line(s) of ${file} were not trace events (skipped)`);
  if (read.truncated) console.error(`wirelab trace: ${file} has more events than are read at once; the rest is ignored`);
  if (read.events.length === 0) {
    console.error(`wirelab trace: no trace event in ${file} (write one with --trace-file ${file})`);
    return 1;
  }
  if (sub === 'show') {
    const events = selectEvents(read.events, flags);
    if (typeof events === 'string') {
      console.error(`wirelab trace show: ${events}`);
      return 2;
    }
    if (flags.json) {
      for (const e of events) process.stdout.write(JSON.stringify({ ...e, data: e.data ? Buffer.from(e.data).toString('hex') : undefined }) + '\n');
      return 0;
    }
    const pretty = new PrettySink({ stream: process.stdout, hex: flags.hex ?? false });
    for (const e of events) pretty.write(e);
    return 0;
  }
  if (sub === 'convert') {
    if (read.events[0]?.proto === 'trace' && read.events[0].kind === LEAN_KIND) {
      console.error(`wirelab trace convert: ${file} was written with --trace-lean (summaries only): it holds no wire bytes to make packets from; record with --trace-file alone`);
      return 1;
    }
    const summary = await writePcapng(flags.output!, read.events);
    if (flags.json) process.stdout.write(JSON.stringify({ file: flags.output, ...summary }) + '\n');
    else
      console.log(
        `${flags.output}: ${summary.packets} packets, ${summary.tcpConversations} TCP and ${summary.udpConversations} UDP conversations` +
          `${summary.tlsConversations > 0 ? ` (${summary.tlsConversations} TLS: the plaintext)` : ''}` +
          `${summary.truncatedPayloads > 0 ? `; ${summary.truncatedPayloads} payloads were cut in the trace file` : ''}`,
      );
    return 0;
  }
  const stats = traceStats(read.events);
  if (flags.json) {
    process.stdout.write(JSON.stringify(stats) + '\n');
    return 0;
  }
  const table = new Table({ head: ['proto', 'events', 'connections', 'conversations', 'bytes →', 'bytes ←'], style: { head: [], border: [] } });
  for (const s of stats) table.push([s.proto, s.events, s.connections, s.conversations, s.bytesToServer, s.bytesToClient]);
  console.log(table.toString());
  console.log('connections: ids with a known end (client or server); conversations: distinct 4-tuples; bytes as traced (both ends when both were)');
  return 0;
}
