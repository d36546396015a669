/** What only the embedded engine promises (beyond the conformance suite): its files, options and limits. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEngine } from '../../../pubsub/engines/index.ts';
import type { Delivery, Engine } from '../../../pubsub/engines/types.ts';
import { waitFor } from '../../helpers/mail.ts';
import { eventually } from './conformance.ts';

const b = (s: string): Buffer => Buffer.from(s);

async function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'wl-engine-'));
  try {
    await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}


test('files: topics/<name>/meta.json and one folder per partition; groups/<name>.json after acks; no temp files left', () =>
  withDir(async (dir) => {
    const engine = await createEngine({ kind: 'embedded', dir });
    try {
      await engine.ensureTopic('orders.eu', { partitions: 2, duplicateWindowMs: 5000 });
      const meta = JSON.parse(await readFile(join(dir, 'topics', 'orders.eu', 'meta.json'), 'utf8'));
      assert.equal(meta.partitions, 2);
      assert.equal(meta.duplicateWindowMs, 5000);
      assert.deepEqual((await readdir(join(dir, 'topics', 'orders.eu'))).sort(), ['0', '1', 'meta.json']);
      const got: Delivery[] = [];
      const c = await engine.consume({ pattern: 'orders.*', ack: 'manual', group: { name: 'billing', mode: 'queue' } }, (d) => got.push(d));
      await engine.append({ topic: 'orders.eu', payload: b('1'), partition: 1, acks: 'all' });
      await waitFor(() => got.length === 1, 'delivery');
      c.ack(got[0]!.id);
      const file = join(dir, 'groups', 'billing.json');
      await eventually(async () => {
        const saved = JSON.parse(await readFile(file, 'utf8').catch(() => '{}'));
        return saved.positions?.some((p: { partition: number; committed: number }) => p.partition === 1 && p.committed === 1) === true;
      }, 'the committed offset on disk');
      await c.close();
    } finally {
      await engine.close();
    }
    assert.deepEqual((await readdir(join(dir, 'groups'))).filter((f) => f.endsWith('.tmp')), []);
  }));

test('fsync never: acks=all refused with WL_ERR_PUBSUB_DURABILITY, acks=1 stored', () =>
  withDir(async (dir) => {
    const engine = await createEngine({ kind: 'embedded', dir, fsync: 'never' });
    try {
      await assert.rejects(engine.append({ topic: 't', payload: b('x'), acks: 'all' }), { code: 'WL_ERR_PUBSUB_DURABILITY' });
      assert.equal((await engine.append({ topic: 't', payload: b('x'), acks: 1 })).offset, 0);
    } finally {
      await engine.close();
    }
  }));

test('a saved position past the log end (records lost to a power cut) is clamped: offsets written again are delivered', () =>
  withDir(async (dir) => {
    let engine: Engine = await createEngine({ kind: 'embedded', dir });
    for (let i = 0; i < 3; i++) await engine.append({ topic: 'p', payload: b(String(i)), acks: 'all' });
    await engine.close();
    const groups = join(dir, 'groups');
    await rm(groups, { recursive: true, force: true });
    await mkdir(groups);
    const settings = { pattern: 'p', ack: 'manual', start: { kind: 'earliest' }, ackWaitMs: 30000, backoffMs: [], maxDeliver: 5 };
    await writeFile(join(groups, 'g.json'), JSON.stringify({ version: 1, name: 'g', mode: 'queue', settings, positions: [{ topic: 'p', partition: 0, committed: 100, acked: [105] }] }));
    engine = await createEngine({ kind: 'embedded', dir });
    try {
      assert.equal((await engine.groups())[0]!.partitions[0]!.committed, 3);
      const got: Delivery[] = [];
      const c = await engine.consume({ pattern: 'p', ack: 'manual', group: { name: 'g', mode: 'queue' } }, (d) => got.push(d));
      await engine.append({ topic: 'p', payload: b('3'), acks: 'all' });
      await waitFor(() => got.length === 1, 'the new record');
      assert.equal(got[0]!.record.offset, 3);
      await c.close();
    } finally {
      await engine.close();
    }
  }));

test('retention: a group behind the log start moves its committed offset to the first kept record', () =>
  withDir(async (dir) => {
    const engine = await createEngine({ kind: 'embedded', dir, segmentBytes: 1024 });
    try {
      await engine.ensureTopic('short', { retention: { maxRecords: 5 } });
      for (let i = 0; i < 40; i++) await engine.append({ topic: 'short', payload: Buffer.alloc(200, i), acks: 1 });
      const info = (await engine.topic('short'))!.partitionInfo[0]!;
      assert.ok(info.firstOffset > 0, 'retention removed old segments');
      const got: Delivery[] = [];
      const c = await engine.consume({ pattern: 'short', ack: 'none', group: { name: 'late', mode: 'queue' }, start: { kind: 'earliest' } }, (d) => got.push(d));
      await waitFor(() => got.length === 40 - info.firstOffset, 'the kept records');
      assert.equal(got[0]!.record.offset, info.firstOffset);
      assert.equal((await engine.groups())[0]!.partitions[0]!.committed, 40);
      await c.close();
    } finally {
      await engine.close();
    }
  }));

test('a queue group on a wildcard picks up topics created later; a dormant group brought back on another pattern drops the old topics', async () => {
  const engine = await createEngine({ kind: 'embedded' });
  try {
    const got: Delivery[] = [];
    let c = await engine.consume({ pattern: 'jobs.>', ack: 'none', group: { name: 'w', mode: 'queue' } }, (d) => got.push(d));
    await engine.append({ topic: 'jobs.a', payload: b('a'), acks: 1 });
    await engine.append({ topic: 'jobs.b.c', payload: b('b'), acks: 1 });
    await waitFor(() => got.length === 2, 'both');
    await c.close();
    c = await engine.consume({ pattern: 'jobs.a', ack: 'none', group: { name: 'w', mode: 'queue' } }, (d) => got.push(d));
    assert.deepEqual((await engine.groups())[0]!.partitions.map((p) => p.topic), ['jobs.a']);
    await c.close();
  } finally {
    await engine.close();
  }
});

test('options: bad values throw InvalidOptionError naming the option; maxPartitions is a named limit', async () => {
  for (const [options, name] of [
    [{ kind: 'embedded', fsync: 'sometimes' }, 'fsync'],
    [{ kind: 'embedded', defaultPartitions: 0 }, 'defaultPartitions'],
    [{ kind: 'embedded', readBatchRecords: 1.5 }, 'readBatchRecords'],
    [{ kind: 'embedded', dir: '' }, 'dir'],
    [{ kind: 'embedded', segmentBytes: 10 }, 'segmentBytes'],
    [{ kind: 'kafka' }, 'kind'],
  ] as const) {
    await assert.rejects(createEngine(options as never), { code: 'WL_ERR_INVALID_OPTION', option: name });
  }
  const engine = await createEngine({ kind: 'embedded', maxPartitions: 8 });
  try {
    await assert.rejects(engine.ensureTopic('wide', { partitions: 9 }), { code: 'WL_ERR_PUBSUB_LIMIT', limit: 'maxPartitions' });
    await assert.rejects(engine.ensureTopic('bad', { partitions: 0 }), { code: 'WL_ERR_PUBSUB_INVALID' });
    await assert.rejects(engine.append({ topic: 't', payload: 'not a buffer' as never, acks: 1 }), { code: 'WL_ERR_PUBSUB_INVALID' });
    await assert.rejects(engine.append({ topic: 't', payload: b('x'), acks: 2 as never }), { code: 'WL_ERR_PUBSUB_INVALID' });
  } finally {
    await engine.close();
  }
  await assert.rejects(engine.append({ topic: 't', payload: b('x'), acks: 1 }), { code: 'WL_ERR_CLOSED' });
});

test('a damaged group file: createEngine rejects with WL_ERR_PUBSUB_CORRUPT naming it, rather than starting over', () =>
  withDir(async (dir) => {
    const engine = await createEngine({ kind: 'embedded', dir });
    await engine.close();
    await mkdir(join(dir, 'groups'));
    await writeFile(join(dir, 'groups', 'g.json'), '{"version": 1, "name": ');
    await assert.rejects(createEngine({ kind: 'embedded', dir }), { code: 'WL_ERR_PUBSUB_CORRUPT' });
  }));
