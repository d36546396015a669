/**
 * One segment of the file log: `<baseOffset, 20 digits>.log` (record frames, pubsub/log/record.ts) and
 * `<baseOffset>.index`, a sparse index of 16-byte entries
 *
 * ```
 * entry = relativeOffset:u32  position:u32  maxTimestampBefore:u64
 * ```
 *
 * one for the first record and then one per `indexIntervalBytes` of frames. `maxTimestampBefore` is the newest
 * timestamp of the records before the entry's (0 for the first), so it never decreases and `offsetForTime` can
 * binary-search it even when producers send timestamps out of order. The index is a cache: not fsync'd, checked when
 * the segment is opened and rebuilt from the log when it is missing, short or wrong.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { ErrorCodes, PubsubError } from '../../../core/errors.ts';
import { FRAME_HEADER_BYTES, scanFrame } from '../record.ts';
import type { LogRecord } from '../types.ts';

export const INDEX_ENTRY_BYTES = 16;
const READ_CHUNK = 64 * 1024;

export interface IndexEntry {
  rel: number;
  pos: number;
  maxBefore: number;
}

/** A record appended but not yet written (reads serve it from memory). */
export interface PendingRecord {
  rec: LogRecord;
  frame: Buffer;
}

export interface Segment {
  base: number;
  logPath: string;
  indexPath: string;
  fd: fsp.FileHandle | null;
  indexFd: fsp.FileHandle | null;
  /** Bytes of frames assigned to this segment (written or pending). */
  size: number;
  /** Bytes whose write() completed. */
  written: number;
  /** Bytes known fsync'd (what a power loss keeps). */
  synced: number;
  /** Index entries (in memory, all); `indexWritten` of them are in the file; `indexSynced` of them fsync'd. */
  entries: IndexEntry[];
  indexWritten: number;
  indexSynced: number;
  bytesSinceEntry: number;
  records: number;
  maxTimestamp: number;
  pending: PendingRecord[];
  /** Readers and fsyncs using the handles: a deleted segment closes them when this drops to 0. */
  refs: number;
  deleted: boolean;
}

export function segmentName(base: number): string {
  return String(base).padStart(20, '0');
}

export function newSegment(dir: string, base: number): Segment {
  const name = segmentName(base);
  return {
    base,
    logPath: join(dir, `${name}.log`),
    indexPath: join(dir, `${name}.index`),
    fd: null,
    indexFd: null,
    size: 0,
    written: 0,
    synced: 0,
    entries: [],
    indexWritten: 0,
    indexSynced: 0,
    bytesSinceEntry: 0,
    records: 0,
    maxTimestamp: -Infinity,
    pending: [],
    refs: 0,
    deleted: false,
  };
}

/** Adds the index entry a record of `size` bytes at the segment's end calls for (before counting the record in). */
export function indexRecord(seg: Segment, rec: LogRecord, size: number, interval: number): void {
  if (seg.entries.length === 0 || seg.bytesSinceEntry >= interval) {
    seg.entries.push({ rel: rec.offset - seg.base, pos: seg.size, maxBefore: Math.max(0, seg.maxTimestamp) });
    seg.bytesSinceEntry = 0;
  }
  seg.bytesSinceEntry += size;
  seg.size += size;
  seg.records++;
  if (rec.timestamp > seg.maxTimestamp) seg.maxTimestamp = rec.timestamp;
}

export function encodeEntries(entries: readonly IndexEntry[]): Buffer {
  const buf = Buffer.alloc(entries.length * INDEX_ENTRY_BYTES);
  entries.forEach((e, i) => {
    const p = i * INDEX_ENTRY_BYTES;
    buf.writeUInt32BE(e.rel, p);
    buf.writeUInt32BE(e.pos, p + 4);
    buf.writeBigUInt64BE(BigInt(e.maxBefore), p + 8);
  });
  return buf;
}

function decodeEntries(buf: Buffer, fileSize: number): IndexEntry[] {
  const out: IndexEntry[] = [];
  for (let p = 0; p + INDEX_ENTRY_BYTES <= buf.length; p += INDEX_ENTRY_BYTES) {
    const e = { rel: buf.readUInt32BE(p), pos: buf.readUInt32BE(p + 4), maxBefore: Number(buf.readBigUInt64BE(p + 8)) };
    const prev = out[out.length - 1];
    const sane = prev ? e.rel > prev.rel && e.pos > prev.pos && e.maxBefore >= prev.maxBefore : e.rel === 0 && e.pos === 0;
    if (!sane || e.pos >= fileSize) break;
    out.push(e);
  }
  return out;
}

/** The last entry at or before relative offset `rel` (entries sorted; the first is rel 0). */
export function floorEntry(entries: readonly IndexEntry[], rel: number): IndexEntry | undefined {
  let lo = 0;
  let hi = entries.length - 1;
  let best: IndexEntry | undefined;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (entries[mid]!.rel <= rel) {
      best = entries[mid];
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return best;
}

/** The last entry whose maxBefore < ts: every record before it is older than ts. */
export function timeEntry(entries: readonly IndexEntry[], ts: number): IndexEntry | undefined {
  let lo = 0;
  let hi = entries.length - 1;
  let best: IndexEntry | undefined = entries[0];
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (entries[mid]!.maxBefore < ts) {
      best = entries[mid];
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return best;
}

export function corrupt(seg: Segment, pos: number, why: string): PubsubError {
  return new PubsubError(ErrorCodes.PUBSUB_CORRUPT, `${seg.logPath} at byte ${pos}: ${why}`);
}

/**
 * Calls `visit` for each frame from `pos` (whose record must have offset `offset`) to byte `end` of the segment
 * file; stops when visit returns false. Returns where it stopped and why: 'end' (reached `end`), 'stop' (visit
 * said so) or the frame problem ('short' | 'crc' | 'malformed' | 'offset') at `pos`.
 */
export async function scanFile(
  fd: fsp.FileHandle,
  pos: number,
  offset: number,
  end: number,
  visit: (rec: LogRecord, size: number, pos: number) => boolean,
): Promise<{ pos: number; offset: number; reason: 'end' | 'stop' | 'short' | 'crc' | 'malformed' | 'offset' }> {
  let buf = Buffer.alloc(0);
  let bufStart = pos;
  while (pos < end) {
    let fr = scanFrame(buf, pos - bufStart);
    if (!fr.ok && fr.reason === 'short' && bufStart + buf.length < end) {
      const have = buf.length - (pos - bufStart);
      const need = have >= FRAME_HEADER_BYTES ? FRAME_HEADER_BYTES + buf.readUInt32BE(pos - bufStart) : FRAME_HEADER_BYTES;
      const len = Math.min(end - pos, Math.max(READ_CHUNK, need));
      const next = Buffer.allocUnsafe(len);
      const { bytesRead } = await fd.read(next, 0, len, pos);
      buf = next.subarray(0, bytesRead);
      bufStart = pos;
      fr = scanFrame(buf, 0);
    }
    if (!fr.ok) return { pos, offset, reason: fr.reason };
    if (fr.record.offset !== offset) return { pos, offset, reason: 'offset' };
    if (!visit(fr.record, fr.size, pos)) return { pos, offset, reason: 'stop' };
    pos += fr.size;
    offset++;
  }
  return { pos, offset, reason: 'end' };
}

/**
 * Opens an existing segment: loads the index (its sane prefix), then scans the log from the last index entry to the
 * end, re-adding the entries that should follow, counting records and the newest timestamp. Returns the segment
 * and where the good frames end (the caller truncates a torn or corrupt tail).
 */
export async function openSegment(
  dir: string,
  base: number,
  interval: number,
): Promise<{ seg: Segment; goodEnd: number; fileSize: number; nextOffset: number; clean: boolean }> {
  const seg = newSegment(dir, base);
  seg.fd = await fsp.open(seg.logPath, 'r+');
  const fileSize = (await seg.fd.stat()).size;
  let entries: IndexEntry[] = [];
  let rawIndexBytes = 0;
  try {
    const raw = await fsp.readFile(seg.indexPath);
    rawIndexBytes = raw.length;
    entries = decodeEntries(raw, fileSize);
  } catch {
    entries = [];
  }
  let start = entries[entries.length - 1];
  if (start) {
    // The last entry must point at a frame with its offset; otherwise the index is rebuilt.
    const probe = await scanFile(seg.fd, start.pos, base + start.rel, fileSize, () => false);
    if (probe.reason !== 'stop') {
      entries = [];
      start = undefined;
    }
  }
  // Replay the segment's bookkeeping from the last trusted entry.
  const kept = entries.slice(0, -1);
  seg.entries = kept;
  seg.indexWritten = kept.length;
  seg.size = start ? start.pos : 0;
  seg.maxTimestamp = start && start.maxBefore > 0 ? start.maxBefore : -Infinity;
  seg.bytesSinceEntry = kept.length ? start!.pos - kept[kept.length - 1]!.pos : 0;
  const res = await scanFile(seg.fd, seg.size, base + (start ? start.rel : 0), fileSize, (rec, size) => {
    indexRecord(seg, rec, size, interval);
    return true;
  });
  seg.records = res.offset - base;
  seg.written = seg.synced = seg.size;
  // Entries the file already held in the same places count as written.
  let same = 0;
  while (same < entries.length && same < seg.entries.length && entries[same]!.pos === seg.entries[same]!.pos) same++;
  seg.indexWritten = same;
  if (rawIndexBytes !== same * INDEX_ENTRY_BYTES || same !== seg.entries.length) {
    // Lost, short, stale or wrong: rebuilt from what the scan found.
    seg.indexWritten = 0;
    seg.indexFd = await fsp.open(seg.indexPath, 'w+');
    await writeIndex(seg);
  }
  seg.indexSynced = seg.indexWritten;
  return { seg, goodEnd: res.pos, fileSize, nextOffset: res.offset, clean: res.reason === 'end' };
}

/** Writes the index entries not in the file yet (rewriting from the first difference). */
export async function writeIndex(seg: Segment): Promise<void> {
  if (seg.indexWritten >= seg.entries.length) return;
  if (!seg.indexFd) seg.indexFd = await fsp.open(seg.indexPath, seg.indexWritten === 0 ? 'w+' : 'r+');
  const from = seg.indexWritten;
  const upto = seg.entries.length;
  const buf = encodeEntries(seg.entries.slice(from, upto));
  await seg.indexFd.write(buf, 0, buf.length, from * INDEX_ENTRY_BYTES);
  seg.indexWritten = upto;
}

export async function closeHandles(seg: Segment): Promise<void> {
  const fds = [seg.fd, seg.indexFd];
  seg.fd = seg.indexFd = null;
  await Promise.all(fds.map((fd) => fd?.close().catch(() => {})));
}
