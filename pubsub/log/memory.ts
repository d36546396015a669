/**
 * The in-memory PartitionLog (`openPartitionLog(null, ...)`): the same offsets, segments (by the same encoded record
 * size), retention, TTL skipping, limits and refusals as the file log; only durability differs. Nothing survives
 * the process, `fsyncs` stays 0 and `simulatePowerLoss()` loses every record.
 */
import { toRecord } from './record.ts';
import { closedError, locateSegment, LogBase, planRetention } from './common.ts';
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

export class MemoryPartitionLog extends LogBase implements PartitionLog {
  protected segments: MemSegment[] = [newSegment(0)];

  constructor(options: PartitionLogOptions = {}) {
    super(options);
    this.startRetentionTimer();
  }

  append(input: AppendInput, durability: Durability): Promise<LogRecord> {
    try {
      const size = this.admit(input, durability);
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
    const visit = this.collector(out, maxRecords, maxBytes);
    for (let si = locateSegment(this.segments, start); si < this.segments.length; si++) {
      const seg = this.segments[si]!;
      for (let i = start - seg.base; i < seg.records.length; i++) {
        if (!visit(seg.records[i]!, seg.sizes[i]!)) return Promise.resolve(out);
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
