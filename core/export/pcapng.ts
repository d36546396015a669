/**
 * Trace events to a pcapng file Wireshark and tshark open: every TCP / UDP payload the tracer saw becomes packets
 * with synthesized Ethernet / IPv4 / TCP / UDP headers (the real addresses and ports of the connection, sequence and
 * acknowledgment numbers consistent per direction, SYN / SYN-ACK / ACK before the first byte and FIN / FIN / ACK at
 * the close, payloads cut at the MSS). The headers are made up; the payload bytes are the ones traced (TLS: the
 * plaintext, secrets masked where they were traced). The section header's comment says so.
 */
import { writeFile } from 'node:fs/promises';
import { ErrorCodes, WirelabError } from '../errors.ts';
import type { TraceEvent, TraceSink } from '../trace/types.ts';
import { enhancedPacket, interfaceDescription, ipv4, sectionHeader, tcpFrame, TCP, udpFrame, type Addressing } from './pcapng-blocks.ts';

export interface PcapngOptions {
  /** TCP payload bytes per segment. Default 1460 (Ethernet's MSS); loopback's real MSS is larger. */
  mss?: number;
  /** Added to the section header's comment. */
  comment?: string;
}

/** What an export wrote, for a command to print. */
export interface PcapngSummary {
  packets: number;
  tcpConversations: number;
  udpConversations: number;
  /** Conversations whose payload is the plaintext of a TLS connection. */
  tlsConversations: number;
  /** Payload events cut short in the trace file (the packets carry the original length). */
  truncatedPayloads: number;
  /** Conversations left out: not IPv4. */
  skipped: number;
}

/** The Wireshark dissector of a trace proto, for the `-d tcp.port==N,name` hint on each conversation's first packet. */
const DISSECTORS: Record<string, string> = { http: 'http', ws: 'http', wss: 'http', smtp: 'smtp', imap: 'imap', pop3: 'pop', ftp: 'ftp', 'ftp-data': 'ftp-data', mqtt: 'mqtt', webrtc: 'stun' };

type Ev = TraceEvent & { dataTruncated?: boolean };

interface Conv {
  key: string;
  udp: boolean;
  client: [string, number];
  server: [string, number];
  /** Payload events by the role that traced them (one side is exported, the server's when both traced). */
  payload: { client: Ev[]; server: Ev[] };
  cids: { client?: string; server?: string };
  protos: Set<string>;
  /** An HTTP/2 session (its frames, not HTTP/1.1 text: tshark's http2 dissector). */
  h2: boolean;
  first: number;
  close: { client?: number; server?: number };
}

/** `ip:port` as [ip, port]; undefined for IPv6 (`[..]:port`) or garbage. */
function hostPort(s: string): [string, number] | undefined {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(s);
  return m ? [m[1]!, Number(m[2])] : undefined;
}

function parseConv(conv: string): { udp: boolean; client?: [string, number]; server?: [string, number] } {
  const udp = conv.startsWith('udp:');
  const [c, s] = conv.slice(4).split('>');
  return { udp, client: c ? hostPort(c) : undefined, server: s ? hostPort(s) : undefined };
}

const isPayload = (e: Ev): boolean => e.data !== undefined && e.data.byteLength > 0 && e.dir !== '*' && (e.kind === 'bytes' || e.kind === 'read' || e.kind === 'write' || e.kind === 'datagram');
const isClose = (e: Ev): boolean => e.kind === 'close' || e.kind === 'closed';

/** Groups the events into conversations by their 4-tuple (both ends' events, then one side's payload is kept). */
function conversations(events: Ev[]): { convs: Conv[]; skipped: number } {
  // A connection's ends come on its connect / accept event; every event of that cid belongs to the conversation.
  const ofCid = new Map<string, { conv: string; role: 'client' | 'server' }>();
  for (const e of events) if (e.conv && e.role && e.local !== undefined && e.conv.startsWith('tcp:')) ofCid.set(e.cid, { conv: e.conv, role: e.role });
  const convs = new Map<string, Conv>();
  let skipped = 0;
  const skippedKeys = new Set<string>();
  for (const e of events) {
    const udp = e.conv?.startsWith('udp:') === true;
    const where = udp ? (e.role ? { conv: e.conv!, role: e.role } : undefined) : ofCid.get(e.cid);
    if (!where) continue;
    let c = convs.get(where.conv);
    if (!c) {
      const p = parseConv(where.conv);
      if (!p.client || !p.server) {
        if (!skippedKeys.has(where.conv)) skipped++;
        skippedKeys.add(where.conv);
        continue;
      }
      c = { key: where.conv, udp: p.udp, client: p.client, server: p.server, payload: { client: [], server: [] }, cids: {}, protos: new Set(), h2: false, first: e.ts ?? 0, close: {} };
      convs.set(where.conv, c);
    }
    c.cids[where.role] ??= e.cid;
    c.protos.add(e.proto);
    if (e.kind === 'h2-session') c.h2 = true;
    if (e.ts !== undefined) c.first = Math.min(c.first, e.ts);
    if (isPayload(e)) c.payload[where.role].push(e);
    else if (isClose(e) && e.ts !== undefined) c.close[where.role] ??= e.ts;
  }
  return { convs: [...convs.values()], skipped };
}

/** A stable number from a string, for initial sequence numbers that differ per conversation. */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

interface Out {
  tsUs: number;
  order: number;
  block: Buffer;
}

/** Builds the pcapng file of the events (kept in memory: a trace of a lab or a session). */
export function toPcapng(events: Ev[], options: PcapngOptions = {}): { file: Buffer; summary: PcapngSummary } {
  const mss = options.mss ?? 1460;
  const { convs, skipped } = conversations(events);
  const out: Out[] = [];
  let order = 0;
  let ipId = 1;
  const summary: PcapngSummary = { packets: 0, tcpConversations: 0, udpConversations: 0, tlsConversations: 0, truncatedPayloads: 0, skipped };
  const tlsKeys: string[] = [];
  for (const c of convs) {
    const role = c.payload.server.length > 0 ? 'server' : 'client';
    const payload = c.payload[role];
    if (payload.length === 0 && c.udp) continue;
    const tls = c.protos.has('tls') || c.protos.has('smtps') || c.protos.has('https');
    if (tls) {
      summary.tlsConversations++;
      tlsKeys.push(c.key);
    }
    const cip = ipv4(c.client[0]);
    const sip = ipv4(c.server[0]);
    const from = (client: boolean): Addressing =>
      client ? { src: cip, dst: sip, srcPort: c.client[1], dstPort: c.server[1], id: ipId++ } : { src: sip, dst: cip, srcPort: c.server[1], dstPort: c.client[1], id: ipId++ };
    const proto = [...c.protos].find((p) => DISSECTORS[p]);
    const dissector = c.h2 ? 'http2' : proto && DISSECTORS[proto];
    const hint = `${[...c.protos].join('/')} ${c.cids.client ?? ''}${c.cids.client && c.cids.server ? ' ↔ ' : ''}${c.cids.server ?? ''}${tls ? ' (TLS: plaintext as traced)' : ''}${dissector ? `; decode with -d ${c.udp ? 'udp' : 'tcp'}.port==${c.server[1]},${dissector}` : ''}`;
    let lastUs = Math.round(c.first * 1000);
    const push = (tsMs: number | undefined, frame: Buffer, originalLength: number, comment?: string): void => {
      lastUs = Math.max(lastUs, Math.round((tsMs ?? lastUs / 1000) * 1000));
      out.push({ tsUs: lastUs, order: order++, block: enhancedPacket(lastUs, frame, originalLength, comment) });
    };
    if (c.udp) {
      summary.udpConversations++;
      let first = true;
      for (const e of payload) {
        const data = Buffer.from(e.data!.buffer, e.data!.byteOffset, e.data!.byteLength);
        const full = Math.max(e.bytes ?? data.length, data.length);
        if (e.dataTruncated || full > data.length) summary.truncatedPayloads++;
        const frame = udpFrame(from(e.dir === '>'), data);
        push(e.ts, frame, frame.length + (full - data.length), first ? hint : undefined);
        first = false;
      }
      continue;
    }
    summary.tcpConversations++;
    const isn = { client: hash(c.key), server: hash(c.key + '<') };
    const nxt = { client: isn.client + 1, server: isn.server + 1 };
    const unacked = { client: 0, server: 0 };
    const seg = (client: boolean, flags: number, data: Buffer, tsMs: number | undefined, full = data.length, comment?: string): void => {
      const me = client ? 'client' : 'server';
      const other = client ? 'server' : 'client';
      const frame = tcpFrame(from(client), nxt[me] >>> 0, nxt[other] >>> 0, flags, data);
      push(tsMs, frame, frame.length + (full - data.length), comment);
      nxt[me] += full + (flags & TCP.FIN ? 1 : 0);
      unacked[me] += full;
      unacked[other] = 0;
    };
    const empty = Buffer.alloc(0);
    for (const [client, seq, ack, flags, opt] of [
      [true, isn.client, 0, TCP.SYN, mss],
      [false, isn.server, nxt.client, TCP.SYN | TCP.ACK, mss],
      [true, nxt.client, nxt.server, TCP.ACK, undefined],
    ] as const) {
      const frame = tcpFrame(from(client), seq, ack, flags, empty, opt);
      push(c.first, frame, frame.length, flags === TCP.SYN ? hint : undefined);
    }
    for (const e of payload) {
      const client = e.dir === '>';
      const data = Buffer.from(e.data!.buffer, e.data!.byteOffset, e.data!.byteLength);
      const full = Math.max(e.bytes ?? data.length, data.length);
      if (e.dataTruncated || full > data.length) summary.truncatedPayloads++;
      // Cut at the MSS; bytes the trace file cut off count in the sequence numbers of the last segment.
      for (let off = 0; off < Math.max(data.length, 1); off += mss) {
        const part = data.subarray(off, off + mss);
        const last = off + mss >= data.length;
        seg(client, TCP.ACK | (last ? TCP.PSH : 0), part, e.ts, last ? part.length + (full - data.length) : part.length);
        // The receiver acknowledges before a window's worth is in flight (Wireshark would flag "window full").
        if (unacked[client ? 'client' : 'server'] >= 32_768) seg(!client, TCP.ACK, Buffer.alloc(0), e.ts);
      }
    }
    const closeAt = Math.max(c.close.client ?? 0, c.close.server ?? 0) || undefined;
    seg(true, TCP.FIN | TCP.ACK, Buffer.alloc(0), closeAt);
    seg(false, TCP.FIN | TCP.ACK, Buffer.alloc(0), closeAt);
    seg(true, TCP.ACK, Buffer.alloc(0), closeAt);
  }
  out.sort((a, b) => a.tsUs - b.tsUs || a.order - b.order);
  summary.packets = out.length;
  const comment = [
    'Synthesized by wirelab from its trace events, not captured: the Ethernet / IPv4 / TCP / UDP headers are made up',
    '(real addresses and ports; sequence numbers, handshake and FIN consistent per conversation), the payload bytes are',
    'the ones the tracer saw, secrets masked with *.',
    tlsKeys.length > 0 ? `TLS: the plaintext the tracer saw inside TLS is exported, not the TLS records, for ${tlsKeys.length} conversation(s): ${tlsKeys.slice(0, 20).join(', ')}${tlsKeys.length > 20 ? ' …' : ''}.` : '',
    summary.truncatedPayloads > 0 ? `${summary.truncatedPayloads} payload(s) were cut in the trace file (JSON lines cap): those packets are shorter than their original length.` : '',
    summary.skipped > 0 ? `${summary.skipped} conversation(s) over IPv6 left out.` : '',
    'Ports are the ones used, not the well-known ones: each conversation\'s first packet has a comment with tshark\'s -d option.',
    options.comment ?? '',
  ]
    .filter(Boolean)
    .join(' ');
  const file = Buffer.concat([sectionHeader(comment, 'wirelab'), interfaceDescription('wirelab-synthesized'), ...out.map((o) => o.block)]);
  return { file, summary };
}

/** Writes the events as a pcapng file. */
export async function writePcapng(path: string, events: Ev[], options: PcapngOptions = {}): Promise<PcapngSummary> {
  const { file, summary } = toPcapng(events, options);
  try {
    await writeFile(path, file);
  } catch (err) {
    throw new WirelabError(ErrorCodes.TRACE_FILE, `cannot write ${path}: ${(err as Error).message}`, { cause: err });
  }
  return summary;
}

export interface PcapngSinkOptions extends PcapngOptions {
  /** Payload bytes kept in memory; past it payload events are dropped and counted (the file says so). Default 256 MiB. */
  maxPayloadBytes?: number;
  /** Called with what was written when the sink closes. */
  onWritten?: (summary: PcapngSummary, path: string) => void;
}

/**
 * A sink that keeps what a capture needs (connect / accept events, payloads, closes) and writes the pcapng file when
 * the tracer closes (`--pcap`: at the end of a lab, at `wirelab up`'s stop).
 */
export class PcapngSink implements TraceSink {
  readonly wantsWire = true;
  readonly #path: string;
  readonly #o: PcapngSinkOptions;
  readonly #events: Ev[] = [];
  #bytes = 0;
  dropped = 0;

  constructor(path: string, options: PcapngSinkOptions = {}) {
    this.#path = path;
    this.#o = options;
  }

  write(e: TraceEvent): void {
    if (e.data !== undefined) {
      if (!isPayload(e)) return;
      if (this.#bytes + e.data.byteLength > (this.#o.maxPayloadBytes ?? 256 * 1024 * 1024)) {
        this.dropped++;
        return;
      }
      this.#bytes += e.data.byteLength;
      // The payload may be a buffer its owner reuses: keep a copy.
      this.#events.push({ ...e, data: Buffer.from(e.data) });
      return;
    }
    if (e.local !== undefined || isClose(e) || e.proto === 'tls') this.#events.push(e);
  }

  async close(): Promise<void> {
    const extra = this.dropped > 0 ? `${this.dropped} payload event(s) past maxPayloadBytes were not kept.` : '';
    const summary = await writePcapng(this.#path, this.#events, { ...this.#o, comment: [this.#o.comment, extra].filter(Boolean).join(' ') });
    this.#o.onWritten?.(summary, this.#path);
  }
}
