import { defineLab } from '../core/lab/index.ts';
import type { Broker } from '../pubsub/broker/index.ts';
import { ack, decode, Env, member, numbered, sleep, until, type Member, type Numbered } from './mq/harness.ts';

const PARTITIONS = 4;
const KEYS = 8;
const BATCH = 24;
const WORK_MS = 5;
const SCALE_N = 40;

/** Who owns which partition of `group` now: partitions per owner, and partitions without one. */
async function ownership(b: Broker, group: string): Promise<{ perOwner: number[]; unowned: number; lag: number[] }> {
  const g = (await b.groups()).find((x) => x.name === group);
  const counts = new Map<string, number>();
  let unowned = 0;
  for (const p of g?.partitions ?? []) {
    if (p.owner === undefined) unowned++;
    else counts.set(p.owner, (counts.get(p.owner) ?? 0) + 1);
  }
  return { perOwner: [...counts.values()].sort((x, y) => y - x), unowned, lag: (g?.partitions ?? []).sort((x, y) => x.partition - y.partition).map((p) => p.lag) };
}

export default defineLab({
  id: 'partitions-and-groups',
  title: "Kafka's words made visible: partitions, offsets, a consumer group rebalancing, lag, order per key",
  concept: 'A topic is split into partitions, each an ordered log with its own offsets; a consumer group shares the partitions among its members and rebalances when one joins or leaves; order holds per key (one partition), not across keys; more partitions, more parallel consumers.',
  protocols: ['pubsub'],
  timeoutMs: 60_000,
  async run(ctx) {
    const env = new Env(ctx);
    const b = await env.broker();
    const topic = 'clicks';
    await b.engine.ensureTopic(topic, { partitions: PARTITIONS });
    const producer = await env.session(b, 'producer');
    const keyPartitions = new Map<string, Set<number>>();
    const perPartitionOffsets = new Map<number, number[]>();
    let published = 0;
    const publish = async (msgs: Numbered[]): Promise<void> => {
      for (const n of msgs) {
        n.id = `m${published++}`;
        n.t = Date.now();
        const r = await producer.publish({ topic, payload: Buffer.from(JSON.stringify(n)), key: n.key, acks: 1 });
        (keyPartitions.get(n.key) ?? keyPartitions.set(n.key, new Set()).get(n.key)!).add(r.partition);
        (perPartitionOffsets.get(r.partition) ?? perPartitionOffsets.set(r.partition, []).get(r.partition)!).push(r.offset);
      }
    };
    // Sequence numbers per key continue across batches.
    const seqs = new Map<string, number>();
    const batch = (): Numbered[] =>
      numbered(BATCH, KEYS).map((n) => {
        const s = seqs.get(n.key) ?? 0;
        seqs.set(n.key, s + 1);
        return { ...n, seq: s };
      });

    // 1. Partitions and offsets. The group exists (a member joined and left), so the lag of what follows is counted.
    const first = await member(env, b, 'M0', { pattern: topic, group: { name: 'analytics', mode: 'partitioned' }, start: { kind: 'earliest' } }, () => undefined);
    await first.crash();
    await publish(batch());
    const topicInfo = (await b.topics()).find((t) => t.name === topic)!;
    ctx.table(`topic ${topic}: ${PARTITIONS} partitions`, ['partition', 'first offset', 'next offset', 'records', 'keys on it'], topicInfo.partitionInfo.map((p) => [p.partition, p.firstOffset, p.nextOffset, p.records, [...keyPartitions].filter(([, s]) => s.has(p.partition)).map(([k]) => k).join(' ') || '-']));
    const gapless = [...perPartitionOffsets.values()].every((offs) => offs.every((o, i) => o === i));
    ctx.claim('each partition numbers its own messages: offsets 0, 1, 2... per partition, no gaps, and a key always lands on the same partition', gapless && [...keyPartitions.values()].every((s) => s.size === 1) && perPartitionOffsets.size > 1, [...perPartitionOffsets].sort(([a], [c]) => a - c).map(([p, o]) => `p${p}: 0..${o.length - 1}`).join(', '));
    const lag = (await ownership(b, 'analytics')).lag;
    const expectedLag = Array.from({ length: PARTITIONS }, (_, p) => perPartitionOffsets.get(p)?.length ?? 0);
    ctx.claim('with no member running, the group\'s lag per partition is what was published there since (end - committed offset)', lag.join() === expectedLag.join(), `lag per partition ${lag.join(' / ')}; published ${expectedLag.join(' / ')}`);

    // 2. Members join and leave; the partitions are rebalanced each time and the backlog is worked off.
    const processed: Array<Numbered & { by: string }> = [];
    const members: Member[] = [];
    const join = async (name: string): Promise<void> => {
      members.push(
        await member(env, b, name, { pattern: topic, group: { name: 'analytics', mode: 'partitioned' }, start: { kind: 'earliest' } }, async (m, me) => {
          await sleep(1);
          processed.push({ ...decode(m), by: name });
          ack(me, m);
        }),
      );
    };
    const steps: Array<Array<string | number>> = [];
    const step = async (what: string): Promise<number[]> => {
      await publish(batch());
      await until(() => processed.length >= published, 3000);
      await sleep(20);
      const o = await ownership(b, 'analytics');
      steps.push([what, members.length, o.perOwner.join(' / ') || '-', o.unowned, o.lag.join(' / '), processed.length]);
      return o.perOwner;
    };
    await join('A');
    const one = await step('A joins');
    await join('B');
    const two = await step('B joins');
    await join('C');
    const three = await step('C joins');
    await members.splice(1, 1)[0]!.crash();
    const afterLeave = await step('B leaves');
    ctx.table('consumer group "analytics" (partitioned): who owns what after each change, then a new batch', ['change', 'members', 'partitions per member', 'unowned', 'lag per partition', 'processed so far'], steps);
    ctx.claim(
      'the group rebalances: one member owns all 4 partitions, two share 2 / 2, three 2 / 1 / 1, and when one leaves its partitions go to the others',
      one.join() === '4' && two.join() === '2,2' && three.join() === '2,1,1' && afterLeave.join() === '2,2',
      `${one.join('/')} -> ${two.join('/')} -> ${three.join('/')} -> ${afterLeave.join('/')}`,
    );
    const ids = new Set(processed.map((p) => p.id));
    const finalLag = (await ownership(b, 'analytics')).lag;
    ctx.claim('across the joins and the leave every message was processed once, and the lag is back to 0 on every partition', ids.size === published && processed.length === published && finalLag.every((l) => l === 0), `${processed.length} processed, ${ids.size} distinct of ${published}; lag ${finalLag.join(' / ')}`);

    // 3. Order: per key always, across keys not.
    const last = new Map<string, number>();
    let keyInversions = 0;
    for (const p of processed) {
      if ((last.get(p.key) ?? -1) > p.seq) keyInversions++;
      last.set(p.key, Math.max(last.get(p.key) ?? -1, p.seq));
    }
    let globalInversions = 0;
    let maxId = -1;
    for (const p of processed) {
      const i = Number(p.id.slice(1));
      if (i < maxId) globalInversions++;
      maxId = Math.max(maxId, i);
    }
    ctx.claim('order holds per key (one partition) but not across keys: messages of different keys are processed in another order than published', keyInversions === 0 && globalInversions > 0, `${keyInversions} out of order within a key; ${globalInversions} processed after a message published later (another key)`);

    // 4. More partitions, more parallel consumers: each partition has one message in flight, so parallelism = partitions.
    const scale: Array<Array<string | number>> = [];
    const results: Array<{ parts: number; ms: number; maxInFlight: number }> = [];
    for (const parts of [1, 2, 4]) {
      const bb = await env.broker();
      const t = `scale.p${parts}`;
      await bb.engine.ensureTopic(t, { partitions: parts });
      const p = await env.session(bb, 'producer');
      for (const n of numbered(SCALE_N, KEYS)) await p.publish({ topic: t, payload: Buffer.from(JSON.stringify(n)), key: n.key, acks: 1 });
      let inFlight = 0;
      let maxInFlight = 0;
      let done = 0;
      const started = performance.now();
      for (let i = 0; i < 4; i++) {
        await member(env, bb, `W${i}`, { pattern: t, group: { name: 'g', mode: 'partitioned' }, start: { kind: 'earliest' } }, async (m, me) => {
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          await sleep(WORK_MS);
          inFlight--;
          done++;
          ack(me, m);
        });
      }
      await until(() => done >= SCALE_N, 10_000);
      const ms = Math.round(performance.now() - started);
      results.push({ parts, ms, maxInFlight });
      scale.push([parts, 4, SCALE_N, maxInFlight, ms, Math.round((SCALE_N / ms) * 1000)]);
    }
    ctx.table(`throughput as partitions grow (4 members, ${WORK_MS} ms of work per message)`, ['partitions', 'members', 'messages', 'most in flight at once', 'ms', 'messages/s'], scale);
    ctx.claim('parallelism is capped by partitions: at most 1, 2 and 4 messages in flight with 1, 2 and 4 partitions (4 members each)', results.every((r) => r.maxInFlight === r.parts), results.map((r) => `${r.parts}: ${r.maxInFlight}`).join(', '));
    ctx.claim('so throughput grows with partitions: 4 partitions drain the same backlog at least 1.5x as fast as 1', results[2]!.ms * 1.5 < results[0]!.ms, `${results[0]!.ms} ms with 1 partition, ${results[2]!.ms} ms with 4`);
  },
});
