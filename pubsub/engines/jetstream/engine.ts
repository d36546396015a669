/**
 * The Engine (pubsub/engines/types.ts) on NATS JetStream. Mapping (README "Engines: JetStream"):
 * - topic partition -> one stream `<streamPrefix>-<topic>-P<p>` with the one subject `<subjectPrefix>.<topic>.<p>`
 *   (a stream per partition, so an offset is exactly the stream sequence - 1, and retention is per partition as in the
 *   embedded log); the topic's partition count and dedup window live in the stream's description, so every process
 *   pointed at the cluster sees the same topics.
 * - acks 1 / all -> the stream's publish ack, sent after the Raft commit on a majority of its replicas (R3 by default);
 *   acks 0 -> a core NATS publish, no reply.
 * - dedup -> `Nats-Msg-Id` within the stream's duplicate window; a publish without msgId gets a generated one so the
 *   engine's own retries (leader lost, no quorum) are deduplicated too.
 * - consumer group -> a durable pull consumer per partition stream; fan-out -> ephemeral pull consumers.
 * - maxDeliver -> the consumer's max_deliver; the MAX_DELIVERIES advisory is turned into the dead-letter topic.
 * - TTL -> an expiry header checked at delivery (nats-server 2.9 has no per-message TTL).
 */
import { connect, type JetStreamClient, type JetStreamManager, type NatsConnection, type StreamConfig, type StreamInfo, RetentionPolicy as NatsRetention, StorageType, DiscardPolicy } from 'nats';
import { randomUUID } from 'node:crypto';
import { ErrorCodes, PubsubError, WirelabError } from '../../../core/errors.ts';
import { checkInt, checkString, InvalidOptionError, withDefaults } from '../../../core/options.ts';
import { NOOP_TRACER, type Tracer } from '../../../core/trace/index.ts';
import { checkPattern, checkTopic, matches, partitionForKey } from '../../subjects.ts';
import type { LogRecord, RetentionPolicy } from '../../log/types.ts';
import type { AppendRequest, AppendResult, ConsumerSpec, Delivery, Engine, EngineConsumer, GroupInfo, LineageStep, TopicConfig, TopicInfo } from '../types.ts';
import { decodeRecord, encodeHeaders, encodeName, msToNanos, parseMeta, seqToOffset, streamName, subjectFor, type StreamMeta } from './codec.ts';
import { JsEngineConsumer, parseConsumerDescription } from './consumer.ts';
import { checkConsumerSpec } from './spec.ts';
import { Puller } from './puller.ts';

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

const DEFAULTS = {
  streamPrefix: 'WL',
  subjectPrefix: 'wl',
  storage: 'file' as 'file' | 'memory',
  connectTimeoutMs: 5000,
  publishTimeoutMs: 2000,
  publishRetryForMs: 15_000,
  retryDelayMs: 100,
  pullBatch: 256,
  pullExpiresMs: 1000,
  ephemeralInactiveMs: 30_000,
  maxReadRecords: 1000,
  tracer: NOOP_TRACER,
};

export type ResolvedOptions = typeof DEFAULTS & { servers: string[]; replicas: number };

const DEFAULT_DUPLICATE_WINDOW_MS = 120_000;
const PROTO = 'jetstream';

export interface DeadLetterInput {
  stream: string;
  seq: number;
  topic: string;
  partition: number;
  deliveries: number;
  reason: string;
  deadLetterTopic: string;
  group?: string;
}

function unavailable(what: string, cause: unknown): PubsubError {
  return new PubsubError(ErrorCodes.PUBSUB_UNAVAILABLE, `${what}: ${(cause as Error)?.message ?? String(cause)}`, { cause });
}

/** Errors worth a retry: no stream leader / quorum (503, timeouts), a connection being re-established. */
function retryable(err: unknown): boolean {
  const e = err as { code?: string; message?: string; api_error?: { err_code?: number } };
  const code = String(e?.code ?? '');
  const msg = String(e?.message ?? '');
  return code === '503' || code === 'TIMEOUT' || code === 'DISCONNECT' || code === 'CONNECTION_CLOSED' || /timeout|no responders|503|stream leader|no suitable peers|insufficient resources|disconnect|reconnect/i.test(msg + code);
}

export class JetStreamEngineImpl implements Engine {
  readonly kind = 'jetstream' as const;
  readonly counters = { expired: 0, retries: 0, deadLettered: 0, duplicates: 0 };
  private readonly topicCache = new Map<string, Promise<StreamMeta>>();
  private readonly consumers = new Set<JsEngineConsumer>();
  private readonly listeners = new Set<(s: LineageStep) => void>();
  private readonly deadLettered = new Map<string, number>();
  private readonly redelivered = new Map<string, number>();
  private readonly rebalancing = new Map<string, Promise<void>>();
  private readonly pullers = new Map<string, Promise<Puller>>();
  private roundRobin = 0;
  isClosed = false;

  constructor(
    readonly options: ResolvedOptions,
    readonly nc: NatsConnection,
    readonly js: JetStreamClient,
    readonly jsm: JetStreamManager,
  ) {}

  get tracer(): Tracer {
    return this.options.tracer;
  }

  traceError(cid: string, what: string, err: unknown): void {
    this.tracer.emit(PROTO, cid, '*', 'error', () => ({ summary: `${what}: ${(err as Error)?.message ?? String(err)}`, meta: { code: (err as { code?: string })?.code } }));
  }

  countRedelivery(group: string): void {
    this.redelivered.set(group, (this.redelivered.get(group) ?? 0) + 1);
  }

  emitLineage(step: LineageStep): void {
    for (const l of this.listeners) {
      try {
        l(step);
      } catch (err) {
        this.traceError('engine', 'lineage listener', err);
      }
    }
  }

  onLineage(listener: (step: LineageStep) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Background: topics other processes create (pattern consumers attach), DLQ advisories (one handler per cluster). */
  async watch(): Promise<void> {
    const created = this.nc.subscribe('$JS.EVENT.ADVISORY.STREAM.CREATED.*', {
      callback: (err, msg) => {
        if (err) return;
        const name = msg.subject.split('.').pop()!;
        if (!name.startsWith(this.options.streamPrefix + '-')) return;
        this.jsm.streams.info(name).then(
          (info) => this.onStream(info, true),
          (e: unknown) => this.traceError('engine', `stream ${name}`, e),
        );
      },
    });
    const deleted = this.nc.subscribe('$JS.EVENT.ADVISORY.STREAM.DELETED.*', {
      callback: (err, msg) => {
        if (err) return;
        const name = msg.subject.split('.').pop()!;
        for (const [topic, p] of this.topicCache) {
          p.then(
            (m) => {
              if (name === streamName(this.options.streamPrefix, topic, m.partition)) this.topicCache.delete(topic);
            },
            () => undefined,
          );
        }
      },
    });
    // A queue subscription: with several wirelab processes on one cluster, each advisory is handled once.
    const maxDeliveries = this.nc.subscribe('$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>', {
      queue: `${this.options.streamPrefix}-dlq`,
      callback: (err, msg) => {
        if (err) return;
        let a: { stream: string; consumer: string; stream_seq: number; deliveries: number };
        try {
          a = msg.json();
        } catch {
          return;
        }
        if (!a.stream?.startsWith(this.options.streamPrefix + '-')) return;
        void this.settleDeadLettered(a.stream, a.stream_seq)
          .then(() => this.onMaxDeliveries(a))
          .catch((e: unknown) => this.traceError('engine', 'max-deliveries advisory', e));
      },
    });
    // Every process: its own member still holding the last delivery acks it (the ack floor moves past it).
    const settle = this.nc.subscribe('$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>', {
      callback: (err, msg) => {
        if (err) return;
        try {
          const a = msg.json<{ stream: string; stream_seq: number }>();
          void this.settleDeadLettered(a.stream, a.stream_seq);
        } catch {
          // not an advisory
        }
      },
    });
    void Promise.all([created.closed, deleted.closed, maxDeliveries.closed, settle.closed]).catch(() => undefined);
    await this.nc.flush();
  }

  private async settleDeadLettered(stream: string, seq: number): Promise<void> {
    await Promise.all([...this.consumers].map((c) => c.settleDeadLettered(stream, seq)));
  }

  private async onMaxDeliveries(a: { stream: string; consumer: string; stream_seq: number; deliveries: number }): Promise<void> {
    const info = await this.jsm.streams.info(a.stream);
    const meta = parseMeta(info.config.description);
    if (!meta) return;
    const ci = await this.jsm.consumers.info(a.stream, a.consumer).catch(() => undefined);
    const desc = parseConsumerDescription(ci?.config.description);
    await this.deadLetter({
      stream: a.stream,
      seq: a.stream_seq,
      topic: meta.topic,
      partition: meta.partition,
      deliveries: a.deliveries,
      reason: 'maxDeliver',
      deadLetterTopic: desc?.deadLetterTopic ?? `$dlq.${meta.topic}`,
      ...(desc?.group ? { group: desc.group } : {}),
    });
  }

  /** Copies a record to the dead-letter topic with the `wl-dlq-*` headers (deduplicated: safe to repeat). */
  async deadLetter(d: DeadLetterInput, then?: () => void): Promise<void> {
    const stored = await this.jsm.streams.getMessage(d.stream, { seq: d.seq });
    const record = decodeRecord(stored.seq, stored.time.getTime(), stored.data, stored.header);
    await this.append({
      topic: d.deadLetterTopic,
      payload: record.payload,
      ...(record.key !== undefined ? { key: record.key } : {}),
      headers: {
        ...record.headers,
        'wl-dlq-reason': d.reason,
        'wl-dlq-topic': d.topic,
        'wl-dlq-partition': String(d.partition),
        'wl-dlq-offset': String(record.offset),
        'wl-dlq-deliveries': String(d.deliveries),
      },
      msgId: `dlq:${d.stream}:${d.seq}`,
      acks: 'all',
    });
    then?.();
    this.counters.deadLettered++;
    if (d.group) this.deadLettered.set(d.group, (this.deadLettered.get(d.group) ?? 0) + 1);
    this.emitLineage({ step: 'dead-lettered', topic: d.topic, partition: d.partition, offset: record.offset, reason: d.reason, deadLetterTopic: d.deadLetterTopic, t: Date.now() });
  }

  private onStream(info: StreamInfo, late: boolean): void {
    const meta = parseMeta(info.config.description);
    if (!meta) return;
    for (const c of this.consumers) {
      if (matches(c.spec.pattern, meta.topic)) {
        if (c.spec.group?.mode === 'partitioned') void this.rebalance(c.group!);
        else void c.attach(info.config.name, meta);
      }
    }
  }

  // ---- topics ----

  private streamConfig(topic: string, partition: number, partitions: number, config: TopicConfig): Partial<StreamConfig> {
    const retention: RetentionPolicy = config.retention ?? {};
    let dup = config.duplicateWindowMs ?? DEFAULT_DUPLICATE_WINDOW_MS;
    if (retention.maxAgeMs) dup = Math.min(dup, retention.maxAgeMs);
    const meta: StreamMeta = { wirelab: 1, topic, partition, partitions, duplicateWindowMs: dup };
    return {
      name: streamName(this.options.streamPrefix, topic, partition),
      description: JSON.stringify({ ...meta, retention }),
      subjects: [subjectFor(this.options.subjectPrefix, topic, partition)],
      retention: NatsRetention.Limits,
      storage: this.options.storage === 'memory' ? StorageType.Memory : StorageType.File,
      num_replicas: this.options.replicas,
      discard: DiscardPolicy.Old,
      // 0 = no dedup: the engine then sends no Nats-Msg-Id; the server needs a window, the smallest it takes (100 ms).
      duplicate_window: msToNanos(Math.max(dup, 100)),
      max_age: retention.maxAgeMs ? msToNanos(retention.maxAgeMs) : 0,
      max_bytes: retention.maxBytes ?? -1,
      max_msgs: retention.maxRecords ?? -1,
    };
  }

  async ensureTopic(name: string, config: TopicConfig = {}): Promise<TopicInfo> {
    await this.meta(name, config);
    return (await this.topic(name))!;
  }

  /** The topic's partition-0 meta, creating every partition stream on first use (memoized per process). */
  private meta(topic: string, config: TopicConfig = {}): Promise<StreamMeta> {
    let p = this.topicCache.get(topic);
    if (!p) {
      p = this.createOrLoad(topic, config);
      this.topicCache.set(topic, p);
      p.catch(() => this.topicCache.delete(topic));
    }
    return p;
  }

  private async createOrLoad(topic: string, config: TopicConfig): Promise<StreamMeta> {
    checkTopic(topic);
    const partitions = config.partitions ?? 1;
    if (!Number.isInteger(partitions) || partitions < 1 || partitions > 1024) {
      throw new PubsubError(ErrorCodes.PUBSUB_INVALID, `partitions must be an integer from 1 to 1024, got ${String(partitions)}`);
    }
    const first = streamName(this.options.streamPrefix, topic, 0);
    const existing = await this.jsm.streams.info(first).catch(() => undefined);
    if (existing) {
      const m = parseMeta(existing.config.description);
      if (m) return m;
    }
    const infos: StreamInfo[] = [];
    for (let p = 0; p < partitions; p++) {
      const cfg = this.streamConfig(topic, p, partitions, config);
      try {
        infos.push(await this.jsm.streams.add(cfg));
      } catch (err) {
        // Another process created it in between (same name, maybe other options): use what is there.
        const info = await this.jsm.streams.info(cfg.name!).catch(() => undefined);
        if (!info) throw this.mapError(`creating topic ${topic}`, err);
        infos.push(info);
      }
    }
    this.tracer.emit(PROTO, 'engine', '*', 'topic', () => ({ summary: `topic ${topic}: ${partitions} stream(s) R${this.options.replicas}`, meta: { topic, partitions } }));
    for (const info of infos) this.onStream(info, true);
    return parseMeta(infos[0]!.config.description)!;
  }

  private mapError(what: string, err: unknown): WirelabError {
    if (err instanceof WirelabError) return err;
    const msg = String((err as Error)?.message ?? err);
    if (/MAX_PAYLOAD|maximum payload/i.test(msg)) return new PubsubError(ErrorCodes.PUBSUB_LIMIT, `${what}: ${msg}`, { cause: err, limit: 'maxPayloadBytes' });
    if (/maximum (streams|consumers)|resources exceeded|insufficient storage/i.test(msg)) return new PubsubError(ErrorCodes.PUBSUB_LIMIT, `${what}: ${msg}`, { cause: err, limit: 'jetstream' });
    return unavailable(what, err);
  }

  private async streamsOf(topic?: string): Promise<StreamInfo[]> {
    const out: StreamInfo[] = [];
    const lister = this.jsm.streams.list(topic === undefined ? `${this.options.subjectPrefix}.>` : `${this.options.subjectPrefix}.${topic}.*`);
    for await (const s of lister) {
      const m = parseMeta(s.config.description);
      if (m && s.config.name.startsWith(this.options.streamPrefix + '-') && (topic === undefined || m.topic === topic)) out.push(s);
    }
    return out;
  }

  private toTopicInfo(streams: StreamInfo[]): TopicInfo {
    const metas = streams.map((s) => ({ s, m: parseMeta(s.config.description)! })).sort((a, b) => a.m.partition - b.m.partition);
    const first = metas[0]!;
    const retention = (JSON.parse(first.s.config.description!) as { retention?: RetentionPolicy }).retention ?? {};
    return {
      name: first.m.topic,
      partitions: first.m.partitions,
      partitionInfo: metas.map(({ s, m }) => ({
        partition: m.partition,
        firstOffset: s.state.messages === 0 ? s.state.last_seq : seqToOffset(s.state.first_seq),
        nextOffset: s.state.last_seq,
        records: s.state.messages,
        bytes: s.state.bytes,
      })),
      config: { partitions: first.m.partitions, duplicateWindowMs: first.m.duplicateWindowMs, retention },
    };
  }

  async topics(): Promise<TopicInfo[]> {
    const byTopic = new Map<string, StreamInfo[]>();
    for (const s of await this.streamsOf()) {
      const t = parseMeta(s.config.description)!.topic;
      byTopic.set(t, [...(byTopic.get(t) ?? []), s]);
    }
    return [...byTopic.values()].map((s) => this.toTopicInfo(s)).sort((a, b) => a.name.localeCompare(b.name));
  }

  async topic(name: string): Promise<TopicInfo | undefined> {
    checkTopic(name);
    const streams = await this.streamsOf(name);
    return streams.length > 0 ? this.toTopicInfo(streams) : undefined;
  }

  async deleteTopic(name: string): Promise<boolean> {
    const streams = await this.streamsOf(name);
    this.topicCache.delete(name);
    for (const s of streams) {
      for (const c of this.consumers) await c.detach(s.config.name);
      await this.jsm.streams.delete(s.config.name).catch((err: unknown) => this.traceError('engine', `delete ${s.config.name}`, err));
    }
    return streams.length > 0;
  }

  // ---- publishing ----

  async append(req: AppendRequest): Promise<AppendResult> {
    checkTopic(req.topic);
    const meta = await this.meta(req.topic);
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
    else partition = partitions === 1 ? 0 : this.roundRobin++ % partitions;
    const subject = subjectFor(this.options.subjectPrefix, req.topic, partition);
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
        this.nc.publish(subject, req.payload, { headers: h });
      } catch (err) {
        throw this.mapError(`publish to ${req.topic}`, err);
      }
      // No reply: the offset is not known (-1), as a Kafka producer with acks=0 does not learn it either.
      return { topic: req.topic, partition, offset: -1, timestamp: now, duplicate: false };
    }
    const deadline = Date.now() + this.options.publishRetryForMs;
    for (let attempt = 1; ; attempt++) {
      try {
        const ack = await this.js.publish(subject, req.payload, { headers: h, timeout: this.options.publishTimeoutMs, ...(msgId && dedup ? { msgID: msgId } : {}) });
        const offset = seqToOffset(ack.seq);
        const t = Date.now();
        if (ack.duplicate) {
          this.counters.duplicates++;
          this.emitLineage({ step: 'duplicate', topic: req.topic, msgId: msgId!, offset, t });
        } else {
          this.emitLineage({ step: 'persisted', topic: req.topic, partition, offset, durability: 'synced', t });
        }
        return { topic: req.topic, partition, offset, timestamp: now, duplicate: ack.duplicate };
      } catch (err) {
        if (this.isClosed) throw unavailable(`publish to ${req.topic}`, err);
        if (!retryable(err) || Date.now() + this.options.retryDelayMs > deadline) throw this.mapError(`publish to ${req.topic} (attempt ${attempt})`, err);
        this.counters.retries++;
        this.tracer.emit(PROTO, 'engine', '*', 'retry', () => ({ summary: `publish to ${subject} attempt ${attempt} failed (${(err as Error).message}); retrying with msg id ${msgId}`, meta: { attempt } }));
        await new Promise((r) => setTimeout(r, this.options.retryDelayMs));
      }
    }
  }

  // ---- reading ----

  private async partitionStream(topic: string, partition: number): Promise<string> {
    const meta = await this.topicMeta(topic);
    if (!Number.isInteger(partition) || partition < 0 || partition >= meta.partitions) {
      throw new PubsubError(ErrorCodes.PUBSUB_NOT_FOUND, `topic ${topic} has no partition ${partition}`);
    }
    return streamName(this.options.streamPrefix, topic, partition);
  }

  private async topicMeta(topic: string): Promise<StreamMeta> {
    checkTopic(topic);
    const cached = this.topicCache.get(topic);
    if (cached) return cached;
    const info = await this.jsm.streams.info(streamName(this.options.streamPrefix, topic, 0)).catch(() => undefined);
    const m = info && parseMeta(info.config.description);
    if (!m) throw new PubsubError(ErrorCodes.PUBSUB_NOT_FOUND, `no topic ${topic}`);
    return m;
  }

  async read(topic: string, partition: number, offset: number, max: number): Promise<LogRecord[]> {
    const stream = await this.partitionStream(topic, partition);
    const { state } = await this.jsm.streams.info(stream);
    const from = Math.max(offset + 1, state.first_seq);
    const to = Math.min(state.last_seq, from + Math.min(max, this.options.maxReadRecords) - 1);
    const out: LogRecord[] = [];
    for (let seq = from; seq <= to; seq += 64) {
      const seqs = Array.from({ length: Math.min(64, to - seq + 1) }, (_, i) => seq + i);
      const got = await Promise.all(seqs.map((s) => this.jsm.streams.getMessage(stream, { seq: s }).catch(() => undefined)));
      for (const m of got) if (m) out.push(decodeRecord(m.seq, m.time.getTime(), m.data, m.header));
    }
    return out;
  }

  async offsetForTime(topic: string, partition: number, time: number): Promise<number> {
    const stream = await this.partitionStream(topic, partition);
    const { state } = await this.jsm.streams.info(stream);
    // Binary search over stored sequences by their stored time (JetStream 2.9 has no get-by-time).
    let lo = state.first_seq;
    let hi = state.last_seq + 1;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      const m = await this.jsm.streams.getMessage(stream, { seq: mid }).catch(() => undefined);
      if (!m || m.time.getTime() < time) lo = mid + 1;
      else hi = mid;
    }
    return seqToOffset(lo);
  }

  // ---- consuming ----

  async consume(spec: ConsumerSpec, deliver: (d: Delivery) => void): Promise<EngineConsumer> {
    checkConsumerSpec(spec);
    const mode = spec.group?.mode;
    if (spec.group && [...this.consumers].some((c) => c.group === spec.group!.name && c.spec.group!.mode !== mode)) {
      throw new PubsubError(ErrorCodes.PUBSUB_INVALID, `group ${spec.group.name} exists with another mode`);
    }
    const streams = (await this.streamsOf()).filter((s) => matches(spec.pattern, parseMeta(s.config.description)!.topic));
    if (spec.group) {
      const durable = encodeName(spec.group.name);
      for (const s of streams) {
        const ci = await this.jsm.consumers.info(s.config.name, durable).catch(() => undefined);
        const desc = ci && parseConsumerDescription(ci.config.description);
        if (desc?.mode && desc.mode !== mode) throw new PubsubError(ErrorCodes.PUBSUB_INVALID, `group ${spec.group.name} exists with mode ${desc.mode}`);
      }
    }
    const c = new JsEngineConsumer(this, spec, deliver);
    c.initial = new Set(streams.map((s) => s.config.name));
    this.consumers.add(c);
    if (mode === 'partitioned') await this.rebalance(spec.group!.name);
    else await Promise.all(streams.map((s) => c.attach(s.config.name, parseMeta(s.config.description)!)));
    setImmediate(() => c.start());
    return c;
  }

  /**
   * Partitioned groups: each partition stream is pulled by one member of this process (sorted stream names, round
   * robin over the members in join order); a member losing a stream naks what it held, so the new owner gets it at
   * once. Runs one at a time per group.
   */
  private rebalance(group: string): Promise<void> {
    const run = async (): Promise<void> => {
      const members = [...this.consumers].filter((c) => c.group === group && c.spec.group?.mode === 'partitioned');
      if (members.length === 0) return;
      const streams = (await this.streamsOf()).filter((s) => matches(members[0]!.spec.pattern, parseMeta(s.config.description)!.topic));
      const names = streams.map((s) => s.config.name).sort();
      const owner = new Map(names.map((s, i) => [s, members[i % members.length]!]));
      for (const m of members) m.owns = (s) => owner.get(s) === m;
      // New owners join first, so a partition's puller passes from member to member without stopping.
      await Promise.all(streams.map((s) => owner.get(s.config.name)!.attach(s.config.name, parseMeta(s.config.description)!)));
      await Promise.all(members.flatMap((m) => m.streams().filter((s) => owner.get(s) !== m).map((s) => m.detach(s))));
    };
    const next = (this.rebalancing.get(group) ?? Promise.resolve()).then(run).catch((err: unknown) => this.traceError('engine', `rebalance ${group}`, err));
    this.rebalancing.set(group, next);
    return next;
  }

  /**
   * The puller feeding `c` from `stream`: a group's members in this process share the one on the group's durable
   * (created once: a later member never reconfigures it); a fan-out subscriber gets its own ephemeral consumer.
   */
  async puller(c: JsEngineConsumer, stream: string, meta: StreamMeta, late: boolean): Promise<Puller> {
    const cfg = c.config(meta, late);
    if (!cfg.durable_name) {
      const info = await this.jsm.consumers.add(stream, cfg);
      return new Puller(this, stream, meta, info.name, c.manual, false);
    }
    const key = `${stream}\0${cfg.durable_name}`;
    let p = this.pullers.get(key);
    if (!p) {
      p = (async () => {
        const existing = await this.jsm.consumers.info(stream, cfg.durable_name!).catch(() => undefined);
        const name = existing ? existing.name : (await this.jsm.consumers.add(stream, cfg)).name;
        return new Puller(this, stream, meta, name, c.manual, true);
      })();
      this.pullers.set(key, p);
      p.catch(() => this.pullers.delete(key));
    }
    return p;
  }

  /** `c` leaves `puller`; the last member out stops it (and an ephemeral consumer is deleted). */
  async release(puller: Puller, c: JsEngineConsumer): Promise<void> {
    if (!(await puller.remove(c))) return;
    if (puller.durable) {
      const key = `${puller.stream}\0${puller.consumer}`;
      if ((await this.pullers.get(key)) === puller) this.pullers.delete(key);
    } else if (!this.isClosed) {
      await this.jsm.consumers.delete(puller.stream, puller.consumer).catch(() => undefined);
    }
  }

  async removeConsumer(c: JsEngineConsumer): Promise<void> {
    this.consumers.delete(c);
    if (c.spec.group?.mode === 'partitioned') await this.rebalance(c.group!);
  }

  async groups(): Promise<GroupInfo[]> {
    const out = new Map<string, GroupInfo>();
    for (const s of await this.streamsOf()) {
      const meta = parseMeta(s.config.description)!;
      for await (const ci of this.jsm.consumers.list(s.config.name)) {
        const desc = parseConsumerDescription(ci.config.description);
        if (!desc?.group || !desc.mode) continue;
        const local = [...this.consumers].filter((c) => c.group === desc.group);
        let g = out.get(desc.group);
        if (!g) {
          g = {
            name: desc.group,
            mode: desc.mode,
            pattern: desc.pattern,
            members: local.map((m) => m.id),
            partitions: [],
            // Members in this process: what they hold (exact at once); else what the server counts.
            ackPending: local.length > 0 ? local.reduce((n, m) => n + m.ackPending, 0) : 0,
            redelivered: this.redelivered.get(desc.group) ?? 0,
            deadLettered: this.deadLettered.get(desc.group) ?? 0,
          };
          out.set(desc.group, g);
        }
        if (local.length === 0) g.ackPending += ci.num_ack_pending;
        // The ack floor is the last sequence acked with every earlier one: the next offset to deliver is that sequence.
        const committed = ci.ack_floor.stream_seq;
        const end = s.state.last_seq;
        const owner = desc.mode === 'partitioned' ? local.find((c) => c.streams().includes(s.config.name)) : undefined;
        g.partitions.push({ topic: meta.topic, partition: meta.partition, committed, end, lag: Math.max(0, end - committed), ...(owner ? { owner: owner.id } : {}) });
      }
    }
    return [...out.values()];
  }

  async close(): Promise<void> {
    if (this.isClosed) return;
    await Promise.all([...this.consumers].map((c) => c.close()));
    await Promise.all([...this.pullers.values()].map((p) => p.then((x) => x.stop(), () => undefined)));
    this.isClosed = true;
    await this.nc.drain().catch(() => this.nc.close());
  }
}

export async function createJetStreamEngineImpl(options: JetStreamEngineOptions): Promise<JetStreamEngineImpl> {
  const o = withDefaults(DEFAULTS, options);
  const servers = typeof o.servers === 'string' ? o.servers.split(',') : o.servers;
  if (!Array.isArray(servers) || servers.length === 0 || servers.some((s) => typeof s !== 'string' || s.length === 0)) {
    throw new InvalidOptionError('servers', 'a NATS URL or a list of them', o.servers);
  }
  checkString('streamPrefix', o.streamPrefix);
  if (/[.*>\s/\\]/.test(o.streamPrefix)) throw new InvalidOptionError('streamPrefix', 'a stream name (no . * > / \\ or space)', o.streamPrefix);
  checkTopic(checkString('subjectPrefix', o.subjectPrefix));
  for (const k of ['connectTimeoutMs', 'publishTimeoutMs', 'publishRetryForMs', 'retryDelayMs', 'pullExpiresMs', 'ephemeralInactiveMs'] as const) checkInt(k, o[k], 1, 3_600_000);
  checkInt('pullBatch', o.pullBatch, 1, 100_000);
  checkInt('maxReadRecords', o.maxReadRecords, 1, 1_000_000);
  if (o.storage !== 'file' && o.storage !== 'memory') throw new InvalidOptionError('storage', "'file' or 'memory'", o.storage);
  if (o.replicas !== undefined) checkInt('replicas', o.replicas, 1, 5);
  let nc: NatsConnection;
  try {
    nc = await connect({ servers, name: 'wirelab-engine', timeout: o.connectTimeoutMs, maxReconnectAttempts: -1, reconnectTimeWait: 250, waitOnFirstConnect: false });
  } catch (err) {
    throw new PubsubError(ErrorCodes.PUBSUB_UNAVAILABLE, `cannot reach NATS at ${servers.join(',')}: ${(err as Error).message}`, { cause: err });
  }
  const tracer = o.tracer;
  void (async () => {
    for await (const s of nc.status()) tracer.emit(PROTO, 'engine', '*', `nats-${s.type}`, () => ({ summary: `nats ${s.type} ${typeof s.data === 'string' ? s.data : ''}` }));
  })().catch(() => undefined);
  const replicas = o.replicas ?? (nc.info?.cluster ? 3 : 1);
  let jsm: JetStreamManager;
  try {
    jsm = await nc.jetstreamManager({ timeout: o.connectTimeoutMs });
  } catch (err) {
    await nc.close();
    throw new PubsubError(ErrorCodes.PUBSUB_UNAVAILABLE, `JetStream is not available at ${servers.join(',')}: ${(err as Error).message}`, { cause: err });
  }
  const engine = new JetStreamEngineImpl({ ...o, servers, replicas }, nc, nc.jetstream({ timeout: o.publishTimeoutMs }), jsm);
  await engine.watch();
  return engine;
}
