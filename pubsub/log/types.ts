/**
 * The durable log's contract (issue 12): one `PartitionLog` per topic partition, append-only, offsets from 0 with no
 * gaps. Implemented by the segment-file log (`openPartitionLog(dir, ...)`) and the in-memory log (`dir: null`).
 * The embedded engine is the only user; front doors never see it.
 */

/** Message headers: string to string (MQTT 5 user properties, HTTP headers, NATS headers all fit). */
export type Headers = Record<string, string>;

/** When an append resolves, and the guarantee the publisher's ack then carries. */
export type Durability =
  /** Queued in the process: lost with it (a producer with acks=0 gets no reply at all). */
  | 'none'
  /** write() completed: in the OS page cache, survives kill -9 of the process, not a power loss. */
  | 'written'
  /** fsync'd: survives a power loss. */
  | 'synced';

/**
 * When the log calls fsync on its own. `never`: the OS decides (an append asking for 'synced' is refused with
 * WL_ERR_PUBSUB_DURABILITY: the trade-off stays visible instead of silently upgraded). `batch`: group commit, one
 * fsync for every record that arrived while the previous fsync ran; 'synced' appends resolve after it. `always`: an
 * fsync after every record, before any later append is written.
 */
export type FsyncPolicy = 'never' | 'batch' | 'always';
export const FSYNC_POLICIES: readonly FsyncPolicy[] = ['never', 'batch', 'always'];

export interface AppendInput {
  payload: Buffer;
  /** Default: Date.now() when appended. */
  timestamp?: number;
  key?: string;
  headers?: Headers;
  /** The producer's message id (dedup: Nats-Msg-Id). Stored so a restarted broker rebuilds its dedup window. */
  msgId?: string;
  /** Absolute expiry (ms since the epoch): a per-message TTL. Expired records are skipped by consumers, counted. */
  expiresAt?: number;
}

export interface LogRecord extends Required<Pick<AppendInput, 'payload' | 'timestamp'>> {
  offset: number;
  key?: string;
  headers: Headers;
  msgId?: string;
  expiresAt?: number;
}

export interface RetentionPolicy {
  /** Whole segments whose newest record is older than this are deleted. Default: unlimited. */
  maxAgeMs?: number;
  /** Oldest segments are deleted while the partition is bigger than this. Default: unlimited. */
  maxBytes?: number;
  /** Oldest records are dropped (segment by segment) while more than this are kept. Default: unlimited. */
  maxRecords?: number;
}

export interface PartitionLogOptions {
  fsync?: FsyncPolicy;
  /** A new segment file starts past this size. */
  segmentBytes?: number;
  /** One sparse index entry per this many bytes of records. */
  indexIntervalBytes?: number;
  retention?: RetentionPolicy;
  /** Largest record accepted (payload + key + headers). */
  maxRecordBytes?: number;
  /** Most headers on one record. */
  maxHeaders?: number;
  /** Most bytes of header names and values on one record. */
  maxHeaderBytes?: number;
  /** Longest key and longest msgId, in UTF-8 bytes. */
  maxKeyBytes?: number;
  /** How often retention runs on its own (an unref'd timer; 0 = only on segment roll and applyRetention()). */
  retentionIntervalMs?: number;
  /**
   * File log: bytes of the newest written records kept in memory, so readers at the tail (every subscriber of a
   * fan-out reads the same records) share them instead of each reading and decoding the file. 0 = off. Default 256 KiB.
   */
  tailCacheBytes?: number;
}

export interface PartitionLogStats {
  records: number;
  bytes: number;
  segments: number;
  firstOffset: number;
  nextOffset: number;
  fsyncs: number;
  /** Every record below this offset is fsync'd (== nextOffset when nothing is pending; the in-memory log: nextOffset). */
  syncedOffset: number;
  /** Bytes cut from a torn or corrupt tail when the log was opened. */
  truncatedBytesOnOpen: number;
  expiredSkipped: number;
}

export interface PartitionLog {
  /** Offset of the oldest record still kept (after retention). */
  readonly firstOffset: number;
  /** Offset the next append gets. */
  readonly nextOffset: number;
  append(input: AppendInput, durability: Durability): Promise<LogRecord>;
  /** Records from `from` (clamped to firstOffset), at most `maxRecords` / about `maxBytes`. */
  read(from: number, maxRecords: number, maxBytes?: number): Promise<LogRecord[]>;
  /** Records from `from` when memory holds them (the file log's tail cache and queued appends), else undefined. */
  readNow?(from: number, maxRecords: number): LogRecord[] | undefined;
  /** The first offset whose timestamp is >= ts (nextOffset when none). */
  offsetForTime(ts: number): Promise<number>;
  /** Runs retention now (it also runs on a timer and on segment roll). */
  applyRetention(now?: number): Promise<void>;
  stats(): PartitionLogStats;
  /** Waits for pending writes (and the fsync the policy owes), then closes the files. */
  close(): Promise<void>;
  /**
   * SIMULATED power loss (the LazyFS model: kill -9 keeps the page cache, a power cut does not): closes the files
   * and truncates each to its last fsync'd length. The next open sees what a machine that lost power would.
   */
  simulatePowerLoss(): Promise<{ lostRecords: number; lostBytes: number }>;
}
