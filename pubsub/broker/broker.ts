/** The broker: sessions on top of one engine, with the counters, the lineage store and the trace (proto `pubsub`). */
import { ErrorCodes, PubsubError } from '../../core/errors.ts';
import { NOOP_TRACER, nextCid, type Tracer } from '../../core/trace/index.ts';
import type { AppendResult, Engine, GroupInfo, LineageStep, TopicInfo } from '../engines/types.ts';
import type { LogRecord } from '../log/types.ts';
import { matches } from '../subjects.ts';
import { authenticate } from './auth.ts';
import { LineageStore } from './lineage.ts';
import type { ResolvedBrokerOptions } from './options.ts';
import { BrokerSession } from './session.ts';
import { SignatureVerifier } from './signing.ts';
import type { BrokerSubscription } from './subscription.ts';
import type { Broker, BrokerStats, ConnectInfo, Door, LineageEntry, Message, Session } from './types.ts';

type RejectKind = keyof BrokerStats['rejected'];

const DLQ_HEADERS = ['wl-dlq-reason', 'wl-dlq-topic', 'wl-dlq-partition', 'wl-dlq-offset', 'wl-dlq-deliveries'];

export class BrokerCore implements Broker {
  readonly cid = nextCid('pubsub');
  readonly tracer: Tracer;
  readonly verifier: SignatureVerifier | undefined;
  readonly #sessions = new Set<BrokerSession>();
  /** Engine consumer id -> the session it delivers to (for lineage: delivered to whom). */
  readonly #consumerOwners = new Map<string, BrokerSession>();
  readonly #blocked = new Set<BrokerSubscription>();
  readonly #topics = new Set<string>();
  readonly #lineage: LineageStore;
  readonly #offLineage: () => void;
  #closed = false;
  readonly #stats: BrokerStats = {
    connections: 0,
    published: 0,
    delivered: 0,
    acked: 0,
    redelivered: 0,
    deadLettered: 0,
    duplicates: 0,
    dropped: 0,
    slowConsumerDisconnects: 0,
    blocked: 0,
    rejected: { auth: 0, acl: 0, limit: 0, rate: 0, signature: 0, invalid: 0 },
  };

  constructor(
    readonly engine: Engine,
    readonly options: ResolvedBrokerOptions,
    readonly ownsEngine: boolean,
    topics: readonly TopicInfo[],
  ) {
    this.tracer = options.tracer ?? NOOP_TRACER;
    this.verifier = options.signing === undefined ? undefined : new SignatureVerifier(options.signing);
    for (const t of topics) this.#topics.add(t.name);
    this.#lineage = new LineageStore(options.maxLineageMessages);
    this.#offLineage = engine.onLineage((s) => this.#onLineage(s));
  }

  // ---- Broker API ----

  async connect(info: ConnectInfo): Promise<Session> {
    if (this.#closed) throw new PubsubError(ErrorCodes.CLOSED, 'broker closed');
    if (this.#sessions.size >= this.options.maxConnections) {
      const err = new PubsubError(ErrorCodes.PUBSUB_LIMIT, `maxConnections ${this.options.maxConnections} reached`, { limit: 'maxConnections' });
      this.refused(undefined, 'limit', err, info);
      throw err;
    }
    let user;
    try {
      user = await authenticate(this.options, info);
    } catch (err) {
      this.refused(undefined, 'auth', err as PubsubError, info);
      throw err;
    }
    if (this.#closed) throw new PubsubError(ErrorCodes.CLOSED, 'broker closed');
    // Checked again: other connects may have completed while scrypt ran.
    if (this.#sessions.size >= this.options.maxConnections) {
      const err = new PubsubError(ErrorCodes.PUBSUB_LIMIT, `maxConnections ${this.options.maxConnections} reached`, { limit: 'maxConnections' });
      this.refused(undefined, 'limit', err, info);
      throw err;
    }
    const permissions = user === undefined ? this.options.anonymousPermissions : user.permissions;
    const session = new BrokerSession(this, user?.name, permissions, info);
    this.#sessions.add(session);
    this.#stats.connections = this.#sessions.size;
    this.tracer.emit('pubsub', session.id, '*', 'connect', () => ({
      summary: `session ${session.id} ${user === undefined ? 'anonymous' : `user ${user.name}`} via ${info.door} from ${info.peer}`,
      meta: { door: info.door, peer: info.peer, tls: info.tls, user: user?.name, clientId: info.clientId },
    }));
    return session;
  }

  topics(): Promise<TopicInfo[]> {
    return this.engine.topics();
  }

  groups(): Promise<GroupInfo[]> {
    return this.engine.groups();
  }

  async deadLetters(topic: string, max = 100): Promise<LogRecord[]> {
    const info = await this.engine.topic(topic);
    if (info === undefined) return [];
    const out: LogRecord[] = [];
    for (const p of info.partitionInfo) out.push(...(await this.engine.read(topic, p.partition, p.firstOffset, max)));
    return out.sort((a, b) => a.timestamp - b.timestamp).slice(0, max);
  }

  /**
   * Republishes dead letters to the topic in their `wl-dlq-topic` header, with their key and original headers (the
   * wl-dlq-* ones dropped, `wl-redriven-from` added) and without their msgId (the dedup window would swallow them).
   * The DLQ is a log: redriven records stay in it, so redriving the same offsets twice publishes them twice.
   */
  async redrive(deadLetterTopic: string, offsets?: number[]): Promise<number> {
    const info = await this.engine.topic(deadLetterTopic);
    if (info === undefined) throw new PubsubError(ErrorCodes.PUBSUB_NOT_FOUND, `no topic ${deadLetterTopic}`);
    const want = offsets === undefined ? undefined : new Set(offsets);
    let n = 0;
    for (const p of info.partitionInfo) {
      for (let from = p.firstOffset; from < p.nextOffset; ) {
        const batch = await this.engine.read(deadLetterTopic, p.partition, from, 1000);
        if (batch.length === 0) break;
        for (const r of batch) {
          if (want !== undefined && !want.has(r.offset)) continue;
          const topic = r.headers['wl-dlq-topic'];
          if (topic === undefined) continue;
          const headers: Record<string, string> = { ...r.headers, 'wl-redriven-from': `${deadLetterTopic}/${p.partition}/${r.offset}` };
          for (const h of DLQ_HEADERS) delete headers[h];
          const t = Date.now();
          const result = await this.engine.append({ topic, payload: r.payload, headers, acks: this.options.defaultAcks, ...(r.key === undefined ? {} : { key: r.key }) });
          this.#topics.add(topic);
          this.#recordPublished(this.cid, undefined, 'internal', result, t, undefined, undefined);
          n++;
        }
        from = batch[batch.length - 1]!.offset + 1;
      }
    }
    return n;
  }

  stats(): BrokerStats {
    return { ...this.#stats, connections: this.#sessions.size, rejected: { ...this.#stats.rejected } };
  }

  lineage(topic: string, partition: number, offset: number): LineageEntry[] | undefined {
    return this.#lineage.get(topic, partition, offset);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#sessions].map((s) => s.kill('broker closing')));
    this.#offLineage();
    if (this.ownsEngine) await this.engine.close();
  }

  // ---- for sessions and subscriptions ----

  hasTopic(topic: string): boolean {
    return this.#topics.has(topic);
  }

  /** Counts a topic a publish is about to create; false when that would pass maxTopics. */
  reserveTopic(topic: string): boolean {
    if (this.#topics.size >= this.options.maxTopics) return false;
    this.#topics.add(topic);
    return true;
  }

  /** A publish that reserved a topic failed: uncount it unless the engine made it anyway. */
  async releaseTopic(topic: string): Promise<void> {
    if ((await this.engine.topic(topic).catch(() => undefined)) === undefined) this.#topics.delete(topic);
  }

  /** True while some 'block' subscriber is full: a publish then goes through waitForBlocked. */
  mayBlock(_topic: string): boolean {
    return this.#blocked.size > 0;
  }

  /** Waits while a full 'block' fan-out subscription matches `topic` (each for at most maxBlockMs). */
  async waitForBlocked(topic: string): Promise<void> {
    if (this.#blocked.size === 0) return;
    let counted = false;
    for (;;) {
      const waits: Promise<void>[] = [];
      for (const s of this.#blocked) if (matches(s.pattern, topic)) waits.push(s.waitDrained(this.options.maxBlockMs));
      if (waits.length === 0) return;
      if (!counted) {
        counted = true;
        this.#stats.blocked++;
        this.tracer.emit('pubsub', this.cid, '*', 'blocked', () => ({
          summary: `publish to ${topic} waits for ${waits.length} full subscriber buffer(s)`,
          meta: { topic, subscribers: waits.length },
        }));
      }
      await Promise.all(waits);
    }
  }

  blockedChanged(sub: BrokerSubscription, blocked: boolean): void {
    if (blocked) this.#blocked.add(sub);
    else this.#blocked.delete(sub);
  }

  ownConsumer(consumerId: string, session: BrokerSession): void {
    this.#consumerOwners.set(consumerId, session);
  }

  disownConsumer(consumerId: string): void {
    this.#consumerOwners.delete(consumerId);
  }

  published(session: BrokerSession, result: AppendResult, t: number, signer: string | undefined, msgId: string | undefined): void {
    this.#topics.add(result.topic);
    this.#recordPublished(session.id, session.user, session.info.door, result, t, signer, msgId);
  }

  #recordPublished(cid: string, user: string | undefined, door: Door, result: AppendResult, t: number, signer: string | undefined, msgId: string | undefined): void {
    if (result.duplicate) {
      this.#stats.duplicates++;
      return;
    }
    this.#stats.published++;
    const entry: LineageEntry = { step: 'published', topic: result.topic, partition: result.partition, offset: result.offset, t, session: cid, door };
    if (user !== undefined) entry.user = user;
    if (signer !== undefined) entry.signer = signer;
    if (msgId !== undefined) entry.msgId = msgId;
    this.#lineage.addStep(entry);
    this.tracer.emit('pubsub', cid, '>', 'published', () => ({
      summary: `published ${result.topic}[${result.partition}]@${result.offset} by ${user ?? 'anonymous'} via ${door}${signer === undefined ? '' : ` signed by ${signer}`}`,
      meta: { ...entry },
    }));
  }

  #onLineage(step: LineageStep): void {
    const tracing = this.tracer.enabled;
    if (step.step === 'delivered' && !tracing) {
      // The hot path (one per subscriber per message): no trace, a compact record.
      this.#lineage.addDelivered(step.topic, step.partition, step.offset, step.consumer, step.attempt, step.t, step.group, this.#consumerOwners.get(step.consumer)?.lineageOwner);
      return;
    }
    if (step.step === 'duplicate') {
      if (tracing) this.tracer.emit('pubsub', this.cid, '*', 'duplicate', () => ({ summary: `duplicate msgId ${step.msgId} on ${step.topic} (first copy @${step.offset})`, meta: { ...step } }));
      return;
    }
    if (step.step === 'acked') this.#stats.acked++;
    else if (step.step === 'dead-lettered') {
      this.#stats.deadLettered++;
      this.#topics.add(step.deadLetterTopic);
    }
    const consumer = (step as { consumer?: string }).consumer;
    const owner = consumer === undefined ? undefined : this.#consumerOwners.get(consumer);
    this.#lineage.add(step, owner?.lineageOwner);
    if (!tracing) return;
    this.tracer.emit('pubsub', owner?.id ?? this.cid, '*', step.step, () => ({
      summary: `${step.step} ${step.topic}[${step.partition}]@${step.offset}${consumer === undefined ? '' : ` consumer ${consumer}`}${step.step === 'delivered' ? ` attempt ${step.attempt}` : ''}${step.step === 'dead-lettered' ? ` -> ${step.deadLetterTopic} (${step.reason})` : ''}`,
      meta: { ...step, session: owner?.id, user: owner?.user },
    }));
  }

  countDelivered(m: Message): void {
    this.#stats.delivered++;
    if (m.attempt > 1) this.#stats.redelivered++;
  }

  countRejected(kind: RejectKind): void {
    this.#stats.rejected[kind]++;
  }

  countDropped(sub: BrokerSubscription, m: Message, policy: 'dropOldest' | 'dropNewest'): void {
    this.#stats.dropped++;
    this.tracer.emit('pubsub', sub.session.id, '*', 'dropped', () => ({
      summary: `${policy}: dropped ${m.topic}[${m.partition}]@${m.offset} for ${sub.id} (buffer ${sub.size} full)`,
      meta: { policy, subscription: sub.id, topic: m.topic, partition: m.partition, offset: m.offset, size: sub.size },
    }));
  }

  /** Cuts a slow consumer: its whole session is closed with reason 'slow consumer'. */
  slowConsumer(sub: BrokerSubscription): void {
    const session = sub.session;
    if (session.closed) return;
    this.#stats.slowConsumerDisconnects++;
    this.tracer.emit('pubsub', session.id, '*', 'slow-consumer', () => ({
      summary: `slow consumer: ${sub.id} (${sub.pattern}) buffer ${sub.size} full with policy ${sub.policy}: session closed`,
      meta: { subscription: sub.id, pattern: sub.pattern, policy: sub.policy, size: sub.size },
    }));
    void session.kill('slow consumer');
  }

  refused(session: BrokerSession | undefined, kind: RejectKind, err: PubsubError, info?: ConnectInfo): void {
    this.#stats.rejected[kind]++;
    this.tracer.emit('pubsub', session?.id ?? this.cid, '*', 'refused', () => ({
      summary: `refused (${err.code}${err.limit === undefined ? '' : ` ${err.limit}`}): ${err.message}`,
      meta: { code: err.code, limit: err.limit, kind, peer: (session?.info ?? info)?.peer, door: (session?.info ?? info)?.door },
    }));
  }

  traceSubscribe(session: BrokerSession, sub: BrokerSubscription): void {
    this.tracer.emit('pubsub', session.id, '>', 'subscribe', () => ({
      summary: `${sub.id} ${sub.pattern}${sub.input.group === undefined ? '' : ` group ${sub.input.group.name} (${sub.input.group.mode})`} ack ${sub.input.ack} buffer ${sub.size} ${sub.policy}`,
      meta: { subscription: sub.id, pattern: sub.pattern, group: sub.input.group, ack: sub.input.ack, buffer: { size: sub.size, policy: sub.policy } },
    }));
  }

  traceError(session: BrokerSession, what: string, err: unknown): void {
    this.tracer.emit('pubsub', session.id, '*', 'error', () => ({ summary: `${what}: ${(err as Error)?.message ?? String(err)}`, meta: { what } }));
  }

  sessionClosed(session: BrokerSession, reason: string): void {
    this.#sessions.delete(session);
    this.tracer.emit('pubsub', session.id, '*', 'close', () => ({ summary: `session ${session.id} closed: ${reason}`, meta: { reason } }));
  }
}
