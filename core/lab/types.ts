import type { MemorySink, Tracer } from '../trace/index.ts';
import type { RunningServer } from '../server.ts';
import type { LabParams, LabParamSpecs } from './params.ts';

/** A claim the lab printed and checked: `holds` is what was observed, never a constant. */
export interface ClaimFinding {
  type: 'claim';
  text: string;
  holds: boolean;
  /** What was seen, in a few words or numbers: shown next to the claim. */
  evidence?: string;
}
export interface TableFinding {
  type: 'table';
  title: string;
  columns: string[];
  rows: Array<Array<string | number>>;
}
export interface MeasureFinding {
  type: 'measure';
  label: string;
  value: number;
  unit: string;
}
/** Something the lab could not observe here, or context; never a result. */
export interface NoteFinding {
  type: 'note';
  text: string;
}
/** Samples of one quantity per set (latencies per transport...): the HTML report plots a histogram and a CDF. */
export interface SamplesFinding {
  type: 'samples';
  title: string;
  unit: string;
  /** At most MAX_SAMPLES_PER_SET values each (evenly thinned from the sorted samples past it, so quantiles stay). */
  sets: Array<{ label: string; values: number[]; thinnedFrom?: number }>;
}
/** y against x, one line per series (loss over time, goodput against loss): the HTML report plots it. */
export interface SeriesFinding {
  type: 'series';
  title: string;
  xLabel: string;
  yLabel: string;
  x: number[];
  /** One value per x (null: no value there). */
  lines: Array<{ label: string; values: Array<number | null> }>;
}
export type Finding = ClaimFinding | TableFinding | MeasureFinding | NoteFinding | SamplesFinding | SeriesFinding;

export interface LabContext<P extends LabParamSpecs = LabParamSpecs> {
  /** The lab's parameters: its defaults, or `--param` values, checked against their kinds and ranges. */
  readonly params: LabParams<P>;
  /** The tracer chosen on the command line (`--trace`, `--trace-file`); the no-op tracer otherwise. */
  readonly tracer: Tracer;
  /** Aborted when the lab times out or the user presses Ctrl-C. */
  readonly signal: AbortSignal;
  /** Records a claim; a claim that does not hold fails the lab (exit code 1). Returns `holds`. */
  claim(text: string, holds: boolean, evidence?: string): boolean;
  table(title: string, columns: string[], rows: Array<Array<string | number>>): void;
  measure(label: string, value: number, unit: string): void;
  /** Records the samples behind a measure (per set: 'TCP', 'UDP'...), for the report's histogram and CDF plots. */
  samples(title: string, unit: string, sets: Record<string, number[]>): void;
  /** Records y against x per line (loss over time, goodput against loss), for the report's plots. */
  series(title: string, xLabel: string, x: number[], yLabel: string, lines: Record<string, Array<number | null>>): void;
  /** Says what could not be observed here, and why. */
  note(text: string): void;
  /**
   * Ends the lab as skipped: what it needs is not on this machine (a Debian package, a capability). The reason names
   * it and how to get it (`npm run peers`). Under CI=true a skip is a failure: CI installs every peer.
   */
  skip(reason: string): never;
  /**
   * A tracer whose events the lab can read back (to count reads, datagrams, commands) and that still prints them when
   * the user asked for --trace.
   */
  recorder(): { tracer: Tracer; events: MemorySink };
  /** Keeps a started server until the lab ends, then closes it. */
  start<T extends RunningServer>(server: Promise<T> | T): Promise<T>;
  /** Runs `fn` when the lab ends, last registered first, whether it passed or not. */
  defer(fn: () => unknown): void;
}

export interface LabDefinition<P extends LabParamSpecs = LabParamSpecs> {
  /** kebab-case; `npx wirelab lab <id>` and `npm run lab:<id>`. */
  id: string;
  title: string;
  /** The course idea the lab makes visible, in one sentence. */
  concept: string;
  protocols: string[];
  /** Longest the lab may run. Default 60 s. */
  timeoutMs?: number;
  /**
   * Settings the lab's numbers depend on (loss, delay, size, count, N peers): `wirelab lab <id> --param loss=10%`.
   * Each has a kind (percent, duration, size, count, int, enum), a default and a range (core/lab/params.ts).
   */
  params?: P;
  /** Rejects a combination of values where a claim could not be decided: returns why, or undefined. */
  checkParams?(params: LabParams<P>): string | undefined;
  run(ctx: LabContext<P>): Promise<void> | void;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a lab of any parameters, as the runner holds it
export interface Lab extends LabDefinition<any> {
  readonly file?: string;
}

export interface LabResult {
  id: string;
  title: string;
  concept: string;
  protocols: string[];
  ok: boolean;
  durationMs: number;
  claims: { held: number; total: number };
  findings: Finding[];
  /** The parameters it ran with, in base units (percent as a fraction, duration in ms, size in bytes); {} for none. */
  params: Record<string, number | string>;
  /** Set when run() threw or timed out. */
  error?: string;
  /** Set when the lab skipped itself (ctx.skip): what it needs and how to get it. `ok` stays true. */
  skipped?: string;
}
