import { loadAllLabs, loadLab, paramHelp, parseParamFlags, resolveLabParams, runLab, LabReporter, type Lab, type LabResult } from '../../core/lab/index.ts';
import { WirelabError } from '../../core/errors.ts';
import type { Tracer } from '../../core/trace/index.ts';
import { mkdir } from 'node:fs/promises';
import { pcapIsDir, pcapReady, perLabTracer } from '../tracing.ts';
import { join } from 'node:path';
import { captureFor, writeLabExports, writeReportIndex, type ExportFlags } from './lab-export.ts';

export interface LabFlags extends ExportFlags {
  json?: boolean;
  /** `wirelab labs --pcap dir/`: one pcapng per lab (a file path goes to the run's tracer instead). */
  pcap?: string;
  /** With --pcap: tcpdump's real packets where it can (bin/tracing.ts). */
  'pcap-real'?: boolean;
  /** `--param NAME=VALUE`, repeatable (wirelab lab only). */
  param?: string[];
}

function interrupted(): AbortSignal {
  const controller = new AbortController();
  const stop = (): void => controller.abort(new Error('interrupted'));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return controller.signal;
}

async function runOne(lab: Lab, flags: LabFlags, tracer: Tracer, signal: AbortSignal, reportPath = flags.report, given: Record<string, string> = {}): Promise<LabResult> {
  const reporter = flags.json ? undefined : new LabReporter(process.stdout);
  reporter?.header(lab, resolveLabParams(lab, given));
  const capture = captureFor({ ...flags, report: reportPath }, tracer);
  const result = await runLab(lab, { tracer: capture.tracer, signal, params: given, ...(reporter ? { onFinding: (f) => reporter.finding(f) } : {}) });
  reporter?.result(result);
  if (capture.events) {
    const files = await writeLabExports(result, capture.events, flags, reportPath);
    process.stderr.write(`wrote ${files.join(', ')}\n`);
  }
  return result;
}

/** `wirelab lab <id | ./file.ts>`: exit 0 when every claim held, 1 otherwise. */
export async function labCommand(idOrPath: string, flags: LabFlags, tracer: Tracer): Promise<number> {
  let lab: Lab;
  let given: Record<string, string>;
  try {
    lab = await loadLab(idOrPath);
    given = parseParamFlags(flags.param);
    resolveLabParams(lab, given);
  } catch (err) {
    if (err instanceof WirelabError) {
      console.error(`wirelab lab: ${err.message}`);
      return 2;
    }
    throw err;
  }
  const perLab = pcapIsDir(flags.pcap) ? perLabTracer(tracer, flags.pcap!, lab.id, flags['pcap-real']) : undefined;
  if (perLab) await mkdir(flags.pcap!, { recursive: true });
  await pcapReady();
  const result = await runOne(lab, flags, perLab ?? tracer, interrupted(), flags.report, given);
  await perLab?.close();
  await tracer.close();
  if (flags.json) process.stdout.write(JSON.stringify(result) + '\n');
  return result.ok ? 0 : 1;
}

/** `wirelab lab <id> --help`: the command's help, then the lab's parameters. */
export async function labHelp(idOrPath: string, commandText: string): Promise<number> {
  let lab: Lab;
  try {
    lab = await loadLab(idOrPath);
  } catch (err) {
    if (err instanceof WirelabError) {
      console.error(`wirelab lab: ${err.message}`);
      return 2;
    }
    throw err;
  }
  const params = paramHelp(lab);
  console.log(`${commandText}\n\n${lab.id}: ${lab.title}\n  ${lab.concept}\n\nparameters${params.length ? ' (--param NAME=VALUE; wirelab labs runs the defaults)' : ''}:\n${params.join('\n') || '  none'}`);
  return 0;
}

/** `wirelab labs`: every lab in labs/, one after another, with progress and a summary table. */
export async function labsCommand(flags: LabFlags, tracer: Tracer): Promise<number> {
  const labs = await loadAllLabs();
  const signal = interrupted();
  const results: LabResult[] = [];
  for (const [i, lab] of labs.entries()) {
    if (signal.aborted) break;
    process.stderr.write(`[${i + 1}/${labs.length}] ${lab.id} …\n`);
    const perLab = pcapIsDir(flags.pcap) ? perLabTracer(tracer, flags.pcap!, lab.id, flags['pcap-real']) : undefined;
    if (perLab) await mkdir(flags.pcap!, { recursive: true });
    await pcapReady();
    const r = await runOne(lab, { ...flags, diagram: undefined }, perLab ?? tracer, signal, flags.report ? join(flags.report, `${lab.id}.html`) : undefined);
    await perLab?.close();
    if (!flags.json) process.stdout.write('\n');
    process.stderr.write(`[${i + 1}/${labs.length}] ${lab.id} ${r.ok ? 'pass' : 'FAIL'} (${r.durationMs} ms)\n`);
    results.push(r);
  }
  await tracer.close();
  if (flags.report) process.stderr.write(`wrote ${await writeReportIndex(flags.report, results)}\n`);
  if (flags.json) process.stdout.write(JSON.stringify(results) + '\n');
  else new LabReporter(process.stdout).summary(results);
  return results.length === labs.length && results.every((r) => r.ok) ? 0 : 1;
}

/** `wirelab list` (and `wirelab lab` without an id): each lab's id and title. */
export async function listCommand(flags: LabFlags = {}): Promise<number> {
  const labs = await loadAllLabs();
  if (flags.json) process.stdout.write(JSON.stringify(labs.map((l) => ({ id: l.id, title: l.title, protocols: l.protocols, params: Object.keys(l.params ?? {}) }))) + '\n');
  else for (const lab of labs) console.log(`${lab.id.padEnd(28)} ${lab.title}`);
  return 0;
}
