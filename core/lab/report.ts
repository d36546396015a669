import Table from 'cli-table3';
import pc from 'picocolors';
import { describeParams } from './params.ts';
import type { Finding, Lab, LabResult } from './types.ts';

type Colors = ReturnType<typeof pc.createColors>;

/** cli-table3 without a rule between rows. */
export const COMPACT = { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' };

/** Renders findings for a person; `--json` prints the LabResult instead. */
export class LabReporter {
  readonly #out: NodeJS.WritableStream;
  readonly #c: Colors;

  constructor(out: NodeJS.WritableStream, color?: boolean) {
    this.#out = out;
    const tty = (out as { isTTY?: boolean }).isTTY === true;
    this.#c = pc.createColors(color ?? (tty && !process.env.NO_COLOR));
  }

  #line(s = ''): void {
    this.#out.write(s + '\n');
  }

  header(lab: Lab, params: Readonly<Record<string, number | string>> = {}): void {
    const c = this.#c;
    this.#line(`${c.bold(c.cyan(`▶ ${lab.id}`))}  ${c.bold(lab.title)}  ${c.dim(`[${lab.protocols.join(', ')}]`)}`);
    this.#line(c.dim(`  ${lab.concept}`));
    if (Object.keys(params).length > 0) this.#line(`  ${c.dim('params:')} ${describeParams(lab, params)}`);
  }

  finding(f: Finding): void {
    const c = this.#c;
    switch (f.type) {
      case 'claim':
        this.#line(
          `  ${f.holds ? c.green('✓') : c.red('✗')} ${f.text}${f.evidence ? c.dim(`  (${f.evidence})`) : ''}`,
        );
        break;
      case 'measure':
        this.#line(`  ${c.blue('·')} ${f.label}: ${c.bold(formatNumber(f.value))} ${f.unit}`);
        break;
      case 'note':
        this.#line(`  ${c.yellow('!')} ${f.text}`);
        break;
      case 'samples':
        for (const set of f.sets) {
          const v = set.values;
          const q = (p: number): string => formatNumber(v[Math.min(v.length - 1, Math.floor(p * v.length))] ?? NaN);
          this.#line(`  ${c.blue('·')} ${f.title}, ${set.label}: ${v.length === 0 ? 'no samples' : `${set.thinnedFrom ?? v.length} samples, p50 ${q(0.5)}, p99 ${q(0.99)} ${f.unit}`}`);
        }
        break;
      case 'series':
        this.#line(`  ${c.blue('·')} ${f.title}: ${f.lines.map((l) => l.label).join(', ')} against ${f.xLabel}, ${f.x.length} points ${c.dim('(plotted by --report)')}`);
        break;
      case 'table': {
        const t = new Table({ head: f.columns, style: { head: this.#c.isColorSupported ? ['cyan'] : [], border: [] }, chars: COMPACT });
        for (const row of f.rows) t.push(row.map(String));
        this.#line(`  ${c.bold(f.title)}`);
        this.#line(t.toString().replace(/^/gm, '  '));
        break;
      }
    }
  }

  result(r: LabResult): void {
    const c = this.#c;
    if (r.error) this.#line(`  ${c.red('error:')} ${r.error}`);
    if (r.skipped) this.#line(`  ${c.yellow('skipped:')} ${r.skipped}`);
    else if (!r.error && r.claims.total === 0) this.#line(`  ${c.red('error:')} the lab made no claim`);
    const verdict = !r.ok ? c.red('FAIL') : r.skipped ? c.yellow('SKIP') : c.green('PASS');
    this.#line(`${verdict} ${r.id}: ${r.claims.held}/${r.claims.total} claims held in ${(r.durationMs / 1000).toFixed(1)} s`);
  }

  summary(results: LabResult[]): void {
    const t = new Table({ head: ['lab', 'claims held', 'time', 'result'], style: { head: [], border: [] }, chars: COMPACT });
    for (const r of results) {
      t.push([r.id, `${r.claims.held}/${r.claims.total}`, `${(r.durationMs / 1000).toFixed(1)} s`, !r.ok ? 'FAIL' : r.skipped ? 'skipped' : 'pass']);
    }
    this.#line(t.toString());
    const failed = results.filter((r) => !r.ok).length;
    const skipped = results.filter((r) => r.ok && r.skipped).length;
    const also = skipped ? ` (${skipped} skipped: a peer is missing; npm run peers installs it)` : '';
    this.#line(failed === 0 ? this.#c.green(`all ${results.length - skipped} labs passed${also}`) : this.#c.red(`${failed} of ${results.length} labs failed${also}`));
  }
}

export function formatNumber(v: number): string {
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(3);
}
