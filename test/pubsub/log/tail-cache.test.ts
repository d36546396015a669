// The file log's tail cache: readers at the tail share the records just written (no file read each), and what the
// cache serves is what the file holds, across rolls, retention, eviction and expired records.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openPartitionLog, type LogRecord } from '../../../pubsub/log/index.ts';
import { tempDir } from '../../helpers/mail.ts';

const strip = (rs: LogRecord[]) => rs.map((r) => ({ offset: r.offset, payload: r.payload.toString(), headers: r.headers, key: r.key }));

test('tail cache: reads at the tail share records; every read equals the same read from the file alone', async (t) => {
  const dir = await tempDir(t, 'wl-log-');
  const cached = await openPartitionLog(dir, { fsync: 'batch', tailCacheBytes: 4000, segmentBytes: 2048 });
  const appends = [];
  for (let i = 0; i < 200; i++) appends.push(cached.append({ payload: Buffer.from(`m-${i}`), headers: { i: String(i) }, ...(i % 3 ? { key: `k${i % 3}` } : {}) }, 'synced'));
  await Promise.all(appends);
  // Two readers at the tail get the same record objects (a fan-out decodes a record once).
  const a = await cached.read(190, 100);
  const b = await cached.read(190, 100);
  assert.equal(a.length, 10);
  assert.ok(a.every((r, i) => r === b[i]), 'the same objects from memory');
  // Reads starting before the cache come from the file: the same content as the cache serves.
  const all = await cached.read(0, 1000);
  assert.deepEqual(all.map((r) => r.offset), Array.from({ length: 200 }, (_, i) => i));
  for (const from of [0, 50, 150, 170, 185, 199, 200]) {
    assert.deepEqual(strip(await cached.read(from, 7)), strip(all.slice(from, from + 7)), `from ${from}`);
  }
  await cached.close();
  const plain = await openPartitionLog(dir, { fsync: 'batch', tailCacheBytes: 0, segmentBytes: 2048 });
  assert.deepEqual(strip(await plain.read(0, 1000)), strip(all), 'reopened without a cache: the same records');
  await plain.close();
});

test('tail cache: retention past the cached records, queued records after them, and expired ones skipped', async (t) => {
  const dir = await tempDir(t, 'wl-log-');
  const log = await openPartitionLog(dir, { fsync: 'batch', tailCacheBytes: 1 << 20, segmentBytes: 1024, retention: { maxRecords: 40 } });
  for (let i = 0; i < 100; i++) await log.append({ payload: Buffer.from(`r-${i}`), headers: {} }, 'written');
  await log.applyRetention();
  const first = log.firstOffset;
  assert.ok(first > 0, 'retention dropped segments');
  const got = await log.read(0, 1000);
  assert.equal(got[0]!.offset, first, 'nothing below the first kept offset is served from the cache');
  assert.equal(got[got.length - 1]!.offset, 99);
  // A record queued (not yet written) follows the cached ones; one already expired is skipped.
  const past = Date.now() - 1;
  void log.append({ payload: Buffer.from('expired'), headers: {}, expiresAt: past }, 'none');
  void log.append({ payload: Buffer.from('queued'), headers: {} }, 'none');
  const tail = await log.read(98, 10);
  assert.deepEqual(tail.map((r) => r.payload.toString()), ['r-98', 'r-99', 'queued']);
  await log.close();
});
