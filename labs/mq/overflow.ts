/**
 * Problem 6, overflow: a burst past a subscriber's buffer (20 messages, policy dropNewest, at-most-once): what does not
 * fit is dropped. Remedies: more consumers sharing the burst, producer rate limiting (the broker's token bucket: the
 * producer backs off and retries), TTL (a backlog of stale work expires instead of being processed late).
 */
import { PubsubError } from '../../core/errors.ts';
import { ack, decode, Env, member, numbered, sleep, Tally, until, type Numbered, type Row } from './harness.ts';
import type { Broker, BrokerOptions, LineageEntry } from '../../pubsub/broker/index.ts';

const BURST = 60;
const BUFFER = 10;
const WORK_MS = 3;
const GROUP = 6;
/** Well under what one busy subscriber drains (1 / WORK_MS = 333/s), so a loaded machine's late timers still keep up. */
const RATE = { perSecond: 50, burst: 5 };
const TTL_MS = 100;
const TTL_WORK_MS = 10;

/** Subscribers that work WORK_MS per message and tell the broker they are busy meanwhile (deliver returns false). */
async function busySubscribers(env: Env, b: Broker, topic: string, tally: Tally, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const s = await env.session(b, `S${i}`);
    const local: Numbered[] = [];
    let busy = false;
    const sub = await s.subscribe({ pattern: topic, ack: 'none', ...(count > 1 ? { group: { name: 'g', mode: 'queue' as const } } : {}), buffer: { size: BUFFER, policy: 'dropNewest' } }, (m) => {
      local.push(decode(m));
      void work();
      return false;
    });
    const work = async (): Promise<void> => {
      if (busy) return;
      busy = true;
      while (local.length > 0) {
        await sleep(WORK_MS);
        tally.effect(local.shift()!);
        if (local.length === 0) sub.resume();
      }
      busy = false;
    };
  }
}

async function burst(env: Env, topic: string, consumers: number, options: BrokerOptions = {}): Promise<{ tally: Tally; dropped: number; refused: number }> {
  const b = await env.broker(options);
  const tally = new Tally();
  await busySubscribers(env, b, topic, tally, consumers);
  const p = await env.session(b, 'producer');
  let refused = 0;
  // As fast as the broker accepts them, one after the other; a refused publish is retried after one token's time.
  for (const n of numbered(BURST)) {
    n.t = Date.now();
    for (;;) {
      try {
        await p.publish({ topic, payload: Buffer.from(JSON.stringify(n)), acks: 1 });
        break;
      } catch (err) {
        if (!(err instanceof PubsubError) || err.code !== 'WL_ERR_PUBSUB_RATE') throw err;
        refused++;
        await sleep(1000 / RATE.perSecond);
      }
    }
  }
  tally.sent = BURST;
  const dropped = (): number => b.stats().dropped;
  await until(() => tally.effects.length + dropped() >= BURST, 5000);
  return { tally, dropped: dropped(), refused };
}

export async function overflow(env: Env): Promise<Row[]> {
  const { ctx } = env;
  const rows: Row[] = [];
  const P = 'overflow';

  const plain = await burst(env, 'over.plain', 1);
  const plainS = plain.tally.score();
  rows.push({ problem: P, variant: `no remedy: burst of ${BURST} into a buffer of ${BUFFER} (dropNewest)`, score: plainS });
  ctx.claim('overflow: a burst past the subscriber\'s buffer is dropped (the broker counts each drop)', plainS.lost > 0 && plainS.lost === plain.dropped, `${plain.dropped} dropped by the broker, ${plainS.lost} never processed`);

  const many = await burst(env, 'over.group', GROUP);
  const manyS = many.tally.score();
  rows.push({ problem: P, variant: `remedy: ${GROUP} consumers share the burst (queue group)`, score: manyS });
  ctx.claim(`overflow: ${GROUP} consumers in a group each take a share that fits their buffer: nothing dropped`, many.dropped === 0 && manyS.lost === 0, `${many.dropped} dropped, ${manyS.processed} processed`);

  const limited = await burst(env, 'over.rate', 1, { rateLimit: RATE });
  const limitedS = limited.tally.score();
  rows.push({ problem: P, variant: `remedy: producer rate limit (${RATE.perSecond}/s, burst ${RATE.burst}; refused, retried)`, score: limitedS });
  ctx.claim('overflow: the broker\'s rate limit refuses the burst, the producer retries at the allowed pace, and nothing is dropped', limited.refused > 0 && limited.dropped === 0 && limitedS.lost === 0, `${limited.refused} publishes refused (WL_ERR_PUBSUB_RATE) and retried, ${limited.dropped} dropped`);

  // TTL: a backlog processed by a slow durable consumer; stale messages are worth nothing once older than TTL_MS.
  for (const ttl of [false, true]) {
    const b = await env.broker();
    const tally = new Tally();
    const topic = ttl ? 'over.ttl' : 'over.nottl';
    const expired: LineageEntry[] = [];
    const p = await env.session(b, 'producer');
    for (const n of numbered(BURST)) {
      n.t = Date.now();
      await p.publish({ topic, payload: Buffer.from(JSON.stringify(n)), acks: 1, ...(ttl ? { ttlMs: TTL_MS } : {}) });
    }
    tally.sent = BURST;
    const off = b.engine.onLineage((s) => {
      if (s.step === 'expired') expired.push(s);
    });
    await member(env, b, 'C', { pattern: topic, group: { name: 'c', mode: 'queue' }, start: { kind: 'earliest' }, maxAckPending: 1 }, async (m, me) => {
      await sleep(TTL_WORK_MS);
      tally.effect(decode(m));
      ack(me, m);
    });
    await until(() => tally.effects.length + expired.length >= BURST, 5000);
    off();
    const s = tally.score(2 * TTL_MS);
    if (!ttl) {
      rows.push({ problem: P, variant: `backlog without TTL (late: > ${2 * TTL_MS} ms old when done)`, score: s });
      ctx.claim('overflow: without a TTL the slow consumer works through stale messages, most of them long after they mattered', s.late > BURST / 2, `${s.late} of ${s.processed} done more than ${2 * TTL_MS} ms after publish`);
    } else {
      rows.push({ problem: P, variant: `remedy: TTL ${TTL_MS} ms (stale ones expire: lost by design)`, score: s });
      ctx.claim('overflow: with a TTL the stale messages expire instead of being processed late', expired.length > 0 && expired.length === s.lost && s.late < BURST / 10, `${expired.length} expired, ${s.late} of ${s.processed} done late`);
    }
  }
  return rows;
}
