/** `createJetStreamEngine`'s options, their defaults (README "Engines: JetStream") and their checks. */
import { checkInt, checkString, InvalidOptionError, withDefaults } from '../../../core/options.ts';
import { NOOP_TRACER } from '../../../core/trace/index.ts';
import type { Tracer } from '../../../core/trace/index.ts';
import { checkTopic } from '../../subjects.ts';

export interface JetStreamEngineOptions {
  /** NATS URLs (one or every node of the cluster). Required. */
  servers: string | string[];
  /** Replicas of each stream. Default: 3 when the server is part of a cluster, 1 for a single server. */
  replicas?: number;
  /** Stream names start with `<streamPrefix>-`. Default 'WL'. */
  streamPrefix?: string;
  /** Subjects are `<subjectPrefix>.<topic>.<partition>`. Default 'wl'. */
  subjectPrefix?: string;
  /** 'file' (default) or 'memory' stream storage. */
  storage?: 'file' | 'memory';
  /** Give up connecting at start after this (the error names the URL). Default 5,000 ms. */
  connectTimeoutMs?: number;
  /** One publish attempt waits this long for the stream's ack. Default 2,000 ms. */
  publishTimeoutMs?: number;
  /**
   * A publish that fails because the cluster has no leader / quorum or the connection is lost is retried (same msg id:
   * deduplicated) for this long, then rejected with WL_ERR_PUBSUB_UNAVAILABLE. Never dropped silently. Default 15,000 ms.
   */
  publishRetryForMs?: number;
  /**
   * What a publish (acks 1 / all) does when the cluster cannot take it (no stream leader or quorum, the connection
   * lost): 'wait' (default) retries it with the same msg id (stored once) until publishRetryForMs has passed, then
   * rejects it; 'error' rejects it at the first failed attempt. Either way the publisher learns of it: never a silent drop
   * (acks 0 publishes have no reply and are at most once by definition).
   */
  onUnavailable?: 'wait' | 'error';
  /**
   * Partitioned groups across processes: a member's record in the group bucket is rewritten every memberLeaseMs / 3;
   * one not rewritten for memberLeaseMs (its process died) is dropped and its partitions go to the live members.
   * Default 6,000 ms.
   */
  memberLeaseMs?: number;
  /** Pause between retries (publishes and consumer pulls). Default 100 ms. */
  retryDelayMs?: number;
  /** Messages requested per pull. Default 256. */
  pullBatch?: number;
  /** A pull request's lifetime on the server (closing a group member may wait for it: 2.9 cannot cancel one). Default 1,000 ms. */
  pullExpiresMs?: number;
  /** A fan-out subscriber's ephemeral consumer is removed by the server this long after its process stops pulling. Default 30,000 ms. */
  ephemeralInactiveMs?: number;
  /** Records returned by one read() at most. Default 1,000. */
  maxReadRecords?: number;
  tracer?: Tracer;
}

export const DEFAULTS = {
  streamPrefix: 'WL',
  subjectPrefix: 'wl',
  storage: 'file' as 'file' | 'memory',
  connectTimeoutMs: 5000,
  publishTimeoutMs: 2000,
  publishRetryForMs: 15_000,
  onUnavailable: 'wait' as 'wait' | 'error',
  memberLeaseMs: 6000,
  retryDelayMs: 100,
  pullBatch: 256,
  pullExpiresMs: 1000,
  ephemeralInactiveMs: 30_000,
  maxReadRecords: 1000,
  tracer: NOOP_TRACER,
};

export type ResolvedOptions = typeof DEFAULTS & { servers: string[]; replicas: number };

export const DEFAULT_DUPLICATE_WINDOW_MS = 120_000;
export const PROTO = 'jetstream';

/** Defaults filled in and every option checked (InvalidOptionError naming it). `replicas` is settled after connecting. */
export function resolveOptions(options: JetStreamEngineOptions): Omit<ResolvedOptions, 'replicas'> & { replicas?: number } {
  const o = withDefaults(DEFAULTS, options);
  const servers = typeof o.servers === 'string' ? o.servers.split(',') : o.servers;
  if (!Array.isArray(servers) || servers.length === 0 || servers.some((s) => typeof s !== 'string' || s.length === 0)) {
    throw new InvalidOptionError('servers', 'a NATS URL or a list of them', o.servers);
  }
  checkString('streamPrefix', o.streamPrefix);
  if (/[.*>\s/\\]/.test(o.streamPrefix)) throw new InvalidOptionError('streamPrefix', 'a stream name (no . * > / \\ or space)', o.streamPrefix);
  checkTopic(checkString('subjectPrefix', o.subjectPrefix));
  for (const k of ['connectTimeoutMs', 'publishTimeoutMs', 'publishRetryForMs', 'retryDelayMs', 'memberLeaseMs', 'pullExpiresMs', 'ephemeralInactiveMs'] as const) checkInt(k, o[k], 1, 3_600_000);
  checkInt('pullBatch', o.pullBatch, 1, 100_000);
  checkInt('maxReadRecords', o.maxReadRecords, 1, 1_000_000);
  if (o.onUnavailable !== 'wait' && o.onUnavailable !== 'error') throw new InvalidOptionError('onUnavailable', "'wait' or 'error'", o.onUnavailable);
  if (o.storage !== 'file' && o.storage !== 'memory') throw new InvalidOptionError('storage', "'file' or 'memory'", o.storage);
  if (o.replicas !== undefined) checkInt('replicas', o.replicas, 1, 5);
  return { ...o, servers };
}
