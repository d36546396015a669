import { checkDatagramSize } from '../core/datagram.ts';
import { nowMs } from '../core/time.ts';

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

/** The sequence number of a wirelab datagram, or undefined for anything else (for UdpRelayOptions.sequenceOf). */
export function datagramSeq(buf: Buffer): number | undefined {
  return decodeHeader(buf)?.seq;
}
