/**
 * IMAP4rev1 mailbox names on the wire are modified UTF-7 (RFC 3501 section 5.1.3): printable US-ASCII stands for
 * itself except `&`, which is `&-`; anything else is UTF-16 in modified base64 (`,` for `/`, no padding) between `&`
 * and `-`. The store keeps names as Unicode; every name is decoded where it comes in and encoded where it goes out, so
 * whatever LIST shows, SELECT opens.
 */

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,';
const B64_INDEX = new Map([...B64].map((c, i) => [c, i]));

const isDirect = (code: number): boolean => code >= 0x20 && code <= 0x7e;

/** Unicode name → modified UTF-7. */
export function encodeMailboxName(name: string): string {
  let out = '';
  let i = 0;
  while (i < name.length) {
    const c = name.charCodeAt(i);
    if (c === 0x26) {
      out += '&-';
      i++;
    } else if (isDirect(c)) {
      out += name[i];
      i++;
    } else {
      let j = i;
      while (j < name.length && !isDirect(name.charCodeAt(j))) j++;
      // UTF-16BE of the run (JS strings are UTF-16 already: surrogate pairs go through as they are).
      const units = Buffer.alloc((j - i) * 2);
      for (let k = i; k < j; k++) units.writeUInt16BE(name.charCodeAt(k), (k - i) * 2);
      out += `&${units.toString('base64').replace(/=+$/, '').replace(/\//g, ',')}-`;
      i = j;
    }
  }
  return out;
}

/**
 * Modified UTF-7 → Unicode; null when `wire` is not valid modified UTF-7: a byte outside printable US-ASCII (raw
 * 8-bit), an unterminated or malformed `&...-` run, one that encodes printable ASCII, two runs back to back, leftover
 * bits, or UTF-16 that does not decode (RFC 3501 says such names MUST NOT be produced; refusing them keeps the
 * encoding one-to-one, so a name cannot be spelled two ways).
 */
export function decodeMailboxName(wire: string): string | null {
  let out = '';
  let i = 0;
  let lastRunEnd = -1;
  while (i < wire.length) {
    const c = wire.charCodeAt(i);
    if (!isDirect(c)) return null;
    if (c !== 0x26) {
      out += wire[i];
      i++;
      continue;
    }
    const end = wire.indexOf('-', i + 1);
    if (end === -1) return null;
    if (end === i + 1) {
      out += '&';
      i = end + 1;
      continue;
    }
    if (lastRunEnd === i) return null;
    const run = wire.slice(i + 1, end);
    let bits = 0;
    let acc = 0;
    const bytes: number[] = [];
    for (const ch of run) {
      const v = B64_INDEX.get(ch);
      if (v === undefined) return null;
      acc = (acc << 6) | v;
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        bytes.push((acc >> bits) & 0xff);
      }
    }
    // Leftover bits must be zero padding of fewer than 6 bits, and the run whole UTF-16 code units.
    if (bits >= 6 || (acc & ((1 << bits) - 1)) !== 0 || bytes.length % 2 !== 0 || bytes.length === 0) return null;
    let text = '';
    for (let k = 0; k < bytes.length; k += 2) text += String.fromCharCode((bytes[k]! << 8) | bytes[k + 1]!);
    if (!wellFormed(text)) return null;
    for (let k = 0; k < text.length; k++) if (isDirect(text.charCodeAt(k))) return null;
    out += text;
    i = end + 1;
    lastRunEnd = i;
  }
  return out;
}

/** No lone surrogate (String.prototype.isWellFormed, which node 20's TypeScript lib does not declare). */
function wellFormed(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (!(d >= 0xdc00 && d <= 0xdfff)) return false;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) return false;
  }
  return true;
}
