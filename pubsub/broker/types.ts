/**
 * The broker's API for front doors (pubsub/doors: native WS + TCP, HTTP, MQTT) and the chat app. A door turns each
 * connection into a `Session` (authenticated once), then maps its protocol's publish / subscribe / ack onto it.
 * The broker owns: auth (scrypt passwords, tokens), ACLs, signature checks, limits, per-subscriber buffers with a
 * named overflow policy, rate limits, lineage and the trace (proto `pubsub`). The engine (pubsub/engines) owns storage
 * and delivery state.
 */
import type { Acks, AppendRequest, AppendResult, ConsumerSpec, Engine, GroupInfo, Headers, LineageStep, TopicInfo } from '../engines/types.ts';
import type { LogRecord } from '../log/types.ts';

export type Door = 'ws' | 'tcp' | 'http' | 'mqtt' | 'internal';

export type Credentials = { user: string; password: string } | { token: string } | undefined;

export interface ConnectInfo {
  door: Door;
  /** Remote address:port, for traces, limits and per-address rate limits. */
  peer: string;
  /** Whether the transport is TLS (a password over cleartext is refused unless the broker allows it). */
  tls: boolean;
  credentials?: Credentials;
  /** A client-chosen id (MQTT client id), shown in traces and lineage. */
  clientId?: string;
}

/** What a door publishes: the engine's append request, with `acks` optional. */
export interface PublishInput extends Omit<AppendRequest, 'acks'> {
  /** Default: the broker's defaultAcks ('all' when fsync is batch or always). */
  acks?: Acks;
}

export type OverflowPolicy = 'block' | 'dropOldest' | 'dropNewest' | 'disconnect';
export const OVERFLOW_POLICIES: readonly OverflowPolicy[] = ['block', 'dropOldest', 'dropNewest', 'disconnect'];

export interface SubscribeInput extends Omit<ConsumerSpec, 'ack'> {
  ack?: ConsumerSpec['ack'];
  /** 'original': a replay from an offset or a time is delivered at the pace it was published. Default 'instant'. */
  replay?: 'instant' | 'original';
  /** Messages buffered for this subscriber while its transport is busy, and what happens past it. */
  buffer?: { size?: number; policy?: OverflowPolicy };
}

/** A message as a subscriber receives it. */
export interface Message {
  /** Pass to ack / nak / inProgress / term (absent when ack is 'none'). */
  deliveryId?: string;
  subscription: string;
  topic: string;
  partition: number;
  offset: number;
  timestamp: number;
  key?: string;
  headers: Headers;
  payload: Buffer;
  msgId?: string;
  attempt: number;
  expiresAt?: number;
}

export interface Subscription {
  readonly id: string;
  readonly input: SubscribeInput;
  /** The transport can take more: deliver what is buffered (call after the door's socket 'drain'). */
  resume(): void;
  close(): Promise<void>;
}

/**
 * The callback a door gives `subscribe`. Return false when the transport is congested (socket.write returned false):
 * the broker buffers up to `buffer.size` more and then applies `buffer.policy`, until `resume()` is called.
 */
export type Deliver = (message: Message) => boolean;

export interface Session {
  readonly id: string;
  /** The authenticated user, or undefined for an anonymous session (only when the broker allows it). */
  readonly user: string | undefined;
  readonly info: ConnectInfo;
  /** Resolves with the ack the producer asked for (acks 0: as soon as accepted). Rejects with a PubsubError. */
  publish(input: PublishInput): Promise<AppendResult>;
  subscribe(input: SubscribeInput, deliver: Deliver): Promise<Subscription>;
  ack(deliveryId: string): void;
  nak(deliveryId: string, delayMs?: number): void;
  inProgress(deliveryId: string): void;
  term(deliveryId: string, reason?: string): void;
  /** Ends every subscription (group members leave: their unacked messages go to the others). */
  close(reason?: string): Promise<void>;
  /** The broker ended the session (slow consumer with policy 'disconnect', broker closing, kicked). */
  onClosed(listener: (reason: string) => void): void;
}

export interface Broker {
  readonly engine: Engine;
  /** Rejects with PubsubError code WL_ERR_PUBSUB_AUTH (bad credentials, cleartext password) or _LIMIT (maxConnections). */
  connect(info: ConnectInfo): Promise<Session>;
  /** Admin (HTTP admin API, CLI, labs). */
  topics(): Promise<TopicInfo[]>;
  groups(): Promise<GroupInfo[]>;
  /** Records in a dead-letter topic, oldest first. */
  deadLetters(topic: string, max?: number): Promise<LogRecord[]>;
  /** Republishes dead letters (by offset, or all) to their original topics; returns how many. */
  redrive(deadLetterTopic: string, offsets?: number[]): Promise<number>;
  stats(): BrokerStats;
  /** The recorded lineage of one message (published, persisted, delivered, acked...), oldest first; undefined when it is not (or no longer) in the bounded lineage store. */
  lineage(topic: string, partition: number, offset: number): LineageEntry[] | undefined;
  close(): Promise<void>;
}

/** One lineage step as the broker records it: the engine's steps plus 'published' (by whom, through which door). */
export type LineageEntry =
  | Exclude<LineageStep, { step: 'duplicate' }> & { session?: string; user?: string }
  | { step: 'published'; topic: string; partition: number; offset: number; t: number; session: string; user?: string; door: Door; signer?: string; msgId?: string };

export interface BrokerStats {
  connections: number;
  published: number;
  delivered: number;
  acked: number;
  redelivered: number;
  deadLettered: number;
  duplicates: number;
  /** Messages dropped by a subscriber's overflow policy (dropOldest / dropNewest), and sessions cut as slow. */
  dropped: number;
  slowConsumerDisconnects: number;
  /** Publishes that waited for a full subscriber buffer with policy 'block' (credit-based backpressure). */
  blocked: number;
  rejected: { auth: number; acl: number; limit: number; rate: number; signature: number; invalid: number };
}
