/** One topic partition as one consumer group sees it: committed position, deliveries in flight, redeliveries due. */
import type { LogRecord, PartitionLog } from '../../log/types.ts';
import type { Topic } from './topic.ts';

/** A delivery waiting for its ack. */
export interface Pending {
  part: PartState;
  offset: number;
  record: LogRecord;
  attempt: number;
  member: Member;
}

/** A message to deliver again (after a nak, an ack timeout or its member leaving). */
export interface Retry {
  offset: number;
  record: LogRecord;
  /** Deliveries so far. */
  attempt: number;
  ready: boolean;
  timer?: NodeJS.Timeout;
}

/** A group member (or the single member of an ephemeral subscriber). */
export interface Member {
  readonly id: string;
  readonly deliver: (d: import('../types.ts').Delivery) => void;
  readonly maxAckPending: number;
  paused: boolean;
  closed: boolean;
  /** Deliveries awaiting an ack. */
  pending: number;
}

export class PartState {
  /** Every offset below is settled (acked, expired or dead-lettered): the committed offset. */
  floor: number;
  /** Next offset to read from the log for a first delivery. */
  cursor: number;
  /** Settled offsets above the floor (acks out of order). */
  readonly done = new Set<number>();
  readonly pending = new Map<number, Pending>();
  readonly retries: Retry[] = [];
  buffer: LogRecord[] = [];
  bufferAt = 0;
  /** Offsets on their way to the dead-letter topic. */
  deadLettering = 0;
  owner: Member | undefined;
  removed = false;

  constructor(
    readonly topic: Topic,
    readonly partition: number,
    floor: number,
    acked: readonly number[] = [],
  ) {
    const first = this.log.firstOffset;
    // Never above the log's end: after a (simulated) power loss the log may hold less than the group once saw, and
    // offsets appended again must not count as already acked.
    const next = this.log.nextOffset;
    this.floor = Math.min(Math.max(floor, first), next);
    for (const o of acked) if (o > this.floor && o < next) this.done.add(o);
    this.compact();
    this.cursor = this.floor;
  }

  get key(): string {
    return partKey(this.topic.name, this.partition);
  }

  get log(): PartitionLog {
    return this.topic.logs[this.partition]!;
  }

  /** Marks `offset` settled; returns whether the committed position moved. */
  settle(offset: number): boolean {
    if (offset < this.floor) return false;
    if (offset > this.floor) {
      this.done.add(offset);
      return true;
    }
    this.floor++;
    this.compact();
    return true;
  }

  /** Records before `offset` are gone (retention): the committed position cannot stay below. */
  skipTo(offset: number): void {
    if (offset <= this.floor) return;
    this.floor = offset;
    for (const o of this.done) if (o < offset) this.done.delete(o);
    this.compact();
  }

  private compact(): void {
    while (this.done.delete(this.floor)) this.floor++;
  }

  clearRetryTimers(): void {
    for (const r of this.retries) clearTimeout(r.timer);
  }
}

export function partKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}
