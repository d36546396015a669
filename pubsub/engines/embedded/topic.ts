/**
 * One topic: its config (meta.json), one PartitionLog per partition, and the dedup window (msgId -> first copy),
 * rebuilt from the logs' stored msgIds when the topic is opened.
 */
import { join } from 'node:path';
import { ErrorCodes, PubsubError } from '../../../core/errors.ts';
import type { AppendInput, Durability, LogRecord, PartitionLog, RetentionPolicy } from '../../log/types.ts';
import { partitionForKey } from '../../subjects.ts';
import { type AppendRequest, type AppendResult, type TopicConfig, type TopicInfo } from '../types.ts';
import { readJson, writeJsonAtomic } from './files.ts';
import { logOptions, type ResolvedEmbeddedOptions } from './options.ts';
import { openPartitionLog } from '../../log/index.ts';

export interface TopicMeta {
  name: string;
  partitions: number;
  retention: RetentionPolicy;
  duplicateWindowMs: number;
  created: number;
}

interface DedupEntry {
  t: number;
  result: Promise<AppendResult>;
}

/** Shared by appends without headers (the log copies what it keeps; this object is never written to). */
const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

export function topicDir(root: string, name: string): string {
  return join(root, 'topics', name);
}

export class Topic {
  /** msgId -> first copy, in insertion (time) order, so the oldest are pruned from the front. */
  private readonly dedup = new Map<string, DedupEntry>();

  private constructor(
    readonly meta: TopicMeta,
    readonly logs: PartitionLog[],
    private readonly options: ResolvedEmbeddedOptions,
  ) {}

  get name(): string {
    return this.meta.name;
  }

  /** Creates the topic (writing meta.json) or opens it when `meta` is undefined and the folder holds one. */
  static async open(name: string, options: ResolvedEmbeddedOptions, config?: TopicConfig): Promise<Topic> {
    const dir = options.dir === null ? null : topicDir(options.dir, name);
    let meta = dir === null ? undefined : ((await readJson(join(dir, 'meta.json'))) as TopicMeta | undefined);
    if (meta === undefined) {
      meta = {
        name,
        partitions: config?.partitions ?? options.defaultPartitions,
        retention: config?.retention ?? options.defaultRetention,
        duplicateWindowMs: config?.duplicateWindowMs ?? options.defaultDuplicateWindowMs,
        created: Date.now(),
      };
      checkTopicConfig(meta, options.maxPartitions);
      if (dir !== null) await writeJsonAtomic(join(dir, 'meta.json'), meta, options.fsync !== 'never');
    }
    const forLog = logOptions(options, meta.retention);
    const logs: PartitionLog[] = [];
    try {
      for (let p = 0; p < meta.partitions; p++) logs.push(await openPartitionLog(dir === null ? null : join(dir, String(p)), forLog));
    } catch (err) {
      await Promise.allSettled(logs.map((l) => l.close()));
      throw err;
    }
    const topic = new Topic(meta, logs, options);
    await topic.rebuildDedup();
    return topic;
  }

  partitionOf(request: Pick<AppendRequest, 'key' | 'partition'>): number {
    const n = this.meta.partitions;
    if (request.partition !== undefined) {
      if (!Number.isInteger(request.partition) || request.partition < 0 || request.partition >= n) {
        throw new PubsubError(ErrorCodes.PUBSUB_INVALID, `partition ${request.partition} out of range: ${this.name} has ${n}`);
      }
      return request.partition;
    }
    if (request.key !== undefined) return partitionForKey(request.key, n);
    return n === 1 ? 0 : this.roundRobin++ % n;
  }

  private roundRobin = 0;

  /**
   * Appends, or answers a duplicate msgId (within the window) with the first copy's offset. A failed append forgets
   * its msgId, so a retry is stored.
   */
  append(request: AppendRequest, onStored: (rec: LogRecord, partition: number, durability: Durability) => void): { result: Promise<AppendResult>; duplicate: boolean } {
    const now = Date.now();
    const msgId = request.msgId;
    const dedup = msgId !== undefined && this.meta.duplicateWindowMs > 0;
    if (dedup) {
      this.pruneDedup(now);
      const seen = this.dedup.get(msgId);
      if (seen) return { result: seen.result.then((r) => ({ ...r, duplicate: true })), duplicate: true };
    }
    const partition = this.partitionOf(request);
    const input: AppendInput = { payload: request.payload, timestamp: now, headers: request.headers ?? NO_HEADERS };
    if (request.key !== undefined) input.key = request.key;
    if (msgId !== undefined) input.msgId = msgId;
    if (request.ttlMs !== undefined) input.expiresAt = now + request.ttlMs;
    const durability = request.acks === 'all' ? 'synced' : request.acks === 1 ? 'written' : request.acks === 0 ? 'none' : undefined;
    if (durability === undefined) throw new PubsubError(ErrorCodes.PUBSUB_INVALID, `acks must be 0, 1 or 'all'`);
    const name = this.name;
    const result = this.logs[partition]!.append(input, durability).then((rec): AppendResult => {
      onStored(rec, partition, durability);
      return { topic: name, partition, offset: rec.offset, timestamp: rec.timestamp, duplicate: false };
    });
    if (dedup) {
      this.remember(msgId, now, result);
      result.catch(() => {
        if (this.dedup.get(msgId)?.result === result) this.dedup.delete(msgId);
      });
    }
    return { result, duplicate: false };
  }

  private remember(msgId: string, t: number, result: Promise<AppendResult>): void {
    this.dedup.set(msgId, { t, result });
    if (this.dedup.size > this.options.maxDuplicateIds) this.dedup.delete(this.dedup.keys().next().value!);
  }

  private pruneDedup(now: number): void {
    const oldest = now - this.meta.duplicateWindowMs;
    for (const [id, e] of this.dedup) {
      if (e.t >= oldest) break;
      this.dedup.delete(id);
    }
  }

  /** Reads each partition's records inside the window (the log keeps msgIds) so a restart keeps deduplicating. */
  private async rebuildDedup(): Promise<void> {
    if (this.meta.duplicateWindowMs <= 0 || this.options.maxDuplicateIds === 0) return;
    const since = Date.now() - this.meta.duplicateWindowMs;
    const found: { t: number; result: AppendResult; msgId: string }[] = [];
    for (let p = 0; p < this.logs.length; p++) {
      const log = this.logs[p]!;
      let from = await log.offsetForTime(since);
      while (from < log.nextOffset) {
        const batch = await log.read(from, this.options.readBatchRecords);
        if (batch.length === 0) break;
        for (const r of batch) {
          if (r.msgId !== undefined) found.push({ t: r.timestamp, msgId: r.msgId, result: { topic: this.name, partition: p, offset: r.offset, timestamp: r.timestamp, duplicate: false } });
        }
        from = batch[batch.length - 1]!.offset + 1;
      }
    }
    found.sort((a, b) => a.t - b.t);
    for (const f of found) if (!this.dedup.has(f.msgId)) this.remember(f.msgId, f.t, Promise.resolve(f.result));
  }

  info(): TopicInfo {
    return {
      name: this.name,
      partitions: this.meta.partitions,
      partitionInfo: this.logs.map((log, partition) => {
        const s = log.stats();
        return { partition, firstOffset: log.firstOffset, nextOffset: log.nextOffset, records: s.records, bytes: s.bytes };
      }),
      config: { partitions: this.meta.partitions, duplicateWindowMs: this.meta.duplicateWindowMs, retention: this.meta.retention },
    };
  }

  async close(): Promise<void> {
    await Promise.all(this.logs.map((l) => l.close()));
  }
}

function checkTopicConfig(meta: TopicMeta, maxPartitions: number): void {
  const bad = (what: string): PubsubError => new PubsubError(ErrorCodes.PUBSUB_INVALID, `topic ${meta.name}: ${what}`);
  if (!Number.isInteger(meta.partitions) || meta.partitions < 1) throw bad('partitions must be an integer >= 1');
  if (meta.partitions > maxPartitions) {
    throw new PubsubError(ErrorCodes.PUBSUB_LIMIT, `topic ${meta.name}: ${meta.partitions} partitions > maxPartitions ${maxPartitions}`, { limit: 'maxPartitions' });
  }
  if (!Number.isInteger(meta.duplicateWindowMs) || meta.duplicateWindowMs < 0) throw bad('duplicateWindowMs must be an integer >= 0');
  if (typeof meta.retention !== 'object' || meta.retention === null) throw bad('retention must be an object');
}
