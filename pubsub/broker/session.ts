/** One connection's session: what a door calls for publish / subscribe / ack, after the broker authenticated it. */
import { ErrorCodes, InvalidOptionError, PubsubError } from '../../core/errors.ts';
import { nextCid } from '../../core/trace/index.ts';
import type { AppendResult, ConsumerSpec } from '../engines/types.ts';
import { checkPattern, checkTopic, matches } from '../subjects.ts';
import { mayPublish, maySubscribe, type Permissions } from './acl.ts';
import type { LineageOwner } from './lineage.ts';
import type { BrokerCore } from './broker.ts';
import { checkAcks, checkBuffer } from './options.ts';
import { TokenBucket } from './rate.ts';
import { BrokerSubscription } from './subscription.ts';
import type { ConnectInfo, Deliver, PublishInput, Session, SubscribeInput, Subscription } from './types.ts';

export class BrokerSession implements Session {
  readonly id = nextCid('pubsub');
  readonly #subs = new Map<string, BrokerSubscription>();
  readonly #bucket: TokenBucket | undefined;
  readonly #closedListeners: ((reason: string) => void)[] = [];
  #closed: string | undefined;
  /** Shared by every lineage step delivered to this session. */
  readonly lineageOwner: LineageOwner;

  constructor(
    readonly broker: BrokerCore,
    readonly user: string | undefined,
    readonly permissions: Permissions | undefined,
    readonly info: ConnectInfo,
  ) {
    this.lineageOwner = user === undefined ? { session: this.id } : { session: this.id, user };
    const r = broker.options.rateLimit;
    if (r !== undefined) this.#bucket = new TokenBucket(r.perSecond, r.burst);
  }

  get closed(): boolean {
    return this.#closed !== undefined;
  }

  #refuse(kind: 'acl' | 'limit' | 'rate' | 'signature' | 'invalid', code: string, message: string, limit?: string): PubsubError {
    const err = new PubsubError(code, message, limit === undefined ? {} : { limit });
    this.broker.refused(this, kind, err);
    return err;
  }

  #checkOpen(): void {
    if (this.#closed !== undefined) throw new PubsubError(ErrorCodes.CLOSED, `session closed (${this.#closed})`);
  }

  async publish(input: PublishInput): Promise<AppendResult> {
    this.#checkOpen();
    const o = this.broker.options;
    if (typeof input !== 'object' || input === null) throw this.#refuse('invalid', ErrorCodes.PUBSUB_INVALID, 'publish needs an object');
    try {
      checkTopic(input.topic);
    } catch (err) {
      this.broker.refused(this, 'invalid', err as PubsubError);
      throw err;
    }
    const { topic, payload } = input;
    if (!Buffer.isBuffer(payload)) throw this.#refuse('invalid', ErrorCodes.PUBSUB_INVALID, 'payload must be a Buffer');
    if (payload.length > o.maxPayloadBytes) {
      throw this.#refuse('limit', ErrorCodes.PUBSUB_LIMIT, `payload of ${payload.length} bytes over maxPayloadBytes ${o.maxPayloadBytes}`, 'maxPayloadBytes');
    }
    let headerBytes = input.key === undefined ? 0 : Buffer.byteLength(String(input.key));
    if (input.key !== undefined && typeof input.key !== 'string') throw this.#refuse('invalid', ErrorCodes.PUBSUB_INVALID, 'key must be a string');
    if (input.headers !== undefined) {
      if (typeof input.headers !== 'object' || input.headers === null) throw this.#refuse('invalid', ErrorCodes.PUBSUB_INVALID, 'headers must be an object');
      for (const [k, v] of Object.entries(input.headers)) {
        if (typeof v !== 'string' || k === '') throw this.#refuse('invalid', ErrorCodes.PUBSUB_INVALID, 'header values must be strings');
        headerBytes += Buffer.byteLength(k) + Buffer.byteLength(v);
      }
    }
    if (input.msgId !== undefined) {
      if (typeof input.msgId !== 'string' || input.msgId === '') throw this.#refuse('invalid', ErrorCodes.PUBSUB_INVALID, 'msgId must be a non-empty string');
      headerBytes += Buffer.byteLength(input.msgId);
    }
    if (headerBytes > o.maxHeaderBytes) {
      throw this.#refuse('limit', ErrorCodes.PUBSUB_LIMIT, `headers of ${headerBytes} bytes over maxHeaderBytes ${o.maxHeaderBytes}`, 'maxHeaderBytes');
    }
    let acks = o.defaultAcks;
    if (input.acks !== undefined) {
      try {
        acks = checkAcks('acks', input.acks);
      } catch {
        throw this.#refuse('invalid', ErrorCodes.PUBSUB_INVALID, "acks must be 0, 1 or 'all'");
      }
    }
    if (input.partition !== undefined && (!Number.isInteger(input.partition) || input.partition < 0)) {
      throw this.#refuse('invalid', ErrorCodes.PUBSUB_INVALID, 'partition must be an integer >= 0');
    }
    if (input.ttlMs !== undefined && (!Number.isInteger(input.ttlMs) || input.ttlMs <= 0)) {
      throw this.#refuse('invalid', ErrorCodes.PUBSUB_INVALID, 'ttlMs must be an integer > 0');
    }
    if (!mayPublish(this.permissions, topic)) throw this.#refuse('acl', ErrorCodes.PUBSUB_ACL, `not allowed to publish to ${topic}`);
    if (this.#bucket !== undefined && !this.#bucket.take()) throw this.#refuse('rate', ErrorCodes.PUBSUB_RATE, 'publish rate over rateLimit');
    let signer: string | undefined;
    const verifier = this.broker.verifier;
    if (verifier !== undefined) {
      try {
        signer = verifier.check(topic, payload, input.msgId, input.headers);
      } catch (err) {
        this.broker.refused(this, 'signature', err as PubsubError);
        throw err;
      }
    }
    const validators = o.validators?.filter((v) => matches(v.pattern, topic));
    if (validators?.length) {
      const issues: string[] = [];
      for (const v of validators) {
        try {
          issues.push(...((await v.validate({ topic, payload, ...(input.headers ? { headers: input.headers } : {}) })) ?? []));
        } catch (err) {
          issues.push(`the validator failed: ${(err as Error).message}`);
        }
      }
      this.#checkOpen();
      if (issues.length) throw this.#refuse('invalid', ErrorCodes.PUBSUB_INVALID, `refused by validation: ${issues.join('; ').slice(0, 500)}`);
    }
    // Reserved before the first await, so concurrent publishes to new topics cannot overshoot maxTopics.
    const reserved = !this.broker.hasTopic(topic);
    if (reserved && !this.broker.reserveTopic(topic)) {
      throw this.#refuse('limit', ErrorCodes.PUBSUB_LIMIT, `maxTopics ${o.maxTopics} reached`, 'maxTopics');
    }
    const t = Date.now();
    let result: AppendResult;
    try {
      await this.broker.waitForBlocked(topic);
      this.#checkOpen();
      const request = { topic, payload, acks, ...pick(input, ['key', 'partition', 'headers', 'msgId', 'ttlMs'] as const) };
      result = await this.broker.engine.append(request);
    } catch (err) {
      if (reserved) await this.broker.releaseTopic(topic);
      if (err instanceof PubsubError && err.code === ErrorCodes.PUBSUB_INVALID) this.broker.refused(this, 'invalid', err);
      throw err;
    }
    this.broker.published(this, result, t, signer, input.msgId);
    return result;
  }

  async subscribe(input: SubscribeInput, deliver: Deliver): Promise<Subscription> {
    this.#checkOpen();
    const o = this.broker.options;
    if (typeof input !== 'object' || input === null || typeof deliver !== 'function') {
      throw this.#refuse('invalid', ErrorCodes.PUBSUB_INVALID, 'subscribe needs an input object and a deliver function');
    }
    try {
      checkPattern(input.pattern);
    } catch (err) {
      this.broker.refused(this, 'invalid', err as PubsubError);
      throw err;
    }
    let buffer: { size: number; policy: BrokerSubscription['policy'] };
    try {
      buffer = checkBuffer('buffer', input.buffer, o.buffer);
      if (input.ack !== undefined && input.ack !== 'none' && input.ack !== 'manual') throw new InvalidOptionError('ack', "'none' or 'manual'", input.ack);
      if (input.replay !== undefined && input.replay !== 'instant' && input.replay !== 'original') {
        throw new InvalidOptionError('replay', "'instant' or 'original'", input.replay);
      }
      const g = input.group;
      if (g !== undefined && (typeof g !== 'object' || g === null || typeof g.name !== 'string' || !/^[\w.-]{1,128}$/.test(g.name) || (g.mode !== 'queue' && g.mode !== 'partitioned'))) {
        throw new InvalidOptionError('group', "{ name: [\\w.-]{1,128}, mode: 'queue' | 'partitioned' }", g);
      }
    } catch (err) {
      throw this.#refuse('invalid', ErrorCodes.PUBSUB_INVALID, (err as Error).message);
    }
    if (!maySubscribe(this.permissions, input.pattern)) throw this.#refuse('acl', ErrorCodes.PUBSUB_ACL, `not allowed to subscribe to ${input.pattern}`);
    if (this.#subs.size >= o.maxSubscriptionsPerConnection) {
      throw this.#refuse('limit', ErrorCodes.PUBSUB_LIMIT, `maxSubscriptionsPerConnection ${o.maxSubscriptionsPerConnection} reached`, 'maxSubscriptionsPerConnection');
    }
    const normalized: SubscribeInput = { ...input, ack: input.ack ?? 'manual' };
    const sub = new BrokerSubscription(this, normalized, deliver, buffer);
    this.#subs.set(sub.id, sub);
    const { replay: _r, buffer: _b, ...rest } = normalized;
    const spec = rest as ConsumerSpec;
    try {
      const consumer = await this.broker.engine.consume(spec, (d) => sub.onDelivery(d));
      this.broker.ownConsumer(consumer.id, this);
      if (sub.closed || this.closed) {
        await consumer.close();
        this.#checkOpen();
      } else sub.attach(consumer);
    } catch (err) {
      this.#subs.delete(sub.id);
      if (err instanceof PubsubError && err.code === ErrorCodes.PUBSUB_INVALID) this.broker.refused(this, 'invalid', err);
      throw err;
    }
    this.broker.traceSubscribe(this, sub);
    return sub;
  }

  /** A delivery id is `<subscription>/<engine delivery id>`: the subscription, then the engine's own id. */
  #target(deliveryId: string): [BrokerSubscription, string] {
    const slash = typeof deliveryId === 'string' ? deliveryId.indexOf('/') : -1;
    const sub = slash > 0 ? this.#subs.get(deliveryId.slice(0, slash)) : undefined;
    if (sub === undefined) throw new PubsubError(ErrorCodes.PUBSUB_NOT_FOUND, 'unknown delivery id (or its subscription closed)');
    return [sub, deliveryId.slice(slash + 1)];
  }

  ack(deliveryId: string): void {
    const [sub, id] = this.#target(deliveryId);
    sub.ack(id);
  }

  nak(deliveryId: string, delayMs?: number): void {
    const [sub, id] = this.#target(deliveryId);
    sub.nak(id, delayMs);
  }

  inProgress(deliveryId: string): void {
    const [sub, id] = this.#target(deliveryId);
    sub.inProgress(id);
  }

  term(deliveryId: string, reason?: string): void {
    const [sub, id] = this.#target(deliveryId);
    sub.term(id, reason);
  }

  /** Called by a subscription as it closes. */
  forget(sub: BrokerSubscription): void {
    this.#subs.delete(sub.id);
  }

  get subscriptions(): readonly BrokerSubscription[] {
    return [...this.#subs.values()];
  }

  async close(reason = 'closed by client'): Promise<void> {
    if (this.#closed !== undefined) return;
    this.#closed = reason;
    await Promise.allSettled([...this.#subs.values()].map((s) => s.close()));
    this.broker.sessionClosed(this, reason);
  }

  /** The broker ends the session: closes it and tells the door (onClosed). */
  async kill(reason: string): Promise<void> {
    if (this.#closed !== undefined) return;
    const done = this.close(reason);
    for (const l of this.#closedListeners.splice(0)) {
      try {
        l(reason);
      } catch (err) {
        this.broker.traceError(this, 'onClosed listener threw', err);
      }
    }
    await done;
  }

  onClosed(listener: (reason: string) => void): void {
    this.#closedListeners.push(listener);
  }
}

function pick<T extends object, K extends keyof T>(o: T, keys: readonly K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}
