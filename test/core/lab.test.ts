import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { defineLab, runLab } from '../../core/lab/index.ts';
import { runCli } from '../helpers/cli.ts';

const base = { id: 'x', title: 'x', concept: 'x', protocols: [] };

test('a lab passes only when it made claims and every one held', async () => {
  const ok = await runLab(defineLab({ ...base, run: (ctx) => void ctx.claim('one is one', 1 === 1) }));
  assert.equal(ok.ok, true);
  assert.deepEqual(ok.claims, { held: 1, total: 1 });
  const failed = await runLab(defineLab({ ...base, run: (ctx) => void ctx.claim('two is three', 2 === (3 as number)) }));
  assert.equal(failed.ok, false);
  const silent = await runLab(defineLab({ ...base, run: (ctx) => ctx.note('nothing to say') }));
  assert.equal(silent.ok, false, 'a lab without a claim is not a pass');
});

test('a throwing or timed-out lab fails, and its clean-ups run last registered first', async () => {
  const order: string[] = [];
  const thrown = await runLab(
    defineLab({
      ...base,
      run(ctx) {
        ctx.defer(() => order.push('first'));
        ctx.defer(() => order.push('second'));
        ctx.claim('held', true);
        throw new Error('boom');
      },
    }),
  );
  assert.equal(thrown.ok, false);
  assert.equal(thrown.error, 'boom');
  assert.deepEqual(order, ['second', 'first']);
  let aborted = false;
  const slow = await runLab(
    defineLab({
      ...base,
      timeoutMs: 50,
      run: (ctx) =>
        new Promise<void>((resolve) => {
          ctx.signal.addEventListener('abort', () => (aborted = true));
          setTimeout(resolve, 1000);
        }),
    }),
  );
  assert.match(slow.error ?? '', /did not finish within 50 ms/);
  assert.equal(aborted, true);
});

test('a lab definition is checked', () => {
  assert.throws(() => defineLab({ ...base, id: 'Not Kebab', run: () => {} }), { code: 'WL_ERR_LAB_INVALID' });
  assert.throws(() => defineLab({ ...base, run: undefined as never }), { code: 'WL_ERR_LAB_INVALID' });
});

test("a user's own lab file runs from the CLI; --json puts only JSON on stdout", async () => {
  const r = await runCli(['lab', './examples/my-lab.ts', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const result = JSON.parse(r.stdout);
  assert.equal(result.id, 'nagle-delayed-ack');
  assert.equal(result.ok, true);
});

test('a failed claim makes the CLI exit 1; an unknown lab exits 2 naming the labs', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wl-lab-'));
  const file = join(dir, 'failing.mts');
  await writeFile(
    file,
    `export default { id: 'failing', title: 'f', concept: 'c', protocols: [], run(ctx) { ctx.claim('the moon is cheese', false, 'it is rock'); } };\n`,
  );
  const r = await runCli(['lab', file]);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /✗ the moon is cheese {2}\(it is rock\)/);
  assert.match(r.stdout, /FAIL failing: 0\/1 claims held/);
  const unknown = await runCli(['lab', 'no-such-lab']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /no lab "no-such-lab"; labs: .*tcp-vs-udp/);
});

test('--trace-file writes the lab traffic as JSON lines, --trace prints it on stderr', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wl-lab-'));
  const file = join(dir, 'trace.jsonl');
  const r = await runCli(['lab', './examples/my-lab.ts', '--trace', '--trace-file', file]);
  assert.equal(r.code, 0, r.stderr);
  const events = (await readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(events.some((e) => e.proto === 'tcp' && e.kind === 'write' && e.dir === '>'));
  assert.match(r.stderr, /tcp#\d+\s+(?:[CS]:\d+\s+)?→ write/);
});

test('--trace-lean: summaries only (no payloads, no details), a first line that says so, and trace convert refuses the file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wl-lab-'));
  const full = join(dir, 'full.jsonl');
  const lean = join(dir, 'lean.jsonl');
  const a = await runCli(['lab', 'http-methods', '--trace-file', full]);
  const b = await runCli(['lab', 'http-methods', '--trace-file', lean, '--trace-lean']);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  const read = async (f: string) => (await readFile(f, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { proto: string; kind: string; role?: string; data?: string; meta?: { headers?: unknown } });
  const [fe, le] = [await read(full), await read(lean)];
  assert.ok(fe.some((e) => e.data) && fe.some((e) => e.proto === 'http' && e.meta?.headers), 'the full file has bytes and header lists');
  assert.deepEqual([le[0]!.proto, le[0]!.kind], ['trace', 'lean']);
  assert.ok(le.some((e) => e.proto === 'http' && e.kind === 'request'), 'the lean file still has every request');
  assert.ok(le.every((e) => !e.data && !e.meta), 'no payloads, no details');
  assert.ok(le.length < fe.length);
  const alone = await runCli(['lab', 'http-methods', '--trace-lean']);
  assert.equal(alone.code, 2);
  assert.match(alone.stderr, /--trace-lean goes with --trace-file/);
  const conv = await runCli(['trace', 'convert', lean, '-o', join(dir, 'x.pcapng')]);
  assert.equal(conv.code, 1);
  assert.match(conv.stderr, /--trace-lean \(summaries only\)/);
});
