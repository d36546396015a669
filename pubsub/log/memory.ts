/**
 * The in-memory PartitionLog (`openPartitionLog(null, ...)`): the same offsets, segments (by the same encoded record
 * size), retention, TTL skipping, limits and refusals as the file log; only durability differs. Nothing survives
 * the process, `fsyncs` stays 0 and `simulatePowerLoss()` loses every record.
 */
import { checkAppend, toRecord } from './record.ts';
import {
  checkDurability,
  closedError,
  hasRetention,
  planRetention,
  resolveLogOptions,
  type ResolvedLogOptions,
} from './common.ts';
import type { AppendInput, Durability, LogRecord, PartitionLog, PartitionLogOptions, PartitionLogStats } from './types.ts';

interface MemSegment {
  base: number;
  records: LogRecord[];
  sizes: number[];
  bytes: number;
  maxTimestamp: number;
}

function newSegment(base: number): MemSegment {
  return { base, records: [], sizes: [], bytes: 0, maxTimestamp: -Infinity };
}

/** Where `offset` is in `segments` (sorted by base, contiguous offsets): [segment index, record index]. */
function locate(segments: readonly { base: number }[], offset: number): number {
  let lo = 0;
  let hi = segments.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (segments[mid]!.base <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

export class MemoryPartitionLog implements PartitionLog {
  private readonly opts: ResolvedLogOptions;
  private segments: MemSegment[];
  private next = 0;
  private closed = false;
  private expiredSkipped = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(options: PartitionLogOptions = {}) {
    this.opts = resolveLogOptions(options);
    this.segments = [newSegment(0)];
    if (hasRetention(this.opts.retention) && this.opts.retentionIntervalMs > 0) {
      this.timer = setInterval(() => void this.applyRetention(), this.opts.retentionIntervalMs);
      this.timer.unref();
    }
  }

  get firstOffset(): number {
    return this.segments[0]!.base;
  }

  get nextOffset(): number {
    return this.next;
  }

  append(input: AppendInput, durability: Durability): Promise<LogRecord> {
    try {
      if (this.closed) throw closedError();
      checkDurability(durability, this.opts.fsync);
      const size = checkAppend(input, this.opts);
      let seg = this.segments[this.segments.length - 1]!;
      let rolled = false;
      if (seg.records.length > 0 && seg.bytes + size > this.opts.segmentBytes) {
        seg = newSegment(this.next);
        this.segments.push(seg);
        rolled = true;
      }
      const rec = toRecord(input, this.next++, Date.now());
      seg.records.push(rec);
      seg.sizes.push(size);
      seg.bytes += size;
      if (rec.timestamp > seg.maxTimestamp) seg.maxTimestamp = rec.timestamp;
      if (rolled) this.retainNow(Date.now());
      return Promise.resolve(rec);
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  read(from: number, maxRecords: number, maxBytes = Infinity): Promise<LogRecord[]> {
    if (this.closed) return Promise.reject(closedError());
    const out: LogRecord[] = [];
    let start = Math.max(Math.floor(from), this.firstOffset);
    if (start >= this.next || maxRecords <= 0) return Promise.resolve(out);
    const now = Date.now();
    let bytes = 0;
    for (let si = locate(this.segments, start); si < this.segments.length; si++) {
      const seg = this.segments[si]!;
      for (let i = start - seg.base; i < seg.records.length; i++) {
        const rec = seg.records[i]!;
        if (rec.expiresAt !== undefined && rec.expiresAt <= now) {
          this.expiredSkipped++;
          continue;
        }
        const size = seg.sizes[i]!;
        if (out.length > 0 && bytes + size > maxBytes) return Promise.resolve(out);
        out.push(rec);
        bytes += size;
        if (out.length >= maxRecords) return Promise.resolve(out);
      }
      start = seg.base + seg.records.length;
    }
    return Promise.resolve(out);
  }

  offsetForTime(ts: number): Promise<number> {
    for (const seg of this.segments) {
      if (seg.maxTimestamp < ts) continue;
      const rec = seg.records.find((r) => r.timestamp >= ts);
      if (rec) return Promise.resolve(rec.offset);
    }
    return Promise.resolve(this.next);
  }

  applyRetention(now = Date.now()): Promise<void> {
    if (!this.closed) this.retainNow(now);
    return Promise.resolve();
  }

  private retainNow(now: number): void {
    const summaries = this.segments.map((s) => ({ records: s.records.length, bytes: s.bytes, maxTimestamp: s.maxTimestamp }));
    const drop = planRetention(summaries, this.opts.retention, now);
    if (drop > 0) this.segments = this.segments.slice(drop);
  }

  stats(): PartitionLogStats {
    let records = 0;
    let bytes = 0;
    for (const s of this.segments) {
      records += s.records.length;
      bytes += s.bytes;
    }
    return {
      records,
      bytes,
      segments: this.segments.length,
      firstOffset: this.firstOffset,
      nextOffset: this.next,
      fsyncs: 0,
      syncedOffset: this.next,
      truncatedBytesOnOpen: 0,
      expiredSkipped: this.expiredSkipped,
    };
  }

  close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    return Promise.resolve();
  }

  simulatePowerLoss(): Promise<{ lostRecords: number; lostBytes: number }> {
    const { records, bytes } = this.stats();
    this.segments = [newSegment(this.next)];
    void this.close();
    return Promise.resolve({ lostRecords: records, lostBytes: bytes });
  }
}
