import assert from 'node:assert/strict';
import { test } from 'node:test';
import { labIds, type LabResult } from '../../core/lab/index.ts';
import { runCli, type CliResult } from '../helpers/cli.ts';

// Every lab in labs/ is an integration test: run them as a user would, `wirelab labs --json` (what `npm run labs`
// runs), and require every claim to hold. One process for all of them: a start of the CLI per lab cost ~35 starts of
// tsx and of the modules the labs share, about a minute of CPU on the 2-core CI machine.
const ids = await labIds();
const all: Promise<{ r: CliResult; results?: LabResult[] }> = runCli(['labs', '--json'], { timeoutMs: 900_000 }).then((r) => {
  try {
    return { r, results: JSON.parse(r.stdout) as LabResult[] };
  } catch {
    return { r };
  }
});
all.catch(() => undefined); // awaited by every test below

test('wirelab labs --json runs every lab once, in one process, and exits 0 only when every lab held', async () => {
  const { r, results } = await all;
  assert.ok(results, `stdout is not one JSON document:\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-4000)}`);
  assert.deepEqual(results.map((x) => x.id), ids);
  assert.equal(r.code, results.every((x) => x.ok) ? 0 : 1, r.stderr.slice(-4000));
});

for (const id of ids) {
  test(`lab ${id} exits 0 and every claim holds`, async (t) => {
    const { r, results } = await all;
    const result = results?.find((x) => x.id === id);
    assert.ok(result, `no result for ${id}:\n${r.stderr.slice(-4000)}`);
    if (result.skipped) {
      // Only off CI: under CI=true the runner turns a skip into an error (every peer is installed there).
      return t.skip(result.skipped);
    }
    const failed = result.findings.filter((f) => f.type === 'claim' && !f.holds);
    assert.deepEqual(failed, [], `claims that did not hold: ${JSON.stringify(failed)}\n${result.error ?? ''}`);
    assert.equal(result.error, undefined);
    assert.ok(result.claims.total > 0, 'a lab makes at least one claim');
    t.diagnostic(`${result.durationMs} ms`);
  });
}
