/**
 * The segment-file PartitionLog (`openPartitionLog(dir, ...)`). One writer loop writes appends in offset order, as
 * few write() calls as it can (every append that arrived while the previous write ran goes in the next one); the
 * fsync policy decides when fsync runs:
 *
 * - `never`: never (a 'synced' append is refused with WL_ERR_PUBSUB_DURABILITY);
 * - `batch`: group commit: after each write, one fsync is requested; while one runs, at most one more is queued,
 *   and it covers everything written meanwhile, so N concurrent appends cost far fewer than N fsyncs;
 * - `always`: one record per write, each followed by its fsync before the next record is written.
 *
 * 'none' resolves when the append is queued, 'written' after its write() completed, 'synced' after an fsync that
 * started after its write completed. Reads see queued records too (served from memory until written).
 */
import { promises as fsp } from 'node:fs';
import { WirelabError } from '../../../core/errors.ts';
import { encodeRecord, toRecord } from '../record.ts';
import { closedError, locateSegment, LogBase, planRetention } from '../common.ts';
import type { AppendInput, Durability, LogRecord, PartitionLog, PartitionLogOptions, PartitionLogStats } from '../types.ts';
import {
  closeHandles,
  corrupt,
  floorEntry,
  INDEX_ENTRY_BYTES,
  indexRecord,
  newSegment,
  openSegment,
  scanFile,
  type Segment,
  timeEntry,
  writeIndex,
} from './segment.ts';
import { fdatasync, syncDir, writeFrames } from './io.ts';

/** Largest single write() the writer loop builds from queued appends. */
const MAX_WRITE_BYTES = 4 * 1024 * 1024;
/** Index entries (one per indexIntervalBytes of log) gathered before the index file is written. */
const INDEX_WRITE_ENTRIES = 32;

interface QueuedAppend {
  seg: Segment;
  rec: LogRecord;
  frame: Buffer;
  durability: Durability;
  resolve: (rec: LogRecord) => void;
  reject: (err: Error) => void;
}

type Visit = (rec: LogRecord, size: number) => boolean;

export class FilePartitionLog extends LogBase implements PartitionLog {
  private readonly dir: string;
  protected segments: Segment[] = [];
  /** Offsets below this are written / fsync'd. */
  private writtenNext = 0;
  private syncedNext = 0;
  private queue: QueuedAppend[] = [];
  private syncWaiters: QueuedAppend[] = [];
  private writing: Promise<void> | null = null;
  private kickScheduled = false;
  private syncRunning: Promise<void> | null = null;
  private syncQueued: Promise<void> | null = null;
  private failed: Error | null = null;
  private powerLost = false;
  private retaining: Promise<void> = Promise.resolve();
  private fsyncs = 0;
  private truncatedBytesOnOpen = 0;
  /** The newest written records, contiguous, ending at writtenNext (tailCacheBytes of them): reads at the tail. */
  private tail: { rec: LogRecord; size: number }[] = [];
  private tailBytes = 0;

  private constructor(dir: string, options: PartitionLogOptions) {
    super(options);
    this.dir = dir;
  }

  static async open(dir: string, options: PartitionLogOptions = {}): Promise<FilePartitionLog> {
    const log = new FilePartitionLog(dir, options);
    await log.load();
    log.startRetentionTimer();
    return log;
  }

  /** Opens every segment in order; the first torn or corrupt tail ends the log there (later segments go). */
  private async load(): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true });
    const bases = (await fsp.readdir(this.dir))
      .map((n) => /^(\d{20})\.log$/.exec(n))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    const interval = this.opts.indexIntervalBytes;
    for (let i = 0; i < bases.length; i++) {
      const base = bases[i]!;
      if (i > 0 && base !== this.next) {
        await this.dropFrom(bases.slice(i));
        break;
      }
      const { seg, goodEnd, fileSize, nextOffset } = await openSegment(this.dir, base, interval);
      this.segments.push(seg);
      this.next = nextOffset;
      const following = bases[i + 1];
      if (goodEnd < fileSize || (following !== undefined && following !== nextOffset)) {
        this.truncatedBytesOnOpen += fileSize - goodEnd;
        await seg.fd!.truncate(goodEnd);
        if (this.opts.fsync !== 'never') await seg.fd!.sync();
        await this.dropFrom(bases.slice(i + 1));
        break;
      }
    }
    // An empty sealed segment left by a cut (all its records torn) stays only if it is the last one.
    if (this.segments.length === 0) this.segments.push(newSegment(this.dir, 0));
    this.writtenNext = this.syncedNext = this.next;
    const last = this.segments[this.segments.length - 1]!;
    if (this.opts.fsync !== 'never' && last.fd) await last.fd.sync();
  }

  /** Deletes segments that can no longer follow without a gap (counted as truncated). */
  private async dropFrom(bases: number[]): Promise<void> {
    for (const base of bases) {
      const s = newSegment(this.dir, base);
      const size = await fsp.stat(s.logPath).then((st) => st.size, () => 0);
      this.truncatedBytesOnOpen += size;
      await fsp.rm(s.logPath, { force: true });
      await fsp.rm(s.indexPath, { force: true });
    }
  }

  append(input: AppendInput, durability: Durability): Promise<LogRecord> {
    try {
      if (this.failed && !this.closed) throw this.failedError();
      const size = this.admit(input, durability);
      let seg = this.segments[this.segments.length - 1]!;
      let rolled = false;
      if (seg.size > 0 && seg.size + size > this.opts.segmentBytes) {
        seg = newSegment(this.dir, this.next);
        this.segments = [...this.segments, seg];
        rolled = true;
      }
      const rec = toRecord(input, this.next++, Date.now());
      const frame = encodeRecord(rec, size);
      indexRecord(seg, rec, size, this.opts.indexIntervalBytes);
      seg.pending.push({ rec, frame });
      const p = new Promise<LogRecord>((resolve, reject) => {
        this.queue.push({ seg, rec, frame, durability, resolve, reject });
      });
      this.kick();
      if (rolled) this.retentionOnRoll();
      if (durability === 'none') {
        p.catch(() => {});
        return Promise.resolve(rec);
      }
      return p;
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  /** Retention after a roll, one run at a time; close() waits for it. */
  private retentionOnRoll(): void {
    this.retaining = this.retaining.then(() => this.applyRetention()).catch(() => {});
  }

  private failedError(): WirelabError {
    return new WirelabError('WL_ERR_CLOSED', 'the partition log failed a write or fsync and is closed', { cause: this.failed });
  }

  /** Starts the writer after the current tick, so the appends of one tick share a write. */
  private kick(): void {
    if (this.writing || this.kickScheduled) return;
    this.kickScheduled = true;
    queueMicrotask(() => {
      this.kickScheduled = false;
      if (!this.writing && this.queue.length > 0) {
        this.writing = this.writeLoop().finally(() => {
          this.writing = null;
          if (this.queue.length > 0 && !this.failed) this.kick();
        });
      }
    });
  }

  private async writeLoop(): Promise<void> {
    while (this.queue.length > 0 && !this.failed) {
      const seg = this.queue[0]!.seg;
      let n = 0;
      let bytes = 0;
      const one = this.opts.fsync === 'always';
      while (n < this.queue.length && this.queue[n]!.seg === seg && (n === 0 || (!one && bytes + this.queue[n]!.frame.length <= MAX_WRITE_BYTES))) {
        bytes += this.queue[n]!.frame.length;
        n++;
      }
      const batch = this.queue.splice(0, n);
      try {
        if (!seg.fd) {
          seg.fd = await fsp.open(seg.logPath, 'w+');
          if (this.opts.fsync !== 'never') await syncDir(this.dir);
        }
        await writeFrames(seg.fd.fd, batch.map((b) => b.frame), bytes, seg.written);
      } catch (err) {
        this.fail(err as Error, batch);
        return;
      }
      // The index (a cache, never fsync'd by a group commit) is written while the fsync runs, not before it is asked for.
      // Written in batches of entries (or once the segment is sealed, or at close): a lagging index costs a longer
      // scan on open, never a wrong read (openSegment scans from the last entry it trusts).
      const lag = seg.entries.length - seg.indexWritten;
      const sealed = seg !== this.segments[this.segments.length - 1];
      const indexed = (lag >= INDEX_WRITE_ENTRIES || (sealed && lag > 0) ? writeIndex(seg) : Promise.resolve()).then(
        () => null,
        (err: unknown) => err as Error,
      );
      seg.written += bytes;
      seg.pending.splice(0, n);
      this.remember(batch);
      this.writtenNext = batch[n - 1]!.rec.offset + 1;
      for (const a of batch) {
        if (a.durability === 'synced') this.syncWaiters.push(a);
        else a.resolve(a.rec);
      }
      if (this.opts.fsync === 'always') await this.requestSync();
      else if (this.opts.fsync === 'batch') void this.requestSync();
      const indexError = await indexed;
      if (indexError) return this.fail(indexError, []);
    }
  }

  /** Keeps the records just written in the tail cache, dropping the oldest past tailCacheBytes (down to 3/4 of it). */
  private remember(batch: QueuedAppend[]): void {
    const max = this.opts.tailCacheBytes;
    if (max === 0) return;
    for (const a of batch) {
      this.tail.push({ rec: a.rec, size: a.frame.length });
      this.tailBytes += a.frame.length;
    }
    if (this.tailBytes <= max) return;
    let drop = 0;
    while (drop < this.tail.length && this.tailBytes > (max * 3) / 4) this.tailBytes -= this.tail[drop++]!.size;
    this.tail.splice(0, drop);
  }

  /** Serves a read from memory when it starts inside the tail cache: cached records, then the queued ones. */
  private readTail(cursor: number, visit: Visit): boolean {
    const first = this.tail.length > 0 ? this.tail[0]!.rec.offset : this.writtenNext;
    if (cursor < first || cursor < this.segments[0]!.base) return false;
    for (let i = cursor - first; i < this.tail.length; i++) {
      const t = this.tail[i]!;
      if (!visit(t.rec, t.size)) return true;
    }
    const segs = this.segments;
    for (let si = locateSegment(segs, Math.max(cursor, this.writtenNext)); si < segs.length; si++) {
      for (const p of segs[si]!.pending) {
        if (p.rec.offset < cursor) continue;
        if (!visit(p.rec, p.frame.length)) return true;
      }
    }
    return true;
  }

  /** Group commit: one fsync running, at most one queued behind it; the queued one covers every later write. */
  private requestSync(): Promise<void> {
    if (this.syncQueued) return this.syncQueued;
    if (!this.syncRunning) return this.startSync();
    const queued = this.syncRunning.then(() => {
      this.syncQueued = null;
      return this.startSync();
    });
    this.syncQueued = queued;
    return queued;
  }

  private startSync(): Promise<void> {
    const run = this.doSync().finally(() => {
      if (this.syncRunning === run) this.syncRunning = null;
    });
    this.syncRunning = run;
    return run;
  }

  private async doSync(): Promise<void> {
    if (this.failed || this.powerLost) return;
    const upTo = this.writtenNext;
    // Only the .log files: the index is a cache (segment.ts), checked and rebuilt on open, so a group commit does not
    // wait for a second fsync (a power loss may cut the index back to what its last open left synced).
    const dirty = this.segments.filter((s) => s.fd && s.written > s.synced);
    const marks = dirty.map((s) => ({ s, written: s.written }));
    for (const m of marks) m.s.refs++;
    try {
      await Promise.all(
        marks.map(async (m) => {
          // fdatasync: the data and the size needed to read it back (POSIX), without timestamps.
          await fdatasync(m.s.fd!.fd);
          this.fsyncs++;
        }),
      );
    } catch (err) {
      this.fail(err as Error, []);
      return;
    } finally {
      for (const m of marks) this.release(m.s);
    }
    for (const m of marks) {
      m.s.synced = Math.max(m.s.synced, m.written);
    }
    if (upTo > this.syncedNext) this.syncedNext = upTo;
    let i = 0;
    while (i < this.syncWaiters.length && this.syncWaiters[i]!.rec.offset < this.syncedNext) i++;
    for (const a of this.syncWaiters.splice(0, i)) a.resolve(a.rec);
  }

  /** A failed write or fsync: the log can no longer promise anything; every waiting append is refused. */
  private fail(err: Error, batch: QueuedAppend[]): void {
    if (!this.failed) this.failed = err;
    const e = this.failedError();
    for (const a of [...batch, ...this.syncWaiters.splice(0), ...this.queue.splice(0)]) a.reject(e);
  }

  private release(seg: Segment): void {
    seg.refs--;
    if (seg.deleted && seg.refs === 0) void closeHandles(seg);
  }

  /** Visits the records of `seg` from `from` (file part, then the queued ones); false when `visit` stopped. */
  private async visitSegment(seg: Segment, startRel: number, from: number, visit: Visit): Promise<boolean> {
    const entry = floorEntry(seg.entries, startRel);
    let pos = entry ? entry.pos : 0;
    let offset = seg.base + (entry ? entry.rel : 0);
    seg.refs++;
    try {
      for (;;) {
        if (pos < seg.written && seg.fd) {
          const res = await scanFile(seg.fd, pos, offset, seg.written, (rec, size) => rec.offset < from || visit(rec, size));
          if (res.reason === 'stop') return false;
          if (res.reason !== 'end') throw corrupt(seg, res.pos, res.reason === 'offset' ? `expected offset ${res.offset}` : `${res.reason} frame`);
          pos = res.pos;
          offset = res.offset;
          continue; // more may have been written meanwhile
        }
        // What is left is queued (not written yet); served from memory, synchronously.
        for (const p of seg.pending) {
          if (p.rec.offset < Math.max(from, offset)) continue;
          if (!visit(p.rec, p.frame.length)) return false;
        }
        return true;
      }
    } finally {
      this.release(seg);
    }
  }

  async read(from: number, maxRecords: number, maxBytes = Infinity): Promise<LogRecord[]> {
    if (this.closed) throw closedError();
    const out: LogRecord[] = [];
    const segs = this.segments;
    let cursor = Math.max(Math.floor(from), segs[0]!.base);
    if (cursor >= this.next || maxRecords <= 0) return out;
    const visit = this.collector(out, maxRecords, maxBytes);
    if (this.readTail(cursor, visit)) return out;
    for (let si = locateSegment(segs, cursor); si < segs.length; si++) {
      const seg = segs[si]!;
      if (!(await this.visitSegment(seg, cursor - seg.base, cursor, visit))) break;
      cursor = seg.base + seg.records;
    }
    return out;
  }

  readNow(from: number, maxRecords: number): LogRecord[] | undefined {
    if (this.closed) return undefined;
    const out: LogRecord[] = [];
    const cursor = Math.max(Math.floor(from), this.segments[0]!.base);
    if (cursor >= this.next || maxRecords <= 0) return out;
    return this.readTail(cursor, this.collector(out, maxRecords, Infinity)) ? out : undefined;
  }

  async offsetForTime(ts: number): Promise<number> {
    for (const seg of this.segments) {
      if (seg.maxTimestamp < ts) continue;
      const entry = timeEntry(seg.entries, ts);
      let found = -1;
      await this.visitSegment(seg, entry ? entry.rel : 0, seg.base, (rec) => {
        if (rec.timestamp < ts) return true;
        found = rec.offset;
        return false;
      });
      if (found >= 0) return found;
    }
    return this.next;
  }

  async applyRetention(now = Date.now()): Promise<void> {
    if (this.closed) return;
    const segs = this.segments;
    let drop = planRetention(
      segs.map((s) => ({ records: s.records, bytes: s.size, maxTimestamp: s.maxTimestamp })),
      this.opts.retention,
      now,
    );
    // A segment still being written (queued records after a roll) stays until its writes are done.
    for (let i = 0; i < drop; i++) {
      if (segs[i]!.pending.length > 0) {
        drop = i;
        break;
      }
    }
    if (drop === 0) return;
    const gone = segs.slice(0, drop);
    this.segments = segs.slice(drop);
    for (const s of gone) {
      s.deleted = true;
      await fsp.rm(s.logPath, { force: true });
      await fsp.rm(s.indexPath, { force: true });
      if (s.refs === 0) await closeHandles(s);
    }
  }

  stats(): PartitionLogStats {
    let bytes = 0;
    for (const s of this.segments) bytes += s.size;
    return {
      records: this.next - this.firstOffset,
      bytes,
      segments: this.segments.length,
      firstOffset: this.firstOffset,
      nextOffset: this.next,
      fsyncs: this.fsyncs,
      syncedOffset: this.syncedNext,
      truncatedBytesOnOpen: this.truncatedBytesOnOpen,
      expiredSkipped: this.expiredSkipped,
    };
  }

  /** Waits for queued writes to finish (and, unless fsync is 'never', for a last fsync), then closes the files. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.drainWrites(true);
    await this.retaining;
    for (const seg of this.segments) if (seg.fd && !this.failed) await writeIndex(seg).catch(() => {});
    if (this.opts.fsync !== 'never' && !this.failed) await this.requestSync();
    await Promise.all(this.segments.map((s) => closeHandles(s)));
  }

  private async drainWrites(waitSync: boolean): Promise<void> {
    while (this.writing || this.kickScheduled || (this.queue.length > 0 && !this.failed)) {
      if (this.writing) await this.writing;
      else await new Promise<void>((r) => setImmediate(r));
    }
    while (waitSync && this.syncRunning) await this.syncRunning;
  }

  /**
   * SIMULATED power loss: queued writes finish (into the "page cache"), no more fsync runs, then every file is cut
   * to the length its last fsync covered. Appends still waiting for an fsync are refused (they were never acked).
   */
  async simulatePowerLoss(): Promise<{ lostRecords: number; lostBytes: number }> {
    if (this.closed) throw closedError();
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.powerLost = true; // no fsync starts from here on; the one running (if any) comes too late
    await this.drainWrites(false);
    const lostRecords = this.next - Math.max(this.syncedNext, this.firstOffset);
    let lostBytes = 0;
    this.fail(new WirelabError('WL_ERR_CLOSED', 'simulated power loss'), []);
    for (const s of this.segments) {
      await closeHandles(s);
      lostBytes += s.size - s.synced;
      await fsp.truncate(s.logPath, s.synced).catch(() => {});
      await fsp.truncate(s.indexPath, s.indexSynced * INDEX_ENTRY_BYTES).catch(() => {});
    }
    return { lostRecords, lostBytes };
  }
}
