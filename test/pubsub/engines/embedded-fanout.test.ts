/** A fan-out on the embedded engine: one log read serves every subscriber (group.ts readShared); order per subscriber. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEngine } from '../../../pubsub/engines/index.ts';
import type { Delivery } from '../../../pubsub/engines/types.ts';

async function until(f: () => boolean, what: string, maxMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!f()) {
    if (Date.now() - start > maxMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

for (const onFiles of [false, true]) {
  test(`fan-out (${onFiles ? 'on files' : 'in memory'}): subscribers share the records read; a paused one catches up in order`, async (t) => {
    const dir = onFiles ? await mkdtemp(join(tmpdir(), 'wl-fanout-')) : null;
    const engine = await createEngine({ kind: 'embedded', dir, fsync: 'never', readBatchRecords: 16 });
    t.after(async () => {
      await engine.close();
      if (dir !== null) await rm(dir, { recursive: true, force: true });
    });
    await engine.ensureTopic('fan');
    const got: Delivery[][] = [[], [], []];
    const consumers = await Promise.all(got.map((list) => engine.consume({ pattern: 'fan', ack: 'none' }, (d) => void list.push(d))));
    consumers[2]!.pause();
    const n = 200;
    for (let i = 0; i < n; i++) await engine.append({ topic: 'fan', payload: Buffer.from(`m${i}`), acks: 1 });
    await until(() => got[0]!.length === n && got[1]!.length === n, 'the two running subscribers');
    assert.equal(got[2]!.length, 0, 'the paused one got nothing');
    consumers[2]!.resume();
    await until(() => got[2]!.length === n, 'the paused one, after resume');
    for (const list of got) assert.deepEqual(list.map((d) => d.record.offset), [...Array(n).keys()], 'every offset once, in order');
    for (const list of got) assert.deepEqual(list.map((d) => d.record.payload.toString()), [...Array(n).keys()].map((i) => `m${i}`));
    // The two running subscribers read together: (nearly) every record object is the same for both.
    const shared = got[0]!.filter((d, i) => d.record === got[1]![i]!.record).length;
    assert.ok(shared >= n * 0.9, `${shared} of ${n} records shared by the two subscribers`);
    // Delivery ids are still there when asked for (at-most-once never acks them, but they are part of a Delivery).
    assert.match(got[0]![0]!.id, /\/fan\/0\/0\/1$/);
  });
}
