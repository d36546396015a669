import { ErrorCodes, WirelabError } from '../errors.ts';
import { createTracer, forwardTo, MemorySink, NOOP_TRACER, type Tracer } from '../trace/index.ts';
import type { RunningServer } from '../server.ts';
import { resolveLabParams } from './params.ts';
import type { Finding, Lab, LabContext, LabResult, SamplesFinding } from './types.ts';

export interface RunLabOptions {
  tracer?: Tracer;
  /** Called with each finding as the lab makes it (the terminal reporter prints them live). */
  onFinding?: (finding: Finding) => void;
  /** Overrides the lab's own timeout. */
  timeoutMs?: number;
  /** Aborting it stops the lab (Ctrl-C). */
  signal?: AbortSignal;
  /** `--param` values as typed (`{ loss: '10%' }`); the rest take their defaults. Checked before the lab starts. */
  params?: Readonly<Record<string, string | number>>;
}

export const DEFAULT_LAB_TIMEOUT_MS = 60_000;

/** Values kept per set of ctx.samples (a result stays small enough to print as JSON and inline in a report). */
export const MAX_SAMPLES_PER_SET = 5_000;

/** The sorted samples, thinned evenly to MAX_SAMPLES_PER_SET when there are more (quantiles and shape stay). */
function thinSamples(label: string, values: number[]): SamplesFinding['sets'][number] {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length <= MAX_SAMPLES_PER_SET) return { label, values: sorted };
  const step = (sorted.length - 1) / (MAX_SAMPLES_PER_SET - 1);
  return { label, values: Array.from({ length: MAX_SAMPLES_PER_SET }, (_, i) => sorted[Math.round(i * step)]!), thinnedFrom: sorted.length };
}

/** Thrown by ctx.skip(); caught here. */
class LabSkipped extends Error {}

/** Runs one lab: its findings, whether every claim held, and its clean-up, however it ended. */
export async function runLab(lab: Lab, options: RunLabOptions = {}): Promise<LabResult> {
  // A bad parameter is the caller's mistake, not the lab's result: it throws (WL_ERR_USAGE) before anything starts.
  const params = resolveLabParams(lab, options.params);
  const findings: Finding[] = [];
  const cleanups: Array<() => unknown> = [];
  const controller = new AbortController();
  const onOuterAbort = (): void => controller.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', onOuterAbort, { once: true });
  const add = (f: Finding): void => {
    findings.push(f);
    options.onFinding?.(f);
  };

  const ctx: LabContext = {
    tracer: options.tracer ?? NOOP_TRACER,
    params,
    signal: controller.signal,
    claim(text, holds, evidence) {
      add({ type: 'claim', text, holds: holds === true, ...(evidence === undefined ? {} : { evidence }) });
      return holds === true;
    },
    table(title, columns, rows) {
      add({ type: 'table', title, columns, rows });
    },
    measure(label, value, unit) {
      add({ type: 'measure', label, value, unit });
    },
    note(text) {
      add({ type: 'note', text });
    },
    samples(title, unit, sets) {
      add({ type: 'samples', title, unit, sets: Object.entries(sets).map(([label, values]) => thinSamples(label, values)) });
    },
    series(title, xLabel, x, yLabel, lines) {
      add({ type: 'series', title, xLabel, yLabel, x: [...x], lines: Object.entries(lines).map(([label, values]) => ({ label, values: [...values] })) });
    },
    skip(reason): never {
      if (process.env.CI === 'true') throw new WirelabError(ErrorCodes.LAB_INVALID, `CI=true and the lab would skip: ${reason}`);
      throw new LabSkipped(reason);
    },
    recorder() {
      const events = new MemorySink();
      const user = options.tracer ?? NOOP_TRACER;
      return { tracer: createTracer(user.enabled ? [events, forwardTo(user)] : [events], { libs: user.libs ?? false }), events };
    },
    async start<T extends RunningServer>(server: Promise<T> | T): Promise<T> {
      const s = await server;
      cleanups.push(() => s.close());
      return s;
    },
    defer(fn) {
      cleanups.push(fn);
    },
  };

  const timeoutMs = options.timeoutMs ?? lab.timeoutMs ?? DEFAULT_LAB_TIMEOUT_MS;
  const started = performance.now();
  let error: string | undefined;
  let skipped: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const err = new WirelabError(ErrorCodes.TIMEOUT, `lab ${lab.id} did not finish within ${timeoutMs} ms`);
        controller.abort(err);
        reject(err);
      }, timeoutMs);
    });
    const aborted = new Promise<never>((_, reject) => {
      controller.signal.addEventListener('abort', () => reject(controller.signal.reason ?? new WirelabError(ErrorCodes.CLOSED, 'aborted')), {
        once: true,
      });
    });
    await Promise.race([Promise.resolve().then(() => lab.run(ctx)), timedOut, aborted]);
  } catch (err) {
    if (err instanceof LabSkipped) skipped = err.message;
    else error = err instanceof Error ? err.message : String(err);
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onOuterAbort);
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch (err) {
        error ??= `clean-up failed: ${err instanceof Error ? err.message : String(err)}`;
      }
    }
  }
  const claims = findings.filter((f) => f.type === 'claim');
  const held = claims.filter((c) => c.holds).length;
  return {
    id: lab.id,
    title: lab.title,
    concept: lab.concept,
    protocols: lab.protocols,
    ok: error === undefined && held === claims.length && (claims.length > 0 || skipped !== undefined),
    durationMs: Math.round(performance.now() - started),
    claims: { held, total: claims.length },
    findings,
    params,
    ...(error === undefined ? {} : { error }),
    ...(skipped === undefined ? {} : { skipped }),
  };
}
