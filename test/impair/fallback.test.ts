import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCli } from '../helpers/cli.ts';

// Where kernel mode cannot run, the labs say so and fall back to the userland proxy and relay (forced here).
test('reliability without kernel mode: says why, measures TCP through the userland proxy, still exits 0', async () => {
  // The smallest counts: the UDP rows are the same with or without the kernel (labs.test.ts runs them at the defaults).
  const r = await runCli(['lab', 'reliability', '--json', '--param', 'count=1000', '--param', 'tcp-count=1000'], { timeoutMs: 90_000, env: { WIRELAB_KERNEL: 'off' } });
  const result = JSON.parse(r.stdout) as { ok: boolean; findings: Array<{ type: string; text: string; holds?: boolean }> };
  assert.equal(r.code, 0, r.stderr);
  assert.ok(result.findings.some((f) => f.type === 'note' && /Kernel mode is not available \(WIRELAB_KERNEL=off\)/.test(f.text)));
  assert.ok(result.findings.some((f) => f.type === 'claim' && /TCP loses, skips, duplicates and reorders nothing/.test(f.text) && f.holds));
  assert.ok(!result.findings.some((f) => f.type === 'claim' && /kernel counted/.test(f.text)), 'no kernel claim without the kernel');
});
