/**
 * Problem 2, loss: a broker restarted without persistence, a consumer with auto-ack (at-most-once) that crashes with
 * messages in hand, a handler failure nobody retries, a TTL that expires before anyone reads. Remedies: a persistent log,
 * manual acks, retries + a dead-letter queue.
 */
import { ack, decode, Env, member, numbered, publishAll, sleep, Tally, until, type Row } from './harness.ts';
import type { LineageStep } from '../../pubsub/engines/types.ts';

const N = 10;
const CRASH_AFTER = 3;

/** Publish N, close the broker, open one again (on `dir` when given), read everything from the start. */
async function restart(env: Env, dir: string | null): Promise<Tally> {
  const tally = new Tally();
  const topic = 'loss.restart';
  const opts = dir === null ? { dataDir: null } : { dataDir: dir, fsync: 'batch' as const };
  const b1 = await env.broker(opts);
  const p = await env.session(b1, 'producer');
  const msgs = numbered(N);
  for (const n of msgs) {
    n.t = Date.now();
    await p.publish({ topic, payload: Buffer.from(JSON.stringify(n)), acks: dir === null ? 1 : 'all' });
  }
  tally.sent = N;
  await b1.close();
  const b2 = await env.broker(opts);
  await member(env, b2, 'C', { pattern: topic, group: { name: 'c', mode: 'queue' }, start: { kind: 'earliest' } }, (m, me) => {
    tally.effect(decode(m));
    ack(me, m);
  });
  await until(() => tally.effects.length >= N, dir === null ? 200 : 3000);
  return tally;
}

/** A consumer takes N messages, processes CRASH_AFTER (10 ms each) and crashes; a second one joins the group after. */
async function crashWith(env: Env, mode: 'none' | 'manual'): Promise<{ tally: Tally; redelivered: number }> {
  const b = await env.broker();
  const tally = new Tally();
  const topic = `loss.ack-${mode}`;
  const group = { name: 'workers', mode: 'queue' as const };
  const a = await member(env, b, 'A', { pattern: topic, group, ack: mode, start: { kind: 'earliest' } }, async (m, me) => {
    if (tally.effects.length >= CRASH_AFTER) return;
    await sleep(10);
    tally.effect(decode(m));
    ack(me, m);
  });
  const p = await env.session(b, 'producer');
  tally.sent = await publishAll(p, topic, numbered(N));
  await until(() => a.received.length >= N && tally.effects.length >= CRASH_AFTER, 3000);
  await a.crash();
  let redelivered = 0;
  await member(env, b, 'B', { pattern: topic, group, ack: mode, start: { kind: 'earliest' } }, (m, me) => {
    if (m.attempt > 1) redelivered++;
    tally.effect(decode(m));
    ack(me, m);
  });
  await until(() => new Set(tally.effects.map((e) => e.id)).size >= N, mode === 'none' ? 200 : 3000);
  return { tally, redelivered };
}

export async function loss(env: Env): Promise<Row[]> {
  const { ctx } = env;
  const rows: Row[] = [];
  const P = 'loss';

  const volatile = (await restart(env, null)).score();
  rows.push({ problem: P, variant: 'no remedy: broker restarted, log in memory', score: volatile });
  ctx.claim('loss: a broker that keeps messages only in memory loses every one of them when it restarts', volatile.lost === N, `${volatile.lost} of ${N} gone after the restart`);
  const durable = (await restart(env, await env.dir())).score();
  rows.push({ problem: P, variant: 'remedy: persistent log (segment files, acks all)', score: durable });
  ctx.claim('loss: with a persistent log (acks all, fsync) every message is there after the restart', durable.lost === 0 && durable.processed === N, `${durable.processed} of ${N} read back from the files`);

  const auto = await crashWith(env, 'none');
  const autoS = auto.tally.score();
  rows.push({ problem: P, variant: 'no remedy: auto-ack consumer crashes holding messages', score: autoS });
  ctx.claim('loss: an auto-ack (at-most-once) consumer that crashes loses what it held but had not processed', autoS.lost === N - CRASH_AFTER && auto.redelivered === 0, `${autoS.lost} lost, ${auto.redelivered} redelivered to the next member`);
  const manual = await crashWith(env, 'manual');
  const manualS = manual.tally.score();
  rows.push({ problem: P, variant: 'remedy: manual acks (removed only once acked)', score: manualS });
  ctx.claim('loss: with manual acks the unacked messages of the crashed consumer go to the next member', manualS.lost === 0 && manual.redelivered === N - CRASH_AFTER, `${manualS.lost} lost, ${manual.redelivered} redelivered`);

  // A handler that fails: every third message fails once (transient), m7 always (poison).
  for (const retry of [false, true]) {
    const b = await env.broker();
    const tally = new Tally();
    const topic = retry ? 'loss.retry' : 'loss.noretry';
    const failedOnce = new Set<string>();
    let failures = 0;
    await member(
      env,
      b,
      'C',
      retry
        ? { pattern: topic, group: { name: 'c', mode: 'queue' }, ack: 'manual', ackWaitMs: 5000, maxDeliver: 3, start: { kind: 'earliest' } }
        : { pattern: topic, group: { name: 'c', mode: 'queue' }, ack: 'none', start: { kind: 'earliest' } },
      (m, me) => {
        const n = decode(m);
        const fails = n.id === 'm7' || (Number(n.id.slice(1)) % 3 === 0 && !failedOnce.has(n.id));
        if (fails) {
          failures++;
          failedOnce.add(n.id);
          if (m.deliveryId !== undefined) me.session.nak(m.deliveryId);
          return;
        }
        tally.effect(n);
        ack(me, m);
      },
    );
    const p = await env.session(b, 'producer');
    tally.sent = await publishAll(p, topic, numbered(N));
    const dlq = async (): Promise<number> => (await b.deadLetters(`$dlq.${topic}`)).length;
    let parked = 0;
    const end = Date.now() + (retry ? 3000 : 200);
    while (Date.now() < end) {
      parked = await dlq();
      if (new Set(tally.effects.map((e) => e.id)).size + parked >= N) break;
      await sleep(10);
    }
    const s = tally.score();
    if (!retry) {
      rows.push({ problem: P, variant: 'no remedy: handler fails, nobody retries', score: s });
      ctx.claim('loss: a failed message with nobody to retry it is gone', s.lost === failures && s.lost > 0 && parked === 0, `${failures} handler failures, ${s.lost} lost, ${parked} in a DLQ`);
    } else {
      s.lost -= parked;
      rows.push({ problem: P, variant: `remedy: retries + DLQ (nak, maxDeliver 3; ${parked} parked in $dlq)`, score: s });
      ctx.claim('loss: with retries the transient failures are processed, and the poison message is parked in the DLQ, not lost', s.lost === 0 && parked === 1 && s.processed === N - 1, `${failures} failed attempts, ${s.processed} processed, ${parked} dead-lettered, ${s.lost} lost`);
    }
  }

  // TTL: messages that live 50 ms, read 150 ms later.
  {
    const b = await env.broker();
    const tally = new Tally();
    const expired: LineageStep[] = [];
    const off = b.engine.onLineage((s) => {
      if (s.step === 'expired') expired.push(s);
    });
    const p = await env.session(b, 'producer');
    tally.sent = await publishAll(p, 'loss.ttl', numbered(N), () => ({ ttlMs: 50 }));
    await sleep(150);
    await member(env, b, 'C', { pattern: 'loss.ttl', group: { name: 'c', mode: 'queue' }, start: { kind: 'earliest' } }, (m, me) => {
      tally.effect(decode(m));
      ack(me, m);
    });
    await until(() => expired.length >= N, 2000);
    off();
    const s = tally.score();
    rows.push({ problem: P, variant: 'cause: TTL expired before a consumer came (ttlMs 50)', score: s });
    ctx.claim('loss: a message whose TTL ran out before it was read is never delivered (the lineage says expired)', s.lost === N && expired.length === N, `${s.processed} delivered, ${expired.length} expired steps`);
  }
  return rows;
}
