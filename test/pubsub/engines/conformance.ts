/**
 * The engine conformance suite (DESIGN.md convention 12): every Engine (embedded on files, embedded in memory,
 * jetstream) runs these tests. Counts and codes only; redelivery waits poll for the outcome (short ackWaitMs).
 *
 * `makeEngine` gives a fresh engine; `restart` (when the engine keeps state across a restart) closes it and opens
 * another on the same storage. Tests that need a restart are registered only when `features.restart` is true.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Delivery, Engine, EngineConsumer, LineageStep } from '../../../pubsub/engines/types.ts';
import { partitionForKey } from '../../../pubsub/subjects.ts';
import { waitFor } from '../../helpers/mail.ts';

export interface EngineUnderTest {
  engine: Engine;
  /** Closes the engine and opens a new one on the same storage. */
  restart?(): Promise<Engine>;
  cleanup(): Promise<void>;
}

const b = (s: string): Buffer => Buffer.from(s);

/** A consumer that records its deliveries; `auto` acks each as it arrives. */
async function collect(engine: Engine, spec: Parameters<Engine['consume']>[0], auto = false): Promise<{ c: EngineConsumer; got: Delivery[] }> {
  const got: Delivery[] = [];
  const holder: { c?: EngineConsumer } = {};
  const c = await engine.consume(spec, (d) => {
    got.push(d);
    if (auto) queueMicrotask(() => holder.c!.ack(d.id));
  });
  holder.c = c;
  return { c, got };
}

/** Polls an async condition every 10 ms (no fixed sleeps), failing after 5 s. */
export async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const text = (ds: Delivery[]): string[] => ds.map((d) => d.record.payload.toString());

export function engineConformance(name: string, makeEngine: () => Promise<EngineUnderTest>, features: { restart?: boolean } = {}): void {
  /** Runs `body` with a fresh engine, always cleaning up. */
  const withEngine = (title: string, body: (e: EngineUnderTest) => Promise<void>): void => {
    test(`${name}: ${title}`, async () => {
      const e = await makeEngine();
      try {
        await body(e);
      } finally {
        await e.cleanup();
      }
    });
  };

  withEngine('topics and partitions: created on demand, fixed partition count, bad names refused', async ({ engine }) => {
    const info = await engine.ensureTopic('orders.eu', { partitions: 3 });
    assert.equal(info.partitions, 3);
    assert.equal(info.partitionInfo.length, 3);
    assert.equal((await engine.ensureTopic('orders.eu', { partitions: 5 })).partitions, 3);
    const r = await engine.append({ topic: 'auto.created', payload: b('x'), acks: 1 });
    assert.deepEqual([r.topic, r.partition, r.offset, r.duplicate], ['auto.created', 0, 0, false]);
    assert.deepEqual((await engine.topics()).map((t) => t.name), ['auto.created', 'orders.eu']);
    const p2 = await engine.append({ topic: 'orders.eu', payload: b('p2'), partition: 2, acks: 1 });
    assert.equal(p2.partition, 2);
    assert.equal((await engine.topic('orders.eu'))!.partitionInfo[2]!.nextOffset, 1);
    await assert.rejects(engine.append({ topic: 'orders.eu', payload: b('x'), partition: 3, acks: 1 }), { code: 'WL_ERR_PUBSUB_INVALID' });
    for (const bad of ['', 'a..b', 'a.*', 'a.>']) await assert.rejects(engine.append({ topic: bad, payload: b('x'), acks: 1 }), { code: 'WL_ERR_PUBSUB_INVALID' });
    await assert.rejects(engine.read('nope', 0, 0, 10), { code: 'WL_ERR_PUBSUB_NOT_FOUND' });
    await assert.rejects(engine.read('orders.eu', 9, 0, 10), { code: 'WL_ERR_PUBSUB_NOT_FOUND' });
    assert.deepEqual((await engine.read('orders.eu', 2, 0, 10)).map((x) => x.payload.toString()), ['p2']);
    assert.equal(await engine.topic('nope'), undefined);
    assert.equal(await engine.deleteTopic('auto.created'), true);
    assert.equal(await engine.deleteTopic('auto.created'), false);
    assert.deepEqual((await engine.topics()).map((t) => t.name), ['orders.eu']);
  });

  withEngine('key ordering: a key always lands on partitionForKey, in order', async ({ engine }) => {
    await engine.ensureTopic('keyed', { partitions: 4 });
    const keys = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank'];
    for (let i = 0; i < 60; i++) {
      const key = keys[i % keys.length]!;
      const r = await engine.append({ topic: 'keyed', payload: b(`${key}:${i}`), key, acks: 1 });
      assert.equal(r.partition, partitionForKey(key, 4));
    }
    const { c, got } = await collect(engine, { pattern: 'keyed', ack: 'none', start: { kind: 'earliest' } });
    await waitFor(() => got.length === 60, '60 deliveries');
    for (const key of keys) {
      const seq = text(got).filter((s) => s.startsWith(`${key}:`)).map((s) => Number(s.split(':')[1]));
      assert.equal(seq.length, 10);
      assert.deepEqual(seq, [...seq].sort((x, y) => x - y), `order for ${key}`);
    }
    await c.close();
  });

  withEngine('wildcard fan-out: every subscriber gets each message, topics created later included, $ topics kept out of >', async ({ engine }) => {
    await engine.ensureTopic('orders.eu');
    const star = await collect(engine, { pattern: 'orders.*', ack: 'none' });
    const rest = await collect(engine, { pattern: 'orders.>', ack: 'none' });
    const all = await collect(engine, { pattern: '>', ack: 'none' });
    await engine.append({ topic: 'orders.eu', payload: b('1'), acks: 1 });
    await engine.append({ topic: 'orders.us', payload: b('2'), acks: 1 }); // created after the subscriptions
    await engine.append({ topic: 'orders.us.west', payload: b('3'), acks: 1 });
    await engine.append({ topic: '$dlq.orders', payload: b('4'), acks: 1 });
    await engine.append({ topic: 'other', payload: b('5'), acks: 1 });
    await waitFor(() => star.got.length === 2 && rest.got.length === 3 && all.got.length === 4, 'fan-out deliveries');
    assert.deepEqual(text(star.got).sort(), ['1', '2']);
    assert.deepEqual(text(rest.got).sort(), ['1', '2', '3']);
    assert.deepEqual(text(all.got).sort(), ['1', '2', '3', '5']);
    await Promise.all([star.c.close(), rest.c.close(), all.c.close()]);
    await engine.append({ topic: 'orders.eu', payload: b('after close'), acks: 1 });
    assert.equal(star.got.length, 2);
  });

  withEngine('queue group: each message to exactly one member, spread across members', async ({ engine }) => {
    await engine.ensureTopic('jobs');
    const spec = { pattern: 'jobs', ack: 'manual' as const, group: { name: 'workers', mode: 'queue' as const }, maxAckPending: 4 };
    const members = await Promise.all([1, 2, 3].map(() => collect(engine, spec, true)));
    for (let i = 0; i < 90; i++) await engine.append({ topic: 'jobs', payload: b(String(i)), acks: 1 });
    await waitFor(() => members.reduce((n, m) => n + m.got.length, 0) >= 90, '90 deliveries');
    const seen = members.flatMap((m) => text(m.got));
    assert.equal(seen.length, 90);
    assert.equal(new Set(seen).size, 90);
    for (const m of members) assert.ok(m.got.length > 0, 'every member got work');
    const [g] = await engine.groups();
    assert.equal(g!.name, 'workers');
    assert.equal(g!.members.length, 3);
    for (const m of members) await m.c.close();
  });

  withEngine('ack, nak, term and ackWait: redelivery counts attempts, term goes to the DLQ', async ({ engine }) => {
    const steps: LineageStep[] = [];
    const off = engine.onLineage((s) => steps.push(s));
    const { c, got } = await collect(engine, { pattern: 'work', ack: 'manual', group: { name: 'w1', mode: 'queue' }, ackWaitMs: 150, maxDeliver: 0 });
    await engine.append({ topic: 'work', payload: b('nak-me'), acks: 1 });
    await waitFor(() => got.length === 1, 'first delivery');
    c.nak(got[0]!.id);
    await waitFor(() => got.length === 2, 'redelivery after nak');
    assert.equal(got[1]!.attempt, 2);
    assert.notEqual(got[1]!.id, got[0]!.id);
    // Not acked: ackWaitMs brings it back again.
    await waitFor(() => got.length === 3, 'redelivery after ackWait');
    assert.equal(got[2]!.attempt, 3);
    c.ack(got[2]!.id);
    await engine.append({ topic: 'work', payload: b('term-me'), acks: 1, headers: { trace: 't1' } });
    await waitFor(() => got.length === 4, 'second message');
    c.term(got[3]!.id, 'poison');
    await waitFor(() => steps.some((s) => s.step === 'dead-lettered'), 'dead-lettered');
    const [dl] = await engine.read('$dlq.work', 0, 0, 10);
    assert.equal(dl!.payload.toString(), 'term-me');
    assert.equal(dl!.headers['wl-dlq-reason'], 'poison');
    assert.equal(dl!.headers.trace, 't1');
    assert.throws(() => c.ack('not-a-delivery'), { code: 'WL_ERR_PUBSUB_NOT_FOUND' });
    c.ack(got[0]!.id); // an already settled message: a no-op
    const kinds = new Set(steps.map((s) => s.step));
    for (const k of ['persisted', 'delivered', 'nak', 'acked', 'dead-lettered']) assert.ok(kinds.has(k as LineageStep['step']), k);
    const [g] = await engine.groups();
    assert.equal(g!.redelivered, 2);
    assert.equal(g!.deadLettered, 1);
    assert.equal(g!.ackPending, 0);
    off();
    await c.close();
  });

  withEngine('a member that leaves hands its unacked messages to the others at once', async ({ engine }) => {
    const spec = { pattern: 'handoff', ack: 'manual' as const, group: { name: 'h', mode: 'queue' as const }, ackWaitMs: 60_000 };
    const a = await collect(engine, spec);
    for (let i = 0; i < 3; i++) await engine.append({ topic: 'handoff', payload: b(String(i)), acks: 1 });
    await waitFor(() => a.got.length === 3, 'three to the first member');
    a.c.ack(a.got[0]!.id);
    const bm = await collect(engine, spec, true);
    await a.c.close();
    await waitFor(() => bm.got.length === 2, 'the two unacked to the other member');
    assert.deepEqual(text(bm.got).sort(), ['1', '2']);
    assert.ok(bm.got.every((d) => d.attempt === 2));
    await bm.c.close();
  });

  withEngine('fan-out with manual acks: redelivered to the same subscriber after ackWait', async ({ engine }) => {
    const { c, got } = await collect(engine, { pattern: 'fm', ack: 'manual', ackWaitMs: 100 });
    await engine.append({ topic: 'fm', payload: b('x'), acks: 1 });
    await waitFor(() => got.length === 2, 'redelivery');
    c.ack(got[1]!.id);
    assert.deepEqual(got.map((d) => d.attempt), [1, 2]);
    assert.deepEqual(await engine.groups(), [], 'ephemeral subscribers are not groups');
    await c.close();
  });

  withEngine('inProgress restarts the ack deadline', async ({ engine }) => {
    const steps: LineageStep[] = [];
    engine.onLineage((s) => steps.push(s));
    const { c, got } = await collect(engine, { pattern: 'slow', ack: 'manual', group: { name: 'slow', mode: 'queue' }, ackWaitMs: 1000 });
    await engine.append({ topic: 'slow', payload: b('long job'), acks: 1 });
    await waitFor(() => got.length === 1, 'delivery');
    // Working for 1.5 ackWaits, saying so every 50 ms: never redelivered.
    const until = Date.now() + 1500;
    while (Date.now() < until) {
      c.inProgress(got[0]!.id);
      await new Promise((r) => setTimeout(r, 50));
    }
    c.ack(got[0]!.id);
    assert.equal(got.length, 1);
    assert.ok(steps.some((s) => s.step === 'in-progress'));
    assert.ok(steps.some((s) => s.step === 'acked'));
    await c.close();
  });

  withEngine('maxDeliver: dead-lettered with the wl-dlq-* headers and the original ones', async ({ engine }) => {
    const { c, got } = await collect(engine, { pattern: 'flaky', ack: 'manual', group: { name: 'f', mode: 'queue' }, ackWaitMs: 100, maxDeliver: 3, backoffMs: [10, 20] });
    await engine.append({ topic: 'flaky', payload: b('never acked'), acks: 1, key: 'k', headers: { origin: 'test' } });
    await eventually(async () => (await engine.topic('$dlq.flaky'))?.partitionInfo[0]!.records === 1, 'a dead letter');
    const dl = await engine.read('$dlq.flaky', 0, 0, 10);
    assert.equal(dl.length, 1);
    assert.equal(got.length, 3);
    assert.deepEqual(got.map((d) => d.attempt), [1, 2, 3]);
    const h = dl[0]!.headers;
    assert.equal(h['wl-dlq-reason'], 'maxDeliver');
    assert.equal(h['wl-dlq-topic'], 'flaky');
    assert.equal(h['wl-dlq-partition'], '0');
    assert.equal(h['wl-dlq-offset'], '0');
    assert.equal(h['wl-dlq-deliveries'], '3');
    assert.equal(h.origin, 'test');
    assert.equal(dl[0]!.payload.toString(), 'never acked');
    // The dead letter is stored before the group counts it and commits past it.
    await eventually(async () => (await engine.groups())[0]!.partitions[0]!.committed === 1, 'committed past the dead letter');
    assert.equal((await engine.groups())[0]!.deadLettered, 1);
    await c.close();
  });

  withEngine('dedup window: a repeated msgId is acknowledged with the first offset and stored once', async ({ engine }) => {
    await engine.ensureTopic('pay', { partitions: 2 });
    const steps: LineageStep[] = [];
    engine.onLineage((s) => steps.push(s));
    const first = await engine.append({ topic: 'pay', payload: b('a'), msgId: 'm-1', key: 'x', acks: 1 });
    const again = await engine.append({ topic: 'pay', payload: b('a'), msgId: 'm-1', key: 'x', acks: 1 });
    const concurrent = await Promise.all([1, 2, 3].map(() => engine.append({ topic: 'pay', payload: b('c'), msgId: 'm-2', acks: 1 })));
    assert.equal(first.duplicate, false);
    assert.equal(again.duplicate, true);
    assert.equal(again.offset, first.offset);
    assert.equal(again.partition, first.partition);
    assert.equal(concurrent.filter((r) => !r.duplicate).length, 1);
    const info = (await engine.topic('pay'))!;
    assert.equal(info.partitionInfo.reduce((n, p) => n + p.records, 0), 2);
    assert.equal(steps.filter((s) => s.step === 'duplicate').length, 3);
    await engine.ensureTopic('nodedup', { duplicateWindowMs: 0 });
    await engine.append({ topic: 'nodedup', payload: b('a'), msgId: 'same', acks: 1 });
    assert.equal((await engine.append({ topic: 'nodedup', payload: b('a'), msgId: 'same', acks: 1 })).duplicate, false);
  });

  withEngine('start positions: new, earliest, offset, time', async ({ engine }) => {
    for (let i = 0; i < 5; i++) await engine.append({ topic: 'hist', payload: b(String(i)), acks: 1 });
    const [r2] = await engine.read('hist', 0, 2, 1);
    const fresh = await collect(engine, { pattern: 'hist', ack: 'none' });
    const early = await collect(engine, { pattern: 'hist', ack: 'none', start: { kind: 'earliest' } });
    const at3 = await collect(engine, { pattern: 'hist', ack: 'none', start: { kind: 'offset', offset: 3 } });
    const since = await collect(engine, { pattern: 'hist', ack: 'none', start: { kind: 'time', time: r2!.timestamp } });
    await engine.append({ topic: 'hist', payload: b('5'), acks: 1 });
    await waitFor(() => fresh.got.length === 1 && early.got.length === 6 && at3.got.length === 3 && since.got.length >= 4, 'start positions');
    assert.deepEqual(text(fresh.got), ['5']);
    assert.deepEqual(text(early.got), ['0', '1', '2', '3', '4', '5']);
    assert.deepEqual(text(at3.got), ['3', '4', '5']);
    // Records in the same millisecond as offset 2 may come too: time picks the first at or after it.
    assert.ok(text(since.got).includes('2') && text(since.got).at(-1) === '5');
    assert.equal(await engine.offsetForTime('hist', 0, r2!.timestamp) <= 2, true);
    for (const x of [fresh, early, at3, since]) await x.c.close();
  });

  withEngine('partitioned group: partitions assigned round-robin, rebalanced on join and leave, order per partition', async ({ engine }) => {
    await engine.ensureTopic('clicks', { partitions: 4 });
    const spec = { pattern: 'clicks', ack: 'manual' as const, group: { name: 'analytics', mode: 'partitioned' as const } };
    const a = await collect(engine, spec, true);
    let [g] = await engine.groups();
    assert.equal(new Set(g!.partitions.map((p) => p.owner)).size, 1);
    const bm = await collect(engine, spec, true);
    [g] = await engine.groups();
    const owners = g!.partitions.map((p) => p.owner);
    assert.equal(owners.filter((o) => o === a.c.id).length, 2);
    assert.equal(owners.filter((o) => o === bm.c.id).length, 2);
    for (let i = 0; i < 40; i++) await engine.append({ topic: 'clicks', payload: b(String(i)), partition: i % 4, acks: 1 });
    await waitFor(() => a.got.length + bm.got.length === 40, '40 deliveries');
    for (const m of [a, bm]) {
      const mine = new Set(g!.partitions.filter((p) => p.owner === m.c.id).map((p) => p.partition));
      assert.ok(m.got.every((d) => mine.has(d.partition)), 'only owned partitions');
      for (const p of mine) {
        const offs = m.got.filter((d) => d.partition === p).map((d) => d.record.offset);
        assert.deepEqual(offs, [...offs].sort((x, y) => x - y));
      }
    }
    await bm.c.close();
    [g] = await engine.groups();
    assert.deepEqual(new Set(g!.partitions.map((p) => p.owner)), new Set([a.c.id]));
    await engine.append({ topic: 'clicks', payload: b('late'), partition: 1, acks: 1 });
    await waitFor(() => a.got.some((d) => d.record.payload.toString() === 'late'), 'late message to the remaining member');
    await a.c.close();
  });

  withEngine('partitioned group: order holds across redelivery (one in flight per partition)', async ({ engine }) => {
    const { c, got } = await collect(engine, { pattern: 'ord', ack: 'manual', group: { name: 'o', mode: 'partitioned' }, ackWaitMs: 5000, maxDeliver: 0 });
    for (let i = 0; i < 3; i++) await engine.append({ topic: 'ord', payload: b(String(i)), acks: 1 });
    await waitFor(() => got.length === 1, 'first');
    c.nak(got[0]!.id);
    await waitFor(() => got.length === 2, 'redelivered');
    c.ack(got[1]!.id);
    await waitFor(() => got.length === 3, 'second');
    c.ack(got[2]!.id);
    await waitFor(() => got.length === 4, 'third');
    c.ack(got[3]!.id);
    assert.deepEqual(text(got), ['0', '0', '1', '2']);
    await c.close();
  });

  withEngine('maxAckPending: delivery stops at the limit and resumes on ack; pause and resume', async ({ engine }) => {
    const { c, got } = await collect(engine, { pattern: 'map', ack: 'manual', group: { name: 'map', mode: 'queue' }, maxAckPending: 3 });
    for (let i = 0; i < 10; i++) await engine.append({ topic: 'map', payload: b(String(i)), acks: 1 });
    await waitFor(() => got.length === 3, 'three in flight');
    await new Promise((r) => setImmediate(r));
    assert.equal(got.length, 3);
    assert.equal((await engine.groups())[0]!.ackPending, 3);
    c.ack(got[0]!.id);
    await waitFor(() => got.length === 4, 'one more after an ack');
    c.pause();
    for (const d of got.slice(1)) c.ack(d.id);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(got.length, 4, 'paused: nothing delivered');
    c.resume();
    await waitFor(() => got.length === 7, 'resumed');
    const [g] = await engine.groups();
    assert.equal(g!.partitions[0]!.lag, 10 - 4);
    await c.close();
  });

  withEngine('at-most-once: ack none delivers once, nothing pending', async ({ engine }) => {
    const { c, got } = await collect(engine, { pattern: 'fire', ack: 'none', group: { name: 'fire', mode: 'queue' }, ackWaitMs: 50 });
    for (let i = 0; i < 5; i++) await engine.append({ topic: 'fire', payload: b(String(i)), acks: 0 });
    await waitFor(() => got.length === 5, 'five');
    const [g] = await engine.groups();
    assert.equal(g!.ackPending, 0);
    assert.equal(g!.partitions[0]!.committed, 5);
    await c.close();
  });

  withEngine('TTL: an expired record is never delivered, lineage says expired', async ({ engine }) => {
    const steps: LineageStep[] = [];
    engine.onLineage((s) => steps.push(s));
    const r = await engine.append({ topic: 'ttl', payload: b('short'), ttlMs: 1, acks: 1 });
    await engine.append({ topic: 'ttl', payload: b('kept'), acks: 1 });
    const [stored] = await engine.read('ttl', 0, r.offset, 1);
    await waitFor(() => Date.now() > (stored!.expiresAt ?? 0), 'expiry');
    const { c, got } = await collect(engine, { pattern: 'ttl', ack: 'manual', group: { name: 'ttl', mode: 'queue' }, start: { kind: 'earliest' } }, true);
    await waitFor(() => got.length === 1, 'the kept one');
    assert.deepEqual(text(got), ['kept']);
    await waitFor(() => steps.some((s) => s.step === 'expired'), 'expired step');
    await assert.rejects(engine.append({ topic: 'ttl', payload: b('x'), ttlMs: -1, acks: 1 }), { code: 'WL_ERR_PUBSUB_INVALID' });
    await c.close();
  });

  withEngine('bad consumer specs and ids are refused with WL_ERR_PUBSUB_INVALID / _NOT_FOUND', async ({ engine }) => {
    const noop = (): void => {};
    const bad = [
      { pattern: 'a.>.b', ack: 'manual' },
      { pattern: 'a', ack: 'maybe' },
      { pattern: 'a', ack: 'manual', group: { name: '../x', mode: 'queue' } },
      { pattern: 'a', ack: 'manual', group: { name: 'g', mode: 'broadcast' } },
      { pattern: 'a', ack: 'manual', ackWaitMs: 0 },
      { pattern: 'a', ack: 'manual', maxAckPending: 0 },
      { pattern: 'a', ack: 'manual', backoffMs: [-1] },
      { pattern: 'a', ack: 'manual', start: { kind: 'tomorrow' } },
    ];
    for (const spec of bad) await assert.rejects(engine.consume(spec as never, noop), { code: 'WL_ERR_PUBSUB_INVALID' }, JSON.stringify(spec));
    const c = await engine.consume({ pattern: 'a', ack: 'manual', group: { name: 'g', mode: 'queue' } }, noop);
    await assert.rejects(engine.consume({ pattern: 'a', ack: 'manual', group: { name: 'g', mode: 'partitioned' } }, noop), { code: 'WL_ERR_PUBSUB_INVALID' });
    for (const id of ['', 'x/y', 'g:other/a/0/0/1']) assert.throws(() => c.ack(id), { code: 'WL_ERR_PUBSUB_NOT_FOUND' });
    await c.close();
  });

  if (!features.restart) return;

  withEngine('restart: a queue group resumes from its committed position (acked never redelivered, unacked kept)', async (e) => {
    await e.engine.ensureTopic('resume');
    const spec = { pattern: 'resume', ack: 'manual' as const, group: { name: 'r', mode: 'queue' as const }, start: { kind: 'earliest' as const } };
    for (let i = 0; i < 10; i++) await e.engine.append({ topic: 'resume', payload: b(String(i)), acks: 'all', msgId: `id-${i}` });
    const first = await collect(e.engine, spec);
    await waitFor(() => first.got.length === 10, 'ten');
    for (const i of [0, 1, 2, 5, 7]) first.c.ack(first.got[i]!.id);
    const engine = await e.restart!();
    const again = await collect(engine, spec, true);
    await waitFor(() => again.got.length === 5, 'the five unacked');
    assert.deepEqual(text(again.got), ['3', '4', '6', '8', '9']);
    assert.equal((await engine.append({ topic: 'resume', payload: b('0'), acks: 1, msgId: 'id-0' })).duplicate, true);
    await eventually(async () => (await engine.groups())[0]!.partitions[0]!.committed === 10, 'all committed');
    await again.c.close();
    const engine2 = await e.restart!();
    const [g] = await engine2.groups();
    assert.equal(g!.name, 'r');
    assert.equal(g!.partitions[0]!.committed, 10);
    assert.equal(g!.partitions[0]!.lag, 0);
  });

  withEngine('restart: a partitioned group resumes each partition at its committed offset', async (e) => {
    await e.engine.ensureTopic('pp', { partitions: 3 });
    const spec = { pattern: 'pp', ack: 'manual' as const, group: { name: 'pp', mode: 'partitioned' as const }, start: { kind: 'earliest' as const } };
    for (let i = 0; i < 9; i++) await e.engine.append({ topic: 'pp', payload: b(String(i)), partition: i % 3, acks: 1 });
    const first = await collect(e.engine, spec, true);
    await waitFor(() => first.got.length === 9, 'nine');
    const engine = await e.restart!();
    for (let i = 9; i < 12; i++) await engine.append({ topic: 'pp', payload: b(String(i)), partition: i % 3, acks: 1 });
    const again = await collect(engine, spec, true);
    await waitFor(() => again.got.length === 3, 'three new');
    assert.deepEqual(text(again.got).sort(), ['10', '11', '9']);
    await again.c.close();
  });
}
