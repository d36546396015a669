/** `groups()` on JetStream: one entry per group durable found on the engine's streams (so other processes' groups too). */
import type { GroupInfo } from '../types.ts';
import { parseMeta } from './codec.ts';
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
