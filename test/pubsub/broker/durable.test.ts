import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBroker } from '../../../pubsub/broker/index.ts';
import { LOCAL, collector, makeBroker, until } from './helpers.ts';

test('dataDir: acks=all publishes (the default with fsync batch) are there after a restart; fsync never refuses acks=all', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wl-broker-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const first = await createBroker({ dataDir: dir, fsync: 'batch' });
  const s = await first.connect(LOCAL);
  await Promise.all(Array.from({ length: 50 }, (_, i) => s.publish({ topic: 'keep', payload: Buffer.from(`m${i}`), key: `k${i % 3}` })));
  await first.close();
  const second = await createBroker({ dataDir: dir, fsync: 'batch' });
  t.after(() => second.close());
  const c = collector();
  await (await second.connect(LOCAL)).subscribe({ pattern: 'keep', ack: 'none', start: { kind: 'earliest' } }, c.deliver);
  await until(() => c.got.length === 50, 'all 50 back');
  assert.deepEqual(new Set(c.got.map((m) => m.payload.toString())).size, 50);
  const never = await createBroker({ dataDir: join(dir, 'never'), fsync: 'never' });
  t.after(() => never.close());
  const n = await never.connect(LOCAL);
  assert.equal((await n.publish({ topic: 'x', payload: Buffer.from('a') })).offset, 0, 'defaultAcks is 1 with fsync never');
  await assert.rejects(n.publish({ topic: 'x', payload: Buffer.from('a'), acks: 'all' }), { code: 'WL_ERR_PUBSUB_DURABILITY' });
});

test('block in a queue group: the full member is paused, the other member takes the rest, no publisher waits', async (t) => {
  const { broker } = await makeBroker(t);
  const slow = await broker.connect(LOCAL);
  const fast = await broker.connect(LOCAL);
  const pub = await broker.connect(LOCAL);
  const group = { name: 'g', mode: 'queue' as const };
  const cs = collector(() => false);
  await slow.subscribe({ pattern: 'q', group, ack: 'manual', ackWaitMs: 60_000, buffer: { size: 2, policy: 'block' } }, cs.deliver);
  const cf = collector();
  await fast.subscribe({ pattern: 'q', group, ack: 'manual', ackWaitMs: 60_000 }, (m) => {
    fast.ack(m.deliveryId!);
    return cf.deliver(m);
  });
  for (let i = 0; i < 30; i++) await pub.publish({ topic: 'q', payload: Buffer.from(`${i}`), acks: 1 });
  await until(() => cf.got.length === 27, `the fast member took the rest (${cf.got.length} ${cs.got.length} ${JSON.stringify(broker.stats())})`, 3000);
  assert.equal(broker.stats().blocked, 0);
  assert.equal(cs.got.length, 1, 'the slow member got one, then its buffer filled');
  await slow.close();
  await until(() => cf.got.length === 30, 'what the slow member held goes to the fast one');
});

test('broker.close ends every session with reason "broker closing"; inProgress is a lineage step', async () => {
  const broker = await createBroker({});
  const s = await broker.connect(LOCAL);
  const reasons: string[] = [];
  s.onClosed((r) => reasons.push(r));
  const c = collector();
  await s.subscribe({ pattern: 'p', group: { name: 'w', mode: 'queue' }, ack: 'manual', ackWaitMs: 60_000 }, c.deliver);
  await s.publish({ topic: 'p', payload: Buffer.from('x') });
  await until(() => c.got.length === 1, 'delivered');
  s.inProgress(c.got[0]!.deliveryId!);
  await until(() => broker.lineage('p', 0, 0)!.some((x) => x.step === 'in-progress'), 'in-progress step');
  await broker.close();
  assert.deepEqual(reasons, ['broker closing']);
  await assert.rejects(broker.connect(LOCAL), { code: 'WL_ERR_CLOSED' });
});
