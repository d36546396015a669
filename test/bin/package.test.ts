import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CHECKOUT, node, importCheckScript, readmeImportRows } from '../helpers/project.ts';
import { run, type RunResult } from '../helpers/run.ts';

// What a new user gets: `npm pack` (prepack builds dist/ with tsc), the tarball installed into a project of their
// own, then plain Node, their tsc and `npx wirelab` against it. No tsx and no --conditions here: the package alone.

const TYPES_NODE = (JSON.parse(await readFile(join(CHECKOUT, 'node_modules', '@types', 'node', 'package.json'), 'utf8')) as { version: string }).version;
const TSC = join(CHECKOUT, 'node_modules', 'typescript', 'bin', 'tsc');

async function npm(args: string[], cwd: string, timeoutMs: number): Promise<RunResult> {
  // run() spawns without a shell; npm is a script on PATH. --prefer-offline: the checkout's npm ci filled the cache.
  const r = await run('sh', ['-c', 'cd "$0" && exec npm "$@"', cwd, ...args], { timeoutMs });
  assert.equal(r.code, 0, `npm ${args.join(' ')}\n${r.stdout}\n${r.stderr}`);
  return r;
}

test('npm pack + npm install into a new project: plain Node imports every documented path, tsc type-checks them, npx wirelab runs a lab', { timeout: 300_000 }, async (t) => {
  const rows = await readmeImportRows();
  assert.ok(rows.length >= 20, `the README lists the import paths (${rows.length} found)`);
  const dir = await mkdtemp(join(tmpdir(), 'wirelab-pack-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const project = join(dir, 'project');
  const started = performance.now();
  const lap = (what: string) => t.diagnostic(`${what}: ${Math.round(performance.now() - started)} ms since start`);

  // The tarball (prepack runs `npm run build`: dist/ from scratch).
  const packed = await npm(['pack', '--pack-destination', dir, '--json'], CHECKOUT, 150_000);
  const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string }> }>;
  lap('npm pack (with the tsc build)');
  await t.test('(d) the tarball holds dist/, the CLI shim, README and package.json, and no test/, bench/ or .ts source', () => {
    const files = info!.files.map((f) => f.path);
    const outside = files.filter((f) => !f.startsWith('dist/') && !['bin/wirelab.js', 'README.md', 'LICENSE', 'package.json'].includes(f));
    assert.deepEqual(outside, [], 'nothing outside dist/ but the shim, README and package.json');
    assert.deepEqual(files.filter((f) => /^(dist\/)?(test|bench)\//.test(f)), [], 'no test/ or bench/');
    assert.deepEqual(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')), [], 'no .ts sources');
    for (const f of ['dist/core/index.js', 'dist/core/index.d.ts', 'dist/bin/wirelab.js', 'dist/labs/tcp-vs-udp.js']) assert.ok(files.includes(f), `${f} is in it`);
  });

  // A project of the user's own, without "type": "module" (the lab below still loads as an ES module).
  await mkdir(project);
  await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'my-project', version: '1.0.0', private: true }, null, 2));
  await npm(['install', '--prefer-offline', '--no-audit', '--no-fund', join(dir, info!.filename), `@types/node@${TYPES_NODE}`], project, 150_000);
  lap('npm install of the tarball');
  const installed = await readdir(join(project, 'node_modules', 'wirelab'));
  assert.deepEqual(installed.sort(), ['LICENSE', 'README.md', 'bin', 'dist', 'package.json']);

  // (a), (b) and (c) are independent: their processes run at the same time, each subtest then checks its own.
  const plainNode = (async () => {
    await writeFile(
      join(project, 'check.mjs'),
      importCheckScript(rows),
    );
    return node(['check.mjs'], project, 60_000);
  })();
  const userTsc = (async () => {
    const imports = rows.map((r, i) => `import * as m${i} from '${r.path}';`).join('\n');
    // Naming a binding that the .d.ts does not declare is TS2339: each documented name is checked by the compiler.
    const uses = rows.map((r, i) => r.names.map((n) => `m${i}.${n}`).join(', ')).join(',\n  ');
    await writeFile(
      join(project, 'check.mts'),
      `${imports}
import { startTcpServer } from 'wirelab/servers/tcp';
import type { RunningServer } from 'wirelab/core/server';

export const documented: unknown[] = [
  ${uses},
];
// A typed use: the declarations carry real types (a wrong one here would be an error).
export const server: Promise<RunningServer> = startTcpServer({ port: 0 });
`,
    );
    await writeFile(
      join(project, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, noEmit: true, skipLibCheck: false, types: ['node'] }, files: ['check.mts'] }),
    );
    return node([TSC, '-p', '.'], project, 120_000);
  })();
  const npx = (async () => {
    const version = await npm(['exec', '--offline', '--', 'wirelab', '--version'], project, 30_000);
    const list = await npm(['exec', '--offline', '--', 'wirelab', 'list', '--json'], project, 30_000);
    await copyFile(join(CHECKOUT, 'examples', 'my-lab.ts'), join(project, 'my-lab.ts'));
    const lab = await npm(['exec', '--offline', '--', 'wirelab', 'lab', './my-lab.ts', '--json'], project, 90_000);
    return { version, list, lab };
  })();
  // Each is awaited by its subtest; a failure before that must not surface as an unhandled rejection.
  for (const p of [plainNode, userTsc, npx]) p.catch(() => {});

  await t.test('(a) plain node (no tsx, no conditions) imports every documented path and finds the names the README lists', async () => {
    const r = await plainNode;
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, string[] | string>;
    for (const row of rows) assert.deepEqual(out[row.path], [], `${row.path}: loads and exports ${row.names.join(', ')}`);
  });

  await t.test('(b) tsc --noEmit with module/moduleResolution nodenext (skipLibCheck off) on a file importing every documented name: no error', async () => {
    const r = await userTsc;
    // Every file is checked, but only ours must be clean: werift 0.25's own .d.ts imports 'multicast-dns', which has
    // no types (TS7016 under strict). An error in check.mts or in wirelab's .d.ts, or any TS5097, fails.
    const errors = r.stdout.split('\n').filter((l) => /error TS\d+/.test(l));
    const ours = errors.filter((l) => /^(check\.mts|node_modules\/wirelab\/)/.test(l) || l.includes('TS5097'));
    assert.deepEqual(ours, [], `tsc reported:\n${r.stdout}${r.stderr}`);
    assert.ok(r.code === 0 || errors.length > 0, `tsc ran (exit ${r.code}): ${r.stderr}`);
    for (const e of errors) t.diagnostic(`in a dependency, not wirelab: ${e}`);
  });

  await t.test('(c) npx wirelab --version, list (the compiled labs) and lab ./my-lab.ts (TypeScript of the user, importing wirelab by name)', async () => {
    const { version, list, lab } = await npx;
    const pkg = JSON.parse(await readFile(join(CHECKOUT, 'package.json'), 'utf8')) as { version: string };
    assert.equal(version.stdout.trim(), `wirelab ${pkg.version}`);
    const ids = (JSON.parse(list.stdout) as Array<{ id: string }>).map((l) => l.id).sort();
    const own = (await readdir(join(CHECKOUT, 'labs'))).filter((f) => f.endsWith('.ts') && !f.startsWith('_')).map((f) => f.slice(0, -3)).sort();
    assert.deepEqual(ids, own, 'the installed CLI lists the same labs as the checkout');
    const result = JSON.parse(lab.stdout) as { ok: boolean; claims: { held: number; total: number } };
    assert.equal(result.ok, true, lab.stdout);
  });
  lap('all checks');
});
