/**
 * Delivery for one consumer: an ephemeral fan-out subscriber (one member, no saved state), a queue group (each message
 * to one member, acked one by one) or a partitioned group (each partition owned by one member, in order). All three
 * share the same machinery: per partition a committed floor, deliveries in flight with an ack timer, redeliveries
 * (nak, timeout, member gone) with backoff, maxDeliver then the dead-letter topic.
 *
 * Order in a partitioned group: a partition's next message goes out only once the previous one is settled (acked,
 * expired or dead-lettered), so order holds even across redelivery (Kafka keeps order by committing offsets; with
 * at most one message in flight per partition we keep it without rewinding). Throughput grows with partitions.
 */
import type { LogRecord } from '../../log/types.ts';
import { matches } from '../../subjects.ts';
import type { LineageStep, StartPosition } from '../types.ts';
import { startOffset } from './group-view.ts';
import { Deadlines } from './deadlines.ts';
import { partKey, PartState, type Member, type Pending, type Retry } from './part.ts';
import { GroupDelivery, readShared, readSharedNow } from './shared-read.ts';
import type { Topic } from './topic.ts';

export type GroupMode = 'fanout' | 'queue' | 'partitioned';

/** The consumer settings a group runs with (its first member's spec, defaults filled in). */
export interface GroupSettings {
  pattern: string;
  ack: 'none' | 'manual';
  start: StartPosition;
  ackWaitMs: number;
  backoffMs: number[];
  maxDeliver: number;
  deadLetterTopic?: string;
}

/** What a group needs from its engine. */
export interface GroupHost {
  readBatchRecords: number;
  lineage(build: () => LineageStep): void;
  /** Appends the record to the dead-letter topic with the wl-dlq-* headers; rejects when it could not. */
  deadLetter(topic: string, partition: number, record: LogRecord, reason: string, deliveries: number, to: string): Promise<void>;
  /** The group's committed positions changed (durable groups save them). */
  positionsChanged(group: DeliveryGroup): void;
}

const ROUND = 64;
const YIELD_EVERY = 1024;

export class DeliveryGroup {
  readonly parts = new Map<string, PartState>();
  readonly members: Member[] = [];
  redelivered = 0;
  deadLettered = 0;
  closed = false;
  private rr = 0;
  /** Ack deadlines of every delivery in flight (one timer for the group). */
  private readonly deadlines = new Deadlines<Pending>((p) => this.ackWaitExpired(p));
  private pumping = false;
  private again = false;
  /** The 'delivered' lineage step's fields, set just before host.lineage calls deliveredStep (no closure per delivery). */
  private readonly delivered = { topic: '', partition: 0, offset: 0, consumer: '', attempt: 0 };
  private readonly deliveredStep = (): LineageStep => {
    const { topic, partition, offset, consumer, attempt } = this.delivered;
    const group = this.name;
    return group === undefined
      ? { step: 'delivered', topic, partition, offset, consumer, attempt, t: Date.now() }
      : { step: 'delivered', topic, partition, offset, consumer, group, attempt, t: Date.now() };
  };
  /** Saved positions (restart) for partitions not yet opened: key -> floor and acked offsets above it. */
  readonly saved = new Map<string, { committed: number; acked: number[] }>();

  constructor(
    /** Prefix of this group's delivery ids (no '/'). */
    readonly id: string,
    readonly name: string | undefined,
    readonly mode: GroupMode,
    public settings: GroupSettings,
    private readonly host: GroupHost,
  ) {}

  get durable(): boolean {
    return this.name !== undefined;
  }

  /** Adds a topic's partitions. `fresh`: the topic was just created, so all its records are news (start at 0). */
  async addTopic(topic: Topic, fresh: boolean): Promise<void> {
    if (!matches(this.settings.pattern, topic.name)) return;
    let added = false;
    for (let p = 0; p < topic.meta.partitions; p++) {
      const key = partKey(topic.name, p);
      if (this.parts.has(key)) continue;
      const saved = this.saved.get(key);
      const start = saved ? saved.committed : fresh ? topic.logs[p]!.firstOffset : await startOffset(topic, p, this.settings.start);
      if (this.parts.has(key) || this.closed) continue;
      this.parts.set(key, new PartState(topic, p, start, saved?.acked));
      added ||= saved === undefined;
    }
    // A new partition's start is a position too: saved now, so a restart before the first ack does not move it to 'new'.
    if (added && this.durable) this.host.positionsChanged(this);
    this.rebalance();
    this.pump();
  }

  removeTopic(name: string): void {
    for (const [key, part] of this.parts) {
      if (part.topic.name !== name) continue;
      part.removed = true;
      part.clearRetryTimers();
      for (const p of part.pending.values()) {
        this.deadlines.delete(p);
        p.member.pending--;
      }
      this.parts.delete(key);
      this.saved.delete(key);
    }
    this.rebalance();
  }

  /** A dormant group brought back with other settings: partitions its new pattern does not match are dropped. */
  retarget(settings: GroupSettings): void {
    const old = this.settings.pattern;
    this.settings = settings;
    if (old === settings.pattern) return;
    for (const [key, part] of this.parts) {
      if (matches(settings.pattern, part.topic.name)) continue;
      part.removed = true;
      part.clearRetryTimers();
      this.parts.delete(key);
    }
    for (const key of [...this.saved.keys()]) if (!matches(settings.pattern, key.split('\u0000')[0]!)) this.saved.delete(key);
  }

  addMember(member: Member): void {
    this.members.push(member);
    this.rebalance();
    this.pump();
  }

  /** The member leaves: its unacked deliveries are ready for the others at once. */
  removeMember(member: Member): void {
    member.closed = true;
    const i = this.members.indexOf(member);
    if (i >= 0) this.members.splice(i, 1);
    for (const part of this.parts.values()) {
      for (const p of [...part.pending.values()]) {
        if (p.member !== member) continue;
        this.deadlines.delete(p);
        part.pending.delete(p.offset);
        member.pending--;
        this.queueRetry(part, { offset: p.offset, record: p.record, attempt: p.attempt, ready: true });
      }
    }
    this.rebalance();
    this.pump();
  }

  /** Partitions to members round-robin over the sorted partition list (partitioned groups only). */
  private rebalance(): void {
    if (this.mode !== 'partitioned') return;
    const live = this.members.filter((m) => !m.closed);
    const keys = [...this.parts.keys()].sort();
    keys.forEach((k, i) => {
      this.parts.get(k)!.owner = live.length ? live[i % live.length] : undefined;
    });
  }

  // ---- settling a delivery (ids: `${group.id}/${topic}/${partition}/${offset}/${attempt}`) ----

  ack(part: PartState, offset: number, by: string): void {
    const entry = this.take(part, offset);
    if (!entry) return;
    this.host.lineage(() => ({ step: 'acked', topic: part.topic.name, partition: part.partition, offset, consumer: by, ...this.groupField(), t: Date.now() }));
    this.settle(part, offset);
    this.pump();
  }

  nak(part: PartState, offset: number, by: string, delayMs: number): void {
    const entry = this.take(part, offset);
    if (!entry) return;
    this.host.lineage(() => ({ step: 'nak', topic: part.topic.name, partition: part.partition, offset, consumer: by, ...this.groupField(), t: Date.now() }));
    this.retryOrDeadLetter(part, entry.record, entry.attempt, delayMs);
    this.pump();
  }

  term(part: PartState, offset: number, reason: string): void {
    const entry = this.take(part, offset);
    if (!entry) return;
    this.toDeadLetter(part, entry.record, entry.attempt, reason);
    this.pump();
  }

  inProgress(part: PartState, offset: number, by: string): void {
    const p = part.pending.get(offset);
    if (!p) return;
    this.deadlines.set(p, this.settings.ackWaitMs);
    this.host.lineage(() => ({ step: 'in-progress', topic: part.topic.name, partition: part.partition, offset, consumer: by, ...this.groupField(), t: Date.now() }));
  }

  /** Removes a pending delivery (or a queued redelivery) of `offset`; undefined when it is already settled. */
  private take(part: PartState, offset: number): { record: LogRecord; attempt: number } | undefined {
    const p = part.pending.get(offset);
    if (p) {
      this.deadlines.delete(p);
      part.pending.delete(offset);
      p.member.pending--;
      return p;
    }
    const i = part.retries.findIndex((r) => r.offset === offset);
    if (i < 0) return undefined;
    const [r] = part.retries.splice(i, 1);
    clearTimeout(r!.timer);
    return r;
  }

  private settle(part: PartState, offset: number): void {
    if (part.settle(offset) && this.durable) this.host.positionsChanged(this);
  }

  private ackWaitExpired(p: Pending): void {
    const part = p.part;
    if (part.pending.get(p.offset) !== p || part.removed || this.closed) return;
    part.pending.delete(p.offset);
    p.member.pending--;
    this.retryOrDeadLetter(part, p.record, p.attempt, undefined);
    this.pump();
  }

  /** After delivery n failed: dead-letter at maxDeliver, else redeliver after `delayMs` (nak) or backoffMs[n-1]. */
  private retryOrDeadLetter(part: PartState, record: LogRecord, attempt: number, delayMs: number | undefined): void {
    const { maxDeliver, backoffMs } = this.settings;
    if (maxDeliver > 0 && attempt >= maxDeliver) {
      this.toDeadLetter(part, record, attempt, 'maxDeliver');
      return;
    }
    const delay = delayMs ?? (backoffMs.length ? backoffMs[Math.min(attempt - 1, backoffMs.length - 1)]! : 0);
    this.queueRetry(part, { offset: record.offset, record, attempt, ready: delay <= 0 }, delay);
  }

  private queueRetry(part: PartState, retry: Retry, delay = 0): void {
    part.retries.push(retry);
    if (retry.ready) return;
    retry.timer = setTimeout(() => {
      retry.ready = true;
      this.pump();
    }, delay);
    retry.timer.unref();
  }

  private toDeadLetter(part: PartState, record: LogRecord, attempt: number, reason: string): void {
    const to = this.settings.deadLetterTopic ?? `$dlq.${part.topic.name}`;
    part.deadLettering++;
    this.host.deadLetter(part.topic.name, part.partition, record, reason, attempt, to).then(
      () => {
        part.deadLettering--;
        this.deadLettered++;
        this.host.lineage(() => ({ step: 'dead-lettered', topic: part.topic.name, partition: part.partition, offset: record.offset, reason, deadLetterTopic: to, t: Date.now() }));
        this.settle(part, record.offset);
        this.pump();
      },
      () => {
        // The dead-letter topic refused it: keep the message (redelivered later) rather than lose it.
        part.deadLettering--;
        if (this.closed || part.removed) return;
        this.queueRetry(part, { offset: record.offset, record, attempt, ready: false }, this.settings.ackWaitMs);
      },
    );
  }

  // ---- delivery ----

  /** Starts delivering what is available (single flight: a call during a pass asks for one more pass). */
  pump(): void {
    if (this.closed) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    this.pumpLoop().catch(() => {
      // A log read failed: delivery resumes on the next append, ack or timer.
    });
  }

  private async pumpLoop(): Promise<void> {
    try {
      await this.pumpPasses();
    } finally {
      this.pumping = false;
    }
    // A wake-up that came after the last pass had checked `again` (in the turn between it and here): one more pass.
    if (this.again) this.pump();
  }

  private async pumpPasses(): Promise<void> {
    // Never deliver inside pump() itself: its caller (consume, ack, append) finishes first, as when every read awaited.
    await undefined;
    let sinceYield = 0;
    do {
      this.again = false;
      let progress = true;
      while (progress && !this.closed) {
        progress = false;
        for (const part of [...this.parts.values()]) {
          if (this.closed) return;
          if (part.removed) continue;
          const got = this.pumpPart(part);
        const n = typeof got === 'number' ? got : await got;
          if (n > 0) progress = true;
          sinceYield += n;
          if (sinceYield >= YIELD_EVERY) {
            sinceYield = 0;
            await new Promise<void>((r) => setImmediate(r));
          }
        }
      }
    } while (this.again && !this.closed);
  }

  private canTake(m: Member): boolean {
    return !m.closed && !m.paused && (this.settings.ack === 'none' || m.pending < m.maxAckPending);
  }

  private pickMember(part: PartState): Member | undefined {
    if (this.mode === 'partitioned') return part.owner && this.canTake(part.owner) ? part.owner : undefined;
    const n = this.members.length;
    for (let i = 0; i < n; i++) {
      const m = this.members[(this.rr + i) % n]!;
      if (this.canTake(m)) {
        this.rr = (this.rr + i + 1) % n;
        return m;
      }
    }
    return undefined;
  }

  /**
   * One partition's share of a pass. Synchronous while the records come from memory (the shared read or the log's
   * tail: a record just appended, the low-rate case); a promise only when the log must be read from its files.
   */
  private pumpPart(part: PartState): number | Promise<number> {
    return this.pumpFrom(part, 0);
  }

  private pumpFrom(part: PartState, sentBefore: number): number | Promise<number> {
    const ordered = this.mode === 'partitioned' && this.settings.ack === 'manual';
    let sent = sentBefore;
    while (sent < ROUND && !part.removed && !this.closed) {
      const ri = part.retries.findIndex((r) => r.ready);
      if (ordered && (part.pending.size > 0 || part.deadLettering > 0 || (ri < 0 && part.retries.length > 0))) break;
      if (ri >= 0) {
        const member = this.pickMember(part);
        if (!member) break;
        const [r] = part.retries.splice(ri, 1);
        if (this.expired(part, r!.record)) continue;
        this.redelivered++;
        this.send(part, member, r!.record, r!.attempt + 1);
        sent++;
        continue;
      }
      if (part.bufferAt >= part.buffer.length) {
        if (part.cursor >= part.log.nextOffset) break;
        if (!this.members.some((m) => this.canTake(m))) break;
        const end = part.log.nextOffset;
        const now = readSharedNow(part.log, part.cursor, this.host.readBatchRecords);
        if (now === undefined) {
          const counted = sent;
          return readShared(part.log, part.cursor, this.host.readBatchRecords).then((batch) => {
            if (part.removed || this.closed || !this.takeBatch(part, batch, end)) return this.endPart(part, counted);
            return this.pumpFrom(part, counted);
          });
        }
        if (!this.takeBatch(part, now, end)) break;
      }
      const rec = part.buffer[part.bufferAt]!;
      if (rec.offset > part.cursor) this.skipGap(part, rec.offset);
      if (rec.offset < part.cursor || rec.offset < part.floor || part.done.has(rec.offset)) {
        part.bufferAt++;
        part.cursor = Math.max(part.cursor, rec.offset + 1);
        continue;
      }
      if (rec.expiresAt !== undefined && rec.expiresAt <= Date.now()) {
        part.bufferAt++;
        part.cursor = rec.offset + 1;
        this.expired(part, rec);
        continue;
      }
      const member = this.pickMember(part);
      if (!member) break;
      part.bufferAt++;
      part.cursor = rec.offset + 1;
      this.send(part, member, rec, 1);
      sent++;
    }
    return this.endPart(part, sent);
  }

  /** A read's records become the part's buffer; false when the log skipped everything left (settled as a gap). */
  private takeBatch(part: PartState, batch: { records: LogRecord[]; at: number }, end: number): boolean {
    if (batch.at >= batch.records.length) {
      // Everything left was skipped by the log (expired): settle it.
      this.skipGap(part, end);
      return false;
    }
    part.buffer = batch.records;
    part.bufferAt = batch.at;
    return true;
  }

  private endPart(part: PartState, sent: number): number {
    if (part.bufferAt >= part.buffer.length && part.buffer.length) {
      part.buffer = [];
      part.bufferAt = 0;
    }
    return sent;
  }

  /**
   * The log returned nothing for [cursor, to): records removed by retention (below its firstOffset) or skipped as
   * expired (TTL). Either way they are settled, so the committed position moves past them.
   */
  private skipGap(part: PartState, to: number): void {
    let from = part.cursor;
    if (to <= from) return;
    const first = part.log.firstOffset;
    if (first > from) {
      part.skipTo(Math.min(first, to));
      from = Math.min(first, to);
    }
    for (let o = Math.max(from, part.floor); o < to; o++) {
      if (part.done.has(o) || part.pending.has(o)) continue;
      this.host.lineage(() => ({ step: 'expired', topic: part.topic.name, partition: part.partition, offset: o, consumer: this.name ?? this.id, ...this.groupField(), t: Date.now() }));
      part.settle(o);
    }
    part.cursor = to;
    if (this.durable) this.host.positionsChanged(this);
  }

  /** TTL: an expired record is settled without delivery (lineage 'expired'). */
  private expired(part: PartState, rec: LogRecord): boolean {
    if (rec.expiresAt === undefined || rec.expiresAt > Date.now()) return false;
    this.host.lineage(() => ({ step: 'expired', topic: part.topic.name, partition: part.partition, offset: rec.offset, consumer: this.name ?? this.id, ...this.groupField(), t: Date.now() }));
    this.settle(part, rec.offset);
    return true;
  }

  private send(part: PartState, member: Member, record: LogRecord, attempt: number): void {
    const offset = record.offset;
    const topic = part.topic.name;
    const partition = part.partition;
    if (this.settings.ack === 'manual') {
      member.pending++;
      const p: Pending = { part, offset, record, attempt, member };
      part.pending.set(offset, p);
      this.deadlines.set(p, this.settings.ackWaitMs);
    }
    const d = this.delivered;
    d.topic = topic;
    d.partition = partition;
    d.offset = offset;
    d.consumer = member.id;
    d.attempt = attempt;
    this.host.lineage(this.deliveredStep);
    try {
      member.deliver(new GroupDelivery(this.id, topic, partition, record, attempt));
    } catch {
      // The member's callback threw: for manual acks the message comes back after ackWaitMs; at-most-once loses it.
    }
    if (this.settings.ack === 'none') this.settle(part, offset);
  }

  private groupField(): { group?: string } {
    return this.name === undefined ? {} : { group: this.name };
  }

  stop(): void {
    this.closed = true;
    this.deadlines.clear();
    for (const part of this.parts.values()) part.clearRetryTimers();
  }
}
