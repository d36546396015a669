/**
 * One subscription of one session: the engine consumer behind it, the subscriber buffer with its overflow policy,
 * and the pacing of an 'original'-pace replay.
 *
 * Flow: engine delivery -> (ACL filter) -> (replay pacing) -> buffer -> `deliver`. While `deliver` keeps returning
 * true nothing is buffered. After it returns false the subscription is congested: messages queue in the buffer until
 * the door calls `resume()`. At `buffer.size` the policy applies:
 * - block: the engine consumer is paused (a group's other members take over); a fan-out subscription also holds
 *   publishes to topics it matches (their promise stays pending) until it drains, for at most the broker's
 *   `maxBlockMs`, after which it is cut as a slow consumer.
 * - dropOldest / dropNewest: one buffered / the incoming message is dropped, counted (stats.dropped) and traced. With
 *   ack 'manual' a dropped message is not acked, so the engine redelivers it after ackWaitMs: only with ack 'none'
 *   does a drop lose the message.
 * - disconnect: the session is closed with reason 'slow consumer' (NATS's cut-off), counted.
 */
import { ErrorCodes, PubsubError } from '../../core/errors.ts';
import type { Delivery, EngineConsumer } from '../engines/types.ts';
import { mayReceive } from './acl.ts';
import type { Deliver, Message, OverflowPolicy, SubscribeInput, Subscription } from './types.ts';
import type { BrokerSession } from './session.ts';

/** An array queue with a moving head (shift in O(1)). */
class Queue<T> {
  #items: (T | undefined)[] = [];
  #head = 0;
  get length(): number {
    return this.#items.length - this.#head;
  }
  push(v: T): void {
    this.#items.push(v);
  }
  peek(): T | undefined {
    return this.#items[this.#head];
  }
  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const v = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return v;
  }
  clear(): void {
    this.#items = [];
    this.#head = 0;
  }
}

let subscriptionCounter = 0;

export class BrokerSubscription implements Subscription {
  readonly id = `sub${++subscriptionCounter}`;
  consumer: EngineConsumer | undefined;
  readonly #buffer = new Queue<Message>();
  readonly #pace = new Queue<Message>();
  #paceBase: { wall: number; ts: number } | undefined;
  #paceTimer: NodeJS.Timeout | undefined;
  readonly #pauseReasons = new Set<'buffer' | 'pace'>();
  #congested = false;
  #closed = false;
  /** Set while a full 'block' fan-out subscription holds publishes back. */
  #drained: { promise: Promise<void>; resolve: () => void; timer?: NodeJS.Timeout } | undefined;
  readonly size: number;
  readonly policy: OverflowPolicy;
  readonly #subscribedAt = Date.now();

  constructor(
    readonly session: BrokerSession,
    readonly input: SubscribeInput,
    readonly deliver: Deliver,
    buffer: { size: number; policy: OverflowPolicy },
  ) {
    this.size = buffer.size;
    this.policy = buffer.policy;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** A fan-out subscription ('block', full) that publishes to `topic` must wait for. */
  get blocking(): boolean {
    return this.#drained !== undefined;
  }

  get pattern(): string {
    return this.input.pattern;
  }

  /** The engine consumer is ready: deliveries that came before it go out now. */
  attach(consumer: EngineConsumer): void {
    this.consumer = consumer;
    if (this.#pauseReasons.size > 0) consumer.pause();
    this.#flush();
  }

  onDelivery(d: Delivery): void {
    if (this.#closed) return;
    const broker = this.session.broker;
    if (!mayReceive(this.session.permissions, d.topic)) {
      // A partial deny (see acl.ts): never shown to this subscriber, acked for it so it does not come back.
      broker.countRejected('acl');
      if (this.input.ack !== 'none') this.consumer?.ack(d.id);
      return;
    }
    const r = d.record;
    const m: Message = {
      subscription: this.id,
      topic: d.topic,
      partition: d.partition,
      offset: r.offset,
      timestamp: r.timestamp,
      headers: r.headers,
      payload: r.payload,
      attempt: d.attempt,
    };
    if (this.input.ack !== 'none') m.deliveryId = `${this.id}/${d.id}`;
    if (r.key !== undefined) m.key = r.key;
    if (r.msgId !== undefined) m.msgId = r.msgId;
    if (r.expiresAt !== undefined) m.expiresAt = r.expiresAt;
    if (this.input.replay === 'original' && (this.#pace.length > 0 || r.timestamp < this.#subscribedAt)) this.#paced(m);
    else this.#accept(m);
  }

  #paced(m: Message): void {
    this.#pace.push(m);
    if (this.#pace.length >= this.size) this.#pause('pace');
    this.#schedulePace();
  }

  #schedulePace(): void {
    if (this.#paceTimer !== undefined || this.#closed) return;
    const now = Date.now();
    while (this.#pace.length > 0) {
      const head = this.#pace.peek()!;
      this.#paceBase ??= { wall: now, ts: head.timestamp };
      const due = this.#paceBase.wall + (head.timestamp - this.#paceBase.ts);
      if (due > now) {
        this.#paceTimer = setTimeout(() => {
          this.#paceTimer = undefined;
          this.#schedulePace();
        }, due - now);
        return;
      }
      this.#pace.shift();
      this.#accept(head);
    }
    this.#unpause('pace');
  }

  #accept(m: Message): void {
    if (this.#closed) return;
    if (this.consumer === undefined || this.#congested || this.#buffer.length > 0) {
      if (this.#buffer.length >= this.size) {
        const broker = this.session.broker;
        switch (this.policy) {
          case 'block':
            break; // deliveries already in flight when the consumer was paused overshoot the buffer a little
          case 'dropNewest':
            broker.countDropped(this, m, 'dropNewest');
            return;
          case 'dropOldest':
            broker.countDropped(this, this.#buffer.shift()!, 'dropOldest');
            break;
          case 'disconnect':
            broker.slowConsumer(this);
            return;
        }
      }
      this.#buffer.push(m);
      if (this.policy === 'block' && this.#buffer.length >= this.size) this.#block();
      return;
    }
    this.#send(m);
  }

  #send(m: Message): void {
    let more: boolean;
    try {
      more = this.deliver(m);
    } catch (err) {
      this.session.broker.traceError(this.session, 'deliver threw', err);
      more = true;
    }
    this.session.broker.countDelivered(m);
    if (more === false) this.#congested = true;
  }

  #block(): void {
    this.#pause('buffer');
    if (this.input.group === undefined && this.#drained === undefined) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.#drained = { promise, resolve };
      this.session.broker.blockedChanged(this, true);
    }
  }

  #unblock(): void {
    this.#unpause('buffer');
    this.#releasePublishers();
  }

  #releasePublishers(): void {
    const d = this.#drained;
    if (d === undefined) return;
    this.#drained = undefined;
    if (d.timer !== undefined) clearTimeout(d.timer);
    this.session.broker.blockedChanged(this, false);
    d.resolve();
  }

  /** For a publish to a topic this subscription matches: resolves when it has room (or it was cut after maxBlockMs). */
  waitDrained(maxBlockMs: number): Promise<void> {
    const d = this.#drained;
    if (d === undefined) return Promise.resolve();
    if (maxBlockMs > 0 && d.timer === undefined) {
      d.timer = setTimeout(() => {
        if (this.#drained === d) this.session.broker.slowConsumer(this);
      }, maxBlockMs);
    }
    return d.promise;
  }

  #pause(reason: 'buffer' | 'pace'): void {
    if (this.#pauseReasons.size === 0) this.consumer?.pause();
    this.#pauseReasons.add(reason);
  }

  #unpause(reason: 'buffer' | 'pace'): void {
    if (!this.#pauseReasons.delete(reason)) return;
    if (this.#pauseReasons.size === 0 && !this.#closed) this.consumer?.resume();
  }

  resume(): void {
    this.#congested = false;
    this.#flush();
  }

  #flush(): void {
    while (!this.#closed && !this.#congested && this.consumer !== undefined && this.#buffer.length > 0) this.#send(this.#buffer.shift()!);
    if (this.#buffer.length < this.size) this.#unblock();
  }

  get buffered(): number {
    return this.#buffer.length;
  }

  ack(engineDeliveryId: string): void {
    this.#consumerOrThrow().ack(engineDeliveryId);
  }

  #consumerOrThrow(): EngineConsumer {
    if (this.consumer === undefined || this.#closed) throw new PubsubError(ErrorCodes.PUBSUB_NOT_FOUND, `subscription ${this.id} is closed`);
    return this.consumer;
  }

  nak(id: string, delayMs?: number): void {
    this.#consumerOrThrow().nak(id, delayMs);
  }

  inProgress(id: string): void {
    this.#consumerOrThrow().inProgress(id);
  }

  term(id: string, reason?: string): void {
    this.#consumerOrThrow().term(id, reason);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#paceTimer !== undefined) clearTimeout(this.#paceTimer);
    this.#buffer.clear();
    this.#pace.clear();
    this.#releasePublishers();
    this.session.forget(this);
    if (this.consumer !== undefined) {
      await this.consumer.close();
      // After close: the engine's last lineage steps for this consumer (messages handed back) still name the session.
      this.session.broker.disownConsumer(this.consumer.id);
    }
  }
}
