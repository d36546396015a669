// The pub/sub labs' helpers (labs/_pubsub.ts) and the embedded engine's simulated power loss they rely on, with a real
// broker, its native TCP door and the native client; the labs themselves run in labs.test.ts.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { connectPubsub } from '../../clients/pubsub.ts';
import type { LabContext } from '../../core/lab/index.ts';
import { createBroker } from '../../pubsub/broker/index.ts';
import { startPubsubTcpServer } from '../../pubsub/doors/native/index.ts';
import { createEmbeddedEngine } from '../../pubsub/engines/index.ts';
import { publishNumbered, rates, simulatePowerLoss, startBrokerProcess, storedIds } from '../../labs/_pubsub.ts';

/** Enough of a LabContext for the helpers: defer() collects clean-ups, note() is kept. */
function labContext(): { ctx: LabContext; cleanup: () => Promise<void>; notes: string[] } {
  const cleanups: (() => unknown)[] = [];
  const notes: string[] = [];
  const ctx = { defer: (fn: () => unknown) => cleanups.push(fn), note: (t: string) => notes.push(t) } as unknown as LabContext;
  return { ctx, notes, cleanup: async () => { for (const fn of cleanups.reverse()) await fn(); } };
}

test('publishNumbered keeps every id sent and acked; storedIds reads them back; simulatePowerLoss cuts what fsync never covered', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wl-pubsub-labs-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const engine = await createEmbeddedEngine({ dir, fsync: 'never' });
  const broker = await createBroker({ engine });
  const door = await startPubsubTcpServer({ broker });
  const client = await connectPubsub({ url: `tcp://127.0.0.1:${door.port}` });
  try {
    const run = await publishNumbered(client, 'lab.t', { acks: 1, prefix: 'x', count: 300, window: 32 });
    assert.equal(run.sent.length, 300);
    assert.equal(run.acked.size, 300);
    assert.equal(run.latencies.length, 300);
    assert.ok(rates(run).perSec > 0);
    const stored = await storedIds(engine, 'lab.t');
    assert.equal(stored.records, 300);
    assert.deepEqual([...stored.ids].sort(), [...run.acked].sort());
    // acks=all is refused by a log that never fsyncs: a failure counted by code, nothing acked.
    const all = await publishNumbered(client, 'lab.t', { acks: 'all', prefix: 'y', count: 1 });
    assert.equal(all.acked.size, 0);
    assert.deepEqual([...all.failures.keys()], ['WL_ERR_PUBSUB_DURABILITY']);
    const cut = await simulatePowerLoss(engine);
    assert.equal(cut.lostRecords, 300);
  } finally {
    await client.close();
    await door.close();
    await broker.close();
  }
  const reopened = await createEmbeddedEngine({ dir });
  t.after(() => reopened.close());
  assert.equal((await storedIds(reopened, 'lab.t')).ids.size, 0, 'nothing was fsynced, nothing is left');
});

test('startBrokerProcess: a broker in a child process, killed by PID; what it acknowledged is in its folder', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wl-pubsub-labs-'));
  const { ctx, cleanup } = labContext();
  t.after(async () => {
    await cleanup();
    await rm(dir, { recursive: true, force: true });
  });
  const proc = await startBrokerProcess(ctx, dir, 'batch');
  assert.ok(proc.pid > 0);
  const client = await connectPubsub({ url: proc.url });
  client.closed.catch(() => undefined);
  const run = await publishNumbered(client, 'lab.k', { acks: 'all', prefix: 'k', count: 100 });
  assert.equal(run.acked.size, 100);
  await proc.kill9();
  assert.throws(() => process.kill(proc.pid, 0), { code: 'ESRCH' });
  await client.close();
  const engine = await createEmbeddedEngine({ dir });
  t.after(() => engine.close());
  assert.equal((await storedIds(engine, 'lab.k')).ids.size, 100);
});
