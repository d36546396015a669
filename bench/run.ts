import { readdir } from 'node:fs/promises';
import { loadavg } from 'node:os';
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
  console.log(`\n${bench.name}: ${bench.title} (load average ${loadavg().map((l) => l.toFixed(1)).join(' ')})`);
  const rows = await bench.run();
  const table = new Table({ head: ['measured', 'median [min-max]', 'unit', 'ratio: median [min-max]', 'target (median)'], style: { head: [], border: [] } });
  let met = 0;
  let missed = 0;
  for (const r of rows) {
    const ratio = ratioOf(r, rows);
    const ok = r.target === undefined || ratio === undefined ? undefined : ratio.median >= r.target;
    if (ok === true) met++;
    if (ok === false) missed++;
    table.push([
      r.label,
      r.samples && r.samples.length > 1 ? `${num(r.value)} [${num(Math.min(...r.samples))}-${num(Math.max(...r.samples))}]` : num(r.value),
      r.unit,
      ratio === undefined ? '' : `${ratio.median.toFixed(2)}x${ratio.rounds > 1 ? ` [${ratio.min.toFixed(2)}-${ratio.max.toFixed(2)}]` : ''} ${r.baseline}`,
      ok === undefined ? '' : `${r.target}x: ${ok ? 'met' : 'NOT met'}`,
    ]);
  }
  console.log(table.toString());
  if (met + missed > 0) console.log(`${name}: ${met} of ${met + missed} targets met (load average ${loadavg().map((l) => l.toFixed(1)).join(' ')})`);
}

function num(v: number): string {
  return v >= 100 ? v.toFixed(0) : v.toFixed(2);
}
