import assert from 'node:assert/strict';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { createTracer, hexDump, JsonlSink, MemorySink, NOOP_TRACER, nextCid, preview, PrettySink, redactLine } from '../../core/trace/index.ts';

test('an event has the shape of DESIGN.md', () => {
  const mem = new MemorySink();
  const tracer = createTracer([mem]);
  tracer.emit('tcp', 'tcp#1', '>', 'read', () => ({ summary: 'read 3 B', bytes: 3, meta: { n: 1 } }));
  tracer.emit('tcp', 'tcp#1', '*', 'close', () => 'closed');
  const [a, b] = mem.events;
  assert.deepEqual(Object.keys(a!).sort(), ['bytes', 'cid', 'dir', 'kind', 'meta', 'proto', 'summary', 't', 'ts']);
  assert.ok(Math.abs(a!.ts! - Date.now()) < 60_000, 'ts is epoch milliseconds');
  assert.equal(a!.dir, '>');
  assert.equal(b!.summary, 'closed');
  assert.ok(b!.t >= a!.t);
});

test('with tracing off, no summary is ever built', () => {
  let built = 0;
  NOOP_TRACER.emit('tcp', 'x', '>', 'read', () => {
    built++;
    return 'never';
  });
  assert.equal(built, 0);
  assert.equal(createTracer([]), NOOP_TRACER);
  assert.equal(NOOP_TRACER.enabled, false);
});

test('connection ids are unique per protocol', () => {
  const a = nextCid('zz');
  const b = nextCid('zz');
  assert.notEqual(a, b);
  assert.match(a, /^zz#\d+$/);
});

test('the pretty sink prints ms, cid, arrow, kind and summary on one line, and hex dumps with --hex', () => {
  const out = new PassThrough();
  let text = '';
  out.on('data', (d) => (text += d));
  const sink = new PrettySink({ stream: out, color: false, hex: true });
  const tracer = createTracer([sink]);
  tracer.emit('udp', 'udp#7', '<', 'datagram', () => ({ summary: 'seq=1', bytes: 4, data: Buffer.from('ABCD') }));
  const [line, dump] = text.split('\n');
  assert.match(line!, /^\s+\d+\.\d{3}ms udp#7\s+← datagram\s+seq=1 \(4 B\)$/);
  assert.match(dump!, /000000 {2}41 42 43 44\s+ABCD/);
});

test('the JSON-lines sink writes one parseable object per event, payload as hex', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wl-trace-'));
  const file = join(dir, 't.jsonl');
  const tracer = createTracer([new JsonlSink(file, { maxPayloadBytes: 2 })]);
  tracer.emit('tcp', 'tcp#1', '>', 'write', () => ({ summary: 'w', bytes: 3, data: Buffer.from('xyz') }));
  tracer.emit('tcp', 'tcp#1', '*', 'close', () => 'c');
  await tracer.close();
  const lines = (await readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, 2);
  assert.equal(lines[0].data, '7879');
  assert.equal(lines[0].dataTruncated, true);
  assert.equal(lines[1].kind, 'close');
});

test('the JSON-lines sink: lines across many batches come out whole and in order (UTF-8 too); past maxPendingBytes events are counted and one line says so', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wl-trace-'));
  const file = join(dir, 'many.jsonl');
  const tracer = createTracer([new JsonlSink(file)]);
  // About 1 MiB of lines: several 256 KiB buffers, each line with a non-ASCII character.
  for (let i = 0; i < 4000; i++) tracer.emit('tcp', 'tcp#1', '>', 'write', () => ({ summary: `${i} ← ${'x'.repeat(200)}`, bytes: 3, data: Buffer.from('héé') }));
  await tracer.close();
  const lines = (await readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { summary: string; data: string });
  assert.equal(lines.length, 4000);
  assert.ok(lines.every((l, i) => l.summary.startsWith(`${i} ← `) && l.data === Buffer.from('héé').toString('hex')));

  const slow = join(dir, 'behind.jsonl');
  const sink = new JsonlSink(slow, { maxPendingBytes: 4096 });
  const t2 = createTracer([sink]);
  // In one turn of the event loop nothing reaches the file: past 4 KiB of waiting lines, events are counted.
  for (let i = 0; i < 100; i++) t2.emit('tcp', 'tcp#2', '>', 'write', () => `line ${i} ${'y'.repeat(100)}`);
  assert.ok(sink.dropped > 50, `dropped ${sink.dropped}`);
  const dropped = sink.dropped;
  await new Promise((r) => setTimeout(r, 200));
  t2.emit('tcp', 'tcp#2', '*', 'close', () => 'after');
  await t2.close();
  const got = (await readFile(slow, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { kind: string; summary: string });
  assert.equal(got.length, 100 - dropped + 2);
  assert.equal(got.at(-2)!.kind, 'dropped');
  assert.match(got.at(-2)!.summary, new RegExp(`^${dropped} events not written: the file fell maxPendingBytes=4096 behind`));
  assert.equal(got.at(-1)!.summary, 'after');

  // A file that cannot be opened: emitting never throws, close() says why.
  const bad = createTracer([new JsonlSink(join(dir, 'no', 'such', 'dir', 't.jsonl'))]);
  bad.emit('tcp', 'tcp#3', '*', 'close', () => 'c');
  await assert.rejects(bad.close(), (err: NodeJS.ErrnoException) => err.code === 'ENOENT');
});

test('secrets are redacted from command lines', () => {
  assert.equal(redactLine('PASS hunter2'), 'PASS ****');
  assert.equal(redactLine('pass hunter2'), 'pass ****');
  assert.equal(redactLine('AUTH PLAIN AGFsaWNlAHNlY3JldA=='), 'AUTH PLAIN ****');
  assert.equal(redactLine('AUTH LOGIN'), 'AUTH LOGIN');
  assert.equal(redactLine('a1 LOGIN alice secret'), 'a1 LOGIN alice ****');
  assert.equal(redactLine('a1 LOGIN "al ice" "se cret"'), 'a1 LOGIN "al ice" ****');
  assert.equal(redactLine('a2 AUTHENTICATE PLAIN AGFsaWNl'), 'a2 AUTHENTICATE PLAIN ****');
  assert.equal(redactLine('APOP alice c4c9334bac560ecc979e58001b3e22fb'), 'APOP alice ****');
  assert.equal(redactLine('Authorization: Basic YWxpY2U6c2VjcmV0'), 'Authorization: ****');
  assert.equal(redactLine('USER alice'), 'USER alice');
  assert.equal(redactLine('RETR 1'), 'RETR 1');
});

test('preview escapes control bytes and cuts long payloads', () => {
  assert.equal(preview(Buffer.from('a\r\nb')), '"a\\r\\nb"');
  assert.equal(preview(Buffer.from([0, 255])), '"\\x00\\xff"');
  assert.equal(preview(Buffer.alloc(100, 0x61), 10), `"${'a'.repeat(10)}…"`);
  assert.equal(hexDump(Buffer.alloc(40), 16).length, 2);
});
