/**
 * Problem 4, ordering: four consumers work on a backlog in parallel, each message taking 0-12 ms; a key's later message
 * overtakes an earlier one. Remedies: partition by key (a partitioned group: one member per partition, one message in flight per partition),
 * a single consumer processing one message at a time, sequence ids with a reorder buffer in the consumer.
 */
import { Prng } from '../../core/impair/index.ts';
import { ack, decode, Env, member, numbered, publishAll, sleep, Tally, until, type Numbered, type Row } from './harness.ts';
import type { SubscribeInput } from '../../pubsub/broker/index.ts';

const N = 30;
const KEYS = 2;
const MEMBERS = 4;
/** Work per message: 0-12 ms, from a seeded generator keyed by the message, so every run draws the same times. */
const MAX_WORK_MS = 12;

/** A backlog of N, then members W0..Wn-1. `apply` performs the effect (directly, or through a reorder buffer). */
async function run(env: Env, topic: string, members: number, input: Omit<SubscribeInput, 'pattern'>, partitions = 1, apply?: (n: Numbered, tally: Tally) => void): Promise<{ tally: Tally; arrivalsOutOfOrder: number }> {
  const b = await env.broker();
  await b.engine.ensureTopic(topic, { partitions });
  const tally = new Tally();
  const arrivals = new Tally();
  const p = await env.session(b, 'producer');
  tally.sent = arrivals.sent = await publishAll(p, topic, numbered(N, KEYS));
  for (let i = 0; i < members; i++) {
    await member(env, b, `W${i}`, { pattern: topic, start: { kind: 'earliest' }, ...input }, async (m, me) => {
      const n = decode(m);
      await sleep(Math.floor(new Prng(Number(n.id.slice(1)) + 1).next() * MAX_WORK_MS));
      arrivals.effect(n);
      if (apply) apply(n, tally);
      else tally.effect(n);
      ack(me, m);
    });
  }
  await until(() => tally.effects.length >= N, 5000);
  return { tally, arrivalsOutOfOrder: arrivals.score().outOfOrder };
}

export async function ordering(env: Env): Promise<Row[]> {
  const { ctx } = env;
  const rows: Row[] = [];
  const P = 'ordering';
  const queue = { group: { name: 'workers', mode: 'queue' as const }, maxAckPending: 1 };

  const par = (await run(env, 'order.parallel', MEMBERS, queue)).tally.score();
  rows.push({ problem: P, variant: `no remedy: ${MEMBERS} parallel consumers, 0-${MAX_WORK_MS} ms each`, score: par });
  ctx.claim('ordering: parallel consumers process some of a key\'s messages before earlier ones', par.outOfOrder > 0 && par.lost === 0, `${par.outOfOrder} of ${N} processed after a later message of the same key`);

  const parts = (await run(env, 'order.partitioned', MEMBERS, { group: { name: 'workers', mode: 'partitioned' } }, KEYS)).tally.score();
  rows.push({ problem: P, variant: `remedy: partition by key (${KEYS} partitions, partitioned group of ${MEMBERS})`, score: parts });
  ctx.claim('ordering: with the key hashed to a partition and one member per partition, each key\'s messages are processed in order', parts.outOfOrder === 0 && parts.lost === 0 && parts.processed === N, `${parts.outOfOrder} out of order, ${parts.processed} processed`);

  const single = (await run(env, 'order.single', 1, queue)).tally.score();
  rows.push({ problem: P, variant: 'remedy: one consumer, one message at a time', score: single });
  ctx.claim('ordering: a single consumer taking one message at a time keeps every key in order', single.outOfOrder === 0 && single.processed === N, `${single.outOfOrder} out of order`);

  // Sequence ids: the same parallel consumers, the effect applied through a per-key reorder buffer.
  const next = new Map<string, number>();
  const held = new Map<string, Map<number, Numbered>>();
  let maxHeld = 0;
  const reorder = (n: Numbered, tally: Tally): void => {
    const h = held.get(n.key) ?? new Map<number, Numbered>();
    held.set(n.key, h);
    h.set(n.seq, n);
    let want = next.get(n.key) ?? 0;
    while (h.has(want)) {
      tally.effect(h.get(want)!);
      h.delete(want);
      want++;
    }
    next.set(n.key, want);
    maxHeld = Math.max(maxHeld, h.size);
  };
  const seq = await run(env, 'order.seq', MEMBERS, queue, 1, reorder);
  const seqS = seq.tally.score();
  rows.push({ problem: P, variant: `remedy: sequence ids + reorder buffer (held up to ${maxHeld})`, score: seqS });
  ctx.claim('ordering: messages still arrive out of order, and the reorder buffer applies them in sequence', seq.arrivalsOutOfOrder > 0 && seqS.outOfOrder === 0 && seqS.processed === N, `${seq.arrivalsOutOfOrder} arrived out of order, ${seqS.outOfOrder} applied out of order, buffer held up to ${maxHeld}`);
  return rows;
}
