import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { labIds } from '../../core/lab/index.ts';

// Every lab is reachable the documented ways: `npm run lab:<id>` and a row in the README's lab table.
test('every lab in labs/ has an npm script and a README row', async () => {
  const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8'));
  const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
  for (const id of await labIds()) {
    assert.equal(pkg.scripts[`lab:${id}`], `node bin/wirelab.js lab ${id}`, `package.json script lab:${id}`);
    assert.ok(readme.includes(`| \`${id}\` |`), `README lab table row for ${id}`);
  }
});
