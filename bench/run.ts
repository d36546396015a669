import { readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Table from 'cli-table3';
import { ratioOf, type Bench } from './harness.ts';

const dir = dirname(fileURLToPath(import.meta.url));
const available = (await readdir(dir)).filter((f) => f.endsWith('.ts') && !['harness.ts', 'run.ts'].includes(f)).map((f) => f.slice(0, -3)).sort();
const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !available.includes(w));
if (unknown.length > 0) {
  console.error(`bench: unknown ${unknown.join(', ')}; benches: ${available.join(', ') || 'none yet'}`);
  process.exit(2);
}
for (const name of wanted.length ? wanted : available) {
  const bench = (await import(pathToFileURL(join(dir, `${name}.ts`)).href)).default as Bench;
  console.log(`\n${bench.name}: ${bench.title}`);
  const rows = await bench.run();
  const table = new Table({ head: ['measured', 'value', 'unit', 'ratio', 'target'], style: { head: [], border: [] } });
  for (const r of rows) {
    const ratio = ratioOf(r, rows);
    table.push([
      r.label,
      r.value >= 100 ? r.value.toFixed(0) : r.value.toFixed(2),
      r.unit,
      ratio === undefined ? '' : `${ratio.toFixed(2)}x ${r.baseline}`,
      r.target === undefined || ratio === undefined ? '' : `${r.target}x: ${ratio >= r.target ? 'met' : 'NOT met'}`,
    ]);
  }
  console.log(table.toString());
}
