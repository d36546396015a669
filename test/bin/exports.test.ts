import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { CHECKOUT, node, importCheckScript, readmeImportRows, tempProject } from '../helpers/project.ts';

type Target = string | { 'wirelab-source': string; types: string; import: string };
const pkg = JSON.parse(readFileSync(join(CHECKOUT, 'package.json'), 'utf8')) as { exports: Record<string, Target>; bin: Record<string, string> };

/** The .ts file an entry names under the "wirelab-source" condition (the checkout's view). */
const source = (t: Target): string => (typeof t === 'string' ? t : t['wirelab-source']);

/**
 * What Node's exports resolution gives for a subpath under the "wirelab-source" condition: an exact key first, else
 * the longest matching `*` pattern.
 */
function resolveExport(subpath: string): string | undefined {
  const map = pkg.exports;
  if (map[subpath]) return source(map[subpath]);
  const patterns = Object.keys(map).filter((k) => k.includes('*')).sort((a, b) => b.length - a.length);
  for (const key of patterns) {
    const [pre, post] = key.split('*') as [string, string];
    if (subpath.startsWith(pre) && subpath.endsWith(post)) return source(map[key]!).replace('*', subpath.slice(pre.length, subpath.length - post.length));
  }
  return undefined;
}

test('every "exports" entry maps the .ts source to the same module in dist/ (.js for import, .d.ts for types)', () => {
  for (const [key, target] of Object.entries(pkg.exports)) {
    if (key === './package.json') continue;
    assert.equal(typeof target, 'object', `${key} has conditions`);
    const t = target as Exclude<Target, string>;
    assert.deepEqual(Object.keys(t), ['wirelab-source', 'types', 'import'], `${key}: the source condition first (Node and tsc take the first match)`);
    assert.equal(t.import, t['wirelab-source'].replace(/^\.\//, './dist/').replace(/\.ts$/, '.js'), `${key} import`);
    assert.equal(t.types, t['wirelab-source'].replace(/^\.\//, './dist/').replace(/\.ts$/, '.d.ts'), `${key} types`);
  }
});

test('every "exports" source target exists, and every folder module resolves to its index.ts', () => {
  for (const [key, target] of Object.entries(pkg.exports)) {
    if (key.includes('*')) continue;
    assert.ok(existsSync(join(CHECKOUT, source(target))), `${key} -> ${source(target)} exists`);
  }
  for (const area of ['servers', 'clients', 'core']) {
    for (const name of readdirSync(join(CHECKOUT, area))) {
      if (!existsSync(join(CHECKOUT, area, name, 'index.ts')) || existsSync(join(CHECKOUT, area, `${name}.ts`))) continue;
      assert.equal(resolveExport(`./${area}/${name}`), `./${area}/${name}/index.ts`, `./${area}/${name} is mapped to its index.ts`);
    }
  }
  for (const bin of Object.values(pkg.bin)) assert.ok(existsSync(join(CHECKOUT, bin)), `bin ${bin} exists`);
});

test("each import path the README documents loads from a project outside the checkout and has the names it lists", async (t) => {
  const rows = await readmeImportRows();
  assert.ok(rows.length >= 20, `the README lists the import paths (${rows.length} found)`);
  const project = await tempProject(true);
  t.after(() => project.remove());
  // Imported through tsx from the user's folder, by package name: what a lab file or a script of theirs does.
  await writeFile(
    join(project.dir, 'check.mts'),
    importCheckScript(rows),
  );
  const tsx = pathToFileURL(join(CHECKOUT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
  const r = await node(['--conditions=wirelab-source', '--import', tsx, 'check.mts'], project.dir, 90_000);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, string[] | string>;
  for (const row of rows) assert.deepEqual(out[row.path], [], `${row.path}: loads and exports ${row.names.join(', ')}`);
});
