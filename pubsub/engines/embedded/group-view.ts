/** What a group shows outside: GroupInfo (admin, lag), the positions its file keeps, and where a new partition starts. */
import { ErrorCodes, PubsubError } from '../../../core/errors.ts';
import type { GroupInfo, StartPosition } from '../types.ts';
import type { DeliveryGroup } from './group.ts';
import type { Topic } from './topic.ts';

/** A partition's committed position as `<dir>/groups/<name>.json` keeps it: the floor and the acked offsets above it. */
export interface SavedPosition {
  topic: string;
  partition: number;
  committed: number;
  acked: number[];
}

/** Lag is Kafka's: end offset minus committed offset (acked messages above the floor still count until it moves). */
export function groupInfo(g: DeliveryGroup): GroupInfo {
  const partitions = [...g.parts.values()]
    .sort((a, b) => (a.key < b.key ? -1 : 1))
    .map((p) => {
      const end = p.log.nextOffset;
      const row: GroupInfo['partitions'][number] = { topic: p.topic.name, partition: p.partition, committed: p.floor, end, lag: Math.max(0, end - p.floor) };
      if (p.owner) row.owner = p.owner.id;
      return row;
    });
  let ackPending = 0;
  for (const p of g.parts.values()) ackPending += p.pending.size;
  return {
    name: g.name ?? g.id,
    mode: g.mode === 'partitioned' ? 'partitioned' : 'queue',
    pattern: g.settings.pattern,
    members: g.members.map((m) => m.id),
    partitions,
    ackPending,
    redelivered: g.redelivered,
    deadLettered: g.deadLettered,
  };
}

/** Every position the group knows, including saved ones of topics not open (yet). */
export function groupPositions(g: DeliveryGroup): SavedPosition[] {
  const out = [...g.parts.values()].map((p) => ({ topic: p.topic.name, partition: p.partition, committed: p.floor, acked: [...p.done].sort((a, b) => a - b) }));
  for (const [key, s] of g.saved) {
    if (g.parts.has(key)) continue;
    const [topic, partition] = key.split('\u0000');
    out.push({ topic: topic!, partition: Number(partition), committed: s.committed, acked: s.acked });
  }
  return out;
}

/**
 * The offset a consumer without a committed position starts at in one partition. `offset` with a `partition`
 * applies to that partition only (the others start at 'new'); without one, to every partition.
 */
export async function startOffset(topic: Topic, partition: number, start: StartPosition): Promise<number> {
  const log = topic.logs[partition]!;
  switch (start.kind) {
    case 'new':
      return log.nextOffset;
    case 'earliest':
      return log.firstOffset;
    case 'offset':
      if (start.partition !== undefined && start.partition !== partition) return log.nextOffset;
      return Math.min(Math.max(start.offset, log.firstOffset), log.nextOffset);
    case 'time':
      return log.offsetForTime(start.time);
    default:
      throw new PubsubError(ErrorCodes.PUBSUB_INVALID, `unknown start position ${JSON.stringify((start as { kind: unknown }).kind)}`);
  }
}
