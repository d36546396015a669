import { execFile } from 'node:child_process';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The checkout's root (where package.json is). */
export const CHECKOUT = fileURLToPath(new URL('../../', import.meta.url));

export interface TempProject {
  dir: string;
  remove(): Promise<void>;
}

/**
 * A folder outside the checkout, as a user's own project would be. With `linked`, node_modules/wirelab is a link to
 * this checkout (what `npm install /path/to/wirelab` makes); without, the folder has no node_modules at all.
 */
export async function tempProject(linked: boolean): Promise<TempProject> {
  const dir = await mkdtemp(join(tmpdir(), 'wirelab-user-'));
  if (linked) {
    await mkdir(join(dir, 'node_modules'));
    await symlink(CHECKOUT, join(dir, 'node_modules', 'wirelab'), 'dir');
  }
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs node with these arguments in `cwd`; resolves with the exit code (never rejects on a non-zero exit). */
export function node(args: string[], cwd: string, timeoutMs = 60_000): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, args, { cwd, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(Object.assign(err, { stdout, stderr }));
      resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
    child.stdin?.end();
  });
}

/** The code block between `<!-- NAME:begin -->` and `<!-- NAME:end -->` in README.md. */
export async function readmeBlock(name: string): Promise<string> {
  const readme = await readFile(join(CHECKOUT, 'README.md'), 'utf8');
  const m = new RegExp(`<!-- ${name}:begin -->\\n([\\s\\S]*?)<!-- ${name}:end -->`).exec(readme);
  assert.ok(m, `README.md has the markers <!-- ${name}:begin --> and <!-- ${name}:end -->`);
  return m[1]!;
}

/** The README's import-path table: each documented path and the names it gives. */
export async function readmeImportRows(): Promise<Array<{ path: string; names: string[] }>> {
  return [...(await readmeBlock('import-paths')).matchAll(/^\| `([^`]+)` \| (.+) \|$/gm)].map((m) => ({
    path: m[1]!,
    names: [...m[2]!.matchAll(/`([A-Za-z_$][\w$]*)`/g)].map((n) => n[1]!),
  }));
}

/** A script that imports every row's path and prints, as JSON, the names each lacks (or the import's error). */
export function importCheckScript(rows: Array<{ path: string; names: string[] }>): string {
  return `const rows = ${JSON.stringify(rows)};
const out = {};
for (const r of rows) {
  try {
    const m = await import(r.path);
    out[r.path] = r.names.filter((n) => m[n] === undefined);
  } catch (err) {
    out[r.path] = String(err).split('\\n')[0];
  }
}
console.log(JSON.stringify(out));
process.exit(0);
`;
}
