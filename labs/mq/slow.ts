/**
 * Problem 3, slow consumers: a burst arrives faster than one consumer (15 ms of work per message) can take it; the
 * queue grows and each message waits longer than the one before. Remedies: more consumers in the group, batching (one
 * round trip per batch), backpressure (a full 'block' buffer holds the producer's publishes).
 */
import { ack, decode, Env, member, numbered, sleep, Tally, until, type Member, type Row } from './harness.ts';
import type { Broker, Message, Session } from '../../pubsub/broker/index.ts';

const N = 30;
const WORK_MS = 15;
/** An effect more than this after its publish is late: one consumer needs N x WORK_MS = 450 ms for the burst. */
const LATE_MS = 250;
const MEMBERS = 4;
const BATCH = 10;
const BUFFER = 4;

interface SlowResult {
  tally: Tally;
  peakDepth: number;
  maxLatency: number;
  blocked: number;
}

/** Runs the burst through `consumers`, sampling the depth (published - processed) after every publish and effect. */
async function burst(env: Env, topic: string, consumers: (b: Broker, tally: Tally, sample: () => void) => Promise<void>): Promise<SlowResult> {
  const b = await env.broker();
  const tally = new Tally();
  let published = 0;
  let peakDepth = 0;
  const sample = (): void => {
    peakDepth = Math.max(peakDepth, published - new Set(tally.effects.map((e) => e.id)).size);
  };
  await consumers(b, tally, sample);
  const p = await env.session(b, 'producer');
  for (const n of numbered(N)) {
    n.t = Date.now();
    await p.publish({ topic, payload: Buffer.from(JSON.stringify(n)), acks: 1 });
    published++;
    tally.sent = published;
    sample();
  }
  await until(() => tally.effects.length >= N, 5000);
  return { tally, peakDepth, maxLatency: Math.max(...tally.effects.map((e) => e.latencyMs)), blocked: b.stats().blocked };
}

const serialWorker = (env: Env, b: Broker, tally: Tally, sample: () => void, topic: string, name: string): Promise<Member> =>
  member(env, b, name, { pattern: topic, group: { name: 'workers', mode: 'queue' }, maxAckPending: 1 }, async (m, me) => {
    await sleep(WORK_MS);
    tally.effect(decode(m));
    sample();
    ack(me, m);
  });

export async function slow(env: Env): Promise<Row[]> {
  const { ctx } = env;
  const rows: Row[] = [];
  const P = 'slow consumer';
  const depthRows: Array<Array<string | number>> = [];
  const add = (variant: string, r: SlowResult): void => {
    rows.push({ problem: P, variant, score: r.tally.score(LATE_MS) });
    depthRows.push([variant, r.peakDepth, r.maxLatency, r.blocked]);
  };

  const one = await burst(env, 'slow.one', async (b, tally, sample) => {
    await serialWorker(env, b, tally, sample, 'slow.one', 'W0');
  });
  add(`no remedy: 1 consumer, ${WORK_MS} ms per message`, one);
  ctx.claim('slow consumer: the queue grows while one consumer works through the burst, and the later messages wait longest', one.peakDepth >= N / 2 && one.tally.score(LATE_MS).late > 0, `peak depth ${one.peakDepth} of ${N}, ${one.tally.score(LATE_MS).late} processed later than ${LATE_MS} ms, worst ${one.maxLatency} ms`);

  const many = await burst(env, 'slow.many', async (b, tally, sample) => {
    for (let i = 0; i < MEMBERS; i++) await serialWorker(env, b, tally, sample, 'slow.many', `W${i}`);
  });
  add(`remedy: ${MEMBERS} consumers in one queue group`, many);
  const manyLate = many.tally.score(LATE_MS).late;
  ctx.claim(`slow consumer: ${MEMBERS} consumers in a group cut the worst wait to under half of one consumer's`, many.maxLatency * 2 < one.maxLatency && manyLate < one.tally.score(LATE_MS).late, `worst ${many.maxLatency} ms vs ${one.maxLatency} ms; late ${manyLate} vs ${one.tally.score(LATE_MS).late}`);

  // Batching: the consumer takes whatever is waiting (up to BATCH) and pays WORK_MS once for it (one round trip).
  let batches = 0;
  const batched = await burst(env, 'slow.batch', async (b, tally, sample) => {
    const waiting: Message[] = [];
    let busy = false;
    const s: Session = await env.session(b, 'batcher');
    const drain = async (): Promise<void> => {
      if (busy) return;
      busy = true;
      while (waiting.length > 0) {
        const batch = waiting.splice(0, BATCH);
        await sleep(WORK_MS);
        batches++;
        for (const m of batch) {
          tally.effect(decode(m));
          s.ack(m.deliveryId!);
        }
        sample();
      }
      busy = false;
    };
    await s.subscribe({ pattern: 'slow.batch', group: { name: 'workers', mode: 'queue' }, ack: 'manual', maxAckPending: BATCH }, (m) => {
      waiting.push(m);
      void drain();
      return true;
    });
  });
  add(`remedy: batches of up to ${BATCH}, one round trip each`, batched);
  ctx.claim('slow consumer: batching pays the per-message cost once per batch, so the burst needs fewer round trips and the worst wait drops', batches < N / 2 && batched.maxLatency * 2 < one.maxLatency, `${batches} batches for ${N} messages; worst ${batched.maxLatency} ms vs ${one.maxLatency} ms`);

  // Backpressure: a fan-out subscriber with a small 'block' buffer; deliver says "busy" while it works.
  const pressed = await burst(env, 'slow.bp', async (b, tally, sample) => {
    const s = await env.session(b, 'pressed');
    const local: Message[] = [];
    let busy = false;
    const sub = await s.subscribe({ pattern: 'slow.bp', ack: 'none', buffer: { size: BUFFER, policy: 'block' } }, (m) => {
      local.push(m);
      void work();
      return local.length === 0;
    });
    const work = async (): Promise<void> => {
      if (busy) return;
      busy = true;
      while (local.length > 0) {
        const m = local.shift()!;
        await sleep(WORK_MS);
        tally.effect(decode(m));
        sample();
        if (local.length === 0) sub.resume();
      }
      busy = false;
    };
  });
  add(`remedy: backpressure ('block' buffer of ${BUFFER}: the publish waits)`, pressed);
  ctx.claim('slow consumer: with backpressure the producer is held back, so the queue stays near the buffer size instead of growing', pressed.blocked > 0 && pressed.peakDepth <= 2 * BUFFER + 2 && pressed.peakDepth * 2 < one.peakDepth, `${pressed.blocked} publishes waited; peak depth ${pressed.peakDepth} (buffer ${BUFFER}) vs ${one.peakDepth}`);
  ctx.table('slow consumers: depth and waits', ['variant', 'peak depth', 'worst wait ms', 'publishes held'], depthRows);
  return rows;
}
