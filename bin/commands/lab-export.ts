/**
 * `--diagram F` and `--report F` (`labs --report DIR`): what a lab's run is written as besides the terminal. The lab
 * runs with a DiagramTracer in front of the user's tracer (only when one of them was asked for), so its events can be drawn.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { DiagramTracer, type DiagramSink, toMermaid, toSvg } from '../../core/export/diagram.ts';
import { renderLabReport, renderReportIndex } from '../../core/export/html.ts';
import type { LabResult } from '../../core/lab/index.ts';
import type { Tracer } from '../../core/trace/index.ts';

export interface ExportFlags {
  diagram?: string;
  report?: string;
  har?: string;
  /** Written by the pcapng exporter when asked (`--pcap`); linked from the report. */
  pcap?: string;
}

/** A tracer that also keeps the lab's events when a diagram or report was asked for; the user's tracer otherwise. */
export function captureFor(flags: ExportFlags, tracer: Tracer): { tracer: Tracer; events?: DiagramSink } {
  if (!flags.diagram && !flags.report) return { tracer };
  // The first DIAGRAM_DEFAULTS.maxArrows events with a direction, without payloads: what the diagram draws. The user's
  // tracer (--trace, --trace-file, --har) gets every event, and is closed by the command.
  // The user's tracer is attached as a sink that keeps its own wants: `wire` (--pcap, --trace-file, --hex), detail.
  const capture = new DiagramTracer(tracer);
  return { tracer: capture, events: capture.sink };
}

function link(from: string, file: string | undefined, label: string): Array<{ label: string; href: string }> {
  return file ? [{ label: `${label}: ${basename(file)}`, href: relative(dirname(resolve(from)), resolve(file)) || basename(file) }] : [];
}

/** Writes `--diagram F` (Mermaid, and F.svg) and `--report F` for one lab. Returns the files written. */
export async function writeLabExports(result: LabResult, events: DiagramSink, flags: ExportFlags, reportPath = flags.report): Promise<string[]> {
  const written: string[] = [];
  const model = events.model();
  const title = `${result.id}: ${result.title}`;
  const svg = toSvg(model, title);
  if (flags.diagram) {
    await writeFile(flags.diagram, toMermaid(model, title));
    const svgPath = flags.diagram.replace(/\.(mmd|mermaid)$/i, '') + '.svg';
    await writeFile(svgPath, svg);
    written.push(flags.diagram, svgPath);
  }
  if (reportPath) {
    await mkdir(dirname(resolve(reportPath)), { recursive: true });
    const links = [...link(reportPath, flags.pcap, 'pcapng (Wireshark)'), ...link(reportPath, flags.har, 'HAR (Chrome DevTools: Network, Import HAR)'), ...link(reportPath, flags.diagram, 'Mermaid sequence diagram')];
    await writeFile(reportPath, renderLabReport(result, { diagramSvg: svg, links }));
    written.push(reportPath);
  }
  return written;
}

/** `labs --report DIR`: DIR/<id>.html per lab (written as each lab ends) and DIR/index.html. */
export async function writeReportIndex(dir: string, results: LabResult[]): Promise<string> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, 'index.html');
  await writeFile(path, renderReportIndex(results.map((result) => ({ result, href: `${result.id}.html` }))));
  return path;
}
