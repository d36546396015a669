/**
 * Publishing on JetStream (engine.ts `append`): the partition (explicit, by key, by msg id, else round robin), the
 * headers, acks 0 as a core NATS publish, acks 1 / all as a JetStream publish retried per `onUnavailable`.
 */
import { randomUUID } from 'node:crypto';
import { ErrorCodes, PubsubError } from '../../../core/errors.ts';
import { checkTopic, partitionForKey } from '../../subjects.ts';
import type { AppendRequest, AppendResult } from '../types.ts';
import { encodeHeaders, seqToOffset, subjectFor } from './codec.ts';
import type { JetStreamEngineImpl } from './engine.ts';
import { PROTO } from './options.ts';

export function unavailable(what: string, cause: unknown): PubsubError {
  return new PubsubError(ErrorCodes.PUBSUB_UNAVAILABLE, `${what}: ${(cause as Error)?.message ?? String(cause)}`, { cause });
}

/** Errors worth a retry: no stream leader / quorum (503, timeouts), a connection being re-established. */
export function retryable(err: unknown): boolean {
  const e = err as { code?: string; message?: string; api_error?: { err_code?: number } };
  const code = String(e?.code ?? '');
  const msg = String(e?.message ?? '');
  return code === '503' || code === 'TIMEOUT' || code === 'DISCONNECT' || code === 'CONNECTION_CLOSED' || /timeout|no responders|503|stream leader|no suitable peers|insufficient resources|disconnect|reconnect/i.test(msg + code);
}

export async function append(engine: JetStreamEngineImpl, req: AppendRequest): Promise<AppendResult> {
  checkTopic(req.topic);
  const meta = await engine.meta(req.topic);
  const partitions = meta.partitions;
  let partition: number;
  if (req.partition !== undefined) {
    if (!Number.isInteger(req.partition) || req.partition < 0 || req.partition >= partitions) {
      throw new PubsubError(ErrorCodes.PUBSUB_INVALID, `partition ${req.partition} out of range: topic ${req.topic} has ${partitions}`);
    }
    partition = req.partition;
  } else if (req.key !== undefined) partition = partitionForKey(req.key, partitions);
  // A msg id picks its partition too, so a retried publish meets its first copy's dedup window.
  else if (req.msgId !== undefined) partition = partitionForKey(req.msgId, partitions);
  else partition = partitions === 1 ? 0 : engine.roundRobin++ % partitions;
  const subject = subjectFor(engine.options.subjectPrefix, req.topic, partition);
  const now = Date.now();
  if (req.ttlMs !== undefined && (typeof req.ttlMs !== 'number' || !Number.isInteger(req.ttlMs) || req.ttlMs < 1)) {
    throw new PubsubError(ErrorCodes.PUBSUB_INVALID, `ttlMs must be a positive integer, got ${String(req.ttlMs)}`);
  }
  const dedup = meta.duplicateWindowMs > 0;
  const generatedId = req.msgId === undefined && req.acks !== 0 && dedup;
  const msgId = req.msgId ?? (generatedId ? randomUUID() : undefined);
  const h = encodeHeaders({
    ...(req.headers ? { headers: req.headers } : {}),
    ...(req.key !== undefined ? { key: req.key } : {}),
    ...(msgId !== undefined ? { msgId } : {}),
    generatedId,
    dedup,
    ...(req.ttlMs !== undefined ? { expiresAt: now + req.ttlMs } : {}),
  });
  if (req.acks === 0) {
    try {
      engine.nc.publish(subject, req.payload, { headers: h });
    } catch (err) {
      throw engine.mapError(`publish to ${req.topic}`, err);
    }
    // No reply: the offset is not known (-1), as a Kafka producer with acks=0 does not learn it either.
    return { topic: req.topic, partition, offset: -1, timestamp: now, duplicate: false };
  }
  const deadline = Date.now() + engine.options.publishRetryForMs;
  for (let attempt = 1; ; attempt++) {
    try {
      const ack = await engine.js.publish(subject, req.payload, { headers: h, timeout: engine.options.publishTimeoutMs, ...(msgId && dedup ? { msgID: msgId } : {}) });
      const offset = seqToOffset(ack.seq);
      const t = Date.now();
      if (ack.duplicate) {
        engine.counters.duplicates++;
        engine.emitLineage({ step: 'duplicate', topic: req.topic, msgId: msgId!, offset, t });
      } else {
        engine.emitLineage({ step: 'persisted', topic: req.topic, partition, offset, durability: 'synced', t });
      }
      return { topic: req.topic, partition, offset, timestamp: now, duplicate: ack.duplicate };
    } catch (err) {
      if (engine.isClosed) throw unavailable(`publish to ${req.topic}`, err);
      if (!retryable(err) || engine.options.onUnavailable === 'error' || Date.now() + engine.options.retryDelayMs > deadline) {
        throw engine.mapError(`publish to ${req.topic} (attempt ${attempt}${engine.options.onUnavailable === 'wait' && retryable(err) ? `, retried for ${engine.options.publishRetryForMs} ms` : ''})`, err);
      }
      engine.counters.retries++;
      engine.tracer.emit(PROTO, 'engine', '*', 'retry', () => ({ summary: `publish to ${subject} attempt ${attempt} failed (${(err as Error).message}); retrying with msg id ${msgId}`, meta: { attempt } }));
      await new Promise((r) => setTimeout(r, engine.options.retryDelayMs));
    }
  }
}
