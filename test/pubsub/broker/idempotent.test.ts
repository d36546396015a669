import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createIdempotentHandler } from '../../../pubsub/broker/idempotent.ts';

test('idempotent handler: a redelivery (same msgId or same offset) runs once; the file store survives a restart', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wl-idem-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'seen.jsonl');
  const ran: string[] = [];
  const h = createIdempotentHandler((m: { topic: string; partition: number; offset: number; msgId?: string }) => void ran.push(`${m.offset}`), { store: file });
  assert.equal(await h({ topic: 'a', partition: 0, offset: 1, msgId: 'x' }), true);
  assert.equal(await h({ topic: 'a', partition: 0, offset: 2, msgId: 'x' }), false, 'same msgId, another offset (a republished duplicate)');
  assert.equal(await h({ topic: 'a', partition: 0, offset: 3 }), true);
  assert.equal(await h({ topic: 'a', partition: 0, offset: 3 }), false, 'a redelivery');
  // Concurrent copies: the second waits for the first and is skipped.
  const both = await Promise.all([h({ topic: 'a', partition: 0, offset: 9 }), h({ topic: 'a', partition: 0, offset: 9 })]);
  assert.deepEqual(both.sort(), [false, true]);
  assert.equal(h.processed, 3);
  assert.equal(h.skipped, 3);
  const again = createIdempotentHandler(() => void ran.push('again'), { store: file });
  assert.equal(await again({ topic: 'a', partition: 0, offset: 5, msgId: 'x' }), false, 'remembered across a restart');
  assert.equal(await again({ topic: 'a', partition: 0, offset: 3 }), false);
  assert.deepEqual(ran, ['1', '3', '9']);
  const short = createIdempotentHandler(() => undefined, { windowMs: 1, store: new Map() });
  await short({ topic: 'a', partition: 0, offset: 1 });
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(await short({ topic: 'a', partition: 0, offset: 1 }), true, 'forgotten after windowMs');
});
