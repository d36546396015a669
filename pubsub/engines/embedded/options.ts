/** The embedded engine's options: one typed object, every field with its default (README "Engines: the embedded engine"). */
import { checkInt, checkOneOf, InvalidOptionError, withDefaults } from '../../../core/options.ts';
import { resolveLogOptions } from '../../log/common.ts';
import { FSYNC_POLICIES, type FsyncPolicy, type PartitionLogOptions, type RetentionPolicy } from '../../log/types.ts';

export interface EmbeddedEngineOptions {
  /** Where topics (`<dir>/topics/<name>/`) and group positions (`<dir>/groups/<name>.json`) live. null: in memory. Default null. */
  dir?: string | null;
  /** The logs' fsync policy; group position files are fsync'd too unless it is 'never'. Default 'batch'. */
  fsync?: FsyncPolicy;
  /** Passed to each partition log (its own defaults when absent). */
  segmentBytes?: number;
  indexIntervalBytes?: number;
  /** Record limits, passed to each partition log (pubsub/log LOG_DEFAULTS when absent): largest record (payload + key + headers), most headers, header bytes, key / msgId bytes. */
  maxRecordBytes?: number;
  maxHeaders?: number;
  maxHeaderBytes?: number;
  maxKeyBytes?: number;
  /** How often each log runs retention on its own (pubsub/log's default when absent). */
  retentionIntervalMs?: number;
  /** Bytes of newest written records each log keeps in memory for tail reads (pubsub/log's default, 256 KiB, when absent). */
  tailCacheBytes?: number;
  /** Partitions of a topic created without a config. Default 1. */
  defaultPartitions?: number;
  /** Retention of a topic created without a config. Default {} (keep everything). */
  defaultRetention?: RetentionPolicy;
  /** Dedup window of a topic created without a config. Default 120,000 ms. */
  defaultDuplicateWindowMs?: number;
  /** Most partitions one topic may have. Default 1,024. */
  maxPartitions?: number;
  /** Most message ids remembered per topic for dedup (the oldest are forgotten first). Default 100,000. */
  maxDuplicateIds?: number;
  /** Records a consumer reads from a partition log at once. Default 256. */
  readBatchRecords?: number;
  /** Most records one `read()` returns, whatever `max` asks. Default 10,000. */
  maxReadRecords?: number;
}

export const EMBEDDED_DEFAULTS = {
  dir: null as string | null,
  fsync: 'batch' as FsyncPolicy,
  defaultPartitions: 1,
  defaultRetention: {} as RetentionPolicy,
  defaultDuplicateWindowMs: 120_000,
  maxPartitions: 1024,
  maxDuplicateIds: 100_000,
  readBatchRecords: 256,
  maxReadRecords: 10_000,
};

export type ResolvedEmbeddedOptions = ReturnType<typeof resolveEmbeddedOptions>;

export function resolveEmbeddedOptions(options: EmbeddedEngineOptions) {
  const o = withDefaults(EMBEDDED_DEFAULTS, options);
  if (o.dir !== null && (typeof o.dir !== 'string' || o.dir.length === 0)) throw new InvalidOptionError('dir', 'a directory path or null', o.dir);
  checkOneOf('fsync', o.fsync, FSYNC_POLICIES);
  // The log's own options are checked by the log's rules now, not when the first topic opens.
  resolveLogOptions(logOptions(o, {}));
  checkInt('maxPartitions', o.maxPartitions, 1, 65_536);
  checkInt('defaultPartitions', o.defaultPartitions, 1, o.maxPartitions);
  checkInt('defaultDuplicateWindowMs', o.defaultDuplicateWindowMs, 0, 2 ** 31);
  checkInt('maxDuplicateIds', o.maxDuplicateIds, 0, 2 ** 26);
  checkInt('readBatchRecords', o.readBatchRecords, 1, 100_000);
  checkInt('maxReadRecords', o.maxReadRecords, 1, 10_000_000);
  if (typeof o.defaultRetention !== 'object' || o.defaultRetention === null) throw new InvalidOptionError('defaultRetention', 'an object', o.defaultRetention);
  return o;
}

/** Engine options handed to every partition log as they are. */
const LOG_PASS_THROUGH = ['segmentBytes', 'indexIntervalBytes', 'maxRecordBytes', 'maxHeaders', 'maxHeaderBytes', 'maxKeyBytes', 'retentionIntervalMs', 'tailCacheBytes'] as const;

/** A partition log's options: the engine's fsync policy and pass-through limits, the topic's retention. */
export function logOptions(o: Pick<EmbeddedEngineOptions, (typeof LOG_PASS_THROUGH)[number]> & { fsync: FsyncPolicy }, retention: RetentionPolicy): PartitionLogOptions {
  const out: PartitionLogOptions = { fsync: o.fsync, retention };
  for (const k of LOG_PASS_THROUGH) if (o[k] !== undefined) out[k] = o[k];
  return out;
}
