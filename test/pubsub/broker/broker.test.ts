import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { hashPassword, signMessage } from '../../../pubsub/broker/index.ts';
import { LOCAL, collector, makeBroker, publishMany, until } from './helpers.ts';

test('connect, publish, subscribe, ack: fan-out to every subscriber, a lineage and trace events', async (t) => {
  const { broker, sink } = await makeBroker(t);
  const pub = await broker.connect({ ...LOCAL, door: 'tcp' });
  const a = await broker.connect(LOCAL);
  const b = await broker.connect(LOCAL);
  const ca = collector();
  const cb = collector();
  await a.subscribe({ pattern: 'orders.*' }, ca.deliver);
  await b.subscribe({ pattern: 'orders.>', ack: 'none' }, cb.deliver);
  const r = await pub.publish({ topic: 'orders.eu', payload: Buffer.from('hello'), key: 'k1', headers: { h: 'v' } });
  assert.equal(r.offset, 0);
  assert.equal(r.duplicate, false);
  await until(() => ca.got.length === 1 && cb.got.length === 1, 'both subscribers');
  const m = ca.got[0]!;
  assert.equal(m.payload.toString(), 'hello');
  assert.equal(m.key, 'k1');
  assert.equal(m.headers.h, 'v');
  assert.equal(m.attempt, 1);
  assert.ok(m.deliveryId);
  assert.equal(cb.got[0]!.deliveryId, undefined, 'ack none: nothing to ack');
  a.ack(m.deliveryId!);
  await until(() => broker.stats().acked === 1, 'acked');
  const steps = broker.lineage('orders.eu', 0, 0)!.map((s) => s.step);
  assert.equal(steps[0], 'published');
  for (const s of ['persisted', 'delivered', 'acked']) assert.ok(steps.includes(s as never), `${s} in ${steps}`);
  assert.ok(sink.find({ proto: 'pubsub', kind: 'published' }).length === 1);
  assert.ok(sink.find({ proto: 'pubsub', kind: 'delivered' }).length >= 2);
  assert.throws(() => a.ack('nope'), { code: 'WL_ERR_PUBSUB_NOT_FOUND' });
  const s = broker.stats();
  assert.equal(s.published, 1);
  assert.equal(s.delivered, 2);
  assert.equal(s.connections, 3);
  // Dedup: the same msgId twice is stored once.
  const d1 = await pub.publish({ topic: 'orders.eu', payload: Buffer.from('x'), msgId: 'id-1' });
  const d2 = await pub.publish({ topic: 'orders.eu', payload: Buffer.from('x'), msgId: 'id-1' });
  assert.equal(d2.duplicate, true);
  assert.equal(d2.offset, d1.offset);
  assert.equal(broker.stats().duplicates, 1);
  await pub.close();
  assert.equal(broker.stats().connections, 2);
  await assert.rejects(pub.publish({ topic: 'a', payload: Buffer.alloc(0) }), { code: 'WL_ERR_CLOSED' });
});

test('auth through connect: bad credentials and cleartext refused and counted; maxConnections', async (t) => {
  const users = [{ name: 'alice', passwordHash: await hashPassword('pw', { N: 1024 }), permissions: {} }];
  const { broker } = await makeBroker(t, { users, maxConnections: 2 });
  const tls = { door: 'tcp' as const, peer: '127.0.0.1:9', tls: true };
  await assert.rejects(broker.connect({ ...tls }), { code: 'WL_ERR_PUBSUB_AUTH' });
  await assert.rejects(broker.connect({ ...tls, credentials: { user: 'alice', password: 'bad' } }), { code: 'WL_ERR_PUBSUB_AUTH' });
  await assert.rejects(broker.connect({ ...tls, tls: false, credentials: { user: 'alice', password: 'pw' } }), { code: 'WL_ERR_PUBSUB_AUTH' });
  const s1 = await broker.connect({ ...tls, credentials: { user: 'alice', password: 'pw' } });
  assert.equal(s1.user, 'alice');
  await broker.connect({ ...tls, credentials: { user: 'alice', password: 'pw' } });
  await assert.rejects(broker.connect({ ...tls, credentials: { user: 'alice', password: 'pw' } }), { code: 'WL_ERR_PUBSUB_LIMIT', limit: 'maxConnections' });
  assert.equal(broker.stats().rejected.auth, 3);
  assert.equal(broker.stats().rejected.limit, 1);
});

test('ACLs on publish and subscribe, with wildcards; a partial deny filters deliveries', async (t) => {
  const users = [
    {
      name: 'eu',
      token: 'token-eu-123',
      permissions: { publish: { allow: ['orders.eu.>'] }, subscribe: { allow: ['orders.>'], deny: ['orders.secret'] } },
    },
    { name: 'admin', token: 'token-admin-1' },
  ];
  const { broker } = await makeBroker(t, { users, allowInsecureAuth: true });
  const eu = await broker.connect({ ...LOCAL, credentials: { token: 'token-eu-123' } });
  const admin = await broker.connect({ ...LOCAL, credentials: { token: 'token-admin-1' } });
  await eu.publish({ topic: 'orders.eu.1', payload: Buffer.from('ok') });
  await assert.rejects(eu.publish({ topic: 'orders.us.1', payload: Buffer.from('no') }), { code: 'WL_ERR_PUBSUB_ACL' });
  await assert.rejects(eu.subscribe({ pattern: '>' }, () => true), { code: 'WL_ERR_PUBSUB_ACL' });
  await assert.rejects(eu.subscribe({ pattern: 'orders.secret' }, () => true), { code: 'WL_ERR_PUBSUB_ACL' });
  const c = collector();
  await eu.subscribe({ pattern: 'orders.*', ack: 'none' }, c.deliver);
  await admin.publish({ topic: 'orders.secret', payload: Buffer.from('hidden') });
  await admin.publish({ topic: 'orders.public', payload: Buffer.from('shown') });
  await until(() => c.got.length === 1 && broker.stats().rejected.acl === 4, 'filtered delivery');
  assert.equal(c.got[0]!.topic, 'orders.public');
});

test('signing: a signed publish passes, a forged one is refused and counted, unsigned refused when required', async (t) => {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const { broker } = await makeBroker(t, { signing: { keys: { billing: { alg: 'ed25519', publicKey } }, require: true } });
  const s = await broker.connect(LOCAL);
  const payload = Buffer.from('{"amount":1}');
  const headers = signMessage({ topic: 'pay', payload, msgId: 'p1', signer: 'billing', key: { alg: 'ed25519', privateKey } });
  await s.publish({ topic: 'pay', payload, msgId: 'p1', headers });
  await assert.rejects(s.publish({ topic: 'pay', payload: Buffer.from('{"amount":1000}'), msgId: 'p1', headers }), { code: 'WL_ERR_PUBSUB_SIGNATURE' });
  await assert.rejects(s.publish({ topic: 'pay', payload }), { code: 'WL_ERR_PUBSUB_SIGNATURE' });
  assert.equal(broker.stats().rejected.signature, 2);
  assert.equal((broker.lineage('pay', 0, 0)![0] as { signer?: string }).signer, 'billing');
});

test('rate limit: a token bucket per publisher session, refusals counted', async (t) => {
  const { broker } = await makeBroker(t, { rateLimit: { perSecond: 0.001, burst: 3 } });
  const s = await broker.connect(LOCAL);
  const other = await broker.connect(LOCAL);
  let refused = 0;
  for (let i = 0; i < 10; i++) {
    await s.publish({ topic: 'r', payload: Buffer.from('x') }).catch((err) => {
      assert.equal(err.code, 'WL_ERR_PUBSUB_RATE');
      refused++;
    });
  }
  assert.equal(refused, 7);
  await other.publish({ topic: 'r', payload: Buffer.from('x') });
  assert.equal(broker.stats().rejected.rate, 7);
});

test('limits: each refusal is WL_ERR_PUBSUB_LIMIT naming its limit', async (t) => {
  const { broker } = await makeBroker(t, { maxTopics: 2, maxSubscriptionsPerConnection: 1, maxPayloadBytes: 10, maxHeaderBytes: 8 });
  const s = await broker.connect(LOCAL);
  await s.publish({ topic: 't1', payload: Buffer.from('x') });
  await s.publish({ topic: 't2', payload: Buffer.from('x') });
  const cases: [Promise<unknown>, string][] = [
    [s.publish({ topic: 't3', payload: Buffer.from('x') }), 'maxTopics'],
    [s.publish({ topic: 't1', payload: Buffer.alloc(11) }), 'maxPayloadBytes'],
    [s.publish({ topic: 't1', payload: Buffer.from('x'), headers: { abc: 'defghi' } }), 'maxHeaderBytes'],
  ];
  for (const [p, limit] of cases) await assert.rejects(p, { code: 'WL_ERR_PUBSUB_LIMIT', limit });
  await s.publish({ topic: 't1', payload: Buffer.alloc(10) });
  await s.subscribe({ pattern: 't1' }, () => true);
  await assert.rejects(s.subscribe({ pattern: 't2' }, () => true), { code: 'WL_ERR_PUBSUB_LIMIT', limit: 'maxSubscriptionsPerConnection' });
  await assert.rejects(s.publish({ topic: 'a.*', payload: Buffer.alloc(1) }), { code: 'WL_ERR_PUBSUB_INVALID' });
  await assert.rejects(s.subscribe({ pattern: 'a', buffer: { policy: 'explode' as never } }, () => true), { code: 'WL_ERR_PUBSUB_INVALID' });
  assert.equal(broker.stats().rejected.limit, 4);
});

test('buffer block: a subscriber that never resumes stalls the publisher (counted), resume lets it go on', async (t) => {
  const { broker } = await makeBroker(t, { maxBlockMs: 0 });
  const sub = await broker.connect(LOCAL);
  const pub = await broker.connect(LOCAL);
  const c = collector(() => false);
  const subscription = await sub.subscribe({ pattern: 'b', ack: 'none', buffer: { size: 3, policy: 'block' } }, c.deliver);
  let done = 0;
  const publishing = (async () => {
    for (let i = 0; i < 10; i++) {
      await pub.publish({ topic: 'b', payload: Buffer.from(`m${i}`), acks: 1 });
      done++;
    }
  })();
  await until(() => broker.stats().blocked === 1, 'a blocked publish');
  const stalledAt = done;
  assert.ok(stalledAt < 10, `the publisher stalled (${stalledAt} done)`);
  assert.equal(c.got.length, 1, 'one delivered, then the buffer filled');
  // Still stalled after more turns of the event loop.
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  assert.equal(done, stalledAt);
  // A subscriber that keeps resuming drains it all.
  const drain = setInterval(() => subscription.resume(), 1);
  await publishing;
  await until(() => c.got.length === 10, 'all delivered');
  clearInterval(drain);
  assert.deepEqual(c.got.map((m) => m.payload.toString()), Array.from({ length: 10 }, (_, i) => `m${i}`));
  assert.equal(broker.stats().dropped, 0);
});

test('buffer block with maxBlockMs: the slow subscriber is cut, the publisher goes on', async (t) => {
  const { broker } = await makeBroker(t, { maxBlockMs: 20 });
  const sub = await broker.connect(LOCAL);
  const pub = await broker.connect(LOCAL);
  const reasons: string[] = [];
  sub.onClosed((r) => reasons.push(r));
  await sub.subscribe({ pattern: 'b', ack: 'none', buffer: { size: 2, policy: 'block' } }, () => false);
  await publishMany(pub, 'b', 10);
  assert.deepEqual(reasons, ['slow consumer']);
  assert.equal(broker.stats().slowConsumerDisconnects, 1);
  assert.equal(broker.stats().blocked, 1);
});

for (const policy of ['dropNewest', 'dropOldest'] as const) {
  test(`buffer ${policy}: drops counted, the kept ones delivered on resume`, async (t) => {
    const { broker, sink } = await makeBroker(t);
    const sub = await broker.connect(LOCAL);
    const pub = await broker.connect(LOCAL);
    let more = false;
    const c = collector(() => more);
    const subscription = await sub.subscribe({ pattern: 'd', ack: 'none', buffer: { size: 3, policy } }, c.deliver);
    await publishMany(pub, 'd', 10);
    await until(() => broker.stats().dropped === 6, 'six dropped');
    more = true;
    subscription.resume();
    assert.deepEqual(c.got.map((m) => m.offset), policy === 'dropNewest' ? [0, 1, 2, 3] : [0, 7, 8, 9]);
    assert.equal(sink.find({ kind: 'dropped' }).length, 6);
  });
}

test('buffer disconnect: the slow consumer session is closed with reason "slow consumer"', async (t) => {
  const { broker } = await makeBroker(t);
  const sub = await broker.connect(LOCAL);
  const pub = await broker.connect(LOCAL);
  const reasons: string[] = [];
  sub.onClosed((r) => reasons.push(r));
  await sub.subscribe({ pattern: 'x', ack: 'none', buffer: { size: 3, policy: 'disconnect' } }, () => false);
  await publishMany(pub, 'x', 10);
  await until(() => reasons.length === 1, 'closed');
  assert.deepEqual(reasons, ['slow consumer']);
  assert.equal(broker.stats().slowConsumerDisconnects, 1);
  assert.equal(broker.stats().connections, 1);
});

test('lineage: published -> persisted -> delivered -> nak -> delivered -> acked', async (t) => {
  const { broker } = await makeBroker(t);
  const s = await broker.connect(LOCAL);
  const c = collector();
  await s.subscribe({ pattern: 'l', group: { name: 'g', mode: 'queue' }, ack: 'manual', ackWaitMs: 60_000 }, c.deliver);
  await s.publish({ topic: 'l', payload: Buffer.from('x') });
  await until(() => c.got.length === 1, 'first delivery');
  s.nak(c.got[0]!.deliveryId!);
  await until(() => c.got.length === 2, 'redelivery');
  assert.equal(c.got[1]!.attempt, 2);
  s.ack(c.got[1]!.deliveryId!);
  await until(() => broker.stats().acked === 1, 'acked');
  const steps = broker.lineage('l', 0, 0)!;
  assert.deepEqual(steps.map((x) => x.step), ['published', 'persisted', 'delivered', 'nak', 'delivered', 'acked']);
  const delivered = steps.filter((x) => x.step === 'delivered') as { attempt: number; session?: string }[];
  assert.deepEqual(delivered.map((d) => d.attempt), [1, 2]);
  assert.equal(delivered[0]!.session, s.id, 'delivered to whom');
  assert.equal(broker.stats().redelivered, 1);
});

test('maxDeliver -> dead-lettered (lineage, DLQ listing), then redrive back to the topic', async (t) => {
  const { broker } = await makeBroker(t);
  const s = await broker.connect(LOCAL);
  const c = collector();
  await s.subscribe({ pattern: 'pay', group: { name: 'workers', mode: 'queue' }, ack: 'manual', maxDeliver: 2, ackWaitMs: 60_000 }, c.deliver);
  await s.publish({ topic: 'pay', payload: Buffer.from('poison'), headers: { origin: 'test' }, msgId: 'poison-1' });
  await until(() => c.got.length === 1, 'first');
  s.nak(c.got[0]!.deliveryId!);
  await until(() => c.got.length === 2, 'second');
  s.nak(c.got[1]!.deliveryId!);
  await until(() => broker.stats().deadLettered === 1, 'dead-lettered');
  const steps = broker.lineage('pay', 0, 0)!.map((x) => x.step);
  assert.deepEqual(steps, ['published', 'persisted', 'delivered', 'nak', 'delivered', 'nak', 'dead-lettered']);
  const dl = await broker.deadLetters('$dlq.pay');
  assert.equal(dl.length, 1);
  assert.equal(dl[0]!.headers.origin, 'test');
  assert.equal(dl[0]!.headers['wl-dlq-topic'], 'pay');
  assert.equal(await broker.redrive('$dlq.pay'), 1);
  await until(() => c.got.length === 3, 'redriven delivery');
  const again = c.got[2]!;
  assert.equal(again.payload.toString(), 'poison');
  assert.equal(again.offset, 1);
  assert.equal(again.headers.origin, 'test');
  assert.equal(again.headers['wl-redriven-from'], '$dlq.pay/0/0');
  assert.equal(again.headers['wl-dlq-topic'], undefined);
  s.ack(again.deliveryId!);
});

test('a session closing mid-processing: another queue member gets its unacked messages', async (t) => {
  const { broker } = await makeBroker(t);
  const a = await broker.connect(LOCAL);
  const b = await broker.connect(LOCAL);
  const pub = await broker.connect(LOCAL);
  const ca = collector();
  await a.subscribe({ pattern: 'jobs', group: { name: 'w', mode: 'queue' }, ack: 'manual', ackWaitMs: 60_000 }, ca.deliver);
  await publishMany(pub, 'jobs', 5);
  await until(() => ca.got.length === 5, 'a has all five');
  const cb = collector();
  await b.subscribe({ pattern: 'jobs', group: { name: 'w', mode: 'queue' }, ack: 'manual', ackWaitMs: 60_000 }, cb.deliver);
  a.ack(ca.got[0]!.deliveryId!);
  await a.close();
  await until(() => cb.got.length === 4, 'b gets the four unacked');
  assert.deepEqual(cb.got.map((m) => m.offset).sort(), [1, 2, 3, 4]);
  for (const m of cb.got) b.ack(m.deliveryId!);
  await until(() => broker.stats().acked === 5, 'all acked');
});

test("replay 'original': a replay from an offset keeps the gaps it was published with", async (t) => {
  const { broker } = await makeBroker(t);
  const s = await broker.connect(LOCAL);
  for (let i = 0; i < 3; i++) {
    await s.publish({ topic: 'rp', payload: Buffer.from(`${i}`) });
    await new Promise((r) => setTimeout(r, 40));
  }
  const arrivals: number[] = [];
  const c = collector(() => (arrivals.push(Date.now()), true));
  await s.subscribe({ pattern: 'rp', ack: 'none', start: { kind: 'earliest' }, replay: 'original' }, c.deliver);
  await until(() => c.got.length === 3, 'replayed');
  const published = c.got.map((m) => m.timestamp);
  // Never faster than published (timers never fire early by more than a millisecond).
  for (let i = 1; i < 3; i++) assert.ok(arrivals[i]! - arrivals[0]! >= published[i]! - published[0]! - 2, `gap ${i}`);
});
