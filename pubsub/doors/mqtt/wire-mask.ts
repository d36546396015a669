import type { Dir, WireMask } from '../../../core/trace/index.ts';

/** MQTT's variable byte integer at `at`: its value and the offset after it, or null when the chunk ends first. */
function varint(buf: Buffer, at: number): [number, number] | null {
  let value = 0;
  for (let i = 0; i < 4; i++) {
    if (at + i >= buf.length) return null;
    const b = buf[at + i]!;
    value += (b & 0x7f) * 128 ** i;
    if ((b & 0x80) === 0) return [value, at + i + 1];
  }
  return null;
}

/** Offset after a two-byte-length field (string or binary data) at `at`. */
const skipField = (buf: Buffer, at: number): number => (at + 2 <= buf.length ? at + 2 + buf.readUInt16BE(at) : Infinity);

/**
 * Masks the password of the client's CONNECT packet (MQTT 3.1.1 and 5) with `*` of the same length, so an exported
 * capture still parses and never holds it. A first chunk it cannot parse is masked whole after its fixed header.
 * One per connection: only the first client bytes are looked at.
 */
export function mqttConnectMask(): WireMask {
  let first = true;
  return (chunk: Buffer, dir: Dir): Buffer => {
    if (dir !== '>' || !first) return chunk;
    first = false;
    if (chunk.length < 2 || chunk[0]! >> 4 !== 1) return chunk;
    const out = Buffer.from(chunk);
    const fixed = varint(chunk, 1);
    if (!fixed) return out.fill(0x2a, 1);
    const start = fixed[1];
    let at = skipField(chunk, start); // protocol name
    const level = chunk[at];
    const flags = chunk[at + 1];
    if (level === undefined || flags === undefined) return out.fill(0x2a, start);
    at += 4; // level, flags, keep alive
    if (level === 5) {
      const props = varint(chunk, at);
      if (!props) return out.fill(0x2a, start);
      at = props[1] + props[0];
    }
    at = skipField(chunk, at); // client id
    if (flags & 0x04) {
      if (level === 5) {
        const props = varint(chunk, at);
        if (!props) return out.fill(0x2a, start);
        at = props[1] + props[0];
      }
      at = skipField(chunk, skipField(chunk, at)); // will topic, will payload
    }
    if (flags & 0x80) at = skipField(chunk, at); // user name
    if (!(flags & 0x40)) return at === Infinity ? out.fill(0x2a, start) : chunk;
    if (at + 2 > chunk.length) return out.fill(0x2a, start);
    const end = Math.min(chunk.length, at + 2 + chunk.readUInt16BE(at));
    return out.fill(0x2a, at + 2, end);
  };
}
