import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { PassThrough } from 'node:stream';
import { defineLab, LabReporter, loadAllLabs, paramHelp, parseParamFlags, resolveLabParams, runLab } from '../../core/lab/index.ts';
import { runCli } from '../helpers/cli.ts';

const base = { id: 'p', title: 'p', concept: 'p', protocols: [] };
const params = {
  loss: { kind: 'percent', default: '5%', min: 0.01, max: 0.5, help: 'loss' },
  delay: { kind: 'duration', default: '20ms', min: 1, max: 2000, help: 'delay' },
  size: { kind: 'size', default: '1KiB', min: 1, max: 1024 * 1024, help: 'size' },
  rate: { kind: 'rate', default: '1mbit', min: 1000, max: 1e9, help: 'rate' },
  count: { kind: 'count', default: 100, min: 10, max: 100_000, help: 'count' },
  peers: { kind: 'int', default: 4, min: 2, max: 6, help: 'peers' },
  mode: { kind: 'enum', values: ['fast', 'slow'], default: 'fast', help: 'mode' },
} as const;

test('parameters: defaults in base units, overrides parsed by kind, and each bad value named', () => {
  const lab = defineLab({ ...base, params, run: () => undefined });
  assert.deepEqual(resolveLabParams(lab), { loss: 0.05, delay: 20, size: 1024, rate: 1e6, count: 100, peers: 4, mode: 'fast' });
  const given = { loss: '10%', delay: '1.5s', size: '64KiB', rate: '100M', count: '5k', peers: '6', mode: 'slow' };
  assert.deepEqual(resolveLabParams(lab, given), { loss: 0.1, delay: 1500, size: 65536, rate: 1e8, count: 5000, peers: 6, mode: 'slow' });
  assert.equal(resolveLabParams(lab, { loss: '0.2' }).loss, 0.2);
  const bad: Array<[Record<string, string>, RegExp]> = [
    [{ loss: '60%' }, /loss=60%: out of range; loss goes from 1% to 50%/],
    [{ loss: 'lots' }, /expected a percentage/],
    [{ delay: '5 parsecs' }, /expected a time/],
    [{ size: '2MiB' }, /out of range/],
    [{ count: '1.5' }, /expected a whole number/],
    [{ peers: '7' }, /peers goes from 2 to 6/],
    [{ mode: 'medium' }, /expected one of fast, slow/],
    [{ los: '5%' }, /no parameter los; its parameters: loss, delay/],
  ];
  for (const [g, re] of bad) assert.throws(() => resolveLabParams(lab, g), (e: Error & { code?: string }) => e.code === 'WL_ERR_USAGE' && re.test(e.message), JSON.stringify(g));
  assert.deepEqual(parseParamFlags(['loss=10%', 'count = 5']), { loss: '10%', count: '5' });
  assert.throws(() => parseParamFlags(['loss']), /NAME=VALUE/);
  assert.throws(() => parseParamFlags(['loss=1%', 'loss=2%']), /given twice/);
  assert.match(paramHelp(lab).join('\n'), /--param loss=PERCENT +loss \(default 5%; 1%\.\.50%\)/);
});

test('parameters: a bad declaration is refused by defineLab; checkParams rejects a combination', async () => {
  assert.throws(() => defineLab({ ...base, params: { n: { kind: 'count', default: 0, min: 1, max: 9, help: 'n' } }, run: () => undefined }), /default n=0: out of range/);
  assert.throws(() => defineLab({ ...base, params: { N: { kind: 'count', default: 1, min: 1, max: 9, help: 'n' } }, run: () => undefined }), /kebab-case/);
  const lab = defineLab({
    ...base,
    params: { a: { kind: 'count', default: 2, min: 1, max: 9, help: 'a' }, b: { kind: 'count', default: 3, min: 1, max: 9, help: 'b' } },
    checkParams: (p) => (p.a >= p.b ? 'a must be below b' : undefined),
    run: (ctx) => void ctx.claim(`a + b = ${ctx.params.a + ctx.params.b}`, ctx.params.a < ctx.params.b),
  });
  assert.throws(() => resolveLabParams(lab, { a: '5' }), /a must be below b/);
  const out = new PassThrough();
  let printed = '';
  out.on('data', (d: Buffer) => (printed += d.toString()));
  new LabReporter(out, false).header(lab, resolveLabParams(lab, { b: '9' }));
  assert.match(printed, /params: a=2 b=9/);
  const r = await runLab(lab, { params: { a: '4', b: '9' } });
  assert.equal(r.ok, true);
  assert.deepEqual(r.params, { a: 4, b: 9 });
  assert.equal((r.findings[0] as { text: string }).text, 'a + b = 13');
  await assert.rejects(runLab(lab, { params: { a: '9' } }), /a must be below b/);
});

test('every built-in lab declares valid parameters, and the labs whose numbers depend on a setting expose one', async () => {
  const labs = await loadAllLabs();
  for (const lab of labs) resolveLabParams(lab);
  const withParams = labs.filter((l) => Object.keys(l.params ?? {}).length > 0).map((l) => l.id);
  for (const id of ['reliability', 'latency', 'latency-under-impairment', 'tcp-vs-udp', 'reliable-udp', 'webrtc-vs-websocket', 'p2p-vs-client-server', 'realtime-push']) {
    assert.ok(withParams.includes(id), `${id} has parameters`);
  }
});

test('wirelab lab FILE --param: the value reaches the lab, the header and the JSON; --help lists it; a bad one exits 2', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wl-params-'));
  const file = join(dir, 'echo-param.ts');
  await writeFile(
    file,
    `import { defineLab } from 'wirelab';
export default defineLab({
  id: 'echo-param', title: 'echo a parameter', concept: 'parameters reach run()', protocols: [],
  params: { count: { kind: 'count', default: 3, min: 1, max: 10, help: 'how many' } },
  run(ctx) { ctx.claim('count is ' + ctx.params.count, ctx.params.count > 0); },
});
`,
  );
  const [json, help, bad] = await Promise.all([
    runCli(['lab', file, '--param', 'count=7', '--json']),
    runCli(['lab', file, '--help']),
    runCli(['lab', file, '--param', 'count=11']),
  ]);
  assert.equal(json.code, 0, json.stderr);
  const result = JSON.parse(json.stdout) as { params: Record<string, number>; findings: Array<{ text: string }> };
  assert.deepEqual(result.params, { count: 7 });
  assert.equal(result.findings[0]!.text, 'count is 7');
  assert.match(help.stdout, /--param count=COUNT +how many \(default 3; 1\.\.10\)/);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /count=11: out of range; count goes from 1 to 10/);
});
