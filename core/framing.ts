import { ErrorCodes, WirelabError } from './errors.ts';

/**
 * How a byte stream is cut into messages. TCP has no message boundaries of its own: `raw` hands over reads as they
 * arrive, `line` cuts at LF (a CR before it is dropped), `length` reads a 4-byte big-endian length then that many bytes.
 */
export type Framing = 'raw' | 'line' | 'length';
export const FRAMINGS: readonly Framing[] = ['raw', 'line', 'length'];

export interface FramingLimits {
  /** Longest line accepted in `line` framing, terminator excluded. Default 8192 bytes. */
  maxLineLength?: number;
  /** Largest frame accepted in `length` framing. Default 1 MiB. */
  maxFrameLength?: number;
}

export const FRAMING_DEFAULTS: Required<FramingLimits> = { maxLineLength: 8192, maxFrameLength: 1024 * 1024 };

export interface Decoder {
  /** Feeds one read; returns the messages it completed (possibly none, possibly several). Throws past a limit. */
  push(chunk: Buffer): Buffer[];
  /** Bytes held back waiting for the rest of a message. */
  readonly pending: number;
}

class RawDecoder implements Decoder {
  readonly pending = 0;
  push(chunk: Buffer): Buffer[] {
    return chunk.length === 0 ? [] : [chunk];
  }
}

class LineDecoder implements Decoder {
  #parts: Buffer[] = [];
  #pendingBytes = 0;
  constructor(readonly maxLineLength: number) {}

  get pending(): number {
    return this.#pendingBytes;
  }

  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
      const piece = chunk.subarray(start, nl);
      let line = this.#parts.length === 0 ? piece : Buffer.concat([...this.#parts, piece]);
      this.#parts = [];
      this.#pendingBytes = 0;
      if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, line.length - 1);
      if (line.length > this.maxLineLength) throw this.#tooLong(line.length);
      out.push(line);
      start = nl + 1;
    }
    if (start < chunk.length) {
      this.#parts.push(chunk.subarray(start));
      this.#pendingBytes += chunk.length - start;
      // One byte of slack for a CR that may precede the LF still to come.
      if (this.#pendingBytes > this.maxLineLength + 1) throw this.#tooLong(this.#pendingBytes);
    }
    return out;
  }

  #tooLong(n: number): WirelabError {
    return new WirelabError(
      ErrorCodes.LINE_TOO_LONG,
      `line too long: ${n} bytes without a newline, limit maxLineLength=${this.maxLineLength}`,
    );
  }
}

class LengthDecoder implements Decoder {
  #buf: Buffer = Buffer.alloc(0);
  constructor(readonly maxFrameLength: number) {}

  get pending(): number {
    return this.#buf.length;
  }

  push(chunk: Buffer): Buffer[] {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    const out: Buffer[] = [];
    while (this.#buf.length >= 4) {
      const len = this.#buf.readUInt32BE(0);
      if (len > this.maxFrameLength) {
        throw new WirelabError(
          ErrorCodes.FRAME_TOO_LONG,
          `frame too long: header says ${len} bytes, limit maxFrameLength=${this.maxFrameLength}`,
        );
      }
      if (this.#buf.length < 4 + len) break;
      out.push(this.#buf.subarray(4, 4 + len));
      this.#buf = this.#buf.subarray(4 + len);
    }
    return out;
  }
}

export function createDecoder(framing: Framing, limits: FramingLimits = {}): Decoder {
  const l = { ...FRAMING_DEFAULTS, ...limits };
  switch (framing) {
    case 'raw':
      return new RawDecoder();
    case 'line':
      return new LineDecoder(l.maxLineLength);
    case 'length':
      return new LengthDecoder(l.maxFrameLength);
  }
}

/** The bytes that carry one message in the given framing. */
export function encodeFrame(framing: Framing, message: Buffer | string): Buffer {
  const body = typeof message === 'string' ? Buffer.from(message) : message;
  switch (framing) {
    case 'raw':
      return body;
    case 'line':
      return Buffer.concat([body, Buffer.from('\n')]);
    case 'length': {
      const head = Buffer.alloc(4);
      head.writeUInt32BE(body.length, 0);
      return Buffer.concat([head, body]);
    }
  }
}
