import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Message, Session } from '../../pubsub/broker/index.ts';
import { formatTimeline, parseMessageId } from '../../bin/commands/lineage.ts';
import { startDoor, type DoorUnderTest } from '../pubsub/doors/http-helpers.ts';
import { runCli } from '../helpers/cli.ts';

// A real broker and its HTTP door; `wirelab lineage` runs as a process against the door's admin API.
let d: DoorUnderTest;
let consumer: Session;

const until = async (pred: () => boolean, ms = 5000): Promise<void> => {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
};

before(async () => {
  d = await startDoor({}, { adminUsers: ['*'] });
  // m-1: delivered, not acked in time, redelivered, acked. m-2: terminated -> dead-lettered.
  const seen: Message[] = [];
  consumer = await d.broker.connect({ door: 'internal', peer: 'test', tls: false, clientId: 'billing-1' });
  await consumer.subscribe({ pattern: 'orders.eu', group: { name: 'billing', mode: 'queue' }, start: { kind: 'earliest' }, ackWaitMs: 100 }, (m) => {
    seen.push(m);
    if (m.msgId === 'm-1' && m.attempt > 1) consumer.ack(m.deliveryId!);
    if (m.msgId === 'm-2') consumer.term(m.deliveryId!, 'no such customer');
    return true;
  });
  for (const id of ['m-1', 'm-2']) {
    const r = await fetch(`${d.url}/topics/orders.eu`, { method: 'POST', headers: { 'x-msg-id': id }, body: `order ${id}` });
    assert.equal(r.status, 201);
  }
  await until(() => seen.some((m) => m.msgId === 'm-1' && m.attempt === 2) && seen.some((m) => m.msgId === 'm-2'));
  await until(() => (d.broker.lineage('orders.eu', 0, 1) ?? []).some((s) => s.step === 'dead-lettered') && (d.broker.lineage('orders.eu', 0, 0) ?? []).some((s) => s.step === 'acked'));
});

after(async () => {
  await consumer?.close();
  await d?.close();
});

test('ids: an offset, partition@offset as wirelab pub prints it, partition-offset; anything else is a msgId', () => {
  assert.deepEqual(parseMessageId('12'), { partition: 0, offset: 12 });
  assert.deepEqual(parseMessageId('3@12'), { partition: 3, offset: 12 });
  assert.deepEqual(parseMessageId('orders.eu[3]@12'), { partition: 3, offset: 12 });
  assert.deepEqual(parseMessageId('3-12'), { partition: 3, offset: 12 });
  assert.equal(parseMessageId('order-1001'), undefined);
  assert.equal(parseMessageId('m-1'), undefined);
});

test('wirelab lineage <topic> <offset>: published, persisted, delivered, redelivered, acked, in order', async () => {
  const r = await runCli(['lineage', 'orders.eu', '0', '--url', d.url]);
  assert.equal(r.code, 0, r.stderr);
  const names = r.stdout.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/)[3]);
  assert.deepEqual(names, ['published', 'persisted', 'delivered', 'redelivered', 'acked'], r.stdout);
  assert.match(r.stdout, /^orders\.eu\[0\]@0: 5 steps from \d{4}-/);
  assert.match(r.stdout, /published\s+by anonymous \(\S+\) through http, msgId m-1/);
  assert.match(r.stdout, /redelivered\s+to anonymous \(\S+\) in group billing, attempt 2/);
});

test('wirelab lineage by msgId finds the message and shows it dead-lettered; --json gives the steps', async () => {
  const r = await runCli(['lineage', 'orders.eu', 'm-2', '--url', d.url]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^orders\.eu\[0\]@1:/);
  assert.match(r.stdout, /dead-lettered\s+to \$dlq\.orders\.eu: no such customer/);
  const j = await runCli(['lineage', 'orders.eu', 'orders.eu[0]@1', '--url', d.url, '--json']);
  assert.equal(j.code, 0, j.stderr);
  const doc = JSON.parse(j.stdout) as { partition: number; offset: number; steps: Array<{ step: string }> };
  assert.equal(doc.offset, 1);
  assert.deepEqual(doc.steps.map((s) => s.step), ['published', 'persisted', 'delivered', 'dead-lettered']);
});

test('a message without lineage, an unknown msgId: exit 1 with the reason; a bad --url: exit 2', async () => {
  const none = await runCli(['lineage', 'orders.eu', '0@99', '--url', d.url]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /WL_ERR_PUBSUB_NOT_FOUND/);
  const unknown = await runCli(['lineage', 'orders.eu', 'no-such-id', '--url', d.url]);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /no message with msgId no-such-id in orders\.eu \(read 2 records\)/);
  const bad = await runCli(['lineage', 'orders.eu', '0', '--url', 'tcp://127.0.0.1:1']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--url must be the HTTP door/);
});

test('formatTimeline: times relative to the first step', () => {
  const out = formatTimeline('t', 0, 0, [
    { step: 'published', topic: 't', partition: 0, offset: 0, t: 1000, session: 's1', door: 'tcp' },
    { step: 'acked', topic: 't', partition: 0, offset: 0, t: 1012, consumer: 'c1', session: 's2', user: 'bob' },
  ]);
  assert.match(out, /\+\s+0 ms\s+published\s+by anonymous \(s1\) through tcp/);
  assert.match(out, /\+\s+12 ms\s+acked\s+bob \(s2\)/);
});
