// The behaviour both logs share (in-memory and file): offsets, reads, limits, retention, TTL, offsetForTime.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openPartitionLog, type PartitionLog, type PartitionLogOptions } from '../../../pubsub/log/index.ts';

const modes: { name: string; open: (o?: PartitionLogOptions) => Promise<{ log: PartitionLog; done: () => Promise<void> }> }[] = [
  {
    name: 'memory',
    open: async (o) => {
      const log = await openPartitionLog(null, o);
      return { log, done: () => log.close() };
    },
  },
];
if (process.env.WL_LOG_MODES !== 'memory') {
  modes.push({
    name: 'file',
    open: async (o) => {
      const dir = mkdtempSync(join(tmpdir(), 'wl-log-'));
      const log = await openPartitionLog(dir, o);
      return {
        log,
        done: async () => {
          await log.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  });
}

const p = (s: string) => Buffer.from(s);

for (const mode of modes) {
  test(`${mode.name}: offsets from 0 without gaps, read clamps and bounds`, async () => {
    const { log, done } = await mode.open({ segmentBytes: 1024 });
    try {
      for (let i = 0; i < 100; i++) {
        const rec = await log.append({ payload: p(`m${i}`), key: `k${i % 3}`, headers: { i: String(i) } }, 'written');
        assert.equal(rec.offset, i);
      }
      assert.equal(log.nextOffset, 100);
      assert.ok(log.stats().segments > 1, 'rolled');
      const all = await log.read(-5, 1000);
      assert.deepEqual(all.map((r) => r.offset), [...Array(100).keys()]);
      assert.equal(all[42]!.payload.toString(), 'm42');
      assert.equal(all[42]!.key, 'k0');
      assert.deepEqual(all[42]!.headers, { i: '42' });
      assert.deepEqual((await log.read(10, 5)).map((r) => r.offset), [10, 11, 12, 13, 14]);
      assert.equal((await log.read(0, 1000, 1)).length, 1, 'one record even past maxBytes');
      assert.deepEqual(await log.read(100, 10), []);
      assert.equal(log.stats().records, 100);
      const odd = JSON.parse('{"__proto__":"x","":"empty","é":"ü"}') as Record<string, string>;
      const rec = await log.append({ payload: Buffer.alloc(0), headers: odd, key: '', msgId: 'id-1', timestamp: 0 }, 'written');
      const [back] = await log.read(rec.offset, 1);
      assert.deepEqual(Object.entries(back!.headers), Object.entries(odd));
      assert.equal(Object.getPrototypeOf(back!.headers), Object.prototype);
      assert.equal(back!.key, '');
      assert.equal(back!.msgId, 'id-1');
      assert.equal(back!.timestamp, 0);
      assert.equal(back!.payload.length, 0);
    } finally {
      await done();
    }
  });

  test(`${mode.name}: limits refused with WL_ERR_PUBSUB_LIMIT naming the limit, bad fields with PUBSUB_INVALID`, async () => {
    const { log, done } = await mode.open({ maxRecordBytes: 1000, maxHeaders: 2, maxHeaderBytes: 100, maxKeyBytes: 8 });
    try {
      await assert.rejects(log.append({ payload: Buffer.alloc(2000) }, 'written'), { code: 'WL_ERR_PUBSUB_LIMIT', limit: 'maxRecordBytes' });
      await assert.rejects(log.append({ payload: p('x'), headers: { a: '1', b: '2', c: '3' } }, 'written'), { limit: 'maxHeaders' });
      await assert.rejects(log.append({ payload: p('x'), headers: { a: 'x'.repeat(200) } }, 'written'), { limit: 'maxHeaderBytes' });
      await assert.rejects(log.append({ payload: p('x'), key: 'k'.repeat(9) }, 'written'), { limit: 'maxKeyBytes' });
      await assert.rejects(log.append({ payload: 'x' as unknown as Buffer }, 'written'), { code: 'WL_ERR_PUBSUB_INVALID' });
      await assert.rejects(log.append({ payload: p('x'), headers: { a: 1 as unknown as string } }, 'written'), { code: 'WL_ERR_PUBSUB_INVALID' });
      assert.equal(log.nextOffset, 0, 'refused appends take no offset');
      assert.equal((await log.append({ payload: p('ok') }, 'written')).offset, 0);
    } finally {
      await done();
    }
    const never = await mode.open({ fsync: 'never' });
    try {
      await assert.rejects(never.log.append({ payload: p('x') }, 'synced'), { code: 'WL_ERR_PUBSUB_DURABILITY' });
      assert.equal((await never.log.append({ payload: p('x') }, 'written')).offset, 0);
    } finally {
      await never.done();
    }
    await assert.rejects(openPartitionLog(null, { fsync: 'sometimes' as never }), { code: 'WL_ERR_INVALID_OPTION' });
    await assert.rejects(openPartitionLog(null, { segmentBytes: -1 }), { code: 'WL_ERR_INVALID_OPTION' });
  });

  test(`${mode.name}: TTL: expired records skipped by read and counted`, async () => {
    const { log, done } = await mode.open();
    try {
      const now = Date.now();
      await log.append({ payload: p('a') }, 'written');
      await log.append({ payload: p('gone'), expiresAt: now - 1 }, 'written');
      await log.append({ payload: p('b'), expiresAt: now + 3_600_000 }, 'written');
      await log.append({ payload: p('gone2'), expiresAt: 1 }, 'written');
      const got = await log.read(0, 10);
      assert.deepEqual(got.map((r) => r.payload.toString()), ['a', 'b']);
      assert.equal(got[1]!.expiresAt, now + 3_600_000);
      assert.equal(log.stats().expiredSkipped, 2);
      assert.deepEqual((await log.read(1, 1)).map((r) => r.offset), [2], 'maxRecords counts served records only');
      assert.deepEqual(await log.read(3, 10), [], 'only expired records left: nothing');
    } finally {
      await done();
    }
  });

  test(`${mode.name}: offsetForTime`, async () => {
    const { log, done } = await mode.open({ segmentBytes: 1024, indexIntervalBytes: 100 });
    try {
      for (let i = 0; i < 200; i++) await log.append({ payload: p(`m${i}`), timestamp: 1_000_000 + i * 10 }, 'written');
      assert.equal(await log.offsetForTime(0), 0);
      assert.equal(await log.offsetForTime(1_000_000), 0);
      assert.equal(await log.offsetForTime(1_000_001), 1);
      assert.equal(await log.offsetForTime(1_000_000 + 1234), 124);
      assert.equal(await log.offsetForTime(1_000_000 + 1990), 199);
      assert.equal(await log.offsetForTime(1_000_000 + 1991), 200);
      // Timestamps out of order (producer clocks): the first offset whose timestamp reaches the target.
      for (const ts of [5_000_000, 4_000_000, 7_000_000, 6_000_000]) await log.append({ payload: p('late'), timestamp: ts }, 'written');
      assert.equal(await log.offsetForTime(4_500_000), 200);
      assert.equal(await log.offsetForTime(5_500_000), 202);
      assert.equal(await log.offsetForTime(7_000_001), 204);
    } finally {
      await done();
    }
  });

  test(`${mode.name}: retention by count, bytes and age drops whole segments, keeps the active one`, async () => {
    const fill = async (log: PartitionLog, n: number, ts?: (i: number) => number) => {
      for (let i = 0; i < n; i++) await log.append({ payload: Buffer.alloc(50, i), ...(ts ? { timestamp: ts(i) } : {}) }, 'written');
    };
    {
      const { log, done } = await mode.open({ segmentBytes: 1024, retention: { maxRecords: 30 }, retentionIntervalMs: 0 });
      try {
        await fill(log, 100);
        await log.applyRetention();
        const s = log.stats();
        assert.ok(s.records <= 30 && s.records > 0, `records ${s.records}`);
        assert.equal(s.firstOffset, log.firstOffset);
        assert.equal(s.firstOffset + s.records, 100);
        assert.equal((await log.read(0, 1))[0]!.offset, log.firstOffset, 'read clamps to firstOffset');
      } finally {
        await done();
      }
    }
    {
      const { log, done } = await mode.open({ segmentBytes: 1024, retention: { maxBytes: 3000 }, retentionIntervalMs: 0 });
      try {
        await fill(log, 100);
        await log.applyRetention();
        const s = log.stats();
        assert.ok(s.bytes <= 3000, `bytes ${s.bytes}`);
        assert.ok(s.firstOffset > 0);
      } finally {
        await done();
      }
    }
    {
      const { log, done } = await mode.open({ segmentBytes: 1024, retention: { maxAgeMs: 1000 }, retentionIntervalMs: 0 });
      try {
        const t0 = Date.now(); // roll-time retention uses the clock: nothing is old yet
        await fill(log, 100, (i) => t0 + i * 100);
        const before = log.stats().segments;
        await log.applyRetention(t0 + 50 * 100 + 1000);
        const s = log.stats();
        assert.ok(s.segments < before);
        const first = (await log.read(0, 1))[0]!;
        assert.ok(first.offset > 0 && first.offset <= 50, `first ${first.offset}`);
        await log.applyRetention(t0 + 10_000_000);
        assert.equal(log.stats().segments, 1, 'the active segment stays');
        assert.equal(log.nextOffset, 100);
      } finally {
        await done();
      }
    }
  });
}
