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
 * - consumer group -> a durable pull consumer per partition stream, and a record (pattern, mode, creation time) in the
 *   KV bucket `<streamPrefix>-groups` (groups.ts); fan-out -> ephemeral pull consumers.
 * - maxDeliver -> the consumer's max_deliver; the MAX_DELIVERIES advisory is turned into the dead-letter topic.
 * - TTL -> an expiry header checked at delivery (nats-server 2.9 has no per-message TTL).
 */
import { type JetStreamClient, type JetStreamManager, type KV, type NatsConnection, type StreamConfig, type StreamInfo, RetentionPolicy as NatsRetention, StorageType, DiscardPolicy } from 'nats';
import { ErrorCodes, PubsubError, WirelabError } from '../../../core/errors.ts';
import type { Tracer } from '../../../core/trace/index.ts';
import { checkTopic, matches } from '../../subjects.ts';
import type { LogRecord, RetentionPolicy } from '../../log/types.ts';
import type { AppendRequest, AppendResult, ConsumerSpec, Delivery, Engine, EngineConsumer, GroupInfo, LineageStep, TopicConfig, TopicInfo } from '../types.ts';
import { decodeRecord, msToNanos, parseMeta, seqToOffset, streamName, subjectFor, type StreamMeta } from './codec.ts';
import { JsEngineConsumer } from './consumer.ts';
import { append, retryable, unavailable } from './publish.ts';
import { deadLetter, watchCluster, type DeadLetterInput } from './dlq.ts';
import { admitMember, assignPartitions, groupBucketName, listGroups } from './groups.ts';
import { GroupMembership } from './membership.ts';
import { DEFAULT_DUPLICATE_WINDOW_MS, PROTO, type ResolvedOptions } from './options.ts';
import { checkConsumerSpec } from '../embedded/spec.ts';
import { Puller } from './puller.ts';


/** JetStream's API error for a stream sequence with no message. */
const NO_MESSAGE_FOUND = 10037;

export class JetStreamEngineImpl implements Engine {
  readonly kind = 'jetstream' as const;
  readonly counters = { expired: 0, retries: 0, deadLettered: 0, duplicates: 0 };
  /** Internal (dlq.ts, groups.ts read these). */
  readonly topicCache = new Map<string, Promise<StreamMeta>>();
  readonly consumers = new Set<JsEngineConsumer>();
  private readonly listeners = new Set<(s: LineageStep) => void>();
  readonly deadLettered = new Map<string, number>();
  readonly redelivered = new Map<string, number>();
  /** Streams deleted (here or by another process, from the server's advisory): their pull loops end. */
  readonly deletedStreams = new Set<string>();
  private readonly rebalancing = new Map<string, Promise<void>>();
  private readonly pullers = new Map<string, Promise<Puller>>();
  /** Where the next publish without key, msg id or partition goes (publish.ts). */
  roundRobin = 0;
  private groupBucket?: Promise<KV>;
  /** Partitioned groups with members here: their records and leases in the group bucket (membership.ts). */
  private readonly memberships = new Map<string, GroupMembership>();
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

  /** Background: topics other processes create, and the MAX_DELIVERIES advisories (dlq.ts). */
  watch(): Promise<void> {
    return watchCluster(this);
  }

  /** Copies a record to the dead-letter topic (dlq.ts); `then` runs once it is stored. */
  deadLetter(d: DeadLetterInput, then?: () => void): Promise<void> {
    return deadLetter(this, d, then);
  }

  groups(): Promise<GroupInfo[]> {
    return listGroups(this);
  }

  /** The KV bucket of group records (groups.ts), created on first use like a topic's streams (memoized per process). */
  groupsKv(): Promise<KV> {
    if (!this.groupBucket) {
      const storage = this.options.storage === 'memory' ? StorageType.Memory : StorageType.File;
      const p = this.js.views.kv(groupBucketName(this.options.streamPrefix), { replicas: this.options.replicas, history: 1, storage });
      this.groupBucket = p;
      p.catch(() => {
        if (this.groupBucket === p) this.groupBucket = undefined;
      });
    }
    return this.groupBucket;
  }

  /** The group's membership in this process (created on first use; heartbeats while it has local members). */
  membership(group: string): GroupMembership {
    let m = this.memberships.get(group);
    if (!m) {
      m = new GroupMembership(
        {
          groupsKv: () => this.groupsKv(),
          localMembers: (g) => [...this.consumers].filter((c) => c.group === g && c.spec.group?.mode === 'partitioned').map((c) => c.id),
          rebalance: (g) => void this.rebalance(g),
          announce: (g) => this.nc.publish(this.announceSubject, g),
          traceError: (cid, what, err) => this.traceError(cid, what, err),
          leaseMs: this.options.memberLeaseMs,
        },
        group,
      );
      this.memberships.set(group, m);
    }
    return m;
  }

  /** Where a process announces that a partitioned group's members changed (the others read the list at once). */
  get announceSubject(): string {
    return `_WL.${this.options.streamPrefix}.rebalance`;
  }

  /** Another process announced a change to a group: read its list now if members of it live here. */
  onAnnounce(group: string): void {
    const m = this.memberships.get(group);
    if (m && [...this.consumers].some((c) => c.group === group)) void m.beat();
  }

  onLineage(listener: (step: LineageStep) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onStream(info: StreamInfo): void {
    this.deletedStreams.delete(info.config.name);
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
  meta(topic: string, config: TopicConfig = {}): Promise<StreamMeta> {
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
      // A cluster just started (or back) may not know its peers yet ("no suitable peers"): retried as publishes are.
      const deadline = Date.now() + this.options.publishRetryForMs;
      for (;;) {
        try {
          infos.push(await this.jsm.streams.add(cfg));
          break;
        } catch (err) {
          // Another process created it in between (same name, maybe other options): use what is there.
          const info = await this.jsm.streams.info(cfg.name!).catch(() => undefined);
          if (info) {
            infos.push(info);
            break;
          }
          if (!retryable(err) || this.options.onUnavailable === 'error' || Date.now() + this.options.retryDelayMs > deadline) throw this.mapError(`creating topic ${topic}`, err);
          await new Promise((r) => setTimeout(r, this.options.retryDelayMs));
        }
      }
    }
    this.tracer.emit(PROTO, 'engine', '*', 'topic', () => ({ summary: `topic ${topic}: ${partitions} stream(s) R${this.options.replicas}`, meta: { topic, partitions } }));
    for (const info of infos) this.onStream(info);
    return parseMeta(infos[0]!.config.description)!;
  }

  mapError(what: string, err: unknown): WirelabError {
    if (err instanceof WirelabError) return err;
    const msg = String((err as Error)?.message ?? err);
    if (/MAX_PAYLOAD|maximum payload/i.test(msg)) return new PubsubError(ErrorCodes.PUBSUB_LIMIT, `${what}: ${msg}`, { cause: err, limit: 'maxPayloadBytes' });
    if (/maximum (streams|consumers)|resources exceeded|insufficient storage/i.test(msg)) return new PubsubError(ErrorCodes.PUBSUB_LIMIT, `${what}: ${msg}`, { cause: err, limit: 'jetstream' });
    return unavailable(what, err);
  }

  async streamsOf(topic?: string): Promise<StreamInfo[]> {
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
      this.deletedStreams.add(s.config.name);
      for (const c of this.consumers) await c.detach(s.config.name);
      await this.jsm.streams.delete(s.config.name).catch((err: unknown) => this.traceError('engine', `delete ${s.config.name}`, err));
    }
    return streams.length > 0;
  }

  // ---- publishing ----

  append(req: AppendRequest): Promise<AppendResult> {
    return append(this, req);
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
      const got = await Promise.all(seqs.map((s) => this.jsm.streams.getMessage(stream, { seq: s }).catch((err: unknown) => {
        // A sequence with no message (deleted, expired, a gap) is skipped; anything else (no leader during an
        // election, a timeout) is an error the caller sees, never a short read that looks like a lost message.
        if ((err as { api_error?: { err_code?: number } }).api_error?.err_code === NO_MESSAGE_FOUND) return undefined;
        throw unavailable(`read ${topic}[${partition}]@${seqToOffset(s)}`, err);
      })));
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
    const since = spec.group ? await admitMember(this, spec.group, spec.pattern, streams) : undefined;
    const c = new JsEngineConsumer(this, spec, deliver);
    c.since = since;
    c.initial = new Set(streams.map((s) => s.config.name));
    this.consumers.add(c);
    if (mode === 'partitioned') {
      const membership = this.membership(spec.group!.name);
      await membership.beat();
      membership.start();
      this.nc.publish(this.announceSubject, spec.group!.name);
      await this.rebalance(spec.group!.name);
    } else {
      await Promise.all(streams.map((s) => c.attach(s.config.name, parseMeta(s.config.description)!)));
      // A stream created (by another process) between the listing above and this consumer joining `consumers` was
      // announced to no one here: look once more (seen in the two-node test: `wirelab sub` missed `wirelab pub`'s topic).
      const late = (await this.streamsOf()).filter((s) => !c.initial.has(s.config.name) && matches(spec.pattern, parseMeta(s.config.description)!.topic));
      await Promise.all(late.map((s) => c.attach(s.config.name, parseMeta(s.config.description)!)));
    }
    setImmediate(() => c.start());
    return c;
  }

  /** Partitioned groups: who pulls which partition stream (groups.ts `assignPartitions`), one run at a time per group. */
  private rebalance(group: string): Promise<void> {
    const run = (): Promise<void> => assignPartitions(this, group);
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
    if (c.spec.group?.mode !== 'partitioned') return;
    const membership = this.membership(c.group!);
    await membership.leave(c.id);
    if (![...this.consumers].some((x) => x.group === c.group)) membership.stop();
    await this.rebalance(c.group!);
  }

  async close(): Promise<void> {
    if (this.isClosed) return;
    await Promise.all([...this.consumers].map((c) => c.close()));
    for (const m of this.memberships.values()) m.stop();
    await Promise.all([...this.pullers.values()].map((p) => p.then((x) => x.stop(), () => undefined)));
    this.isClosed = true;
    await this.nc.drain().catch(() => this.nc.close());
  }
}
