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

export interface ConsumerDescription {
  wirelab: 1;
  group?: string;
  mode?: 'queue' | 'partitioned';
  pattern: string;
  deadLetterTopic?: string;
}

interface Held {
  m: JsMsg;
  topic: string;
  partition: number;
  stream: string;
  consumer: string;
  offset: number;
  attempt: number;
}

interface Attachment {
  stream: string;
  meta: StreamMeta;
  /** The JetStream consumer's name on that stream. */
  consumer: string;
  stop: boolean;
  iter?: { stop(err?: Error): void };
  loop?: Promise<void>;
}

let nextConsumer = 0;

export class JsEngineConsumer implements EngineConsumer {
  readonly id: string;
  private readonly attachments = new Map<string, Attachment>();
  private readonly held = new Map<string, Held>();
  private readonly queued: { m: JsMsg; att: Attachment }[] = [];
  private paused = false;
  private closed = false;
  private wakers: (() => void)[] = [];
  private readonly ackWaitMs: number;
  private readonly maxDeliver: number;
  private readonly maxAckPending: number;
  private readonly backoffMs: number[];
  readonly deadLetterTopic: (topic: string) => string;
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
  private config(meta: StreamMeta, late: boolean): Partial<ConsumerConfig> {
    const description: ConsumerDescription = { wirelab: 1, pattern: this.spec.pattern };
    if (this.spec.group) Object.assign(description, { group: this.spec.group.name, mode: this.spec.group.mode });
    if (this.spec.deadLetterTopic) description.deadLetterTopic = this.spec.deadLetterTopic;
    const cfg: Partial<ConsumerConfig> = {
      description: JSON.stringify(description),
      ack_policy: this.manual ? AckPolicy.Explicit : AckPolicy.None,
      ack_wait: msToNanos(this.ackWaitMs),
      max_deliver: this.maxDeliver === 0 ? -1 : this.maxDeliver,
      max_ack_pending: this.manual ? this.maxAckPending * (this.spec.group?.mode === 'queue' ? 16 : 1) : undefined,
    };
    if (!this.manual) delete cfg.max_ack_pending;
    // JetStream's backoff is the ack wait of delivery n (it replaces ack_wait); it needs max_deliver > its length.
    const backoff = this.maxDeliver === 0 ? this.backoffMs : this.backoffMs.slice(0, Math.max(0, this.maxDeliver - 1));
    if (backoff.length > 0 && this.manual) cfg.backoff = backoff.map(msToNanos);
    const start = late ? { kind: 'earliest' as const } : (this.spec.start ?? { kind: 'new' as const });
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

  /** Starts pulling from a partition stream (idempotent). */
  async attach(stream: string, meta: StreamMeta, late: boolean): Promise<void> {
    if (this.closed || this.attachments.has(stream) || !this.owns(stream)) return;
    const att: Attachment = { stream, meta, consumer: '', stop: false };
    this.attachments.set(stream, att);
    try {
      const jsm = this.engine.jsm;
      const cfg = this.config(meta, late);
      if (cfg.durable_name) {
        // A group's durable keeps its position: created once, never reconfigured by a later member.
        const existing = await jsm.consumers.info(stream, cfg.durable_name).catch(() => undefined);
        att.consumer = existing ? existing.name : (await jsm.consumers.add(stream, cfg)).name;
      } else {
        att.consumer = (await jsm.consumers.add(stream, cfg)).name;
      }
    } catch (err) {
      this.attachments.delete(stream);
      this.engine.traceError(this.id, `attach ${stream}`, err);
      return;
    }
    if (att.stop || this.closed) {
      this.attachments.delete(stream);
      return;
    }
    att.loop = this.pull(att);
  }

  /** Stops pulling from a stream; held deliveries from it go back (nak) so the new owner gets them at once. */
  async detach(stream: string, deleteEphemeral: boolean): Promise<void> {
    const att = this.attachments.get(stream);
    if (!att) return;
    att.stop = true;
    att.iter?.stop();
    this.kick();
    await att.loop;
    this.attachments.delete(stream);
    for (const [id, h] of this.held) {
      if (h.stream !== stream) continue;
      this.held.delete(id);
      if (!this.engine.isClosed) h.m.nak();
    }
    for (let i = this.queued.length - 1; i >= 0; i--) {
      if (this.queued[i]!.att !== att) continue;
      const [q] = this.queued.splice(i, 1);
      if (this.manual && !this.engine.isClosed) q!.m.nak();
    }
    if (deleteEphemeral && !this.spec.group && att.consumer && !this.engine.isClosed) {
      await this.engine.jsm.consumers.delete(stream, att.consumer).catch(() => undefined);
    }
  }

  streams(): string[] {
    return [...this.attachments.keys()];
  }

  private kick(): void {
    const w = this.wakers;
    this.wakers = [];
    for (const f of w) f();
  }

  private async gate(att: Attachment): Promise<void> {
    while (!att.stop && !this.closed && (this.paused || (this.manual && this.held.size + this.queued.length >= this.maxAckPending))) {
      await new Promise<void>((r) => this.wakers.push(r));
    }
  }

  private async pull(att: Attachment): Promise<void> {
    const opts = this.engine.options;
    while (!att.stop && !this.closed && !this.engine.isClosed) {
      await this.gate(att);
      if (att.stop || this.closed) break;
      const want = this.manual ? Math.min(opts.pullBatch, this.maxAckPending - this.held.size - this.queued.length) : opts.pullBatch;
      try {
        const c = await this.engine.js.consumers.get(att.stream, att.consumer);
        const iter = await c.fetch({ max_messages: Math.max(1, want), expires: opts.pullExpiresMs });
        att.iter = iter;
        if (att.stop) iter.stop();
        for await (const m of iter) this.onMessage(m, att);
      } catch (err) {
        if (att.stop || this.closed || this.engine.isClosed) break;
        this.engine.traceError(this.id, `pull ${att.stream}`, err);
        if (/not found/i.test(String((err as Error).message))) {
          // The topic was deleted: nothing more comes from this stream.
          att.stop = true;
          break;
        }
        await new Promise((r) => setTimeout(r, opts.retryDelayMs));
      }
    }
  }

  private onMessage(m: JsMsg, att: Attachment): void {
    if (this.paused) {
      this.queued.push({ m, att });
      return;
    }
    this.handle(m, att);
  }

  private handle(m: JsMsg, att: Attachment): void {
    const record = decodeRecord(m.seq, Math.floor(m.info.timestampNanos / 1e6), m.data, m.headers);
    const { topic, partition } = att.meta;
    const t = Date.now();
    if (record.expiresAt !== undefined && record.expiresAt <= t) {
      // Per-message TTL does not exist in nats-server 2.9: checked here, at delivery, and counted.
      if (this.manual) m.ack();
      this.engine.counters.expired++;
      this.lineage({ step: 'expired', topic, partition, offset: record.offset, consumer: this.id, ...(this.group ? { group: this.group } : {}), t });
      return;
    }
    const attempt = m.info.redeliveryCount;
    const id = `${this.id}:${att.stream}:${m.seq}:${attempt}`;
    if (this.manual) this.held.set(id, { m, topic, partition, stream: att.stream, consumer: att.consumer, offset: record.offset, attempt });
    this.lineage({ step: 'delivered', topic, partition, offset: record.offset, consumer: this.id, ...(this.group ? { group: this.group } : {}), attempt, t });
    try {
      this.deliver({ id, topic, partition, record, attempt });
    } catch (err) {
      this.engine.traceError(this.id, 'deliver callback', err);
    }
  }

  private take(deliveryId: string): Held {
    const h = this.held.get(deliveryId);
    if (!h) throw new PubsubError(ErrorCodes.PUBSUB_NOT_FOUND, `no unacked delivery ${deliveryId} on consumer ${this.id}`);
    return h;
  }

  private step(step: 'acked' | 'nak' | 'in-progress', h: Held): void {
    this.lineage({ step, topic: h.topic, partition: h.partition, offset: h.offset, consumer: this.id, ...(this.group ? { group: this.group } : {}), t: Date.now() });
  }

  ack(deliveryId: string): void {
    const h = this.take(deliveryId);
    this.held.delete(deliveryId);
    h.m.ack();
    this.step('acked', h);
    this.kick();
  }

  nak(deliveryId: string, delayMs = 0): void {
    const h = this.take(deliveryId);
    this.held.delete(deliveryId);
    if (delayMs > 0) h.m.nak(delayMs);
    else h.m.nak();
    this.step('nak', h);
    this.kick();
  }

  inProgress(deliveryId: string): void {
    const h = this.take(deliveryId);
    h.m.working();
    this.step('in-progress', h);
  }

  term(deliveryId: string, reason = 'terminated by the consumer'): void {
    const h = this.take(deliveryId);
    this.held.delete(deliveryId);
    this.kick();
    // The dead letter is written first (deduplicated by its msg id), then the message is terminated: a crash in between
    // redelivers it rather than losing it.
    void this.engine
      .deadLetter({ stream: h.stream, seq: h.m.seq, topic: h.topic, partition: h.partition, deliveries: h.attempt, reason, deadLetterTopic: this.deadLetterTopic(h.topic), group: this.group })
      .then(
        () => h.m.term(reason),
        (err: unknown) => {
          this.engine.traceError(this.id, 'dead-letter', err);
          h.m.nak();
        },
      );
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    while (!this.paused && this.queued.length > 0) {
      const q = this.queued.shift()!;
      if (!q.att.stop) this.handle(q.m, q.att);
    }
    this.kick();
  }

  get ackPending(): number {
    return this.held.size;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.kick();
    await Promise.all([...this.attachments.keys()].map((s) => this.detach(s, true)));
    this.engine.removeConsumer(this);
  }
}
