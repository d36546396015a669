/**
 * Groups on JetStream. `groups()`: one entry per group durable found on the engine's streams (so other processes' groups
 * too). The group records: a durable consumer exists per partition stream only, so a group is also recorded, once, in
 * the KV bucket `<streamPrefix>-groups` (key: the encoded group name) with its pattern, mode and creation time; a stream
 * that has no durable for a recorded group yet (created while the group had no members) is read from that time.
 */
import type { KV, StreamInfo } from 'nats';
import { ErrorCodes, PubsubError } from '../../../core/errors.ts';
import { matches } from '../../subjects.ts';
import type { ConsumerSpec, GroupInfo } from '../types.ts';
import { encodeName, parseMeta } from './codec.ts';
import { parseConsumerDescription } from './consumer.ts';
import type { JetStreamEngineImpl } from './engine.ts';

/** Every group with a durable on this engine's streams; members, ownership and ack-pending counts of this process. */
export async function listGroups(engine: JetStreamEngineImpl): Promise<GroupInfo[]> {
  const out = new Map<string, GroupInfo>();
  for (const s of await engine.streamsOf()) {
    const meta = parseMeta(s.config.description)!;
    for await (const ci of engine.jsm.consumers.list(s.config.name)) {
      const desc = parseConsumerDescription(ci.config.description);
      if (!desc?.group || !desc.mode) continue;
      const local = [...engine.consumers].filter((c) => c.group === desc.group);
      let g = out.get(desc.group);
      if (!g) {
        g = {
          name: desc.group,
          mode: desc.mode,
          pattern: desc.pattern,
          members: local.map((m) => m.id),
          partitions: [],
          // Members in this process: what they hold (exact at once); else what the server counts.
          ackPending: local.length > 0 ? local.reduce((n, m) => n + m.ackPending, 0) : 0,
          redelivered: engine.redelivered.get(desc.group) ?? 0,
          deadLettered: engine.deadLettered.get(desc.group) ?? 0,
        };
        out.set(desc.group, g);
      }
      if (local.length === 0) g.ackPending += ci.num_ack_pending;
      // The ack floor is the last sequence acked with every earlier one: the next offset to deliver is that sequence.
      const committed = ci.ack_floor.stream_seq;
      const end = s.state.last_seq;
      const owner = desc.mode === 'partitioned' ? local.find((c) => c.streams().includes(s.config.name)) : undefined;
      g.partitions.push({ topic: meta.topic, partition: meta.partition, committed, end, lag: Math.max(0, end - committed), ...(owner ? { owner: owner.id } : {}) });
    }
  }
  return [...out.values()];
}

export interface GroupRecord {
  wirelab: 1;
  name: string;
  pattern: string;
  mode: 'queue' | 'partitioned';
  /**
   * ms since the epoch (this process's clock), when the group was first joined. Compared with the servers' message
   * times by DeliverPolicy.StartTime, so it assumes the clocks agree (NTP), as JetStream's own start times do.
   */
  createdAt: number;
}

/** The bucket's name: a KV bucket name is [-A-Za-z0-9_] only ('=' of an encoded prefix becomes '_'). */
export function groupBucketName(streamPrefix: string): string {
  return `${encodeName(streamPrefix).replace(/=/g, '_')}-groups`;
}

/** The engine's group bucket (created on first use, with the streams' replicas and storage). */
export type OpenBucket = () => Promise<KV>;

function parseRecord(key: string, value: string): GroupRecord {
  try {
    const r = JSON.parse(value) as GroupRecord;
    if (r.wirelab === 1 && typeof r.name === 'string' && (r.mode === 'queue' || r.mode === 'partitioned') && Number.isFinite(r.createdAt)) return r;
  } catch {
    // reported below
  }
  throw new PubsubError(ErrorCodes.PUBSUB_CORRUPT, `group record ${key}: not a wirelab group record`);
}

/**
 * The group's record, written now if it has none (`fresh`: this call created the group). Two processes creating it at
 * once: KV create() lets one win, the other reads the winner's record.
 */
export async function recordGroup(bucket: OpenBucket, group: NonNullable<ConsumerSpec['group']>, pattern: string): Promise<{ record: GroupRecord; fresh: boolean }> {
  const kv = await bucket();
  const key = encodeName(group.name);
  const read = async (): Promise<GroupRecord | undefined> => {
    const e = await kv.get(key);
    return e && e.operation === 'PUT' ? parseRecord(key, e.string()) : undefined;
  };
  const existing = await read();
  if (existing) return { record: existing, fresh: false };
  const record: GroupRecord = { wirelab: 1, name: group.name, pattern, mode: group.mode, createdAt: Date.now() };
  try {
    await kv.create(key, JSON.stringify(record));
    return { record, fresh: true };
  } catch (err) {
    const other = await read();
    if (!other) throw err;
    return { record: other, fresh: false };
  }
}

/**
 * A member joining `group`: refuses another mode than the group's (its live durables' and its record's), records the
 * group on first use, and returns the group's creation time when it existed before this member (a stream without the
 * group's durable, created while the group had no members, maybe before a restart, holds messages that are the
 * group's since then), else undefined.
 */
export async function admitMember(engine: JetStreamEngineImpl, group: NonNullable<ConsumerSpec['group']>, pattern: string, streams: StreamInfo[]): Promise<number | undefined> {
  const durable = encodeName(group.name);
  for (const s of streams) {
    const ci = await engine.jsm.consumers.info(s.config.name, durable).catch(() => undefined);
    const desc = ci && parseConsumerDescription(ci.config.description);
    if (desc?.mode && desc.mode !== group.mode) throw new PubsubError(ErrorCodes.PUBSUB_INVALID, `group ${group.name} exists with mode ${desc.mode}`);
  }
  const { record, fresh } = await recordGroup(() => engine.groupsKv(), group, pattern).catch((err: unknown) => {
    throw engine.mapError(`recording group ${group.name}`, err);
  });
  if (record.mode !== group.mode) throw new PubsubError(ErrorCodes.PUBSUB_INVALID, `group ${group.name} exists with mode ${record.mode}`);
  return fresh ? undefined : record.createdAt;
}

/**
 * Partitioned groups: each partition stream is pulled by one member across every process on the cluster. The live
 * member list is the group's records in the bucket (membership.ts); every process sorts it and the partition streams
 * the same way and deals the streams round robin, then applies its own share. A local member losing a stream naks what
 * it held, so the new owner gets it at once.
 */
export async function assignPartitions(engine: JetStreamEngineImpl, group: string): Promise<void> {
  const members = [...engine.consumers].filter((c) => c.group === group && c.spec.group?.mode === 'partitioned');
  if (members.length === 0) return;
  const membership = engine.membership(group);
  const keys = membership.members();
  const streams = (await engine.streamsOf()).filter((s) => matches(members[0]!.spec.pattern, parseMeta(s.config.description)!.topic));
  const names = streams.map((s) => s.config.name).sort();
  const owner = new Map(names.map((s, i) => [s, keys[i % keys.length]!]));
  for (const m of members) {
    const key = membership.keyOf(m.id);
    m.owns = (s) => owner.get(s) === key;
  }
  const local = new Map(members.map((m) => [membership.keyOf(m.id), m]));
  // New owners join first, so a partition's puller passes from member to member without stopping.
  await Promise.all(streams.map((s) => local.get(owner.get(s.config.name)!)?.attach(s.config.name, parseMeta(s.config.description)!)));
  await Promise.all(members.flatMap((m) => m.streams().filter((s) => !m.owns(s)).map((s) => m.detach(s))));
}
