/**
 * The binary encoding (TCP, and WebSocket binary frames): the fast path, payload bytes as they are (no base64).
 *
 *   u32 BE length of the rest | u8 type code | u16 BE header length H | H bytes: JSON object, every field but `type`
 *   and `payload` | the payload bytes (the rest; empty for types without one)
 *
 * Over TCP each frame starts with the 4-byte length; a WebSocket binary frame carries the rest (its own length is the
 * frame's). A python client: struct.pack('>IBH', 3 + len(h) + len(p), code, len(h)) + h + p.
 */
import { createDecoder, type Decoder } from '../../core/framing.ts';
import { COMPACT_CODES, decodeCompactMsg, decodeCompactPub, decodeCompactPuback } from './compact.ts';
import { checkClientFields, checkServerFields, type ClientMessage, type Parsed, type PubsubMessage, type ServerMessage } from './messages.ts';

/** Type codes of JSON-header frames: client -> server 0x01-0x09, server -> client 0x81-0x87 (compact frames: compact.ts). */
export const TYPE_CODES: Readonly<Record<PubsubMessage['type'], number>> = Object.freeze({
  hello: 0x01,
  pub: 0x02,
  sub: 0x03,
  unsub: 0x04,
  ack: 0x05,
  nak: 0x06,
  progress: 0x07,
  term: 0x08,
  ping: 0x09,
  welcome: 0x81,
  puback: 0x82,
  subscribed: 0x83,
  msg: 0x84,
  error: 0x85,
  closed: 0x86,
  pong: 0x87,
});
const TYPE_OF = new Map(Object.entries(TYPE_CODES).map(([t, c]) => [c, t]));
const WITH_PAYLOAD = new Set(['pub', 'msg']);

/** The frame body (no length prefix): what a WebSocket binary frame carries. */
export function encodeBinaryBody(message: PubsubMessage): Buffer {
  return encode(message, 0);
}

/** The whole TCP frame: 4-byte length, then the body (one allocation: this runs once per delivery). */
export function encodeBinary(message: PubsubMessage): Buffer {
  return encode(message, 4);
}

/** `prefix` bytes of length (0 or 4), type code, header length, JSON header (every field but type and payload), payload. */
function encode(message: PubsubMessage, prefix: 0 | 4): Buffer {
  // Destructuring (not `delete`) keeps the header object's shape fast; it runs once per delivery.
  const { type, payload, ...rest } = message as PubsubMessage & { payload?: Buffer };
  const header = JSON.stringify(rest);
  const h = Buffer.byteLength(header);
  const bodyLength = 3 + h + (payload?.length ?? 0);
  const out = Buffer.allocUnsafe(prefix + bodyLength);
  if (prefix) out.writeUInt32BE(bodyLength, 0);
  out[prefix] = TYPE_CODES[type];
  out.writeUInt16BE(h, prefix + 1);
  out.write(header, prefix + 3, 'utf8');
  if (payload) payload.copy(out, prefix + 3 + h);
  return out;
}

function decode(body: Buffer): { ok: true; value: Record<string, unknown> } | { ok: false; problem: string } {
  if (body.length < 3) return { ok: false, problem: `a frame is at least 3 bytes (type, header length), got ${body.length}` };
  const type = TYPE_OF.get(body[0]!);
  if (!type) return { ok: false, problem: `unknown type code 0x${body[0]!.toString(16)}` };
  const h = body.readUInt16BE(1);
  if (3 + h > body.length) return { ok: false, problem: `header length ${h} runs past the frame (${body.length} bytes)` };
  let header: unknown;
  try {
    header = h === 0 ? {} : JSON.parse(body.toString('utf8', 3, 3 + h));
  } catch {
    return { ok: false, problem: 'the header is not JSON' };
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) return { ok: false, problem: 'the header is not a JSON object' };
  const value: Record<string, unknown> = { ...header, type };
  if (WITH_PAYLOAD.has(type)) value.payload = body.subarray(3 + h);
  else if (body.length > 3 + h) return { ok: false, problem: `${type} carries no payload, got ${body.length - 3 - h} bytes after the header` };
  return { ok: true, value };
}

/** Checks a binary frame body a client sent (the server's side): a compact `pub` (compact.ts) or a JSON-header frame. */
export function parseClientBinary(body: Buffer): Parsed<ClientMessage> {
  if (body[0] === COMPACT_CODES.pub) return decodeCompactPub(body);
  const d = decode(body);
  return d.ok ? checkClientFields(d.value) : { ok: false, problem: d.problem };
}

/** Checks a binary frame body the server sent (the client's side). */
export function parseServerBinary(body: Buffer): Parsed<ServerMessage> {
  if (body[0] === COMPACT_CODES.msg) return decodeCompactMsg(body);
  if (body[0] === COMPACT_CODES.puback) return decodeCompactPuback(body);
  const d = decode(body);
  return d.ok ? checkServerFields(d.value) : { ok: false, problem: d.problem };
}

/** Cuts a TCP byte stream into frame bodies; throws WL_ERR_FRAME_TOO_LONG when a length passes maxFrameBytes. */
export function createFrameDecoder(maxFrameBytes: number): Decoder {
  return createDecoder('length', { maxFrameLength: maxFrameBytes });
}
