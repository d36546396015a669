import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { connectPubsub, type PubsubClient, type ReceivedMessage } from '../../../clients/pubsub.ts';
import { startUp, type UpProcess, killUp } from '../../helpers/up.ts';

/** `wirelab up` with only the native TCP door, on a data dir of the test's. */
async function upOn(dir: string): Promise<{ up: UpProcess; url: string }> {
  const up = await startUp(['--port-base', '0', '--only', 'pubsub-tcp'], 30_000, { WIRELAB_PUBSUB_DIR: dir });
  const e = up.endpoints.find((x) => x.name === 'pubsub-tcp')!;
  return { up, url: `tcp://127.0.0.1:${e.port}` };
}


/** Every message on `topic` from offset 0 up to a marker published now. */
async function readAll(c: PubsubClient, topic: string): Promise<ReceivedMessage[]> {
  const marker = await c.publish(topic, '__end__', { acks: 1 });
  const sub = await c.subscribe(topic, { from: 'earliest', ack: 'none' });
  const out: ReceivedMessage[] = [];
  for await (const m of sub) {
    if (m.offset === marker!.offset) break;
    out.push(m);
  }
  return out;
}

test('kill -9 during acked publishing (acks=all, fsync batch): 0 acknowledged messages lost after restart', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wirelab-kill9-'));
  // One cleanup, in order: after hooks run first-registered first, and a failing one skips the rest (an rm racing a
  // broker still writing its files failed with ENOTEMPTY and left `up` running, which kept the test process alive).
  const stops: (() => Promise<unknown>)[] = [];
  t.after(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });
  const first = await upOn(dir);
  stops.push(() => killUp(first.up));
  const acked = new Set<string>();
  let sent = 0;
  const c = await connectPubsub({ url: first.url });
  c.closed.catch(() => undefined);
  // A window of publishes in flight, so the kill lands mid-stream with some sent and not yet acknowledged.
  const publishing = (async () => {
    const inflight = new Set<Promise<unknown>>();
    for (;;) {
      const id = `m${sent++}`;
      const p = c
        .publish('durable.orders', id, { acks: 'all', msgId: id })
        .then(() => acked.add(id))
        .catch(() => 'lost');
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
      if (inflight.size >= 64) await Promise.race(inflight);
      if (!c.connected) break;
      if (acked.size >= 2000) break;
    }
    await Promise.allSettled(inflight);
  })();
  for (const end = Date.now() + 60_000; acked.size < 500; await new Promise((r) => setTimeout(r, 5))) {
    assert.ok(Date.now() < end, `only ${acked.size} publishes acknowledged in 60 s`);
  }
  await killUp(first.up);
  await publishing;
  await c.close();
  assert.ok(acked.size >= 500, `${acked.size} acknowledged before the kill`);
  assert.ok(sent > acked.size, 'the kill came mid-stream (some publishes were never acknowledged)');

  const second = await upOn(dir);
  stops.push(() => second.up.stop());
  const r = await connectPubsub({ url: second.url });
  try {
    const stored = new Set((await readAll(r, 'durable.orders')).map((m) => m.text));
    const lost = [...acked].filter((id) => !stored.has(id));
    assert.equal(lost.length, 0, `acknowledged and lost: ${lost.slice(0, 10).join(', ')}`);
    t.diagnostic(`${acked.size} acknowledged, ${stored.size} stored, ${sent} sent before the kill; lost 0`);
  } finally {
    await r.close();
  }
});

test('a queue-group consumer killed mid-processing: its messages go to another member after ackWaitMs', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wirelab-kill9-consumer-'));
  const stops: (() => Promise<unknown>)[] = [];
  t.after(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });
  const { up, url } = await upOn(dir);
  stops.push(() => up.stop());
  const holderScript = fileURLToPath(new URL('./native-holder.ts', import.meta.url));
  const holder = spawn(process.execPath, ['--conditions=wirelab-source', '--import', 'tsx', holderScript, url, 'work.items', 'workers', '300'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  holder.on('error', () => undefined);
  stops.push(async () => holder.kill('SIGKILL'));
  let out = '';
  holder.stdout.on('data', (d) => (out += d));
  const until = async (pred: () => boolean, what: string): Promise<void> => {
    const end = Date.now() + 30_000;
    while (!pred()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; holder printed ${JSON.stringify(out.slice(-200))}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  await until(() => out.includes('ready'), 'the holder to subscribe');
  const p = await connectPubsub({ url });
  try {
    for (let i = 0; i < 5; i++) await p.publish('work.items', `item ${i}`);
    await until(() => (out.match(/^got /gm) ?? []).length === 5, 'the holder to take 5 messages');
    const exited = new Promise((r) => holder.once('exit', r));
    holder.kill('SIGKILL');
    await exited;
    const other = await connectPubsub({ url });
    try {
      const sub = await other.subscribe('work.items', { group: 'workers', ack: 'manual', ackWaitMs: 300 });
      const got: ReceivedMessage[] = [];
      for await (const m of sub) {
        got.push(m);
        m.ack();
        if (got.length === 5) break;
      }
      assert.deepEqual(got.map((m) => m.offset).sort((a, b) => a - b), [0, 1, 2, 3, 4]);
      assert.ok(got.every((m) => m.attempt >= 2), `attempts ${got.map((m) => m.attempt).join(',')}`);
    } finally {
      await other.close();
    }
  } finally {
    await p.close();
  }
});
