/**
 * What the file log and the in-memory log share: the options with their DEFAULTS, the durability check and the
 * retention plan (which whole segments go).
 */
import { ErrorCodes, PubsubError } from '../../core/errors.ts';
import { checkInt, checkOneOf, InvalidOptionError, withDefaults } from '../../core/options.ts';
import { FSYNC_POLICIES } from './types.ts';
import { checkAppend } from './record.ts';
import type { AppendInput, Durability, FsyncPolicy, LogRecord, PartitionLogOptions, RetentionPolicy } from './types.ts';

const MiB = 1024 * 1024;

/** The log's defaults (README "The durable log" lists them). */
export const LOG_DEFAULTS = Object.freeze({
  /** Group commit: 'synced' appends wait for the next shared fsync. */
  fsync: 'batch' as FsyncPolicy,
  segmentBytes: 16 * MiB,
  indexIntervalBytes: 4096,
  retention: Object.freeze({}) as RetentionPolicy,
  maxRecordBytes: 1 * MiB,
  maxHeaders: 64,
  maxHeaderBytes: 16 * 1024,
  maxKeyBytes: 1024,
  retentionIntervalMs: 60_000,
  /** Bytes of the newest written records the file log keeps in memory for reads (fan-out readers near the tail). */
  tailCacheBytes: 256 * 1024,
});

export type ResolvedLogOptions = ReturnType<typeof resolveLogOptions>;

export function resolveLogOptions(options: PartitionLogOptions = {}) {
  const o = withDefaults(LOG_DEFAULTS, options);
  checkOneOf('fsync', o.fsync, FSYNC_POLICIES);
  checkInt('segmentBytes', o.segmentBytes, 1024, 2 ** 31 - 1);
  checkInt('indexIntervalBytes', o.indexIntervalBytes, 1, 2 ** 31 - 1);
  checkInt('maxRecordBytes', o.maxRecordBytes, 64, 2 ** 31 - 1);
  checkInt('maxHeaders', o.maxHeaders, 0, 65535);
  checkInt('maxHeaderBytes', o.maxHeaderBytes, 0, 2 ** 31 - 1);
  checkInt('maxKeyBytes', o.maxKeyBytes, 0, 65535);
  checkInt('retentionIntervalMs', o.retentionIntervalMs, 0, 2 ** 31 - 1);
  checkInt('tailCacheBytes', o.tailCacheBytes, 0, 2 ** 31 - 1);
  if (typeof o.retention !== 'object' || o.retention === null) {
    throw new InvalidOptionError('retention', 'an object { maxAgeMs?, maxBytes?, maxRecords? }', o.retention);
  }
  for (const k of ['maxAgeMs', 'maxBytes', 'maxRecords'] as const) {
    const v = o.retention[k];
    if (v !== undefined) checkInt(`retention.${k}`, v, 0, Number.MAX_SAFE_INTEGER);
  }
  return { ...o, retention: { ...o.retention } };
}

/** 'synced' from a log that never fsyncs is refused, not silently downgraded. */
export function checkDurability(durability: Durability, fsync: FsyncPolicy): void {
  if (durability !== 'none' && durability !== 'written' && durability !== 'synced') {
    throw new PubsubError(ErrorCodes.PUBSUB_INVALID, `unknown durability ${String(durability)}`);
  }
  if (durability === 'synced' && fsync === 'never') {
    throw new PubsubError(ErrorCodes.PUBSUB_DURABILITY, "durability 'synced' asked of a log whose fsync policy is 'never'");
  }
}

export function closedError(): PubsubError {
  return new PubsubError(ErrorCodes.CLOSED, 'the partition log is closed');
}

/** What retention needs to know of a segment. */
export interface SegmentSummary {
  records: number;
  bytes: number;
  /** Newest timestamp in the segment (-Infinity when empty). */
  maxTimestamp: number;
}

/**
 * How many of the oldest segments retention deletes. The last (active) segment always stays. Each limit is a
 * ceiling: by age, segments whose newest record is older than maxAgeMs go; by size / count, the oldest segments go
 * while the partition holds more than maxBytes / maxRecords.
 */
export function planRetention(segments: readonly SegmentSummary[], policy: RetentionPolicy, now: number): number {
  let bytes = 0;
  let records = 0;
  for (const s of segments) {
    bytes += s.bytes;
    records += s.records;
  }
  let drop = 0;
  while (drop < segments.length - 1) {
    const s = segments[drop]!;
    const old = policy.maxAgeMs !== undefined && s.maxTimestamp < now - policy.maxAgeMs;
    const big = policy.maxBytes !== undefined && bytes > policy.maxBytes;
    const many = policy.maxRecords !== undefined && records > policy.maxRecords;
    if (!old && !big && !many) break;
    bytes -= s.bytes;
    records -= s.records;
    drop++;
  }
  return drop;
}

export function hasRetention(policy: RetentionPolicy): boolean {
  return policy.maxAgeMs !== undefined || policy.maxBytes !== undefined || policy.maxRecords !== undefined;
}

/** The index of the segment holding `offset` in `segments` (sorted by base, offsets contiguous). */
export function locateSegment(segments: readonly { base: number }[], offset: number): number {
  let lo = 0;
  let hi = segments.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (segments[mid]!.base <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** What both logs keep the same way: offsets, the closed flag, admission of an append, the read collector. */
export abstract class LogBase {
  protected readonly opts: ResolvedLogOptions;
  protected next = 0;
  protected closed = false;
  protected expiredSkipped = 0;
  protected timer: NodeJS.Timeout | undefined;
  protected abstract segments: readonly { base: number }[];

  constructor(options: PartitionLogOptions) {
    this.opts = resolveLogOptions(options);
  }

  get firstOffset(): number {
    return this.segments[0]!.base;
  }

  get nextOffset(): number {
    return this.next;
  }

  abstract applyRetention(now?: number): Promise<void>;

  /** Retention on an unref'd timer, when there is a policy and an interval. */
  protected startRetentionTimer(): void {
    if (!hasRetention(this.opts.retention) || this.opts.retentionIntervalMs <= 0) return;
    this.timer = setInterval(() => void this.applyRetention().catch(() => {}), this.opts.retentionIntervalMs);
    this.timer.unref();
  }

  /** Refuses an append (closed, durability, limits) or returns its frame size. */
  protected admit(input: AppendInput, durability: Durability): number {
    if (this.closed) throw closedError();
    checkDurability(durability, this.opts.fsync);
    return checkAppend(input, this.opts);
  }

  /**
   * A read's visitor: skips (and counts) expired records, collects into `out` up to maxRecords and about maxBytes
   * (always one record when there is one); returns false to stop.
   */
  protected collector(out: LogRecord[], maxRecords: number, maxBytes: number): (rec: LogRecord, size: number) => boolean {
    const now = Date.now();
    let bytes = 0;
    return (rec, size) => {
      if (rec.expiresAt !== undefined && rec.expiresAt <= now) {
        this.expiredSkipped++;
        return true;
      }
      if (out.length > 0 && bytes + size > maxBytes) return false;
      out.push(rec);
      bytes += size;
      return out.length < maxRecords;
    };
  }
}
