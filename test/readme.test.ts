import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { CLI } from './helpers/cli.ts';
import { CHECKOUT, node, readmeBlock, tempProject } from './helpers/project.ts';

test("the README's own-lab example, taken from README.md, runs as a lab from a folder outside the checkout and passes", async (t) => {
  const block = await readmeBlock('own-lab');
  const code = /^```ts\n([\s\S]*?)```\n$/.exec(block)?.[1];
  assert.ok(code, 'the own-lab block is one ```ts code block');
  assert.equal(code, await readFile(join(CHECKOUT, 'examples', 'my-lab.ts'), 'utf8'), 'examples/my-lab.ts is the README example');
  const project = await tempProject(false);
  t.after(() => project.remove());
  await writeFile(join(project.dir, 'my-lab.ts'), code);
  const r = await node([CLI, 'lab', './my-lab.ts', '--json'], project.dir, 90_000);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const result = JSON.parse(r.stdout) as { id: string; ok: boolean; claims: { held: number; total: number } };
  assert.equal(result.id, 'nagle-delayed-ack');
  assert.deepEqual(result.claims, { held: 2, total: 2 });
});
