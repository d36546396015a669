import type { Broker } from '../../pubsub/broker/types.ts';

/** The end offsets seen at one poll, so the next can say messages per second. */
export interface RateSample {
  at: number;
  ends: Map<string, number>;
}

/**
 * Topics (records, bytes, rate since the previous poll), consumer groups (lag per partition), dead-letter topics and
 * the broker's counters: what the dashboard's pub/sub panel shows. Rates are end offsets over wall time between two
 * polls, so the first poll has none.
 */
export async function pubsubSnapshot(broker: Broker, previous: RateSample | undefined): Promise<{ view: Record<string, unknown>; sample: RateSample }> {
  const now = performance.now();
  const [topics, groups] = await Promise.all([broker.topics(), broker.groups()]);
  const ends = new Map<string, number>();
  const rows = topics.map((t) => {
    const end = t.partitionInfo.reduce((s, p) => s + p.nextOffset, 0);
    ends.set(t.name, end);
    const before = previous?.ends.get(t.name);
    const seconds = previous ? (now - previous.at) / 1000 : 0;
    return {
      name: t.name,
      partitions: t.partitions,
      records: t.partitionInfo.reduce((s, p) => s + p.records, 0),
      bytes: t.partitionInfo.reduce((s, p) => s + p.bytes, 0),
      end,
      ratePerSecond: before !== undefined && seconds > 0 ? Math.round(((end - before) / seconds) * 10) / 10 : null,
      deadLetter: t.name.startsWith('$dlq.'),
    };
  });
  return {
    sample: { at: now, ends },
    view: {
      stats: broker.stats(),
      topics: rows.filter((r) => !r.deadLetter),
      dlq: rows.filter((r) => r.deadLetter),
      groups: groups.map((g) => ({ name: g.name, mode: g.mode, pattern: g.pattern, members: g.members.length, lag: g.partitions.reduce((s, p) => s + p.lag, 0), ackPending: g.ackPending, redelivered: g.redelivered, deadLettered: g.deadLettered, partitions: g.partitions })),
    },
  };
}
