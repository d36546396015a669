/** The sequence diagram as a self-contained SVG (no script, no font or image fetched): wirelab draws it itself. */
import type { DiagramModel } from './diagram.ts';

const TIME_COL = 96;
const LANE_W = 200;
const HEAD_H = 44;
const ROW_H = 24;
const PAD = 16;

/** Text safe in XML content and attributes. */
export function xmlText(s: string): string {
  // Characters XML 1.0 forbids (control bytes a summary may carry) are dropped.
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function ms(t: number): string {
  return t >= 1000 ? `${(t / 1000).toFixed(3)} s` : `${t.toFixed(2)} ms`;
}

/**
 * Lanes side by side with their lifelines, the time of each arrow in the left column, one `<g class="arrow">` per
 * arrow (dashed for an answer; a lost one stops half-way at a cross), and an "N more" line when maxArrows cut it.
 */
export function toSvg(model: DiagramModel, title?: string): string {
  const lanes = Math.max(1, model.lanes.length);
  const rows = model.arrows.length + (model.omitted > 0 ? 1 : 0);
  const titleH = title ? 28 : 0;
  const width = TIME_COL + lanes * LANE_W + PAD;
  const height = titleH + HEAD_H + rows * ROW_H + PAD * 2;
  const x = (i: number): number => TIME_COL + i * LANE_W + LANE_W / 2;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" class="wirelab-sequence" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="ui-monospace, Menlo, Consolas, monospace" font-size="11">`);
  out.push('<defs><marker id="wl-head" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#333"/></marker></defs>');
  out.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#fff"/>`);
  if (title) out.push(`<text x="${PAD}" y="20" font-size="14" font-weight="bold">${xmlText(title)}</text>`);
  const top = titleH + PAD;
  const bottom = height - PAD;
  out.push(`<text x="${PAD}" y="${top + 22}" fill="#666">time</text>`);
  model.lanes.forEach((name, i) => {
    out.push(`<g class="lane"><rect x="${x(i) - LANE_W / 2 + 8}" y="${top}" width="${LANE_W - 16}" height="30" rx="4" fill="#eef3fb" stroke="#4a6fa5"/>`);
    out.push(`<text x="${x(i)}" y="${top + 19}" text-anchor="middle">${xmlText(name.length > 28 ? name.slice(0, 27) + '…' : name)}</text>`);
    out.push(`<line x1="${x(i)}" y1="${top + 30}" x2="${x(i)}" y2="${bottom}" stroke="#999" stroke-dasharray="2,3"/></g>`);
  });
  model.arrows.forEach((a, row) => {
    const y = top + HEAD_H + row * ROW_H + 14;
    const x1 = x(a.from);
    const x2full = x(a.to);
    const x2 = a.lost ? (x1 + x2full) / 2 : x2full;
    const colour = a.lost ? '#c0392b' : a.reply ? '#7d3c98' : '#1f618d';
    const dash = a.reply ? ' stroke-dasharray="5,3"' : '';
    const mid = (x1 + x2full) / 2;
    out.push(`<g class="arrow${a.lost ? ' lost' : ''}" data-cid="${xmlText(a.cid)}">`);
    out.push(`<text x="${PAD}" y="${y + 4}" fill="#666">${ms(a.t)}</text>`);
    out.push(`<text x="${mid}" y="${y - 4}" text-anchor="middle" fill="${colour}">${xmlText(a.label)}</text>`);
    if (a.lost) {
      out.push(`<line x1="${x1}" y1="${y}" x2="${x2}" y2="${y}" stroke="${colour}"${dash}/>`);
      out.push(`<path d="M${x2 - 5},${y - 5} L${x2 + 5},${y + 5} M${x2 - 5},${y + 5} L${x2 + 5},${y - 5}" stroke="${colour}" stroke-width="2"/>`);
    } else {
      out.push(`<line x1="${x1}" y1="${y}" x2="${x2}" y2="${y}" stroke="${colour}"${dash} marker-end="url(#wl-head)"/>`);
    }
    out.push('</g>');
  });
  if (model.omitted > 0) {
    const y = top + HEAD_H + model.arrows.length * ROW_H + 14;
    out.push(`<text class="more" x="${TIME_COL}" y="${y}" fill="#666">${model.omitted} more not drawn (maxArrows=${model.maxArrows})</text>`);
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}
