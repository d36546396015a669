import { round } from '../stats.ts';

/** A packet from a capture, decoded down to the transport header. IPv4 only (wirelab binds 127.0.0.1). */
export interface Packet {
  /** Milliseconds since the first packet of the capture. */
  t: number;
  proto: 'tcp' | 'udp' | 'icmp';
  src: string;
  sport: number;
  dst: string;
  dport: number;
  /** IP header bytes (20 without options). */
  ipHeader: number;
  /** IP total length minus the IP header: the transport header and its data, as the IP header says. */
  ipPayload: number;
  /** TCP header (20 to 60 bytes: data offset × 4). UDP and ICMP: 8, fixed by RFC 768 / 792 (UDP has no length of its own for the header). */
  l4Header: number;
  /** UDP only: the UDP length field (header + data), to check against ipPayload. */
  udpLength?: number;
  /** Application bytes carried. */
  payload: number;
  /** TCP flags by name: SYN, ACK, FIN, RST, PSH. Empty for UDP. */
  flags: string[];
  /** TCP options by name, in order (mss, sackOK, ts, nop, wscale...). Empty for UDP. */
  options: string[];
  /** TCP only: sequence and acknowledgement numbers, and the raw window field (unscaled; 0 is a zero window either way). */
  seq?: number;
  ack?: number;
  window?: number;
  /** ICMP type and code (3/3: port unreachable). */
  icmp?: { type: number; code: number };
}

const FLAG_NAMES: Array<[number, string]> = [
  [0x02, 'SYN'],
  [0x10, 'ACK'],
  [0x01, 'FIN'],
  [0x04, 'RST'],
  [0x08, 'PSH'],
];
const OPTION_NAMES: Record<number, string> = { 0: 'eol', 1: 'nop', 2: 'mss', 3: 'wscale', 4: 'sackOK', 5: 'sack', 8: 'ts' };

/** Where the IPv4 header starts for a link type, or -1 when the frame is not IPv4. */
function ipOffset(linktype: number, frame: Buffer): number {
  switch (linktype) {
    case 1: // Ethernet (lo on Linux: zero MAC addresses)
      return frame.length >= 14 && frame.readUInt16BE(12) === 0x0800 ? 14 : -1;
    case 113: // Linux cooked capture v1 (-i any)
      return frame.length >= 16 && frame.readUInt16BE(14) === 0x0800 ? 16 : -1;
    case 276: // Linux cooked capture v2
      return frame.length >= 20 && frame.readUInt16BE(0) === 0x0800 ? 20 : -1;
    case 101: // raw IP
      return 0;
    default:
      return -1;
  }
}

function tcpOptions(tcp: Buffer, headerLen: number): string[] {
  const names: string[] = [];
  for (let i = 20; i < headerLen; ) {
    const kind = tcp[i]!;
    names.push(OPTION_NAMES[kind] ?? `opt${kind}`);
    if (kind === 0) break;
    if (kind === 1) {
      i++;
      continue;
    }
    const len = tcp[i + 1] ?? 0;
    if (len < 2) break;
    i += len;
  }
  return names;
}

/** Decodes a classic pcap file (as tcpdump -w writes it). Frames that are not IPv4 TCP/UDP are skipped. */
export function parsePcap(file: Buffer): Packet[] {
  const { linktype, records } = pcapRecords(file);
  const packets: Packet[] = [];
  let first: number | undefined;
  for (const { tsUs, frame } of records) {
    const ts = tsUs / 1000;
    const ip = ipOffset(linktype, frame);
    if (ip < 0 || frame.length < ip + 20 || frame[ip]! >> 4 !== 4) continue;
    const ipHeader = (frame[ip]! & 0x0f) * 4;
    const total = frame.readUInt16BE(ip + 2);
    const protoNum = frame[ip + 9];
    const src = frame.subarray(ip + 12, ip + 16).join('.');
    const dst = frame.subarray(ip + 16, ip + 20).join('.');
    const l4 = frame.subarray(ip + ipHeader);
    first ??= ts;
    const t = round(ts - first);
    if (protoNum === 6 && l4.length >= 20) {
      const l4Header = (l4[12]! >> 4) * 4;
      const flagsByte = l4[13]!;
      packets.push({
        t,
        proto: 'tcp',
        src,
        sport: l4.readUInt16BE(0),
        dst,
        dport: l4.readUInt16BE(2),
        ipHeader,
        ipPayload: total - ipHeader,
        l4Header,
        payload: total - ipHeader - l4Header,
        flags: FLAG_NAMES.filter(([bit]) => flagsByte & bit).map(([, name]) => name),
        options: tcpOptions(l4, Math.min(l4Header, l4.length)),
        seq: l4.readUInt32BE(4),
        ack: l4.readUInt32BE(8),
        window: l4.readUInt16BE(14),
      });
    } else if (protoNum === 1 && l4.length >= 8) {
      // The ICMP error quotes the IP + UDP header of the datagram that caused it: report that datagram's ports.
      const inner = l4.subarray(8);
      const innerIhl = inner.length > 0 ? (inner[0]! & 0x0f) * 4 : 0;
      const quoted = inner.length >= innerIhl + 4;
      packets.push({
        t,
        proto: 'icmp',
        src,
        sport: quoted ? inner.readUInt16BE(innerIhl) : 0,
        dst,
        dport: quoted ? inner.readUInt16BE(innerIhl + 2) : 0,
        ipHeader,
        ipPayload: total - ipHeader,
        l4Header: 8,
        payload: total - ipHeader - 8,
        flags: [],
        options: [],
        icmp: { type: l4[0]!, code: l4[1]! },
      });
    } else if (protoNum === 17 && l4.length >= 8) {
      packets.push({
        t,
        proto: 'udp',
        src,
        sport: l4.readUInt16BE(0),
        dst,
        dport: l4.readUInt16BE(2),
        ipHeader,
        ipPayload: total - ipHeader,
        l4Header: 8,
        udpLength: l4.readUInt16BE(4),
        payload: l4.readUInt16BE(4) - 8,
        flags: [],
        options: [],
      });
    }
  }
  return packets;
}

/** One line per packet, as a person reads a capture. */
export function describePacket(p: Packet): string {
  if (p.icmp) return `ICMP ${p.src} → ${p.dst} type ${p.icmp.type} code ${p.icmp.code}${p.icmp.type === 3 && p.icmp.code === 3 ? ' (port unreachable)' : ''} about port ${p.dport}`;
  const flags = p.proto === 'tcp' ? ` [${p.flags.join(',')}]` : '';
  return `${p.proto.toUpperCase()} ${p.src}:${p.sport} → ${p.dst}:${p.dport}${flags} header ${p.l4Header} B, payload ${p.payload} B`;
}

/** One record of a classic pcap file, its frame as captured. */
export interface PcapRecord {
  /** Microseconds since the epoch. */
  tsUs: number;
  frame: Buffer;
  /** The frame's length on the wire (longer than `frame` when the snaplen cut it). */
  originalLength: number;
  /** IPv4 source and destination as `ip:port`, for TCP and UDP frames (undefined for anything else). */
  src?: string;
  dst?: string;
}

/** The link type and records of a classic pcap file (as tcpdump -w writes it), every frame kept. */
export function pcapRecords(file: Buffer): { linktype: number; snaplen: number; records: PcapRecord[] } {
  if (file.length < 24) return { linktype: 1, snaplen: 262_144, records: [] };
  const magic = file.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  const nano = magic === 0xa1b23c4d || magic === 0x4d3cb2a1;
  const u32 = (o: number): number => (le ? file.readUInt32LE(o) : file.readUInt32BE(o));
  const linktype = u32(20);
  const records: PcapRecord[] = [];
  for (let off = 24; off + 16 <= file.length; ) {
    const tsUs = u32(off) * 1e6 + (nano ? Math.floor(u32(off + 4) / 1000) : u32(off + 4));
    const incl = u32(off + 8);
    const frame = file.subarray(off + 16, off + 16 + incl);
    const rec: PcapRecord = { tsUs, frame, originalLength: u32(off + 12) };
    off += 16 + incl;
    const ip = ipOffset(linktype, frame);
    if (ip >= 0 && frame.length >= ip + 24 && frame[ip]! >> 4 === 4 && (frame[ip + 9] === 6 || frame[ip + 9] === 17)) {
      const l4 = ip + (frame[ip]! & 0x0f) * 4;
      if (frame.length >= l4 + 4) {
        rec.src = `${frame.subarray(ip + 12, ip + 16).join('.')}:${frame.readUInt16BE(l4)}`;
        rec.dst = `${frame.subarray(ip + 16, ip + 20).join('.')}:${frame.readUInt16BE(l4 + 2)}`;
      }
    }
    records.push(rec);
  }
  return { linktype, snaplen: u32(16), records };
}
