import { createHash } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { Dir, Tracer } from '../core/trace/index.ts';

/** RFC 6455's GUID: Sec-WebSocket-Accept = base64(SHA-1(Sec-WebSocket-Key + GUID)). */
export const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export function acceptFor(key: string): string {
  return createHash('sha1').update(key + WS_GUID).digest('base64');
}

export const OPCODES: Record<number, string> = { 0: 'continuation', 1: 'text', 2: 'binary', 8: 'close', 9: 'ping', 10: 'pong' };

/** Close codes worth naming in a trace (RFC 6455 7.4.1). */
export const CLOSE_CODES: Record<number, string> = {
  1000: 'normal',
  1001: 'going away',
  1002: 'protocol error',
  1003: 'unsupported data',
  1005: 'no status',
  1006: 'abnormal',
  1007: 'invalid payload',
  1008: 'policy violation',
  1009: 'message too big',
  1010: 'extension required',
  1011: 'internal error',
};

export interface FrameHeader {
  fin: boolean;
  /** RSV1: set on the first frame of a compressed message (permessage-deflate). */
  rsv1: boolean;
  opcode: number;
  masked: boolean;
  length: number;
  closeCode?: number;
  closeReason?: string;
}

/**
 * Reads frame headers out of a byte stream without taking it over: fed the same chunks the real parser gets, it
 * reports each frame's opcode, FIN, mask and length (and a close frame's code and reason). Payloads are skipped, not
 * kept, except a close frame's (at most 125 bytes).
 */
export class FrameObserver {
  #buf: Buffer = Buffer.alloc(0);
  #skip = 0;
  #broken = false;

  constructor(private readonly onFrame: (f: FrameHeader) => void) {}

  push(chunk: Buffer): void {
    if (this.#broken) return;
    let data = chunk;
    if (this.#skip > 0) {
      const n = Math.min(this.#skip, data.length);
      this.#skip -= n;
      data = data.subarray(n);
      if (data.length === 0) return;
    }
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, data]) : data;
    while (this.#buf.length >= 2) {
      const b0 = this.#buf[0]!;
      const b1 = this.#buf[1]!;
      const masked = (b1 & 0x80) !== 0;
      let len = b1 & 0x7f;
      let off = 2;
      if (len === 126) {
        if (this.#buf.length < 4) return;
        len = this.#buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.#buf.length < 10) return;
        const big = this.#buf.readBigUInt64BE(2);
        if (big > BigInt(Number.MAX_SAFE_INTEGER)) {
          this.#broken = true;
          this.onFrame({ fin: (b0 & 0x80) !== 0, rsv1: (b0 & 0x40) !== 0, opcode: b0 & 0x0f, masked, length: Number.MAX_SAFE_INTEGER });
          return;
        }
        len = Number(big);
        off = 10;
      }
      const maskAt = off;
      if (masked) off += 4;
      const opcode = b0 & 0x0f;
      const frame: FrameHeader = { fin: (b0 & 0x80) !== 0, rsv1: (b0 & 0x40) !== 0, opcode, masked, length: len };
      if (opcode === 8) {
        // A close frame's payload is needed for its code and reason; it is at most 125 bytes in a valid frame.
        if (this.#buf.length < off + len) {
          if (len > 125) {
            this.#broken = true;
            this.onFrame(frame);
          }
          return;
        }
        const payload = Buffer.from(this.#buf.subarray(off, off + len));
        if (masked) for (let i = 0; i < payload.length; i++) payload[i]! ^= this.#buf[maskAt + (i % 4)]!;
        if (payload.length >= 2) {
          frame.closeCode = payload.readUInt16BE(0);
          frame.closeReason = payload.subarray(2).toString('utf8');
        }
        this.#buf = this.#buf.subarray(off + len);
        this.onFrame(frame);
        continue;
      }
      if (this.#buf.length < off) return;
      this.onFrame(frame);
      const have = this.#buf.length - off;
      if (have >= len) {
        this.#buf = this.#buf.subarray(off + len);
      } else {
        this.#skip = len - have;
        this.#buf = Buffer.alloc(0);
        return;
      }
    }
  }
}

export function describeFrame(f: FrameHeader): string {
  const name = OPCODES[f.opcode] ?? `opcode ${f.opcode} (reserved)`;
  let s = `${name} fin=${f.fin ? 1 : 0} ${f.masked ? 'masked' : 'unmasked'} len=${f.length}${f.rsv1 ? ' rsv1(compressed)' : ''}`;
  if (f.closeCode !== undefined) s += ` code=${f.closeCode} (${CLOSE_CODES[f.closeCode] ?? 'application'})${f.closeReason ? ` reason="${f.closeReason}"` : ''}`;
  return s;
}

/**
 * Traces every frame on `socket` in both directions, when tracing is on. Incoming bytes are read by an extra 'data'
 * listener; outgoing ones by wrapping this one socket's write (only when tracing: off, the socket is untouched).
 * `head` holds bytes that arrived with the handshake. The frames seen are kept in the returned object unless
 * `keepFrames` is false.
 */
export function traceFrames(tracer: Tracer, cid: string, socket: Duplex, side: 'server' | 'client', head?: Buffer, keepFrames = true): { frames: FrameHeader[] } {
  const seen = { frames: [] as FrameHeader[] };
  if (!tracer.enabled) return seen;
  const inDir: Dir = side === 'server' ? '>' : '<';
  const outDir: Dir = side === 'server' ? '<' : '>';
  const make = (dir: Dir) =>
    new FrameObserver((f) => {
      // `keepFrames` false (a server: nobody reads them): a long connection does not grow an array per frame.
      if (keepFrames) seen.frames.push(f);
      tracer.emit('ws', cid, dir, 'frame', () => (tracer.detail === false ? { summary: describeFrame(f), bytes: f.length } : { summary: describeFrame(f), bytes: f.length, meta: { ...f } }));
    });
  const incoming = make(inDir);
  const outgoing = make(outDir);
  if (head && head.length) incoming.push(head);
  socket.on('data', (chunk: Buffer) => incoming.push(chunk));
  const write = socket.write;
  socket.write = function (this: Duplex, chunk: unknown, ...rest: unknown[]) {
    if (Buffer.isBuffer(chunk)) outgoing.push(chunk);
    else if (typeof chunk === 'string') outgoing.push(Buffer.from(chunk, (typeof rest[0] === 'string' ? rest[0] : 'utf8') as BufferEncoding));
    return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
  } as Duplex['write'];
  return seen;
}
