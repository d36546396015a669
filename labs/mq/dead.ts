/**
 * Problem 5, dead consumers: a consumer that hangs (takes messages, never finishes, never acks) and a consumer that
 * crashes on the same poison message every time. Remedies: an ack timeout (the message is requeued), heartbeats (a
 * monitor notices the silence and removes the member: its messages go to the others at once), retry then DLQ.
 */
import { ack, decode, Env, member, numbered, publishAll, sleep, Tally, until, type Member, type Row } from './harness.ts';
import type { SubscribeInput } from '../../pubsub/broker/index.ts';

const N = 12;
const HELD = 3;
/** How long the scenario watches: a message not processed by then is stuck. */
const WINDOW_MS = 400;
const HEARTBEAT_MS = 30;
const SILENCE_MS = 400;
/** Remedies get longer to finish (they end as soon as everything is processed). */
const REMEDY_MS = 3000;

/** A hung member H (takes up to HELD, never acks) and a healthy one W; returns what was processed within the window. */
async function hung(env: Env, topic: string, input: Omit<SubscribeInput, 'pattern'>, heartbeats: boolean, windowMs: number): Promise<{ tally: Tally; redelivered: number; removed: number }> {
  const b = await env.broker();
  const tally = new Tally();
  const group = { name: 'workers', mode: 'queue' as const };
  let redelivered = 0;
  let removed = 0;
  const spec = { pattern: topic, group, start: { kind: 'earliest' as const }, maxAckPending: HELD, ...input };
  let hungNow = false;
  const h = await member(env, b, 'H', spec, () => {
    hungNow = true;
    return new Promise(() => undefined);
  });
  const w = await member(env, b, 'W', spec, (m, me) => {
    if (m.attempt > 1) redelivered++;
    tally.effect(decode(m));
    ack(me, m);
  });
  if (heartbeats) {
    // Each member publishes a heartbeat every HEARTBEAT_MS from its own loop; a hung one stops. The monitor removes a
    // member silent for SILENCE_MS (here: ends its session, as an orchestrator would restart it).
    const last = new Map<string, number>();
    const beat = (me: Member, name: string, alive: () => boolean): void => {
      const t = setInterval(() => {
        if (alive()) void me.session.publish({ topic: `hb.${name}`, payload: Buffer.from(String(Date.now())), acks: 0 }).catch(() => undefined);
      }, HEARTBEAT_MS);
      env.ctx.defer(() => clearInterval(t));
    };
    beat(h, 'H', () => !hungNow);
    beat(w, 'W', () => true);
    const monitor = await env.session(b, 'monitor');
    await monitor.subscribe({ pattern: 'hb.*', ack: 'none' }, (m) => {
      last.set(m.topic.slice(3), Date.now());
      return true;
    });
    const started = Date.now();
    const removedSet = new Set<string>();
    const check = setInterval(() => {
      for (const [name, me] of [['H', h], ['W', w]] as const) {
        if (Date.now() - (last.get(name) ?? started) > SILENCE_MS && !removedSet.has(name)) {
          removedSet.add(name);
          removed++;
          void me.crash();
        }
      }
    }, HEARTBEAT_MS);
    env.ctx.defer(() => clearInterval(check));
  }
  const p = await env.session(b, 'producer');
  tally.sent = await publishAll(p, topic, numbered(N));
  await until(() => tally.effects.length >= N, windowMs);
  return { tally, redelivered, removed };
}

export async function dead(env: Env): Promise<Row[]> {
  const { ctx } = env;
  const rows: Row[] = [];
  const P = 'dead consumer';

  const stuck = await hung(env, 'dead.hung', {}, false, WINDOW_MS);
  const stuckS = stuck.tally.score();
  rows.push({ problem: P, variant: `no remedy: a hung member holds ${HELD} (ackWait 30 s)`, score: stuckS });
  ctx.claim(`dead consumer: the messages a hung consumer took stay unprocessed (lost column: not done within ${WINDOW_MS} ms)`, stuckS.lost === HELD, `${stuckS.lost} stuck, ${stuckS.processed} processed by the healthy member`);

  const timeout = await hung(env, 'dead.ackwait', { ackWaitMs: 100, maxDeliver: 0 }, false, REMEDY_MS);
  const timeoutS = timeout.tally.score();
  rows.push({ problem: P, variant: 'remedy: ack timeout (ackWaitMs 100: requeued)', score: timeoutS });
  ctx.claim('dead consumer: with an ack timeout the hung consumer\'s messages are requeued and the healthy member does them', timeoutS.lost === 0 && timeout.redelivered >= HELD, `${timeout.redelivered} redelivered to the healthy member, ${timeoutS.lost} stuck`);

  const beats = await hung(env, 'dead.hb', {}, true, REMEDY_MS);
  const beatsS = beats.tally.score();
  rows.push({ problem: P, variant: `remedy: heartbeats every ${HEARTBEAT_MS} ms, silent ${SILENCE_MS} ms = removed`, score: beatsS });
  ctx.claim('dead consumer: a heartbeat monitor removes the silent member (ackWait still 30 s) and its messages go to the others', beatsS.lost === 0 && beats.removed === 1 && beats.redelivered === HELD, `${beats.removed} member removed, ${beats.redelivered} redelivered, ${beatsS.lost} stuck`);

  // A poison message: the consumer crashes on m2 every time (no ack). In a partitioned (ordered) group it blocks the
  // partition; with maxDeliver it goes to the DLQ after 3 tries and the rest flows.
  for (const maxDeliver of [0, 3]) {
    const b = await env.broker();
    const tally = new Tally();
    const topic = maxDeliver === 0 ? 'dead.poison' : 'dead.dlq';
    let attempts = 0;
    await member(env, b, 'C', { pattern: topic, group: { name: 'c', mode: 'partitioned' }, start: { kind: 'earliest' }, ackWaitMs: 60, maxDeliver }, (m, me) => {
      const n = decode(m);
      if (n.id === 'm2') {
        attempts++;
        throw new Error('the consumer crashes on this message');
      }
      tally.effect(n);
      ack(me, m);
    });
    const p = await env.session(b, 'producer');
    tally.sent = await publishAll(p, topic, numbered(N));
    await until(() => tally.effects.length >= N - 1, maxDeliver === 0 ? WINDOW_MS : REMEDY_MS);
    await sleep(maxDeliver === 0 ? 0 : 20);
    const parked = (await b.deadLetters(`$dlq.${topic}`)).length;
    const s = tally.score();
    if (maxDeliver === 0) {
      rows.push({ problem: P, variant: 'no remedy: crashes on a poison message, retried forever', score: s });
      ctx.claim('dead consumer: a message the consumer crashes on, retried forever, stalls everything behind it in its partition', s.lost === N - 2 && attempts >= 3, `${attempts} attempts at m2, ${s.lost} messages stuck behind it`);
    } else {
      s.lost -= parked;
      rows.push({ problem: P, variant: `remedy: retry then DLQ (maxDeliver ${maxDeliver}; ${parked} parked)`, score: s });
      ctx.claim('dead consumer: retried maxDeliver times, then dead-lettered: the poison message is parked and the rest flows', parked === 1 && attempts === maxDeliver && s.processed === N - 1 && s.lost === 0, `${attempts} attempts, ${parked} in the DLQ, ${s.processed} processed`);
    }
  }
  return rows;
}
