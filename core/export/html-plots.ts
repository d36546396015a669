/**
 * The plots of an HTML lab report: chart specs computed here (histogram and CDF of samples on a shared grid, series as
 * recorded) and drawn in the page by uPlot, read from node_modules at run time and inlined, so the file opens offline.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { SamplesFinding, SeriesFinding } from '../lab/types.ts';

/** Bins of a histogram and points of a CDF. */
export const PLOT_DEFAULTS = Object.freeze({ histogramBins: 40, cdfPoints: 200 });

/** One uPlot chart: x values first, then one array per series (null where a series has no value). */
export interface ChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  labels: string[];
  data: Array<Array<number | null>>;
  /** 'bars' for histograms (stepped), 'lines' otherwise. */
  style: 'bars' | 'lines';
  logX?: boolean;
}

const require = createRequire(import.meta.url);
let cached: { js: string; css: string } | undefined;

/** uPlot's minified script and stylesheet, as installed (the `uplot` dependency). */
export function uplotAssets(): { js: string; css: string } {
  cached ??= {
    js: readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8'),
    css: readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8'),
  };
  return cached;
}

function extent(sets: SamplesFinding['sets']): [number, number] | undefined {
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of sets) {
    if (s.values.length === 0) continue;
    lo = Math.min(lo, s.values[0]!);
    hi = Math.max(hi, s.values[s.values.length - 1]!);
  }
  return lo <= hi ? [lo, hi] : undefined;
}

/** Fraction of sorted `v` at or below x. */
function cdfAt(v: number[], x: number): number {
  let lo = 0;
  let hi = v.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (v[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  return v.length === 0 ? 0 : lo / v.length;
}

/**
 * A histogram and a CDF of every set on one grid. Bins are logarithmic when the samples span more than two decades
 * (latencies of UDP next to a new HTTP connection), linear otherwise.
 */
export function samplesCharts(f: SamplesFinding, opts = PLOT_DEFAULTS): ChartSpec[] {
  const ext = extent(f.sets);
  if (!ext) return [];
  const [lo, hi] = ext;
  const log = lo > 0 && hi / lo > 100;
  const at = (k: number, n: number): number => (log ? lo * Math.pow(hi / lo, k / n) : lo + ((hi - lo) * k) / n);
  const bins = hi === lo ? 1 : opts.histogramBins;
  const edges = Array.from({ length: bins + 1 }, (_, k) => at(k, bins));
  const labels = f.sets.map((s) => s.label);
  const counts = f.sets.map((s) => {
    const c = new Array<number>(bins).fill(0);
    for (const v of s.values) {
      let k = edges.findIndex((e, i) => i > 0 && v <= e) - 1;
      if (k < 0) k = v <= lo ? 0 : bins - 1;
      c[k]!++;
    }
    return c;
  });
  const n = hi === lo ? 1 : opts.cdfPoints;
  const grid = Array.from({ length: n + 1 }, (_, k) => at(k, n));
  return [
    { title: `${f.title}: histogram`, xLabel: f.unit, yLabel: 'samples', labels, data: [edges.slice(0, bins), ...counts], style: 'bars', logX: log },
    { title: `${f.title}: CDF`, xLabel: f.unit, yLabel: 'fraction ≤ x', labels, data: [grid, ...f.sets.map((s) => grid.map((x) => cdfAt(s.values, x)))], style: 'lines', logX: log },
  ];
}

/** A series as recorded, sorted by x. */
export function seriesChart(f: SeriesFinding): ChartSpec {
  const order = f.x.map((_, i) => i).sort((a, b) => f.x[a]! - f.x[b]!);
  return {
    title: f.title,
    xLabel: f.xLabel,
    yLabel: f.yLabel,
    labels: f.lines.map((l) => l.label),
    data: [order.map((i) => f.x[i]!), ...f.lines.map((l) => order.map((i) => l.values[i] ?? null))],
    style: 'lines',
  };
}

/**
 * The page's drawing code: one uPlot per `.wl-chart` element from the JSON in #wl-charts. `window.wirelabCharts` says
 * what was drawn (title, points), for a test to read.
 */
export const CHART_SCRIPT = `
(function () {
  var specs = JSON.parse(document.getElementById('wl-charts').textContent);
  var colours = ['#1f618d', '#c0392b', '#27ae60', '#8e44ad', '#d68910', '#17a589', '#566573', '#cb4335'];
  var drawn = [];
  specs.forEach(function (spec, i) {
    var el = document.getElementById('wl-chart-' + i);
    if (!el || typeof uPlot === 'undefined') return;
    var series = [{ label: spec.xLabel }];
    spec.labels.forEach(function (label, k) {
      var s = { label: label, stroke: colours[k % colours.length], width: 2, spanGaps: true };
      if (spec.style === 'bars') { s.paths = uPlot.paths.stepped({ align: 1 }); s.fill = colours[k % colours.length] + '33'; s.points = { show: false }; }
      series.push(s);
    });
    var opts = {
      title: spec.title, width: Math.min(900, el.clientWidth || 900), height: 300, series: series,
      scales: { x: { time: false, distr: spec.logX ? 3 : 1 } },
      axes: [{ label: spec.xLabel }, { label: spec.yLabel }],
    };
    new uPlot(opts, spec.data, el);
    var points = 0;
    spec.data.slice(1).forEach(function (ys) { ys.forEach(function (y) { if (y !== null) points++; }); });
    drawn.push({ title: spec.title, points: points });
  });
  window.wirelabCharts = drawn;
})();
`;
