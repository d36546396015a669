/**
 * Compact binary frames (protocol version 2): the three hot messages with fixed fields instead of a JSON header.
 * README "The native protocol" writes them down; all integers big-endian, every string `u16 byte length | UTF-8`:
 *
 * ```
 * pub     0x0A  id:u32  acks:u8 (0, 1, 2 = "all", 255 = the broker's default)  flags:u8 (1 key, 2 msgId, 4 ttlMs,
 *               8 partition, 16 headers)  topic  [key]  [msgId]  [ttlMs:u32]  [partition:u16]
 *               [headerCount:u16 { name value }*]  payload (the rest of the frame)
 * msg     0x88  flags:u8 (1 deliveryId, 2 key, 4 msgId)  sub  attempt:u32  [deliveryId]
 *               topic  partition:u32  offset:u64  ts:u64  [key]  [msgId]  headerCount:u16 { name value }*  payload
 * puback  0x89  id:u32  flags:u8 (1 duplicate)  partition:u32  offset:u64  ts:u64  topic
 * ```
 *
 * A client sends `pub` in either form; a server sends `msg` and `puback` compact only on a connection whose hello
 * said version 2 (a version 1 client keeps getting JSON headers). A `msg` is written as a per-subscriber prefix (flags,
 * sub, attempt, deliveryId) and a body shared by every subscriber of the same record, encoded once (`MsgEncoder`).
 * Decoding checks the same bounds as messages.ts; a truncated frame or a length running past it is a problem, never
 * a throw.
 */
import type { Acks, Headers, MsgMessage, PubackMessage, PubMessage } from './messages.ts';

export const COMPACT_CODES = Object.freeze({ pub: 0x0a, msg: 0x88, puback: 0x89 });
/** The protocol version whose connections get compact `msg` / `puback` frames. */
export const COMPACT_VERSION = 2;

const ACKS_CODE = { 0: 0, 1: 1, all: 2 } as const;
const ACKS_OF: readonly Acks[] = [0, 1, 'all'];
const ACKS_DEFAULT = 255;
const P_KEY = 1;
const P_MSGID = 2;
const P_TTL = 4;
const P_PARTITION = 8;
const P_HEADERS = 16;
const M_DELIVERY = 1;
const M_KEY = 2;
const M_MSGID = 4;
const PB_DUPLICATE = 1;
const TWO32 = 0x1_0000_0000;
const DAY = 86_400_000;

// ---- writing ----

/** Bytes of `u16 length | UTF-8` for s (ASCII fast path). */
function strBytes(s: string): number {
  return 2 + Buffer.byteLength(s);
}

function putStr(out: Buffer, p: number, s: string): number {
  const n = out.write(s, p + 2, 'utf8');
  out.writeUInt16BE(n, p);
  return p + 2 + n;
}

function putU64(out: Buffer, p: number, v: number): number {
  out.writeUInt32BE(Math.floor(v / TWO32), p);
  out.writeUInt32BE(v % TWO32, p + 4);
  return p + 8;
}

function headersBytes(h: Headers | undefined): number {
  let n = 2;
  if (h) for (const k in h) n += strBytes(k) + strBytes(h[k]!);
  return n;
}

function putHeaders(out: Buffer, p: number, h: Headers | undefined): number {
  let count = 0;
  let q = p + 2;
  if (h) {
    for (const k in h) {
      q = putStr(out, q, k);
      q = putStr(out, q, h[k]!);
      count++;
    }
  }
  out.writeUInt16BE(count, p);
  return q;
}

/** `prefix` 4: the TCP frame (u32 length first); 0: the body alone (a WebSocket binary frame). */
function frame(code: number, bodyBytes: number, prefix: 0 | 4): { out: Buffer; p: number } {
  const out = Buffer.allocUnsafe(prefix + 1 + bodyBytes);
  if (prefix) out.writeUInt32BE(1 + bodyBytes, 0);
  out[prefix] = code;
  return { out, p: prefix + 1 };
}

export function encodeCompactPub(m: PubMessage, prefix: 0 | 4 = 4): Buffer {
  let flags = 0;
  let n = 4 + 1 + 1 + strBytes(m.topic) + m.payload.length;
  if (m.key !== undefined) {
    flags |= P_KEY;
    n += strBytes(m.key);
  }
  if (m.msgId !== undefined) {
    flags |= P_MSGID;
    n += strBytes(m.msgId);
  }
  if (m.ttlMs !== undefined) {
    flags |= P_TTL;
    n += 4;
  }
  if (m.partition !== undefined) {
    flags |= P_PARTITION;
    n += 2;
  }
  if (m.headers !== undefined) {
    flags |= P_HEADERS;
    n += headersBytes(m.headers);
  }
  const { out, p: start } = frame(COMPACT_CODES.pub, n, prefix);
  let p = start;
  out.writeUInt32BE(m.id, p);
  out[p + 4] = m.acks === undefined ? ACKS_DEFAULT : ACKS_CODE[m.acks];
  out[p + 5] = flags;
  p = putStr(out, p + 6, m.topic);
  if (m.key !== undefined) p = putStr(out, p, m.key);
  if (m.msgId !== undefined) p = putStr(out, p, m.msgId);
  if (m.ttlMs !== undefined) {
    out.writeUInt32BE(m.ttlMs, p);
    p += 4;
  }
  if (m.partition !== undefined) {
    out.writeUInt16BE(m.partition, p);
    p += 2;
  }
  if (m.headers !== undefined) p = putHeaders(out, p, m.headers);
  m.payload.copy(out, p);
  return out;
}

export function encodeCompactPuback(m: PubackMessage, prefix: 0 | 4 = 4): Buffer {
  const { out, p } = frame(COMPACT_CODES.puback, 4 + 1 + 4 + 8 + 8 + strBytes(m.topic), prefix);
  out.writeUInt32BE(m.id, p);
  out[p + 4] = m.duplicate ? PB_DUPLICATE : 0;
  out.writeUInt32BE(m.partition, p + 5);
  putU64(out, p + 9, m.offset);
  putU64(out, p + 17, m.ts);
  putStr(out, p + 25, m.topic);
  return out;
}

/** A msg's body after the per-subscriber prefix: the same bytes for every subscriber of one record. */
interface SharedBody {
  topic: string;
  partition: number;
  offset: number;
  ts: number;
  key: string | undefined;
  msgId: string | undefined;
  headers: Headers;
  payload: Buffer;
  flags: number;
  bytes: Buffer;
}

function sameHeaders(a: Headers, b: Headers): boolean {
  if (a === b) return true;
  let n = 0;
  for (const k in a) {
    if (a[k] !== b[k]) return false;
    n++;
  }
  for (const _ in b) n--;
  return n === 0;
}

function encodeShared(m: MsgMessage): SharedBody {
  let flags = 0;
  let n = strBytes(m.topic) + 4 + 8 + 8 + headersBytes(m.headers) + m.payload.length;
  if (m.key !== undefined) {
    flags |= M_KEY;
    n += strBytes(m.key);
  }
  if (m.msgId !== undefined) {
    flags |= M_MSGID;
    n += strBytes(m.msgId);
  }
  const bytes = Buffer.allocUnsafe(n);
  let p = putStr(bytes, 0, m.topic);
  bytes.writeUInt32BE(m.partition, p);
  p = putU64(bytes, p + 4, m.offset);
  p = putU64(bytes, p, m.ts);
  if (m.key !== undefined) p = putStr(bytes, p, m.key);
  if (m.msgId !== undefined) p = putStr(bytes, p, m.msgId);
  p = putHeaders(bytes, p, m.headers);
  m.payload.copy(bytes, p);
  return { topic: m.topic, partition: m.partition, offset: m.offset, ts: m.ts, key: m.key, msgId: m.msgId, headers: m.headers, payload: m.payload, flags, bytes };
}

export interface MsgEncoderOptions {
  /** Records whose shared body is kept for the next subscriber. Default 512. */
  maxEntries?: number;
  /** Bodies larger than this are not kept (copying them costs what encoding does). Default 64 KiB. */
  maxBodyBytes?: number;
}

/**
 * Encodes `msg` frames, the body of each record once for all its subscribers: a bounded cache by topic, partition
 * and offset, checked field by field on a hit (a topic deleted and made again reuses offsets), oldest out first.
 */
export class MsgEncoder {
  readonly #cache = new Map<string, SharedBody>();
  readonly #max: number;
  readonly #maxBody: number;
  hits = 0;
  misses = 0;

  constructor(o: MsgEncoderOptions = {}) {
    this.#max = o.maxEntries ?? 512;
    this.#maxBody = o.maxBodyBytes ?? 64 * 1024;
  }

  #shared(m: MsgMessage): SharedBody {
    const id = `${m.partition}:${m.offset}:${m.topic}`;
    const c = this.#cache.get(id);
    if (
      c !== undefined &&
      c.ts === m.ts &&
      c.key === m.key &&
      c.msgId === m.msgId &&
      (c.payload === m.payload || c.payload.equals(m.payload)) &&
      sameHeaders(c.headers, m.headers)
    ) {
      this.hits++;
      return c;
    }
    this.misses++;
    const s = encodeShared(m);
    if (s.bytes.length <= this.#maxBody) {
      if (c !== undefined) this.#cache.delete(id);
      else if (this.#cache.size >= this.#max) this.#cache.delete(this.#cache.keys().next().value!);
      this.#cache.set(id, s);
    }
    return s;
  }

  /** The whole frame (`prefix` 4: with the TCP length; 0: a WebSocket binary frame's body). */
  encode(m: MsgMessage, prefix: 0 | 4 = 4): Buffer {
    const s = this.#shared(m);
    let n = 1 + strBytes(m.sub) + 4 + s.bytes.length;
    if (m.deliveryId !== undefined) n += strBytes(m.deliveryId);
    const { out, p: start } = frame(COMPACT_CODES.msg, n, prefix);
    out[start] = s.flags | (m.deliveryId === undefined ? 0 : M_DELIVERY);
    let p = putStr(out, start + 1, m.sub);
    out.writeUInt32BE(m.attempt, p);
    p += 4;
    if (m.deliveryId !== undefined) p = putStr(out, p, m.deliveryId);
    s.bytes.copy(out, p);
    return out;
  }

  clear(): void {
    this.#cache.clear();
  }
}

// ---- reading ----

class Truncated extends Error {}
class Bad extends Error {}

/** A cursor over a frame body (after the type code). */
class Reader {
  p: number;
  constructor(
    readonly b: Buffer,
    start: number,
  ) {
    this.p = start;
  }
  need(n: number): void {
    if (this.p + n > this.b.length) throw new Truncated();
  }
  u8(): number {
    this.need(1);
    return this.b[this.p++]!;
  }
  u16(): number {
    this.need(2);
    const v = this.b.readUInt16BE(this.p);
    this.p += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.b.readUInt32BE(this.p);
    this.p += 4;
    return v;
  }
  u64(name: string): number {
    const hi = this.u32();
    const lo = this.u32();
    if (hi >= 0x20_0000) throw new Bad(`"${name}" is past 2^53`);
    return hi * TWO32 + lo;
  }
  /** A string of 1-max characters (the bounds of messages.ts). */
  str(name: string, max: number): string {
    const n = this.u16();
    this.need(n);
    const s = this.b.toString('utf8', this.p, this.p + n);
    this.p += n;
    if (s.length === 0 || s.length > max) throw new Bad(`"${name}" must be a string of 1-${max} characters`);
    return s;
  }
  headers(): Headers {
    const count = this.u16();
    if (count > 64) throw new Bad('"headers": at most 64');
    const out: Headers = {};
    for (let i = 0; i < count; i++) {
      const k = this.str('header name', 256);
      const n = this.u16();
      this.need(n);
      const v = this.b.toString('utf8', this.p, this.p + n);
      this.p += n;
      if (v.length > 8192) throw new Bad('"headers" values are up to 8192 characters');
      out[k] = v;
    }
    return out;
  }
  rest(): Buffer {
    const r = this.b.subarray(this.p);
    this.p = this.b.length;
    return r;
  }
  end(type: string): void {
    if (this.p !== this.b.length) throw new Bad(`${type} has ${this.b.length - this.p} bytes past its fields`);
  }
}

type Decoded<M> = { ok: true; message: M } | { ok: false; problem: string; id?: number };

function attempt<M>(type: string, r: Reader, fn: (r: Reader) => M, id?: () => number | undefined): Decoded<M> {
  try {
    return { ok: true, message: fn(r) };
  } catch (err) {
    const i = id?.();
    const withId = i === undefined ? {} : { id: i };
    if (err instanceof Truncated) return { ok: false, problem: `compact ${type}: the frame ends inside its fields (${r.b.length} bytes)`, ...withId };
    if (err instanceof Bad) return { ok: false, problem: `compact ${type}: ${err.message}`, ...withId };
    throw err;
  }
}

/** A compact `pub` body (from the type code on). */
export function decodeCompactPub(body: Buffer): Decoded<PubMessage> {
  const r = new Reader(body, 1);
  return attempt(
    'pub',
    r,
    (r) => {
      const id = r.u32();
      const acksCode = r.u8();
      if (acksCode !== ACKS_DEFAULT && acksCode > 2) throw new Bad('"acks" code must be 0, 1, 2 ("all") or 255 (default)');
      const flags = r.u8();
      if (flags & ~(P_KEY | P_MSGID | P_TTL | P_PARTITION | P_HEADERS)) throw new Bad(`unknown flags 0x${flags.toString(16)}`);
      const m: PubMessage = { type: 'pub', id, topic: r.str('topic', 255), payload: EMPTY };
      if (flags & P_KEY) m.key = r.str('key', 1024);
      if (flags & P_MSGID) m.msgId = r.str('msgId', 256);
      if (flags & P_TTL) {
        const ttl = r.u32();
        if (ttl < 1 || ttl > 365 * DAY) throw new Bad(`"ttlMs" must be an integer in [1, ${365 * DAY}]`);
        m.ttlMs = ttl;
      }
      if (flags & P_PARTITION) m.partition = r.u16();
      if (flags & P_HEADERS) m.headers = r.headers();
      if (acksCode !== ACKS_DEFAULT) m.acks = ACKS_OF[acksCode]!;
      m.payload = r.rest();
      return m;
    },
    () => (body.length >= 5 ? body.readUInt32BE(1) : undefined),
  );
}

const EMPTY = Buffer.alloc(0);

/** A compact `msg` body. */
export function decodeCompactMsg(body: Buffer): Decoded<MsgMessage> {
  return attempt('msg', new Reader(body, 1), (r) => {
    const flags = r.u8();
    if (flags & ~(M_DELIVERY | M_KEY | M_MSGID)) throw new Bad(`unknown flags 0x${flags.toString(16)}`);
    const sub = r.str('sub', 64);
    const att = r.u32();
    if (att < 1) throw new Bad('"attempt" must be >= 1');
    const deliveryId = flags & M_DELIVERY ? r.str('deliveryId', 256) : undefined;
    const topic = r.str('topic', 255);
    const partition = r.u32();
    const offset = r.u64('offset');
    const ts = r.u64('ts');
    const m: MsgMessage = { type: 'msg', sub, topic, partition, offset, ts, headers: {}, payload: EMPTY, attempt: att };
    if (deliveryId !== undefined) m.deliveryId = deliveryId;
    if (flags & M_KEY) m.key = r.str('key', 1024);
    if (flags & M_MSGID) m.msgId = r.str('msgId', 256);
    m.headers = r.headers();
    m.payload = r.rest();
    return m;
  });
}

/** A compact `puback` body. */
export function decodeCompactPuback(body: Buffer): Decoded<PubackMessage> {
  const r = new Reader(body, 1);
  return attempt('puback', r, (r) => {
    const id = r.u32();
    const flags = r.u8();
    if (flags & ~PB_DUPLICATE) throw new Bad(`unknown flags 0x${flags.toString(16)}`);
    const partition = r.u32();
    const offset = r.u64('offset');
    const ts = r.u64('ts');
    const topic = r.str('topic', 255);
    r.end('puback');
    return { type: 'puback', id, topic, partition, offset, ts, duplicate: (flags & PB_DUPLICATE) !== 0 };
  });
}
