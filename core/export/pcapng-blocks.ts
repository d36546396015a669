/**
 * pcapng blocks (draft-ietf-opsawg-pcapng): Section Header, Interface Description (LINKTYPE_ETHERNET, µs timestamps)
 * and Enhanced Packet blocks, little-endian; and the Ethernet / IPv4 / TCP / UDP headers of a synthesized packet,
 * with the IPv4 header checksum and the TCP / UDP checksums over the pseudo-header.
 */

const pad4 = (n: number): number => (n + 3) & ~3;

/** One option (code, value padded to 4 bytes). */
function option(code: number, value: Buffer): Buffer {
  const b = Buffer.alloc(4 + pad4(value.length));
  b.writeUInt16LE(code, 0);
  b.writeUInt16LE(value.length, 2);
  value.copy(b, 4);
  return b;
}

/** Options, each `[code, text]`, then opt_endofopt; empty when there are none. */
function options(list: Array<[number, string]>): Buffer {
  if (list.length === 0) return Buffer.alloc(0);
  return Buffer.concat([...list.map(([code, text]) => option(code, Buffer.from(text, 'utf8'))), Buffer.alloc(4)]);
}

/** A block: type, total length, body, total length again. */
function block(type: number, body: Buffer): Buffer {
  const len = 12 + body.length;
  const b = Buffer.alloc(len);
  b.writeUInt32LE(type, 0);
  b.writeUInt32LE(len, 4);
  body.copy(b, 8);
  b.writeUInt32LE(len, len - 4);
  return b;
}

/** Section Header Block with opt_comment (1) and shb_userappl (4). */
export function sectionHeader(comment: string, application: string): Buffer {
  const head = Buffer.alloc(16);
  head.writeUInt32LE(0x1a2b3c4d, 0);
  head.writeUInt16LE(1, 4);
  head.writeUInt16LE(0, 6);
  head.writeInt32LE(-1, 8); // section length unknown (64-bit -1)
  head.writeInt32LE(-1, 12);
  return block(0x0a0d0d0a, Buffer.concat([head, options([[1, comment], [4, application]])]));
}

/** Interface Description Block: LINKTYPE_ETHERNET (1) unless told, snaplen 262144, if_name (2), default µs resolution. */
export function interfaceDescription(name: string, linktype = 1, snaplen = 262_144): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt16LE(linktype, 0);
  head.writeUInt32LE(snaplen, 4);
  return block(0x00000001, Buffer.concat([head, options([[2, name]])]));
}

/** Enhanced Packet Block on interface 0: timestamp in µs since the epoch, captured bytes, original length. */
export function enhancedPacket(tsUs: number, frame: Buffer, originalLength: number, comment?: string): Buffer {
  const head = Buffer.alloc(20);
  head.writeUInt32LE(0, 0);
  head.writeUInt32LE(Math.floor(tsUs / 2 ** 32), 4);
  head.writeUInt32LE(tsUs % 2 ** 32 >>> 0, 8);
  head.writeUInt32LE(frame.length, 12);
  head.writeUInt32LE(originalLength, 16);
  const data = Buffer.alloc(pad4(frame.length));
  frame.copy(data);
  return block(0x00000006, Buffer.concat([head, data, options(comment ? [[1, comment]] : [])]));
}

/** The Internet checksum (RFC 1071) of the buffers, one's complement of the one's complement sum. */
export function internetChecksum(...parts: Buffer[]): number {
  let sum = 0;
  let odd: number | undefined;
  for (const p of parts) {
    for (let i = 0; i < p.length; i++) {
      if (odd === undefined) odd = p[i]!;
      else {
        sum += (odd << 8) | p[i]!;
        odd = undefined;
      }
    }
  }
  if (odd !== undefined) sum += odd << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export const TCP = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10 } as const;

/** An IPv4 address `a.b.c.d` as 4 bytes. */
export function ipv4(address: string): Buffer {
  return Buffer.from(address.split('.').map(Number));
}

export interface Addressing {
  src: Buffer;
  dst: Buffer;
  srcPort: number;
  dstPort: number;
  /** IPv4 identification field. */
  id: number;
}

/** Ethernet (zero MACs, as Linux's lo has) + IPv4 (DF, TTL 64) around a transport segment. */
function frame(a: Addressing, protocol: number, segment: Buffer): Buffer {
  const eth = Buffer.alloc(14);
  eth.writeUInt16BE(0x0800, 12);
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + segment.length, 2);
  ip.writeUInt16BE(a.id & 0xffff, 4);
  ip.writeUInt16BE(0x4000, 6);
  ip[8] = 64;
  ip[9] = protocol;
  a.src.copy(ip, 12);
  a.dst.copy(ip, 16);
  ip.writeUInt16BE(internetChecksum(ip), 10);
  return Buffer.concat([eth, ip, segment]);
}

function pseudoHeader(a: Addressing, protocol: number, length: number): Buffer {
  const p = Buffer.alloc(12);
  a.src.copy(p, 0);
  a.dst.copy(p, 4);
  p[9] = protocol;
  p.writeUInt16BE(length, 10);
  return p;
}

/** A TCP segment in its frame. `mss` adds the MSS option (SYN and SYN-ACK). Window 65535, no scaling. */
export function tcpFrame(a: Addressing, seq: number, ack: number, flags: number, payload: Buffer, mss?: number): Buffer {
  const hlen = mss === undefined ? 20 : 24;
  const h = Buffer.alloc(hlen);
  h.writeUInt16BE(a.srcPort, 0);
  h.writeUInt16BE(a.dstPort, 2);
  h.writeUInt32BE(seq >>> 0, 4);
  h.writeUInt32BE(flags & TCP.ACK ? ack >>> 0 : 0, 8);
  h.writeUInt16BE(((hlen / 4) << 12) | flags, 12);
  h.writeUInt16BE(65_535, 14);
  if (mss !== undefined) {
    h[20] = 2;
    h[21] = 4;
    h.writeUInt16BE(mss, 22);
  }
  h.writeUInt16BE(internetChecksum(pseudoHeader(a, 6, hlen + payload.length), h, payload), 16);
  return frame(a, 6, Buffer.concat([h, payload]));
}

/** A UDP datagram in its frame, with its checksum (0 sent as 0xffff, RFC 768). */
export function udpFrame(a: Addressing, payload: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16BE(a.srcPort, 0);
  h.writeUInt16BE(a.dstPort, 2);
  h.writeUInt16BE(8 + payload.length, 4);
  const sum = internetChecksum(pseudoHeader(a, 17, 8 + payload.length), h, payload);
  h.writeUInt16BE(sum === 0 ? 0xffff : sum, 6);
  return frame(a, 17, Buffer.concat([h, payload]));
}
