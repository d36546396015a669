/** One connection's session: what a door calls for publish / subscribe / ack, after the broker authenticated it. */
import { ErrorCodes, InvalidOptionError, PubsubError } from '../../core/errors.ts';
import { nextCid } from '../../core/trace/index.ts';
import type { AppendRequest, AppendResult, ConsumerSpec } from '../engines/types.ts';
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

  /**
   * The hot path of every publish (CPU per publish is what bounds durable publishing): checks without allocating on
   * the common case, no await unless a validator, a full 'block' subscriber or a new topic asks for one.
   */
  publish(input: PublishInput): Promise<AppendResult> {
    try {
      return this.#publish(input);
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  #publish(input: PublishInput): Promise<AppendResult> {
    this.#checkOpen();
    const o = this.broker.options;
    if (typeof input !== 'object' || input === null) throw this.#refuse('invalid', ErrorCodes.PUBSUB_INVALID, 'publish needs an object');
    const { topic, payload } = input;
    // A topic the broker already holds passed this check when it was created.
    if (typeof topic !== 'string' || !this.broker.hasTopic(topic)) {
      try {
        checkTopic(topic);
      } catch (err) {
        this.broker.refused(this, 'invalid', err as PubsubError);
        throw err;
      }
    }
    if (!Buffer.isBuffer(payload)) throw this.#refuse('invalid', ErrorCodes.PUBSUB_INVALID, 'payload must be a Buffer');
    if (payload.length > o.maxPayloadBytes) {
      throw this.#refuse('limit', ErrorCodes.PUBSUB_LIMIT, `payload of ${payload.length} bytes over maxPayloadBytes ${o.maxPayloadBytes}`, 'maxPayloadBytes');
    }
    let headerBytes = 0;
    if (input.key !== undefined) {
      if (typeof input.key !== 'string') throw this.#refuse('invalid', ErrorCodes.PUBSUB_INVALID, 'key must be a string');
      headerBytes += Buffer.byteLength(input.key);
    }
    const headers = input.headers;
    if (headers !== undefined) {
      if (typeof headers !== 'object' || headers === null) throw this.#refuse('invalid', ErrorCodes.PUBSUB_INVALID, 'headers must be an object');
      for (const k in headers) {
        if (!Object.hasOwn(headers, k)) continue;
        const v = headers[k];
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
        signer = verifier.check(topic, payload, input.msgId, headers);
      } catch (err) {
        this.broker.refused(this, 'signature', err as PubsubError);
        throw err;
      }
    }
    const request: AppendRequest = { topic, payload, acks };
    if (input.key !== undefined) request.key = input.key;
    if (input.partition !== undefined) request.partition = input.partition;
    if (headers !== undefined) request.headers = headers;
    if (input.msgId !== undefined) request.msgId = input.msgId;
    if (input.ttlMs !== undefined) request.ttlMs = input.ttlMs;
    const validators = o.validators;
    if (validators !== undefined && validators.length > 0) return this.#validated(request, validators, signer);
    return this.#append(request, signer);
  }

  async #validated(request: AppendRequest, all: NonNullable<BrokerCore['options']['validators']>, signer: string | undefined): Promise<AppendResult> {
    const { topic, payload, headers } = request;
    const validators = all.filter((v) => matches(v.pattern, topic));
    if (validators.length) {
      const issues: string[] = [];
      for (const v of validators) {
        try {
          issues.push(...((await v.validate({ topic, payload, ...(headers ? { headers } : {}) })) ?? []));
        } catch (err) {
          issues.push(`the validator failed: ${(err as Error).message}`);
        }
      }
      this.#checkOpen();
      if (issues.length) throw this.#refuse('invalid', ErrorCodes.PUBSUB_INVALID, `refused by validation: ${issues.join('; ').slice(0, 500)}`);
    }
    return this.#append(request, signer);
  }

  /** Appends to the engine; waits first only while a full 'block' subscriber matches the topic. */
  #append(request: AppendRequest, signer: string | undefined): Promise<AppendResult> {
    const topic = request.topic;
    // Reserved before the first await, so concurrent publishes to new topics cannot overshoot maxTopics.
    const reserved = !this.broker.hasTopic(topic);
    if (reserved && !this.broker.reserveTopic(topic)) {
      throw this.#refuse('limit', ErrorCodes.PUBSUB_LIMIT, `maxTopics ${this.broker.options.maxTopics} reached`, 'maxTopics');
    }
    const t = Date.now();
    let appended: Promise<AppendResult>;
    if (this.broker.mayBlock(topic)) {
      appended = this.broker.waitForBlocked(topic).then(() => {
        this.#checkOpen();
        return this.broker.engine.append(request);
      });
    } else {
      try {
        appended = this.broker.engine.append(request);
      } catch (err) {
        appended = Promise.reject(err as Error);
      }
    }
    return appended.then(
      (result) => {
        this.broker.published(this, result, t, signer, request.msgId);
        return result;
      },
      async (err: unknown) => {
        if (reserved) await this.broker.releaseTopic(topic);
        if (err instanceof PubsubError && err.code === ErrorCodes.PUBSUB_INVALID) this.broker.refused(this, 'invalid', err);
        throw err;
      },
    );
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
