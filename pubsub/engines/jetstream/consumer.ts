/**
 * One engine consumer (a fan-out subscriber or a group member) on JetStream: for every partition stream its pattern
 * matches, a pull loop on a JetStream consumer (ephemeral for fan-out, the group's durable otherwise). Held deliveries
 * are acked / nak'd / extended / terminated through the JsMsg; pause() keeps what arrives in a local queue.
 */
import { AckPolicy, DeliverPolicy, type ConsumerConfig, type JsMsg } from 'nats';
import { ErrorCodes, PubsubError } from '../../../core/errors.ts';
import type { ConsumerSpec, Delivery, EngineConsumer, LineageStep } from '../types.ts';
import { decodeRecord, encodeName, msToNanos, offsetToSeq, type StreamMeta } from './codec.ts';
import type { JetStreamEngineImpl } from './engine.ts';
import type { Puller, PullMember } from './puller.ts';

export interface ConsumerDescription {
  wirelab: 1;
  group?: string;
  mode?: 'queue' | 'partitioned';
  pattern: string;
  deadLetterTopic?: string;
}

export function parseConsumerDescription(s: string | undefined): ConsumerDescription | undefined {
  if (!s?.startsWith('{')) return undefined;
  try {
    const d = JSON.parse(s) as ConsumerDescription;
    return d.wirelab === 1 ? d : undefined;
  } catch {
    return undefined;
  }
}

interface Held {
  m: JsMsg;
  topic: string;
  partition: number;
  stream: string;
  offset: number;
  attempt: number;
}

let nextConsumer = 0;
const SETTLED_KEEP = 10_000;

export class JsEngineConsumer implements EngineConsumer, PullMember {
  readonly id: string;
  /** Partition stream -> the puller feeding this member from it. */
  private readonly pullers = new Map<string, Puller>();
  private readonly held = new Map<string, Held>();
  /** Ids settled lately (ack / nak / term): settling one again is a no-op, not an error. Bounded. */
  private readonly settled = new Set<string>();
  private readonly queued: { m: JsMsg; puller: Puller }[] = [];
  private paused = false;
  private closed = false;
  /** Nothing is delivered before consume() has returned the consumer (its caller needs it to ack). */
  private started = false;
  private readonly ackWaitMs: number;
  private readonly maxDeliver: number;
  private readonly maxAckPending: number;
  private readonly backoffMs: number[];
  readonly deadLetterTopic: (topic: string) => string;
  /** Streams that existed when consume() was called: one that appears later is read from its start. */
  initial = new Set<string>();
  /**
   * Set by the engine when the group was created before this member joined (its record's createdAt): a stream that
   * has no durable for the group yet starts there (DeliverPolicy.StartTime), not at spec.start.
   */
  since: number | undefined;
  /** Set by the engine: whether this member pulls from a stream (partitioned groups own some partitions only). */
  owns: (stream: string) => boolean = () => true;

  constructor(
    private readonly engine: JetStreamEngineImpl,
    readonly spec: ConsumerSpec,
    private readonly deliver: (d: Delivery) => void,
  ) {
    this.id = `js-${process.pid}-${++nextConsumer}`;
    this.ackWaitMs = spec.ackWaitMs ?? 30_000;
    this.maxDeliver = spec.maxDeliver ?? 5;
    this.maxAckPending = spec.maxAckPending ?? 1000;
    this.backoffMs = spec.backoffMs ?? [];
    this.deadLetterTopic = (topic) => spec.deadLetterTopic ?? `$dlq.${topic}`;
  }

  get group(): string | undefined {
    return this.spec.group?.name;
  }

  get manual(): boolean {
    return this.spec.ack !== 'none';
  }

  private lineage(step: LineageStep): void {
    this.engine.emitLineage(step);
  }

  /** The JetStream consumer config for one partition stream. `late`: the stream appeared after consume() started. */
  config(meta: StreamMeta, late: boolean): Partial<ConsumerConfig> {
    const description: ConsumerDescription = { wirelab: 1, pattern: this.spec.pattern };
    if (this.spec.group) Object.assign(description, { group: this.spec.group.name, mode: this.spec.group.mode });
    if (this.spec.deadLetterTopic) description.deadLetterTopic = this.spec.deadLetterTopic;
    const cfg: Partial<ConsumerConfig> = {
      description: JSON.stringify(description),
      ack_policy: this.manual ? AckPolicy.Explicit : AckPolicy.None,
      ack_wait: msToNanos(this.ackWaitMs),
      max_deliver: this.maxDeliver === 0 ? -1 : this.maxDeliver,
      // Partitioned groups keep order across redelivery: one message in flight per partition (as the embedded engine).
      max_ack_pending: this.spec.group?.mode === 'partitioned' ? 1 : this.maxAckPending * (this.spec.group?.mode === 'queue' ? 16 : 1),
    };
    if (!this.manual) delete cfg.max_ack_pending;
    // JetStream's backoff is the ack wait of delivery n (it replaces ack_wait); it needs max_deliver > its length.
    const backoff = this.maxDeliver === 0 ? this.backoffMs : this.backoffMs.slice(0, Math.max(0, this.maxDeliver - 1));
    if (backoff.length > 0 && this.manual) cfg.backoff = backoff.map((ms) => msToNanos(Math.max(1, ms)));
    // A config only counts when it creates the durable: an existing one is never reconfigured (engine.puller()).
    const start = late ? { kind: 'earliest' as const } : this.since !== undefined ? { kind: 'time' as const, time: this.since } : (this.spec.start ?? { kind: 'new' as const });
    switch (start.kind) {
      case 'new':
        cfg.deliver_policy = DeliverPolicy.New;
        break;
      case 'earliest':
        cfg.deliver_policy = DeliverPolicy.All;
        break;
      case 'offset':
        if (start.partition !== undefined && start.partition !== meta.partition) cfg.deliver_policy = DeliverPolicy.All;
        else {
          cfg.deliver_policy = DeliverPolicy.StartSequence;
          cfg.opt_start_seq = offsetToSeq(Math.max(0, start.offset));
        }
        break;
      case 'time':
        cfg.deliver_policy = DeliverPolicy.StartTime;
        cfg.opt_start_time = new Date(start.time).toISOString();
        break;
    }
    if (this.spec.group) cfg.durable_name = encodeName(this.spec.group.name);
    else cfg.inactive_threshold = msToNanos(this.engine.options.ephemeralInactiveMs);
    return cfg;
  }

  /** Starts taking messages from a partition stream (idempotent). */
  async attach(stream: string, meta: StreamMeta): Promise<void> {
    if (this.closed || this.pullers.has(stream) || !this.owns(stream)) return;
    const puller = await this.engine.puller(this, stream, meta, !this.initial.has(stream)).catch((err: unknown) => {
      this.engine.traceError(this.id, `attach ${stream}`, err);
      return undefined;
    });
    if (!puller || this.closed || this.pullers.has(stream) || !this.owns(stream)) return;
    this.pullers.set(stream, puller);
    puller.add(this);
  }

  /**
   * Stops taking from a stream; held deliveries from it go back (nak) so another member gets them at once. When this
   * was the puller's last member, they go back once its pull request has run out (else it would take them again).
   */
  async detach(stream: string): Promise<void> {
    const puller = this.pullers.get(stream);
    if (!puller) return;
    this.pullers.delete(stream);
    const back: JsMsg[] = [];
    for (const [id, h] of this.held) {
      if (h.stream !== stream) continue;
      this.held.delete(id);
      back.push(h.m);
    }
    for (let i = this.queued.length - 1; i >= 0; i--) {
      if (this.queued[i]!.puller !== puller) continue;
      const [q] = this.queued.splice(i, 1);
      if (this.manual) back.unshift(q!.m);
    }
    await this.engine.release(puller, this);
    for (const m of back) if (!this.engine.isClosed) m.nak();
  }

  streams(): string[] {
    return [...this.pullers.keys()];
  }

  room(): number {
    if (this.paused || this.closed) return 0;
    return this.manual ? Math.max(0, this.maxAckPending - this.held.size - this.queued.length) : this.engine.options.pullBatch;
  }

  private kick(): void {
    for (const p of this.pullers.values()) p.kick();
  }

  take(m: JsMsg, puller: Puller): void {
    if (this.paused || !this.started) this.queued.push({ m, puller });
    else this.handle(m, puller);
  }

  /** Called by the engine once consume() has returned. */
  start(): void {
    this.started = true;
    this.flush();
  }

  private flush(): void {
    while (!this.paused && this.started && this.queued.length > 0) {
      const q = this.queued.shift()!;
      this.handle(q.m, q.puller);
    }
    this.kick();
  }

  /** The engine dead-lettered (stream, seq) after maxDeliver: the last delivery, if held here, is acked quietly. */
  async settleDeadLettered(stream: string, seq: number): Promise<void> {
    for (const [id, h] of this.held) {
      if (h.stream !== stream || h.m.seq !== seq) continue;
      this.settle(id);
      await h.m.ackAck().catch(() => undefined);
    }
  }

  private handle(m: JsMsg, puller: Puller): void {
    const record = decodeRecord(m.seq, Math.floor(m.info.timestampNanos / 1e6), m.data, m.headers);
    const { topic, partition } = puller.meta;
    const t = Date.now();
    if (record.expiresAt !== undefined && record.expiresAt <= t) {
      // Per-message TTL does not exist in nats-server 2.9: checked here, at delivery, and counted.
      if (this.manual) m.ack();
      this.engine.counters.expired++;
      this.lineage({ step: 'expired', topic, partition, offset: record.offset, consumer: this.id, ...(this.group ? { group: this.group } : {}), t });
      return;
    }
    const attempt = m.info.redeliveryCount;
    if (attempt > 1) {
      if (this.group) this.engine.countRedelivery(this.group);
      // An earlier delivery of the same message held here has expired (ackWait): its id is settled now.
      for (const [id, h] of this.held) if (h.stream === puller.stream && h.m.seq === m.seq) this.settle(id);
    }
    const id = `${this.id}:${puller.stream}:${m.seq}:${attempt}`;
    if (this.manual) this.held.set(id, { m, topic, partition, stream: puller.stream, offset: record.offset, attempt });
    this.lineage({ step: 'delivered', topic, partition, offset: record.offset, consumer: this.id, ...(this.group ? { group: this.group } : {}), attempt, t });
    try {
      this.deliver({ id, topic, partition, record, attempt });
    } catch (err) {
      this.engine.traceError(this.id, 'deliver callback', err);
    }
  }

  private heldFor(deliveryId: string): Held | undefined {
    const h = this.held.get(deliveryId);
    if (h) return h;
    if (this.settled.has(deliveryId)) return undefined;
    throw new PubsubError(ErrorCodes.PUBSUB_NOT_FOUND, `no unacked delivery ${JSON.stringify(String(deliveryId).slice(0, 80))} on consumer ${this.id}`);
  }

  private settle(deliveryId: string): void {
    this.held.delete(deliveryId);
    this.settled.add(deliveryId);
    if (this.settled.size > SETTLED_KEEP) this.settled.delete(this.settled.values().next().value!);
    this.kick();
  }

  private step(step: 'acked' | 'nak' | 'in-progress', h: Held): void {
    this.lineage({ step, topic: h.topic, partition: h.partition, offset: h.offset, consumer: this.id, ...(this.group ? { group: this.group } : {}), t: Date.now() });
  }

  ack(deliveryId: string): void {
    const h = this.heldFor(deliveryId);
    if (!h) return;
    this.settle(deliveryId);
    h.m.ack();
    this.step('acked', h);
  }

  nak(deliveryId: string, delayMs = 0): void {
    const h = this.heldFor(deliveryId);
    if (!h) return;
    this.settle(deliveryId);
    if (delayMs > 0) h.m.nak(delayMs);
    else h.m.nak();
    this.step('nak', h);
  }

  inProgress(deliveryId: string): void {
    const h = this.heldFor(deliveryId);
    if (!h) return;
    h.m.working();
    this.step('in-progress', h);
  }

  term(deliveryId: string, reason = 'terminated by the consumer'): void {
    const h = this.heldFor(deliveryId);
    if (!h) return;
    this.settle(deliveryId);
    // The dead letter is written first (deduplicated by its msg id), then the message is terminated: a crash in between
    // redelivers it rather than losing it. Until then it is kept "in progress" so it is not redelivered meanwhile.
    const keep = setInterval(() => h.m.working(), Math.max(10, Math.floor(this.ackWaitMs / 3)));
    const dl = { stream: h.stream, seq: h.m.seq, topic: h.topic, partition: h.partition, deliveries: h.attempt, reason, deadLetterTopic: this.deadLetterTopic(h.topic), group: this.group };
    void this.engine
      .deadLetter(dl, () => {
        clearInterval(keep);
        h.m.term(reason);
      })
      .catch((err: unknown) => {
        clearInterval(keep);
        this.engine.traceError(this.id, 'dead-letter', err);
        if (!this.engine.isClosed) h.m.nak();
      });
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.flush();
  }

  get ackPending(): number {
    return this.held.size;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.kick();
    await Promise.all([...this.pullers.keys()].map((s) => this.detach(s)));
    await this.engine.removeConsumer(this);
  }
}
