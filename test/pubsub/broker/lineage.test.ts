import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBroker } from '../../../pubsub/broker/index.ts';
import { LineageStore } from '../../../pubsub/broker/lineage.ts';
import { LOCAL, collector, until } from './helpers.ts';

test('lineage store: steps in order (published first), delivered steps rebuilt with session, user, group and time; bounded', () => {
  const store = new LineageStore(2, 4);
  const owner = { session: 's1', user: 'ann' };
  store.addStep({ step: 'persisted', topic: 't', partition: 0, offset: 5, durability: 'written', t: 1000 });
  store.addDelivered('t', 0, 5, 'sub#1', 1, 1003, undefined, owner);
  store.addDelivered('t', 0, 5, 'g#2', 2, 997, 'g', undefined);
  store.addStep({ step: 'published', topic: 't', partition: 0, offset: 5, t: 990, session: 'p1', door: 'mqtt' });
  assert.deepEqual(store.get('t', 0, 5), [
    { step: 'published', topic: 't', partition: 0, offset: 5, t: 990, session: 'p1', door: 'mqtt' },
    { step: 'persisted', topic: 't', partition: 0, offset: 5, durability: 'written', t: 1000 },
    { step: 'delivered', topic: 't', partition: 0, offset: 5, consumer: 'sub#1', attempt: 1, t: 1003, session: 's1', user: 'ann' },
    { step: 'delivered', topic: 't', partition: 0, offset: 5, consumer: 'g#2', group: 'g', attempt: 2, t: 997 },
  ]);
  // maxStepsPerMessage 4: a fifth step is not kept.
  store.addDelivered('t', 0, 5, 'sub#3', 1, 1004, undefined, undefined);
  assert.equal(store.get('t', 0, 5)!.length, 4);
  assert.equal(store.get('t', 0, 6), undefined);
  assert.equal(store.get('t', 1, 5), undefined);
  // maxMessages 2: a third message evicts the first.
  store.addDelivered('t', 1, 0, 'sub#1', 1, 2000, undefined, undefined);
  store.addDelivered('u', 0, 0, 'sub#1', 1, 2001, undefined, undefined);
  assert.equal(store.size, 2);
  assert.equal(store.get('t', 0, 5), undefined);
  assert.equal(store.get('t', 1, 0)!.length, 1);
  assert.equal(store.get('u', 0, 0)![0]!.t, 2001);
});

test('lineage with tracing off (the fast path): a fan-out records one delivered step per subscriber, with its session', async (t) => {
  const broker = await createBroker({});
  t.after(() => broker.close());
  const pub = await broker.connect(LOCAL);
  const sessions = await Promise.all([1, 2, 3].map(() => broker.connect(LOCAL)));
  const collectors = sessions.map(() => collector());
  for (const [i, s] of sessions.entries()) await s.subscribe({ pattern: 'fan.>', ack: 'none' }, collectors[i]!.deliver);
  for (let i = 0; i < 3; i++) await pub.publish({ topic: 'fan.x', payload: Buffer.from(`m${i}`) });
  await until(() => collectors.every((c) => c.got.length === 3), 'three messages at each subscriber');
  for (let offset = 0; offset < 3; offset++) {
    const steps = broker.lineage('fan.x', 0, offset)!;
    assert.deepEqual(steps.slice(0, 2).map((s) => s.step), ['published', 'persisted']);
    const delivered = steps.filter((s) => s.step === 'delivered') as { session?: string; attempt: number; t: number }[];
    assert.deepEqual(delivered.map((d) => d.session).sort(), sessions.map((s) => s.id).sort(), `offset ${offset}: delivered to each session`);
    for (const d of delivered) {
      assert.equal(d.attempt, 1);
      assert.ok(Math.abs(d.t - Date.now()) < 60_000, 'a wall-clock time');
    }
  }
});
