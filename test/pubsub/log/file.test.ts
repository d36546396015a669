// The segment-file log: reopen across rolls, torn and corrupt tails, the index as a cache, group commit, simulated
// power loss and kill -9 of a process appending with 'synced' acks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32, tableCrc32 } from '../../../core/crc32.ts';
import { openPartitionLog, replay, type PartitionLog } from '../../../pubsub/log/index.ts';
import { tempDir } from '../../helpers/mail.ts';

const p = (s: string) => Buffer.from(s);
const files = (dir: string, ext: string) => readdirSync(dir).filter((n) => n.endsWith(ext)).sort();

async function fill(log: PartitionLog, n: number, from = 0): Promise<void> {
  for (let i = from; i < from + n; i++) await log.append({ payload: p(`msg-${i}`), headers: { n: String(i) } }, 'written');
}

async function assertIntact(log: PartitionLog, n: number): Promise<void> {
  const got = await log.read(0, n + 10);
  assert.equal(got.length, n);
  got.forEach((r, i) => {
    assert.equal(r.offset, i);
    assert.equal(r.payload.toString(), `msg-${i}`);
  });
}

test('crc32: the table version gives the native values', () => {
  for (const s of ['', 'a', '123456789', 'x'.repeat(1000)]) assert.equal(tableCrc32(p(s)), crc32(p(s)));
  assert.equal(crc32(p('123456789')), 0xcbf43926);
});

test('segments roll, files are named by base offset, and a reopened log has every record and continues', async (t) => {
  const dir = await tempDir(t, 'wl-log-');
  let log = await openPartitionLog(dir, { segmentBytes: 1024, indexIntervalBytes: 200 });
  await fill(log, 300);
  await log.close();
  const logs = files(dir, '.log');
  assert.ok(logs.length > 5, `${logs.length} segments`);
  assert.equal(logs[0], `${'0'.repeat(20)}.log`);
  assert.equal(files(dir, '.index').length, logs.length);
  log = await openPartitionLog(dir, { segmentBytes: 1024, indexIntervalBytes: 200 });
  t.after(() => log.close());
  assert.equal(log.nextOffset, 300);
  assert.equal(log.stats().truncatedBytesOnOpen, 0);
  await assertIntact(log, 300);
  assert.equal((await log.append({ payload: p('msg-300') }, 'written')).offset, 300);
  assert.deepEqual((await log.read(150, 2)).map((r) => r.payload.toString()), ['msg-150', 'msg-151']);
});

test('the index is a cache: deleted, cut short or garbled, it is rebuilt from the log on open', async (t) => {
  const dir = await tempDir(t, 'wl-log-');
  const opts = { segmentBytes: 4096, indexIntervalBytes: 100 };
  let log = await openPartitionLog(dir, opts);
  for (let i = 0; i < 200; i++) await log.append({ payload: p(`msg-${i}`), timestamp: 1_000_000 + i }, 'written');
  await log.close();
  const idx = files(dir, '.index').map((n) => join(dir, n));
  const sizes = idx.map((f) => statSync(f).size);
  rmSync(idx[0]!);
  truncateSync(idx[1]!, 20);
  writeFileSync(idx[2]!, Buffer.alloc(sizes[2]!, 0xff));
  log = await openPartitionLog(dir, opts);
  t.after(() => log.close());
  assert.deepEqual(idx.map((f) => statSync(f).size), sizes, 'rebuilt to the same entries');
  await assertIntact(log, 200);
  assert.equal(await log.offsetForTime(1_000_123), 123);
});

test('a torn tail (garbage appended, or the last record cut mid-way) is truncated on open, never served', async (t) => {
  const dir = await tempDir(t, 'wl-log-');
  let log = await openPartitionLog(dir);
  await fill(log, 10);
  await log.close();
  const file = join(dir, files(dir, '.log')[0]!);
  appendFileSync(file, Buffer.from('\x00\x00\x01\x00garbage that is no frame'));
  log = await openPartitionLog(dir);
  assert.equal(log.stats().truncatedBytesOnOpen, 28);
  assert.equal(log.nextOffset, 10);
  await assertIntact(log, 10);
  await log.close();

  const full = statSync(file).size;
  truncateSync(file, full - 5);
  log = await openPartitionLog(dir);
  t.after(() => log.close());
  const cut = log.stats().truncatedBytesOnOpen;
  assert.ok(cut > 0 && cut === full - 5 - statSync(file).size, `cut ${cut} bytes: the rest of the torn record`);
  assert.equal(log.nextOffset, 9, 'the cut record is gone');
  await assertIntact(log, 9);
  assert.equal((await log.append({ payload: p('msg-9') }, 'written')).offset, 9, 'the next append takes its offset');
  await assertIntact(log, 10);
});

test('a CRC flip inside a sealed segment: open succeeds, read rejects with WL_ERR_PUBSUB_CORRUPT, later segments still serve', async (t) => {
  const dir = await tempDir(t, 'wl-log-');
  const opts = { segmentBytes: 2048, indexIntervalBytes: 100 };
  let log = await openPartitionLog(dir, opts);
  await fill(log, 100);
  await log.close();
  const first = join(dir, files(dir, '.log')[0]!);
  const buf = readFileSync(first);
  buf[buf.length - 300]! ^= 0x40; // a record in the middle of the sealed first segment, before its last index entry
  buf[150]! ^= 0x01;
  writeFileSync(first, buf);
  log = await openPartitionLog(dir, opts);
  t.after(() => log.close());
  assert.equal(log.stats().truncatedBytesOnOpen, 0);
  assert.equal(log.nextOffset, 100);
  await assert.rejects(log.read(0, 100), { code: 'WL_ERR_PUBSUB_CORRUPT' });
  const tail = await log.read(90, 100);
  assert.deepEqual(tail.map((r) => r.offset), [90, 91, 92, 93, 94, 95, 96, 97, 98, 99]);
});

test("group commit: 1,000 concurrent 'synced' appends cost far fewer fsyncs; 'always' costs one per record", async (t) => {
  const dir = await tempDir(t, 'wl-log-');
  const log = await openPartitionLog(join(dir, 'batch'), { fsync: 'batch' });
  t.after(() => log.close());
  const recs = await Promise.all(Array.from({ length: 1000 }, (_, i) => log.append({ payload: p(`msg-${i}`) }, 'synced')));
  assert.deepEqual(recs.map((r) => r.offset), [...Array(1000).keys()]);
  const s = log.stats();
  assert.equal(s.syncedOffset, 1000);
  assert.ok(s.fsyncs >= 1 && s.fsyncs <= 10, `${s.fsyncs} fsyncs for 1,000 synced appends`);
  t.diagnostic(`batch: ${s.fsyncs} fsyncs for 1,000 concurrent synced appends`);

  const always = await openPartitionLog(join(dir, 'always'), { fsync: 'always' });
  t.after(() => always.close());
  await Promise.all(Array.from({ length: 50 }, (_, i) => always.append({ payload: p(`msg-${i}`) }, 'written')));
  await always.close();
  assert.ok(always.stats().fsyncs >= 50, `${always.stats().fsyncs} fsyncs for 50 appends`);
});

test('simulated power loss, fsync never: the unsynced tail is lost and counted; the next open sees only what was synced', async (t) => {
  const dir = await tempDir(t, 'wl-log-');
  let log = await openPartitionLog(dir, { fsync: 'never', segmentBytes: 1024 });
  await fill(log, 50);
  const lost = await log.simulatePowerLoss();
  assert.equal(lost.lostRecords, 50);
  assert.ok(lost.lostBytes > 0);
  log = await openPartitionLog(dir, { fsync: 'never', segmentBytes: 1024 });
  t.after(() => log.close());
  assert.equal(log.nextOffset, 0);
  assert.equal(log.stats().fsyncs, 0);
  await assert.rejects(log.append({ payload: p('x') }, 'synced'), { code: 'WL_ERR_PUBSUB_DURABILITY' });
});

test("simulated power loss, fsync batch: nothing acknowledged as 'synced' is lost", async (t) => {
  const dir = await tempDir(t, 'wl-log-');
  const opts = { fsync: 'batch' as const, segmentBytes: 2048 };
  let log = await openPartitionLog(dir, opts);
  const acked: number[] = [];
  const synced = Array.from({ length: 300 }, (_, i) =>
    log.append({ payload: p(`msg-${i}`) }, i % 3 === 0 ? 'synced' : 'written').then((r) => {
      if (i % 3 === 0) acked.push(r.offset);
    }),
  );
  await Promise.all(synced);
  // Then appends acked as 'written' only, not awaited: the power loss comes before their fsync.
  for (let i = 300; i < 320; i++) void log.append({ payload: p(`msg-${i}`) }, 'written').catch(() => {});
  const lost = await log.simulatePowerLoss();
  t.diagnostic(`lost ${lost.lostRecords} records, ${lost.lostBytes} bytes`);
  log = await openPartitionLog(dir, opts);
  t.after(() => log.close());
  assert.equal(log.nextOffset, 320 - lost.lostRecords);
  assert.ok(lost.lostRecords > 0 && log.nextOffset >= 298, 'the unsynced tail is lost, every synced ack is below nextOffset');
  const got = await log.read(0, 1000);
  for (const off of acked) assert.equal(got[off]!.payload.toString(), `msg-${off}`);
});

test('replay: instant from an offset or a time; original pace waits the gaps (capped); a signal ends it', async (t) => {
  const log = await openPartitionLog(null);
  t.after(() => log.close());
  const t0 = 1_700_000_000_000;
  for (let i = 0; i < 10; i++) await log.append({ payload: p(`m${i}`), timestamp: t0 + i * 1000 }, 'written');
  const offs = async (it: AsyncIterable<{ offset: number }>) => {
    const out: number[] = [];
    for await (const r of it) out.push(r.offset);
    return out;
  };
  assert.deepEqual(await offs(replay(log, 7)), [7, 8, 9]);
  assert.deepEqual(await offs(replay(log, { time: t0 + 5500 }, { batchRecords: 2 })), [6, 7, 8, 9]);
  // Original pace: 1,000 ms gaps capped at 20 ms: nine waits happen (counted by the clock only loosely).
  const start = performance.now();
  assert.deepEqual(await offs(replay(log, 0, { pace: 'original', maxGapMs: 20 })), [...Array(10).keys()]);
  assert.ok(performance.now() - start >= 9 * 20 - 5, 'waited the capped gaps');
  const ac = new AbortController();
  const got: number[] = [];
  for await (const r of replay(log, 0, { pace: 'original', maxGapMs: 10_000, signal: ac.signal })) {
    got.push(r.offset);
    if (r.offset === 1) ac.abort();
  }
  assert.deepEqual(got, [0, 1]);
  assert.throws(() => replay(log, 0, { pace: 'fast' as never }), { code: 'WL_ERR_INVALID_OPTION' });
});

test("kill -9 mid-stream: every offset acknowledged with 'synced' is in the reopened log with its payload", async (t) => {
  const dir = await tempDir(t, 'wl-log-');
  const fixture = new URL('./fixtures/append-synced.ts', import.meta.url).pathname;
  const child = spawn(process.execPath, ['--conditions=wirelab-source', '--import', 'tsx', fixture, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  child.on('error', () => undefined);
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
  });
  const acked: number[] = [];
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, sig) => resolve(sig)));
  await new Promise<void>((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const line of lines) {
        const m = /^ack (\d+)$/.exec(line);
        if (m) acked.push(Number(m[1]));
      }
      if (acked.length >= 2000 && child.exitCode === null && child.signalCode === null) {
        process.kill(child.pid!, 'SIGKILL');
        resolve();
      }
    });
    child.once('exit', (code, sig) => (sig === 'SIGKILL' ? resolve() : reject(new Error(`fixture exited ${code} ${sig}`))));
  });
  assert.equal(await exited, 'SIGKILL');
  const log = await openPartitionLog(dir, { fsync: 'batch', segmentBytes: 8192 });
  t.after(() => log.close());
  const max = Math.max(...acked);
  t.diagnostic(`${acked.length} acked (max offset ${max}); reopened log holds ${log.nextOffset}, cut ${log.stats().truncatedBytesOnOpen} bytes`);
  assert.ok(log.nextOffset > max);
  const got = await log.read(0, log.nextOffset);
  for (const off of acked) assert.equal(got[off]?.payload.toString(), `msg-${off}`, `offset ${off}`);
  assert.ok(existsSync(join(dir, `${'0'.repeat(20)}.log`)));
});

test('retention runs on segment roll, deletes whole segment files, and a reopened log starts at the kept first offset', async (t) => {
  const dir = await tempDir(t, 'wl-log-');
  const opts = { segmentBytes: 1024, retention: { maxRecords: 40 }, retentionIntervalMs: 0 };
  let log = await openPartitionLog(dir, opts);
  await fill(log, 200);
  await log.close(); // waits for the retention the last roll started
  assert.ok(files(dir, '.log').length < 6, `${files(dir, '.log').length} segment files left`);
  log = await openPartitionLog(dir, opts);
  const first = log.firstOffset;
  assert.ok(first > 0 && log.stats().records <= 40, `first ${first}, ${log.stats().records} records`);
  assert.equal(files(dir, '.log')[0], `${String(first).padStart(20, '0')}.log`);
  assert.equal(files(dir, '.log').length, files(dir, '.index').length);
  await log.close();
  log = await openPartitionLog(dir, opts);
  t.after(() => log.close());
  assert.equal(log.firstOffset, first);
  assert.equal(log.nextOffset, 200);
  const got = await log.read(0, 1000);
  assert.equal(got[0]!.offset, first);
  assert.equal(got[0]!.payload.toString(), `msg-${first}`);
});

test('a segment file of random bytes, a stray file and an empty log: open cuts what is no frame and keeps serving', async (t) => {
  const dir = await tempDir(t, 'wl-log-');
  const junk = Buffer.alloc(5000);
  for (let i = 0; i < junk.length; i++) junk[i] = (i * 7919 + 13) & 0xff;
  writeFileSync(join(dir, `${'0'.repeat(20)}.log`), junk);
  writeFileSync(join(dir, `${'0'.repeat(20)}.index`), junk.subarray(0, 100));
  writeFileSync(join(dir, 'notes.txt'), 'not a segment');
  const log = await openPartitionLog(dir);
  t.after(() => log.close());
  assert.equal(log.stats().truncatedBytesOnOpen, 5000);
  assert.equal(log.nextOffset, 0);
  assert.deepEqual(await log.read(0, 10), []);
  assert.equal(await log.offsetForTime(0), 0);
  await fill(log, 3);
  await assertIntact(log, 3);
  assert.ok(existsSync(join(dir, 'notes.txt')));
});
