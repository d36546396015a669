/**
 * What the broker needs from storage and delivery (issue 12 builds `embedded` on pubsub/log; issue 13 builds
 * `jetstream` on a NATS JetStream cluster). One conformance suite (test/pubsub/engines/conformance.ts) runs against
 * every engine. The broker (pubsub/broker) adds sessions, auth, ACLs, per-subscriber buffers, rate limits and the
 * trace; front doors (pubsub/doors) add the wire protocols. Neither sees files or NATS.
 *
 * Words (README "Pub/sub"): a topic is a dot-separated subject (`orders.eu`); a pattern may use `*` (one token) and
 * `>` (the rest, last token only). A topic has `partitions` (default 1); a message's `key` is hashed to one (order is
 * kept per partition). Offsets count from 0 per partition.
 */
import type { Durability, Headers, LogRecord, RetentionPolicy } from '../log/types.ts';

export type { Headers };

/** Producer acks (Kafka's words): 0 = no reply, 1 = written by the leader, 'all' = durable (fsync'd / majority). */
export type Acks = 0 | 1 | 'all';
export const ACKS_TO_DURABILITY: Readonly<Record<'0' | '1' | 'all', Durability>> = { 0: 'none', 1: 'written', all: 'synced' };

export interface TopicConfig {
  /** Default 1. Fixed once the topic exists. */
  partitions?: number;
  retention?: RetentionPolicy;
  /** Publishes with the same msgId within this window are acknowledged once and stored once. Default 120,000 ms. */
  duplicateWindowMs?: number;
}

export interface TopicInfo {
  name: string;
  partitions: number;
  /** Per partition: first kept offset, next offset, records, bytes. */
  partitionInfo: { partition: number; firstOffset: number; nextOffset: number; records: number; bytes: number }[];
  config: Required<Pick<TopicConfig, 'partitions' | 'duplicateWindowMs'>> & { retention: RetentionPolicy };
}

export interface AppendRequest {
  topic: string;
  payload: Buffer;
  key?: string;
  /** Explicit partition (overrides key hashing). */
  partition?: number;
  headers?: Headers;
  /** The producer's id: a second publish with it within the topic's duplicate window is acknowledged, not stored. */
  msgId?: string;
  /** Per-message time to live: expired messages are never delivered (counted). */
  ttlMs?: number;
  acks: Acks;
}

export interface AppendResult {
  topic: string;
  partition: number;
  offset: number;
  timestamp: number;
  /** True when msgId was seen within the window: nothing was stored, `offset` is the first copy's. */
  duplicate: boolean;
}

/** Where a consumer starts when it has no committed position. */
export type StartPosition =
  | { kind: 'new' }
  | { kind: 'earliest' }
  | { kind: 'offset'; offset: number; partition?: number }
  | { kind: 'time'; time: number };

export interface ConsumerSpec {
  /** Topic or pattern (`*`, `>`). Topics created later that match are picked up. */
  pattern: string;
  /**
   * Absent: an ephemeral fan-out subscriber (pub/sub: it gets every message). Present: a durable group whose state
   * outlives connections and restarts. `queue`: competing consumers, each message to one member, acked one by one
   * (a message queue). `partitioned`: Kafka's model, each partition owned by one member (rebalanced when members join
   * or leave), order kept per partition, a committed offset per partition.
   */
  group?: { name: string; mode: 'queue' | 'partitioned' };
  /** 'none': at-most-once (nothing to ack, never redelivered). 'manual': at-least-once. Default 'manual'. */
  ack: 'none' | 'manual';
  /** Used when the group has no committed position (and always by ephemeral subscribers). Default { kind: 'new' }. */
  start?: StartPosition;
  /** An unacked delivery is redelivered after this. Default 30,000 ms. */
  ackWaitMs?: number;
  /** Delays before redelivery n (the last one repeats). Default [] (ackWaitMs only). */
  backoffMs?: number[];
  /** Deliveries before a message is dead-lettered. Default 5; 0 = unlimited. */
  maxDeliver?: number;
  /** Unacked deliveries outstanding per member before the engine stops delivering to it. Default 1,000. */
  maxAckPending?: number;
  /** Where dead letters go, with the original headers plus `wl-dlq-reason`, `wl-dlq-topic`, `wl-dlq-partition`, `wl-dlq-offset`, `wl-dlq-deliveries`. Default `$dlq.<topic>`. */
  deadLetterTopic?: string;
}

export interface Delivery {
  /** Opaque, unique per delivery attempt; what ack / nak / term / inProgress take. */
  id: string;
  topic: string;
  partition: number;
  record: LogRecord;
  /** 1 for the first delivery. */
  attempt: number;
}

export interface EngineConsumer {
  readonly id: string;
  ack(deliveryId: string): void;
  /** Redeliver (to any member) after `delayMs` (default 0). */
  nak(deliveryId: string, delayMs?: number): void;
  /** Still working on it: the ack deadline starts again. */
  inProgress(deliveryId: string): void;
  /** Give up now: to the dead-letter topic with `reason`. */
  term(deliveryId: string, reason?: string): void;
  /** Flow control from the broker: stop / start delivering to this member (its buffer is full / drained). */
  pause(): void;
  resume(): void;
  /** Leaves the group (its unacked messages go back to the others at once) or ends the subscription. */
  close(): Promise<void>;
}

/** Lifecycle steps the engine reports (the broker turns them into the message's lineage and trace events). */
export type LineageStep =
  | { step: 'persisted'; topic: string; partition: number; offset: number; durability: Durability; t: number }
  | { step: 'delivered'; topic: string; partition: number; offset: number; consumer: string; group?: string; attempt: number; t: number }
  | { step: 'acked' | 'nak' | 'expired' | 'in-progress'; topic: string; partition: number; offset: number; consumer: string; group?: string; t: number }
  | { step: 'dead-lettered'; topic: string; partition: number; offset: number; reason: string; deadLetterTopic: string; t: number }
  | { step: 'duplicate'; topic: string; msgId: string; offset: number; t: number };

export interface GroupInfo {
  name: string;
  mode: 'queue' | 'partitioned';
  pattern: string;
  members: string[];
  /** Per topic partition: committed offset (next to deliver after every earlier one is acked), end offset, lag. */
  partitions: { topic: string; partition: number; committed: number; end: number; lag: number; owner?: string }[];
  ackPending: number;
  redelivered: number;
  deadLettered: number;
}

export interface Engine {
  readonly kind: 'embedded' | 'jetstream';
  /** Topics are created on first publish with these defaults (bounded by the broker's maxTopics). */
  ensureTopic(name: string, config?: TopicConfig): Promise<TopicInfo>;
  topics(): Promise<TopicInfo[]>;
  topic(name: string): Promise<TopicInfo | undefined>;
  deleteTopic(name: string): Promise<boolean>;
  append(request: AppendRequest): Promise<AppendResult>;
  /** Reads stored records (SSE resume, replay, the DLQ listing): at most `max` from `offset`. */
  read(topic: string, partition: number, offset: number, max: number): Promise<LogRecord[]>;
  offsetForTime(topic: string, partition: number, time: number): Promise<number>;
  /** Starts delivering to `deliver` (called once per delivery; the member acks through the returned consumer). */
  consume(spec: ConsumerSpec, deliver: (d: Delivery) => void): Promise<EngineConsumer>;
  groups(): Promise<GroupInfo[]>;
  /** Lineage steps and counts, for the broker's trace. */
  onLineage(listener: (step: LineageStep) => void): () => void;
  close(): Promise<void>;
}
