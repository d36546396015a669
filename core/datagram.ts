import { ErrorCodes, WirelabError } from './errors.ts';

/** The largest UDP payload over IPv4: 65,535 − 20 (IP header) − 8 (UDP header). */
export const MAX_UDP_PAYLOAD = 65_507;

/**
 * wirelab's 16-byte datagram header, so an echo shows order, loss and latency:
 * "WL" (2 bytes), version 1 (1), flags (1), sequence number (u32 BE), send time (f64 BE, ms since the epoch).
 */
export const HEADER_BYTES = 16;
const MAGIC = 0x574c;

export interface DatagramHeader {
  seq: number;
  sentAt: number;
  flags: number;
}

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes on one host. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

export function checkDatagramSize(total: number, what: string): void {
  if (total > MAX_UDP_PAYLOAD) {
    throw new WirelabError(
      ErrorCodes.DATAGRAM_TOO_LARGE,
      `${what} is ${total} bytes; a UDP datagram over IPv4 carries at most ${MAX_UDP_PAYLOAD} bytes (65,535 − 20 IP − 8 UDP)`,
      { status: total },
    );
  }
}

export function encodeDatagram(seq: number, payload: Uint8Array, sentAt = nowMs(), flags = 0): Buffer {
  checkDatagramSize(HEADER_BYTES + payload.byteLength, `header (${HEADER_BYTES}) + payload (${payload.byteLength})`);
  const buf = Buffer.allocUnsafe(HEADER_BYTES + payload.byteLength);
  buf.writeUInt16BE(MAGIC, 0);
  buf.writeUInt8(1, 2);
  buf.writeUInt8(flags, 3);
  buf.writeUInt32BE(seq >>> 0, 4);
  buf.writeDoubleBE(sentAt, 8);
  buf.set(payload, HEADER_BYTES);
  return buf;
}

/** The header of a wirelab datagram, or null for anything else (any bytes at all are accepted). */
export function decodeHeader(buf: Buffer): DatagramHeader | null {
  if (buf.length < HEADER_BYTES || buf.readUInt16BE(0) !== MAGIC || buf.readUInt8(2) !== 1) return null;
  return { flags: buf.readUInt8(3), seq: buf.readUInt32BE(4), sentAt: buf.readDoubleBE(8) };
}
