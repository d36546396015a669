import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ErrorCodes } from '../../../core/errors.ts';
import { requirePeer } from '../../helpers/peers.ts';
import { curl, CurlSse, startDoor, type DoorUnderTest } from './http-helpers.ts';

let d: DoorUnderTest;
before(async () => {
  d = await startDoor({}, { limits: { heartbeatMs: 50 } });
});
after(async () => d?.close());

async function publish(topic: string, body: string, extra: string[] = []): Promise<{ partition: number; offset: number }> {
  const a = await curl(['-X', 'POST', ...extra, '--data-binary', body, `${d.url}/topics/${topic}`]);
  assert.equal(a.status, 201, a.body);
  return a.json as { partition: number; offset: number };
}

test('curl -N subscribes over SSE; Last-Event-ID resumes with no gap and no duplicate (counted)', async (t) => {
  if (!requirePeer(t, 'curl', 'curl')) return;
  await publish('feed', 'before'); // one partition: ids are bare offsets
  const first = new CurlSse(`${d.url}/topics/feed/events`);
  await first.opened();
  for (let i = 0; i < 5; i++) await publish('feed', `m${i}`);
  const got1 = await first.waitFor(5);
  await first.stop();
  assert.deepEqual(got1.map((e) => e.data), ['m0', 'm1', 'm2', 'm3', 'm4']);
  assert.deepEqual(got1.map((e) => e.id), ['1', '2', '3', '4', '5']);
  assert.ok(got1.every((e) => e.event === 'message'));
  // Missed while away: 5 more (one not UTF-8 text: base64, flagged by its event name).
  for (let i = 5; i < 9; i++) await publish('feed', `m${i}`);
  await curl(['-X', 'POST', '--data-binary', '@-', `${d.url}/topics/feed`], '\r\n');
  const second = new CurlSse(`${d.url}/topics/feed/events`, ['-H', `Last-Event-ID: ${got1.at(-1)!.id}`]);
  await second.opened();
  for (let i = 10; i < 13; i++) await publish('feed', `m${i}`);
  const got2 = await second.waitFor(8);
  await second.stop();
  assert.deepEqual(got2.map((e) => e.id), ['6', '7', '8', '9', '10', '11', '12', '13']);
  assert.deepEqual(got2.map((e) => e.data), ['m5', 'm6', 'm7', 'm8', 'DQo=', 'm10', 'm11', 'm12']);
  assert.equal(got2[4]!.event, 'message.base64');
  const ids = [...got1, ...got2].map((e) => Number(e.id));
  assert.deepEqual(ids, Array.from({ length: 13 }, (_, i) => i + 1), 'every offset once, in order');
  assert.equal(d.door.doorStats.resumed, 1);
  assert.equal(d.door.doorStats.caughtUp, 5);
});

test('SSE over a wildcard and several partitions: the id is a cursor, and resuming from any id misses nothing', async (t) => {
  if (!requirePeer(t, 'curl', 'curl')) return;
  await d.broker.engine.ensureTopic('wild.a', { partitions: 3 });
  const s1 = new CurlSse(`${d.url}/topics/wild.%3E/events?format=json`);
  await s1.opened();
  const sent: string[] = [];
  for (let i = 0; i < 9; i++) {
    const topic = i % 2 ? 'wild.a' : 'wild.b';
    await publish(topic, `w${i}`, ['-H', `X-Key: k${i}`]);
    sent.push(`w${i}`);
  }
  const got1 = await s1.waitFor(9);
  await s1.stop();
  assert.deepEqual(got1.map((e) => (JSON.parse(e.data) as { payload: string }).payload).sort(), [...sent].sort());
  assert.match(got1.at(-1)!.id!, /^t\d+,(wild\.[ab]\/\d+-\d+,?)+$/);
  // Resume from the 4th event: the 5 after it, each once, plus what is published meanwhile.
  const resumeAt = got1[3]!.id!;
  for (let i = 9; i < 12; i++) {
    await publish(i % 2 ? 'wild.a' : 'wild.b', `w${i}`, ['-H', `X-Key: k${i}`]);
    sent.push(`w${i}`);
  }
  const s2 = new CurlSse(`${d.url}/topics/wild.%3E/events?format=json&lastEventId=${encodeURIComponent(resumeAt)}`);
  const got2 = await s2.waitFor(8);
  await s2.stop();
  const seen = [...got1.slice(0, 4), ...got2].map((e) => (JSON.parse(e.data) as { payload: string }).payload);
  assert.equal(new Set(seen).size, seen.length, 'no duplicate');
  assert.deepEqual([...seen].sort(), [...sent].sort(), 'no gap');
  const bad = await curl([`${d.url}/topics/wild.%3E/events?lastEventId=t1,other.topic/0-1`]);
  assert.equal(bad.status, 400);
  assert.equal((bad.json as { code: string }).code, ErrorCodes.PUBSUB_INVALID);
  const badPattern = await curl([`${d.url}/topics/a.%3E.b/events`]);
  assert.equal(badPattern.status, 400);
});

test('long polling: 204 after timeoutMs with the cursor, a batch after it, a held poll wakes on publish', async (t) => {
  if (!requirePeer(t, 'curl', 'curl')) return;
  const empty = await curl([`${d.url}/topics/lp/poll?timeoutMs=100`]);
  assert.equal(empty.status, 204);
  const cursor = empty.headers['x-cursor']!;
  assert.match(cursor, /^t\d+/);
  await publish('lp', 'a');
  await publish('lp', 'b');
  const batch = await curl([`${d.url}/topics/lp/poll?after=${encodeURIComponent(cursor)}&timeoutMs=0`]);
  assert.equal(batch.status, 200);
  const body = batch.json as { messages: { payload: string; offset: number }[]; cursor: string };
  assert.deepEqual(body.messages.map((m) => m.payload), ['a', 'b']);
  assert.equal(body.cursor, '1');
  const held = curl([`${d.url}/topics/lp/poll?after=1&timeoutMs=20000`]);
  // The poll is held (counted as a stream) until the publish wakes it.
  while (d.door.doorStats.streams === 0) await new Promise((r) => setTimeout(r, 20));
  await publish('lp', 'c');
  const woke = await held;
  assert.equal(woke.status, 200);
  assert.deepEqual((woke.json as { messages: { payload: string }[] }).messages.map((m) => m.payload), ['c']);
  const capped = await curl([`${d.url}/topics/lp/poll?from=earliest&max=2&timeoutMs=0`]);
  assert.deepEqual((capped.json as { messages: { offset: number }[] }).messages.map((m) => m.offset), [0, 1]);
  assert.equal((await curl([`${d.url}/topics/lp/poll?group=g`])).status, 400);
});

test('a congested SSE stream holds deliveries (write returned false) and loses nothing once read', async (t) => {
  if (!requirePeer(t, 'curl', 'curl')) return;
  const n = 200;
  const payload = 'z'.repeat(8000);
  const sse = new CurlSse(`${d.url}/topics/slow/events`);
  await sse.opened();
  // curl stops reading (SIGSTOP): the socket fills and the door's write returns false.
  sse.child.kill('SIGSTOP');
  const before = d.door.doorStats.backpressure;
  const session = await d.broker.connect({ door: 'internal', peer: 'test', tls: false });
  const pubs: Promise<unknown>[] = [];
  for (let i = 0; i < n; i++) pubs.push(session.publish({ topic: 'slow', payload: Buffer.from(`${i} ${payload}`), acks: 1 }));
  while (d.door.doorStats.backpressure === before) await new Promise((r) => setTimeout(r, 20));
  sse.child.kill('SIGCONT');
  await Promise.all(pubs);
  const events = await sse.waitFor(n);
  await sse.stop();
  await session.close();
  assert.deepEqual(events.map((e) => Number(e.data.split(' ')[0])), Array.from({ length: n }, (_, i) => i));
  assert.ok(d.door.doorStats.backpressure > before);
});

test('past maxStreams a subscribe gets 503 with Retry-After, and the slot frees when the stream ends', async (t) => {
  if (!requirePeer(t, 'curl', 'curl')) return;
  const small = await startDoor({}, { limits: { maxStreams: 1 } });
  t.after(() => small.close());
  const one = new CurlSse(`${small.url}/topics/busy/events`);
  await one.opened();
  const head = await curl(['-I', `${small.url}/topics/busy/events`]);
  assert.equal(head.status, 200, 'HEAD answers without taking a stream slot');
  assert.match(head.headers['content-type'] ?? '', /^text\/event-stream/);
  const two = await curl([`${small.url}/topics/busy/events`]);
  assert.equal(two.status, 503);
  assert.equal((two.json as { limit: string }).limit, 'maxStreams');
  assert.equal(two.headers['retry-after'], '1');
  await one.stop();
  while (small.door.doorStats.streams > 0) await new Promise((r) => setTimeout(r, 20));
  assert.equal((await curl([`${small.url}/topics/busy/poll?timeoutMs=0`])).status, 204);
});
