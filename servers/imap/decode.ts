import { TextDecoder } from 'node:util';
import { headerValue, parseMime, parseParams, type MimePart } from './mime.ts';

/**
 * Text as a reader sees it, for SEARCH: header values with RFC 2047 encoded words decoded, bodies decoded by their
 * Content-Transfer-Encoding (base64, quoted-printable) and charset. mime.ts works on binary strings (one char per
 * byte, so sizes count octets); this module turns those into Unicode text.
 */

/** Bytes of a binary string (latin1, one char per byte). */
function bytes(binary: string): Buffer {
  return Buffer.from(binary, 'latin1');
}

const decoders = new Map<string, TextDecoder | null>();

/** A decoder for a MIME charset name, or null when TextDecoder does not know it. */
function decoderFor(charset: string): TextDecoder | null {
  const key = charset.trim().toLowerCase();
  if (!decoders.has(key)) {
    let d: TextDecoder | null;
    try {
      d = new TextDecoder(key === 'us-ascii' || key === 'ascii' ? 'utf-8' : key);
    } catch {
      d = null;
    }
    // Bounded: charset names come from messages.
    if (decoders.size < 64) decoders.set(key, d);
    return d;
  }
  return decoders.get(key)!;
}

/**
 * Bytes in a charset as text. No charset (or an unknown one): UTF-8 when the bytes are valid UTF-8 (RFC 6532 headers,
 * most mail today), Latin-1 otherwise, so no byte is ever lost to a replacement character.
 */
export function decodeCharset(data: Buffer, charset?: string): string {
  const d = charset ? decoderFor(charset) : null;
  if (d) return d.decode(data);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(data);
  } catch {
    return data.toString('latin1');
  }
}

/** Quoted-printable (RFC 2045 6.7) to bytes; `header` is the Q encoding of RFC 2047 4.2 (`_` is a space). */
export function decodeQuotedPrintable(text: string, header = false): Buffer {
  const src = header ? text.replace(/_/g, ' ') : text.replace(/[ \t]+(?=\r?\n)/g, '').replace(/=\r?\n/g, '');
  const out: number[] = [];
  for (let i = 0; i < src.length; i++) {
    const c = src.charCodeAt(i);
    if (c === 0x3d && /^[0-9A-Fa-f]{2}$/.test(src.slice(i + 1, i + 3))) {
      out.push(parseInt(src.slice(i + 1, i + 3), 16));
      i += 2;
    } else out.push(c & 0xff);
  }
  return Buffer.from(out);
}

const ENCODED_WORD = /=\?([^?*\s]+)(?:\*[^?\s]*)?\?([BbQq])\?([^?\s]*)\?=/g;

/**
 * A header value (a binary string) with its RFC 2047 encoded words decoded. White space between two adjacent encoded
 * words is dropped (RFC 2047 6.2), and adjacent words in one charset are decoded together, since some mailers cut a
 * multi-byte character across two words. Raw 8-bit bytes are read as UTF-8 when valid, else Latin-1.
 */
export function decodeHeaderValue(value: string): string {
  let out = '';
  let last = 0;
  let pending: { charset: string; data: Buffer[] } | null = null;
  const flush = (): void => {
    if (pending) out += decodeCharset(Buffer.concat(pending.data), pending.charset);
    pending = null;
  };
  for (const m of value.matchAll(ENCODED_WORD)) {
    const between = value.slice(last, m.index);
    if (!(pending && /^[ \t\r\n]*$/.test(between))) {
      flush();
      out += decodeCharset(bytes(between));
    }
    const [, charset, enc, payload] = m as unknown as [string, string, string, string];
    const data = enc.toUpperCase() === 'B' ? Buffer.from(payload, 'base64') : decodeQuotedPrintable(payload, true);
    const p = pending as { charset: string; data: Buffer[] } | null;
    if (p && p.charset.toLowerCase() === charset.toLowerCase()) p.data.push(data);
    else {
      flush();
      pending = { charset, data: [data] };
    }
    last = m.index + m[0].length;
  }
  flush();
  return out + decodeCharset(bytes(value.slice(last)));
}

/** A part's body bytes, undone from its Content-Transfer-Encoding (7bit, 8bit and binary are the bytes as they are). */
export function decodeTransfer(part: MimePart): Buffer {
  const cte = (headerValue(part, 'content-transfer-encoding') ?? '').trim().toLowerCase();
  if (cte === 'base64') return Buffer.from(part.body.replace(/[^A-Za-z0-9+/=]/g, ''), 'base64');
  if (cte === 'quoted-printable') return decodeQuotedPrintable(part.body);
  return bytes(part.body);
}

/** The text of every text/* part (and of messages inside message/rfc822 parts, headers included), decoded. */
function bodyText(part: MimePart, out: string[], depth = 0): void {
  if (depth > 20) return;
  if (part.type === 'multipart') {
    for (const c of part.children) bodyText(c, out, depth + 1);
    return;
  }
  if (part.type === 'message' && part.message) {
    out.push(part.message.headers.map(([k, v]) => `${k}: ${decodeHeaderValue(v)}`).join('\n'));
    bodyText(part.message, out, depth + 1);
    return;
  }
  if (part.type !== 'text') return;
  const charset = parseParams(headerValue(part, 'content-type') ?? '').params.find(([k]) => k === 'CHARSET')?.[1];
  out.push(decodeCharset(decodeTransfer(part), charset));
}

/** A message as SEARCH compares it: decoded headers by name, decoded body text. */
export interface SearchableMessage {
  header(name: string): string | null;
  /** Every header line, decoded, for TEXT. */
  readonly headerText: string;
  readonly body: string;
}

export function searchable(raw: Buffer): SearchableMessage {
  const root = parseMime(raw.toString('latin1'));
  const decoded = new Map<string, string | null>();
  let body: string | undefined;
  let headerText: string | undefined;
  return {
    header(name) {
      if (!decoded.has(name)) {
        const v = headerValue(root, name);
        decoded.set(name, v === null ? null : decodeHeaderValue(v));
      }
      return decoded.get(name)!;
    },
    get headerText() {
      headerText ??= root.headers.map(([k, v]) => `${k}: ${decodeHeaderValue(v)}`).join('\n');
      return headerText;
    },
    get body() {
      if (body === undefined) {
        const parts: string[] = [];
        bodyText(root, parts);
        body = parts.join('\n');
      }
      return body;
    },
  };
}

/**
 * Case-insensitive comparison form (RFC 3501 asks for case-insensitive SEARCH; RFC 5051's i;unicode-casemap is what
 * Dovecot uses): compatibility decomposition, then lower case, so "Ä" (one code point or A + combining diaeresis),
 * "ä" and "ä" compare equal.
 */
export function fold(s: string): string {
  return s.normalize('NFKD').toLowerCase();
}
