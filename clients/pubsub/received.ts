/** A message as a subscriber of clients/pubsub.ts receives it: the msg frame's fields and its ack methods. */
import type { ClientMessage, MsgMessage } from '../../protocols/pubsub.ts';

/** A received message, with its ack methods (no-ops when the subscription's ack is 'none'). */
export interface ReceivedMessage extends Omit<MsgMessage, 'type'> {
  /** The payload as UTF-8 text. */
  readonly text: string;
  ack(): void;
  nak(delayMs?: number): void;
  /** Still working on it: the ack deadline starts again. */
  progress(): void;
  term(reason?: string): void;
}

/**
 * A received message: the msg frame's fields, and ack methods on the prototype (a fan-out of thousands of messages a
 * second made five closures and a copy per message before: the client, not the broker, was the bench's bottleneck).
 */
export class Received implements ReceivedMessage {
  readonly sub: string;
  readonly deliveryId?: string;
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly ts: number;
  readonly key?: string;
  readonly headers: MsgMessage['headers'];
  readonly payload: Buffer;
  readonly msgId?: string;
  readonly attempt: number;
  readonly #send: ((m: ClientMessage) => void) | undefined;

  constructor(m: MsgMessage, send: ((m: ClientMessage) => void) | undefined) {
    this.sub = m.sub;
    if (m.deliveryId !== undefined) this.deliveryId = m.deliveryId;
    this.topic = m.topic;
    this.partition = m.partition;
    this.offset = m.offset;
    this.ts = m.ts;
    if (m.key !== undefined) this.key = m.key;
    this.headers = m.headers;
    this.payload = m.payload;
    if (m.msgId !== undefined) this.msgId = m.msgId;
    this.attempt = m.attempt;
    this.#send = send;
  }

  get text(): string {
    return this.payload.toString('utf8');
  }

  ack(): void {
    this.#send?.({ type: 'ack', deliveryId: this.deliveryId! });
  }

  nak(delayMs?: number): void {
    this.#send?.(delayMs === undefined ? { type: 'nak', deliveryId: this.deliveryId! } : { type: 'nak', deliveryId: this.deliveryId!, delayMs });
  }

  progress(): void {
    this.#send?.({ type: 'progress', deliveryId: this.deliveryId! });
  }

  term(reason?: string): void {
    this.#send?.(reason === undefined ? { type: 'term', deliveryId: this.deliveryId! } : { type: 'term', deliveryId: this.deliveryId!, reason });
  }
}

