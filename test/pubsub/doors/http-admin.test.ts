import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ErrorCodes } from '../../../core/errors.ts';
import type { GroupInfo, TopicInfo } from '../../../pubsub/engines/types.ts';
import { requirePeer } from '../../helpers/peers.ts';
import { curl, CurlSse, startDoor, type DoorUnderTest } from './http-helpers.ts';

let d: DoorUnderTest;
const ADMIN = ['-H', 'Authorization: Bearer admin-token-1'];
const DEV = ['-H', 'Authorization: Bearer dev-token-123'];

before(async () => {
  d = await startDoor({
    users: [
      { name: 'admin', token: 'admin-token-1' },
      { name: 'dev', token: 'dev-token-123' },
    ],
    allowInsecureAuth: true,
  });
});
after(async () => d?.close());

async function publish(topic: string, body: string): Promise<void> {
  const a = await curl(['-X', 'POST', ...DEV, '--data-binary', body, `${d.url}/topics/${topic}`]);
  assert.equal(a.status, 201, a.body);
}

async function settle(kind: 'ack' | 'nak' | 'term', ids: string[]): Promise<{ settled: number; unknown: string[] }> {
  const a = await curl(['-X', 'POST', ...DEV, '-H', 'Content-Type: application/json', '--data-binary', JSON.stringify({ [kind]: ids }), `${d.url}/acks`]);
  assert.equal(a.status, 200, a.body);
  return a.json as { settled: number; unknown: string[] };
}

async function eventually<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const v = await probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`never: ${what}`);
}

interface Delivered {
  payload: string;
  deliveryId: string;
  attempt: number;
  offset: number;
  headers: Record<string, string>;
}

test('admin: topics with offsets and sizes; only admin users; lineage of a message', async (t) => {
  if (!requirePeer(t, 'curl', 'curl')) return;
  await publish('stock.eu', 'one');
  await publish('stock.eu', 'two');
  const topics = await curl([...ADMIN, `${d.url}/admin/topics`]);
  assert.equal(topics.status, 200);
  const eu = (topics.json as { topics: TopicInfo[] }).topics.find((x) => x.name === 'stock.eu')!;
  assert.equal(eu.partitionInfo[0]!.nextOffset, 2);
  assert.ok(eu.partitionInfo[0]!.bytes > 0);
  assert.equal((await curl([...ADMIN, `${d.url}/admin/topics/stock.eu`])).status, 200);
  assert.equal((await curl([...ADMIN, `${d.url}/admin/topics/nope`])).status, 404);
  const dev = await curl([...DEV, `${d.url}/admin/topics`]);
  assert.equal(dev.status, 403);
  assert.equal((dev.json as { code: string }).code, ErrorCodes.PUBSUB_ACL);
  assert.equal((await curl([`${d.url}/admin/topics`])).status, 401);
  const lineage = await curl([...ADMIN, `${d.url}/admin/lineage/stock.eu/0/1`]);
  assert.equal(lineage.status, 200);
  assert.ok((lineage.json as { steps: { step: string }[] }).steps.some((s) => s.step === 'published'));
});

test('admin: a group lag per partition after a partial consume (manual acks over POST /acks)', async (t) => {
  if (!requirePeer(t, 'curl', 'curl')) return;
  const sse = new CurlSse(`${d.url}/topics/jobs/events?group=workers&ack=manual&format=json&from=earliest`, DEV);
  t.after(() => sse.stop());
  await sse.opened();
  for (let i = 0; i < 10; i++) await publish('jobs', `job${i}`);
  const got = (await sse.waitFor(10)).map((e) => JSON.parse(e.data) as Delivered);
  assert.deepEqual(got.map((m) => m.payload), Array.from({ length: 10 }, (_, i) => `job${i}`));
  const r = await settle('ack', got.slice(0, 4).map((m) => m.deliveryId));
  assert.deepEqual(r, { settled: 4, unknown: [] });
  // Someone else's credentials cannot settle these deliveries.
  const other = await curl(['-X', 'POST', ...ADMIN, '--data-binary', JSON.stringify({ ack: [got[5]!.deliveryId] }), `${d.url}/acks`]);
  assert.equal(other.status, 404);
  const part = await eventually('committed offset 4', async () => {
    const g = await curl([...ADMIN, `${d.url}/admin/groups`]);
    const p = (g.json as { groups: GroupInfo[] }).groups.find((x) => x.name === 'workers')?.partitions.find((x) => x.topic === 'jobs');
    return p?.committed === 4 ? p : undefined;
  });
  assert.equal(part.end, 10);
  assert.equal(part.lag, 6);
});

test('admin: a message nak-ed maxDeliver times is in the DLQ; redrive publishes it again', async (t) => {
  if (!requirePeer(t, 'curl', 'curl')) return;
  const sse = new CurlSse(`${d.url}/topics/fragile/events?group=careful&ack=manual&format=json&maxDeliver=2&from=earliest`, DEV);
  t.after(() => sse.stop());
  await sse.opened();
  await publish('fragile', 'poison');
  const first = JSON.parse((await sse.waitFor(1))[0]!.data) as Delivered;
  assert.equal(first.attempt, 1);
  assert.equal((await settle('nak', [first.deliveryId])).settled, 1);
  const second = JSON.parse((await sse.waitFor(2))[1]!.data) as Delivered;
  assert.equal(second.attempt, 2);
  assert.equal(second.offset, first.offset);
  await settle('nak', [second.deliveryId]);
  const dlq = await eventually('a dead letter', async () => {
    const a = await curl([...ADMIN, `${d.url}/admin/dlq/fragile`]);
    assert.equal(a.status, 200);
    const m = (a.json as { messages: Delivered[] }).messages;
    return m.length ? m : undefined;
  });
  assert.equal(dlq.length, 1);
  assert.equal(dlq[0]!.payload, 'poison');
  assert.equal(dlq[0]!.headers['wl-dlq-topic'], 'fragile');
  assert.ok(dlq[0]!.headers['wl-dlq-reason']);
  const redrive = await curl(['-X', 'POST', ...ADMIN, `${d.url}/admin/dlq/fragile/redrive`]);
  assert.equal(redrive.status, 200);
  assert.equal((redrive.json as { redriven: number }).redriven, 1);
  const again = JSON.parse((await sse.waitFor(3))[2]!.data) as Delivered;
  assert.equal(again.payload, 'poison');
  assert.equal(again.attempt, 1);
  assert.equal(again.offset, first.offset + 1);
  assert.equal((await curl(['-X', 'POST', ...ADMIN, `${d.url}/admin/dlq/nothing.here/redrive`])).status, 404);
});
