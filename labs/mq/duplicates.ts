/**
 * Problem 1, duplicates: a consumer performs its side effect, then crashes before its ack; at-least-once delivery hands
 * the message to another member, which performs it again. A producer that retries a publish whose ack it did not see
 * stores it twice. Remedies: an idempotent handler, dedup ids (the producer's msgId), a transactional write (the
 * effect and the "done" mark committed together).
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createIdempotentHandler } from '../../pubsub/broker/index.ts';
import { ack, decode, Env, member, numbered, publishAll, Tally, until, type Numbered, type Row } from './harness.ts';
import type { Message } from '../../pubsub/broker/index.ts';

const N = 10;
const CRASH_AFTER = 3;

/**
 * A queue group: member A performs `effect` for CRASH_AFTER messages and crashes before acking them; member B then
 * joins and performs `effect` + ack for what it gets. Returns how many deliveries B saw as redeliveries.
 */
async function crashBeforeAck(env: Env, topic: string, effect: (n: Numbered, m: Message, crashing: boolean) => Promise<void>): Promise<{ tally: Tally; redelivered: number }> {
  const b = await env.broker();
  const tally = new Tally();
  const p = await env.session(b, 'producer');
  const group = { name: 'payments', mode: 'queue' as const };
  let doneA = 0;
  const a = await member(env, b, 'A', { pattern: topic, group, start: { kind: 'earliest' }, maxAckPending: CRASH_AFTER }, async (m) => {
    doneA++;
    await effect(decode(m), m, doneA === CRASH_AFTER);
  });
  const msgs = numbered(N);
  tally.sent = await publishAll(p, topic, msgs);
  await until(() => doneA >= CRASH_AFTER, 3000);
  await a.crash();
  const acked = new Set<string>();
  let redelivered = 0;
  await member(env, b, 'B', { pattern: topic, group, start: { kind: 'earliest' } }, async (m, me) => {
    if (m.attempt > 1) redelivered++;
    await effect(decode(m), m, false);
    ack(me, m);
    acked.add(decode(m).id);
  });
  await until(() => acked.size >= N, 5000);
  return { tally, redelivered };
}

export async function duplicates(env: Env): Promise<Row[]> {
  const { ctx } = env;
  const rows: Row[] = [];
  const P = 'duplicates';

  // No remedy: the side effect runs on every delivery.
  {
    const tally = new Tally();
    const r = await crashBeforeAck(env, 'dup.plain', async (n) => tally.effect(n));
    r.tally.effects.push(...tally.effects);
    const s = r.tally.score();
    rows.push({ problem: P, variant: 'no remedy: consumer crashes after its effect, before its ack', score: s });
    ctx.claim('duplicates: a consumer that crashes after its side effect but before its ack gets it redone by another member', s.duplicated > 0 && s.duplicated === r.redelivered && s.lost === 0, `${s.duplicated} effects done twice, ${r.redelivered} redeliveries, ${s.lost} lost`);
  }
  // Remedy 1: an idempotent handler (its store is shared by both members, as a database would be).
  {
    const tally = new Tally();
    const store = new Map<string, number>();
    const handler = createIdempotentHandler((m: Message) => tally.effect(decode(m)), { store });
    const r = await crashBeforeAck(env, 'dup.idem', async (_n, m) => {
      await handler(m);
    });
    r.tally.effects.push(...tally.effects);
    const s = r.tally.score();
    rows.push({ problem: P, variant: 'remedy: idempotent handler (createIdempotentHandler)', score: s });
    ctx.claim('duplicates: with an idempotent handler each side effect happens once although the message was delivered again', s.duplicated === 0 && s.lost === 0 && r.redelivered > 0 && handler.skipped === r.redelivered, `${r.redelivered} redeliveries, ${handler.skipped} skipped by the handler, ${s.processed} effects for ${s.sent} messages`);
  }
  // Problem, producer side: a retry of a publish whose ack was lost stores it twice; remedy 2: the producer's msgId.
  for (const withIds of [false, true]) {
    const b = await env.broker();
    const tally = new Tally();
    const p = await env.session(b, 'producer');
    const topic = withIds ? 'dup.ids' : 'dup.retry';
    const done = new Set<string>();
    await member(env, b, 'C', { pattern: topic, group: { name: 'c', mode: 'queue' }, start: { kind: 'earliest' } }, (m, me) => {
      tally.effect(decode(m));
      done.add(`${m.partition}/${m.offset}`);
      ack(me, m);
    });
    const msgs = numbered(N);
    let flagged = 0;
    for (const n of msgs) {
      n.t = Date.now();
      // The first publish's ack "was lost": the producer cannot tell, so it publishes again.
      for (let attempt = 0; attempt < 2; attempt++) {
        const r = await p.publish({ topic, payload: Buffer.from(JSON.stringify(n)), acks: 1, ...(withIds ? { msgId: n.id } : {}) });
        if (r.duplicate) flagged++;
      }
    }
    tally.sent = N;
    const stored = (await b.topics()).find((t) => t.name === topic)?.partitionInfo[0]?.records ?? 0;
    await until(() => done.size >= stored, 3000);
    const s = tally.score();
    if (!withIds) {
      rows.push({ problem: P, variant: 'no remedy: producer retries a publish (no msgId)', score: s });
      ctx.claim('duplicates: a producer retry without a msgId is stored twice and processed twice', stored === 2 * N && s.duplicated === N, `${stored} records stored for ${N} messages, ${s.duplicated} duplicate effects`);
    } else {
      rows.push({ problem: P, variant: 'remedy: dedup ids (producer msgId, broker window)', score: s });
      ctx.claim('duplicates: with a msgId the broker answers the retry "duplicate" and stores the message once', stored === N && flagged === N && s.duplicated === 0 && s.lost === 0, `${stored} records for ${N} messages, ${flagged} retries answered duplicate, ${s.duplicated} duplicate effects`);
    }
  }
  // Remedy 3: a transactional write: the effect and the message's "done" mark in one atomic commit (a file written
  // whole, then renamed over the old one). A crash inside the transaction commits nothing; a crash after the commit
  // leaves the mark, so the redelivery finds it and does nothing.
  {
    const dir = await env.dir();
    const db = join(dir, 'ledger.json');
    await writeFile(db, JSON.stringify({ applied: [] }));
    let crashedMidTx = 0;
    const r = await crashBeforeAck(env, 'dup.tx', async (n, _m, crashing) => {
      const state = JSON.parse(await readFile(db, 'utf8')) as { applied: Numbered[] };
      if (state.applied.some((a) => a.id === n.id)) return;
      state.applied.push({ ...n, t: n.t });
      await writeFile(`${db}.tmp`, JSON.stringify(state));
      if (crashing) {
        crashedMidTx++;
        throw new Error('crash inside the transaction, before its commit');
      }
      await rename(`${db}.tmp`, db);
    });
    const committed = (JSON.parse(await readFile(db, 'utf8')) as { applied: Numbered[] }).applied;
    for (const n of committed) r.tally.effect(n);
    const s = r.tally.score();
    rows.push({ problem: P, variant: 'remedy: transactional write (effect + done mark, one commit)', score: s });
    ctx.claim('duplicates: with the effect and its done mark in one transaction, a crash before or after the commit leaves each effect once', s.duplicated === 0 && s.lost === 0 && r.redelivered === CRASH_AFTER && crashedMidTx === 1, `${r.redelivered} redeliveries (one of them after a crash inside the transaction), ${committed.length} committed effects for ${s.sent} messages`);
  }
  return rows;
}
