/**
 * One log record on disk (and the size the in-memory log counts), written down once here and in
 * docs/architecture.md ("Pub/sub: the durable log"). All integers big-endian.
 *
 * ```
 * frame  = length:u32  crc:u32  body            length = bytes of body; crc = CRC-32 (zlib's, IEEE) of body
 * body   = magic:u8 (0x57 'W', the format version)  flags:u8 (1 key, 2 msgId, 4 expiresAt)
 *          offset:u64  timestamp:u64  expiresAt:u64 (0 when flag 4 is clear)
 *          keyLen:u16 key  msgIdLen:u16 msgId  headerCount:u16 { nameLen:u16 name valueLen:u32 value }*
 *          payloadLen:u32 payload                 (strings UTF-8; absent key / msgId have length 0)
 * ```
 *
 * A frame is served only when its length fits the file, its CRC matches and its offset is the one expected; a torn
 * or corrupt tail is cut when the log is opened, a bad CRC in the middle of a sealed segment makes `read` reject
 * with WL_ERR_PUBSUB_CORRUPT.
 */
import { crc32 } from '../../core/crc32.ts';
import { ErrorCodes, PubsubError } from '../../core/errors.ts';
import type { AppendInput, Headers, LogRecord } from './types.ts';

export const FRAME_HEADER_BYTES = 8;
const MAGIC = 0x57;
const FIXED_BODY_BYTES = 1 + 1 + 8 + 8 + 8 + 2 + 2 + 2 + 4;
const F_KEY = 1;
const F_MSGID = 2;
const F_EXPIRES = 4;

/** The limits one record is checked against before it gets an offset. */
export interface RecordLimits {
  maxRecordBytes: number;
  maxHeaders: number;
  maxHeaderBytes: number;
  maxKeyBytes: number;
}

function limit(name: string, message: string): PubsubError {
  return new PubsubError(ErrorCodes.PUBSUB_LIMIT, message, { limit: name });
}

function invalid(message: string): PubsubError {
  return new PubsubError(ErrorCodes.PUBSUB_INVALID, message);
}

/**
 * Checks an append's fields and limits; returns the frame size (header included) the record will take. Throws
 * WL_ERR_PUBSUB_INVALID (a field of the wrong type) or WL_ERR_PUBSUB_LIMIT with `limit` naming the limit.
 */
export function checkAppend(input: AppendInput, limits: RecordLimits): number {
  if (!Buffer.isBuffer(input.payload)) throw invalid('payload must be a Buffer');
  for (const f of ['timestamp', 'expiresAt'] as const) {
    const v = input[f];
    if (v !== undefined && (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)) {
      throw invalid(`${f} must be a non-negative integer (ms since the epoch)`);
    }
  }
  let size = FIXED_BODY_BYTES + input.payload.length;
  for (const f of ['key', 'msgId'] as const) {
    const v = input[f];
    if (v === undefined) continue;
    if (typeof v !== 'string') throw invalid(`${f} must be a string`);
    const n = Buffer.byteLength(v);
    if (n > limits.maxKeyBytes) throw limit('maxKeyBytes', `${f} is ${n} bytes, over maxKeyBytes ${limits.maxKeyBytes}`);
    size += n;
  }
  if (input.headers !== undefined) {
    if (typeof input.headers !== 'object' || input.headers === null) throw invalid('headers must be an object');
    const entries = Object.entries(input.headers);
    if (entries.length > limits.maxHeaders) {
      throw limit('maxHeaders', `${entries.length} headers, over maxHeaders ${limits.maxHeaders}`);
    }
    let hbytes = 0;
    for (const [k, v] of entries) {
      if (typeof v !== 'string') throw invalid(`header ${JSON.stringify(k.slice(0, 64))} must be a string`);
      hbytes += 6 + Buffer.byteLength(k) + Buffer.byteLength(v);
    }
    if (hbytes > limits.maxHeaderBytes) {
      throw limit('maxHeaderBytes', `headers take ${hbytes} bytes, over maxHeaderBytes ${limits.maxHeaderBytes}`);
    }
    size += hbytes;
  }
  if (size > limits.maxRecordBytes) {
    throw limit('maxRecordBytes', `record of ${size} bytes, over maxRecordBytes ${limits.maxRecordBytes}`);
  }
  return FRAME_HEADER_BYTES + size;
}

/** The stored record for an input that passed `checkAppend`. */
export function toRecord(input: AppendInput, offset: number, now: number): LogRecord {
  const rec: LogRecord = {
    offset,
    timestamp: input.timestamp ?? now,
    payload: input.payload,
    headers: input.headers ? { ...input.headers } : {},
  };
  if (input.key !== undefined) rec.key = input.key;
  if (input.msgId !== undefined) rec.msgId = input.msgId;
  if (input.expiresAt !== undefined) rec.expiresAt = input.expiresAt;
  return rec;
}

/** The frame (header + body) of a record; `size` is what checkAppend returned. */
export function encodeRecord(rec: LogRecord, size: number): Buffer {
  const buf = Buffer.allocUnsafe(size);
  let p = FRAME_HEADER_BYTES;
  buf[p++] = MAGIC;
  buf[p++] = (rec.key !== undefined ? F_KEY : 0) | (rec.msgId !== undefined ? F_MSGID : 0) | (rec.expiresAt !== undefined ? F_EXPIRES : 0);
  writeU64(buf, rec.offset, p);
  writeU64(buf, rec.timestamp, p + 8);
  writeU64(buf, rec.expiresAt ?? 0, p + 16);
  p += 24;
  for (const s of [rec.key, rec.msgId]) {
    const n = s === undefined ? 0 : buf.write(s, p + 2);
    buf.writeUInt16BE(n, p);
    p += 2 + n;
  }
  const countAt = p;
  let count = 0;
  p += 2;
  const headers = rec.headers;
  for (const k in headers) {
    if (!Object.hasOwn(headers, k)) continue;
    const v = headers[k]!;
    count++;
    const kn = buf.write(k, p + 2);
    buf.writeUInt16BE(kn, p);
    p += 2 + kn;
    const vn = buf.write(v, p + 4);
    buf.writeUInt32BE(vn, p);
    p += 4 + vn;
  }
  buf.writeUInt16BE(count, countAt);
  buf.writeUInt32BE(rec.payload.length, p);
  rec.payload.copy(buf, p + 4);
  p += 4 + rec.payload.length;
  if (p !== size) throw new Error(`record encoder size mismatch: ${p} != ${size}`);
  buf.writeUInt32BE(size - FRAME_HEADER_BYTES, 0);
  buf.writeUInt32BE(crc32(buf.subarray(FRAME_HEADER_BYTES)), 4);
  return buf;
}

/** A safe integer (< 2^53) as u64 big-endian, without a BigInt. */
function writeU64(buf: Buffer, v: number, p: number): void {
  const hi = Math.floor(v / 0x1_0000_0000);
  buf.writeUInt32BE(hi, p);
  buf.writeUInt32BE(v - hi * 0x1_0000_0000, p + 4);
}

/** What `scanFrame` found at a position. */
export type FrameScan =
  | { ok: true; record: LogRecord; size: number }
  /** Not enough bytes for the frame the length announces (a torn tail). */
  | { ok: false; reason: 'short' | 'crc' | 'malformed' };

/** Reads the frame at `pos` of `buf` (which may hold more than one frame), checking its CRC. */
export function scanFrame(buf: Buffer, pos: number): FrameScan {
  if (buf.length - pos < FRAME_HEADER_BYTES) return { ok: false, reason: 'short' };
  const len = buf.readUInt32BE(pos);
  if (len < FIXED_BODY_BYTES) return { ok: false, reason: 'malformed' };
  if (buf.length - pos - FRAME_HEADER_BYTES < len) return { ok: false, reason: 'short' };
  const body = buf.subarray(pos + FRAME_HEADER_BYTES, pos + FRAME_HEADER_BYTES + len);
  if (crc32(body) !== buf.readUInt32BE(pos + 4)) return { ok: false, reason: 'crc' };
  const record = decodeBody(body);
  if (!record) return { ok: false, reason: 'malformed' };
  return { ok: true, record, size: FRAME_HEADER_BYTES + len };
}

function decodeBody(b: Buffer): LogRecord | null {
  try {
    if (b[0] !== MAGIC) return null;
    const flags = b[1]!;
    let p = 2;
    const offset = Number(b.readBigUInt64BE(p));
    const timestamp = Number(b.readBigUInt64BE(p + 8));
    const expiresAt = Number(b.readBigUInt64BE(p + 16));
    p += 24;
    const strs: string[] = [];
    for (let i = 0; i < 2; i++) {
      const n = b.readUInt16BE(p);
      strs.push(b.toString('utf8', p + 2, p + 2 + n));
      p += 2 + n;
    }
    const count = b.readUInt16BE(p);
    p += 2;
    const headers: Headers = {};
    for (let i = 0; i < count; i++) {
      const kn = b.readUInt16BE(p);
      const k = b.toString('utf8', p + 2, p + 2 + kn);
      p += 2 + kn;
      const vn = b.readUInt32BE(p);
      // defineProperty: a header named __proto__ stays a header (an assignment would set the prototype).
      Object.defineProperty(headers, k, { value: b.toString('utf8', p + 4, p + 4 + vn), enumerable: true, writable: true, configurable: true });
      p += 4 + vn;
    }
    const pn = b.readUInt32BE(p);
    if (p + 4 + pn !== b.length) return null;
    const payload = Buffer.from(b.subarray(p + 4, p + 4 + pn));
    const rec: LogRecord = { offset, timestamp, payload, headers };
    if (flags & F_KEY) rec.key = strs[0]!;
    if (flags & F_MSGID) rec.msgId = strs[1]!;
    if (flags & F_EXPIRES) rec.expiresAt = expiresAt;
    return rec;
  } catch {
    return null;
  }
}
