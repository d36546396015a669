/**
 * The HTML lab report (`wirelab lab <id> --report out.html`): the verdict, every finding in the order the lab made it
 * (claims with their evidence, tables, measures, notes), plots of the samples and series it recorded, the sequence
 * diagram, and links to the files written next to it (pcapng, HAR, Mermaid). One file: uPlot and the data inlined, no
 * request leaves it (a Content-Security-Policy says so to the browser too).
 */
import { formatNumber } from '../lab/report.ts';
import type { Finding, LabResult } from '../lab/types.ts';
import { CHART_SCRIPT, samplesCharts, seriesChart, uplotAssets, type ChartSpec } from './html-plots.ts';

export { PLOT_DEFAULTS, samplesCharts, seriesChart, type ChartSpec } from './html-plots.ts';

export interface LabReportOptions {
  /** The sequence diagram (core/export/diagram.ts toSvg), inlined. */
  diagramSvg?: string;
  /** Files next to the report: relative links (pcapng, HAR, Mermaid text). */
  links?: Array<{ label: string; href: string }>;
  /** When the report was made. Default now. */
  generatedAt?: Date;
}

/** Text safe in HTML content and attribute values. */
export function html(s: string | number): string {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** JSON inside a <script> element: no "</script" can end it early. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

const CSS = `
body { font: 14px/1.45 system-ui, -apple-system, Segoe UI, sans-serif; margin: 0 auto; max-width: 1100px; padding: 16px 24px; color: #222; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; }
.verdict { display: inline-block; padding: 2px 10px; border-radius: 4px; color: #fff; font-weight: bold; }
.pass { background: #1e8449; } .fail { background: #c0392b; } .skip { background: #b7950b; }
.concept { color: #555; } .muted { color: #777; }
ul.claims { list-style: none; padding-left: 0; } ul.claims li { margin: 4px 0; }
.held { color: #1e8449; } .broken { color: #c0392b; } .evidence { color: #666; font-size: 13px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; } th, td { border: 1px solid #ddd; padding: 3px 8px; }
th { background: #f4f6f8; text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.note { color: #9a7d0a; } .measure b { font-variant-numeric: tabular-nums; }
.diagram { overflow: auto; max-height: 720px; border: 1px solid #ddd; }
.wl-chart { margin: 12px 0; }
`;

function findingHtml(f: Finding, charts: ChartSpec[]): string {
  const chartDivs = (specs: ChartSpec[]): string =>
    specs.map((s) => {
      charts.push(s);
      return `<div class="wl-chart" id="wl-chart-${charts.length - 1}" data-title="${html(s.title)}"></div>`;
    }).join('\n');
  switch (f.type) {
    case 'claim':
      return `<li class="${f.holds ? 'held' : 'broken'}">${f.holds ? '✓' : '✗'} ${html(f.text)}${f.evidence ? ` <span class="evidence">(${html(f.evidence)})</span>` : ''}</li>`;
    case 'measure':
      return `<p class="measure">· ${html(f.label)}: <b>${html(formatNumber(f.value))}</b> ${html(f.unit)}</p>`;
    case 'note':
      return `<p class="note">! ${html(f.text)}</p>`;
    case 'table': {
      const head = f.columns.map((c) => `<th>${html(c)}</th>`).join('');
      const rows = f.rows.map((r) => `<tr>${r.map((v) => `<td${typeof v === 'number' ? ' class="num"' : ''}>${html(typeof v === 'number' ? formatNumber(v) : v)}</td>`).join('')}</tr>`).join('\n');
      return `<h3>${html(f.title)}</h3>\n<table><thead><tr>${head}</tr></thead><tbody>\n${rows}\n</tbody></table>`;
    }
    case 'samples': {
      const counts = f.sets.map((s) => `${s.label}: ${s.thinnedFrom ?? s.values.length}${s.thinnedFrom ? ` (plotted: ${s.values.length}, evenly thinned)` : ''}`).join(', ');
      return `<h3>${html(f.title)}</h3>\n<p class="muted">samples per set: ${html(counts)}</p>\n${chartDivs(samplesCharts(f))}`;
    }
    case 'series':
      return `<h3>${html(f.title)}</h3>\n${chartDivs([seriesChart(f)])}`;
  }
}

/** Groups consecutive claims into one list, the rest as they come. */
function findingsHtml(findings: Finding[], charts: ChartSpec[]): string {
  const out: string[] = [];
  let inClaims = false;
  for (const f of findings) {
    if (f.type === 'claim' && !inClaims) out.push('<ul class="claims">');
    if (f.type !== 'claim' && inClaims) out.push('</ul>');
    inClaims = f.type === 'claim';
    out.push(findingHtml(f, charts));
  }
  if (inClaims) out.push('</ul>');
  return out.join('\n');
}

function verdict(r: LabResult): string {
  return !r.ok ? '<span class="verdict fail">FAIL</span>' : r.skipped ? '<span class="verdict skip">SKIP</span>' : '<span class="verdict pass">PASS</span>';
}

function page(title: string, body: string, withCharts: boolean, charts: ChartSpec[] = []): string {
  const assets = withCharts && charts.length > 0 ? uplotAssets() : undefined;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${html(title)}</title>
<style>${CSS}${assets ? assets.css : ''}</style>
</head><body>
${body}
${assets ? `<script id="wl-charts" type="application/json">${scriptJson(charts)}</script>\n<script>${assets.js.replace(/<\/script/gi, '<\\/script')}</script>\n<script>${CHART_SCRIPT}</script>` : ''}
</body></html>
`;
}

/** One lab's report as a self-contained HTML page. */
export function renderLabReport(result: LabResult, options: LabReportOptions = {}): string {
  const charts: ChartSpec[] = [];
  const when = (options.generatedAt ?? new Date()).toISOString();
  const parts = [
    `<h1>${html(result.id)}: ${html(result.title)}</h1>`,
    `<p>${verdict(result)} ${result.claims.held}/${result.claims.total} claims held in ${(result.durationMs / 1000).toFixed(1)} s <span class="muted">· ${html(result.protocols.join(', '))} · ${html(when)}</span></p>`,
    `<p class="concept">${html(result.concept)}</p>`,
  ];
  if (result.error) parts.push(`<p class="broken">error: ${html(result.error)}</p>`);
  if (result.skipped) parts.push(`<p class="note">skipped: ${html(result.skipped)}</p>`);
  if (!result.error && !result.skipped && result.claims.total === 0) parts.push('<p class="broken">error: the lab made no claim</p>');
  parts.push('<h2>Findings</h2>', findingsHtml(result.findings, charts));
  if (options.diagramSvg) parts.push('<h2>Sequence diagram</h2>', `<div class="diagram">${options.diagramSvg}</div>`);
  if (options.links && options.links.length > 0) {
    parts.push('<h2>Files</h2>', `<ul>${options.links.map((l) => `<li><a href="${html(l.href)}">${html(l.label)}</a></li>`).join('')}</ul>`);
  }
  return page(`wirelab: ${result.id}`, parts.join('\n'), true, charts);
}

/** `wirelab labs --report dir/`: index.html, one row per lab linking to its page. */
export function renderReportIndex(entries: Array<{ result: LabResult; href: string }>, generatedAt = new Date()): string {
  const rows = entries.map(({ result: r, href }) => `<tr><td><a href="${html(href)}">${html(r.id)}</a></td><td>${html(r.title)}</td><td class="num">${r.claims.held}/${r.claims.total}</td><td class="num">${(r.durationMs / 1000).toFixed(1)} s</td><td>${verdict(r)}</td></tr>`);
  const failed = entries.filter((e) => !e.result.ok).length;
  const body = [
    '<h1>wirelab labs</h1>',
    `<p>${failed === 0 ? '<span class="verdict pass">all passed</span>' : `<span class="verdict fail">${failed} failed</span>`} <span class="muted">${entries.length} labs · ${html(generatedAt.toISOString())}</span></p>`,
    `<table><thead><tr><th>lab</th><th>title</th><th>claims held</th><th>time</th><th>result</th></tr></thead><tbody>\n${rows.join('\n')}\n</tbody></table>`,
  ].join('\n');
  return page('wirelab labs', body, false);
}
