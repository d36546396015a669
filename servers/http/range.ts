import { randomBytes } from 'node:crypto';

/**
 * The Range header (RFC 9110 section 14) for a representation of known size: what a request asks for and the
 * multipart/byteranges framing (section 14.6) when it asks for several ranges.
 */

/** One satisfiable range, `end` exclusive. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * - `ignore`: no Range, a unit other than `bytes` (section 14.2: a server MUST ignore a unit it does not understand),
 *   a malformed range set, or more than `maxRanges` ranges: the whole representation with 200.
 * - `unsatisfiable`: `bytes` ranges none of which overlaps the representation: 416 with `Content-Range: bytes *\/size`.
 * - `ranges`: 206, one part or multipart/byteranges.
 */
export type RangeRequest =
  | { kind: 'ignore'; reason: string }
  | { kind: 'unsatisfiable' }
  | { kind: 'ranges'; ranges: ByteRange[] };

const RANGE_SPEC = /^(\d*)-(\d*)$/;

/**
 * Reads a Range header against a representation of `size` bytes. Overlapping ranges are coalesced (section 14.2 lets a
 * server do so, and it bounds what `bytes=0-,0-,0-` can make the server send); otherwise the requested order is kept.
 */
export function parseRanges(header: string | undefined, size: number, maxRanges: number): RangeRequest {
  if (header === undefined) return { kind: 'ignore', reason: 'no Range' };
  const eq = header.indexOf('=');
  if (eq === -1) return { kind: 'ignore', reason: 'malformed Range' };
  const unit = header.slice(0, eq).trim().toLowerCase();
  if (unit !== 'bytes') return { kind: 'ignore', reason: `unknown range unit ${JSON.stringify(unit.slice(0, 32))}` };
  // Empty list elements are allowed by the list syntax (RFC 9110 section 5.6.1): "bytes=0-1,,2-3".
  const specs = header
    .slice(eq + 1)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (specs.length === 0) return { kind: 'ignore', reason: 'malformed Range' };
  if (specs.length > maxRanges) return { kind: 'ignore', reason: `more than maxRanges=${maxRanges} ranges` };
  const ranges: ByteRange[] = [];
  for (const spec of specs) {
    const m = RANGE_SPEC.exec(spec);
    if (!m || (m[1] === '' && m[2] === '')) return { kind: 'ignore', reason: 'malformed Range' };
    if (m[1] === '') {
      // Suffix range: the last n bytes; "-0" is unsatisfiable (section 14.1.3).
      const n = Number(m[2]);
      if (n > 0 && size > 0) ranges.push({ start: Math.max(0, size - n), end: size });
      continue;
    }
    const first = Number(m[1]);
    const last = m[2] === '' ? Infinity : Number(m[2]);
    if (last < first) return { kind: 'ignore', reason: 'malformed Range (last < first)' };
    if (first < size) ranges.push({ start: first, end: Math.min(size, last + 1) });
  }
  if (ranges.length === 0) return { kind: 'unsatisfiable' };
  return { kind: 'ranges', ranges: coalesceOverlaps(ranges) };
}

function coalesceOverlaps(ranges: ByteRange[]): ByteRange[] {
  const sorted = [...ranges].sort((a, b) => a.start - b.start);
  if (sorted.every((r, i) => i === 0 || r.start >= sorted[i - 1]!.end)) return ranges;
  const out: ByteRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.start <= last.end) last.end = Math.max(last.end, r.end);
    else out.push({ ...r });
  }
  return out;
}

/** The framing of a multipart/byteranges body: each part's header, the closing delimiter, and the total length. */
export interface ByteRangesBody {
  contentType: string;
  /** Header block of each part (delimiter, Content-Type, Content-Range, blank line), in `ranges` order. */
  heads: Buffer[];
  /** CRLF, closing delimiter, CRLF. */
  tail: Buffer;
  contentLength: number;
}

export function byteRangesBody(ranges: ByteRange[], size: number, partType: string): ByteRangesBody {
  const boundary = `wirelab-${randomBytes(12).toString('hex')}`;
  // Each part but the first starts with the CRLF that ends the previous part's data (RFC 2046 section 5.1.1).
  const heads = ranges.map((r, i) =>
    Buffer.from(`${i === 0 ? '' : '\r\n'}--${boundary}\r\nContent-Type: ${partType}\r\nContent-Range: bytes ${r.start}-${r.end - 1}/${size}\r\n\r\n`),
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const contentLength = heads.reduce((n, h) => n + h.length, 0) + ranges.reduce((n, r) => n + r.end - r.start, 0) + tail.length;
  return { contentType: `multipart/byteranges; boundary=${boundary}`, heads, tail, contentLength };
}
