// Lab parameters (issue 17): a lab declares the settings its numbers depend on (loss, delay, payload size, count, N
// peers) with a kind, a default and a range; `wirelab lab <id> --param loss=10%` overrides them, checked here before
// the lab starts. Values reach run() in base units: a fraction for percent, milliseconds for duration, bytes for size.
import { ErrorCodes, WirelabError } from '../errors.ts';

interface ParamBase {
  /** One line for `wirelab lab <id> --help`: what it changes. */
  help: string;
}
/** 5% or 0.05; the lab gets a fraction in [min, max] (default range [0, 1]). */
export interface PercentParam extends ParamBase {
  kind: 'percent';
  default: string | number;
  min?: number;
  max?: number;
}
/** 20ms, 1.5s, 500us (a bare number is ms); the lab gets milliseconds. */
export interface DurationParam extends ParamBase {
  kind: 'duration';
  default: string | number;
  min: number;
  max: number;
}
/** 1400, 64KiB, 1MB, 2M (K/M/G are 1000s, Ki/Mi/Gi 1024s); the lab gets bytes. */
export interface SizeParam extends ParamBase {
  kind: 'size';
  default: string | number;
  min: number;
  max: number;
}
/** A bit rate: 1mbit, 100M, 500k, 2.5Mbit/s (K/M/G are 1000s; a bare number is bit/s); the lab gets bit/s. */
export interface RateParam extends ParamBase {
  kind: 'rate';
  default: string | number;
  min: number;
  max: number;
}
/** A whole number of things (messages, peers, rounds) from min to max; 10000 or 10k. */
export interface CountParam extends ParamBase {
  kind: 'count' | 'int';
  default: number;
  min: number;
  max: number;
}
export interface EnumParam<V extends string = string> extends ParamBase {
  kind: 'enum';
  values: readonly V[];
  default: V;
}
export type LabParamSpec = PercentParam | DurationParam | SizeParam | RateParam | CountParam | EnumParam;
export type LabParamSpecs = Record<string, LabParamSpec>;

/** The value run() sees for a spec: a number, or one of an enum's values. */
export type ParamValue<S> = S extends EnumParam<infer V> ? V : number;
export type LabParams<P extends LabParamSpecs = LabParamSpecs> = { readonly [K in keyof P]: ParamValue<P[K]> };

const NAME = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;

function paramError(message: string): WirelabError {
  return new WirelabError(ErrorCodes.USAGE, message);
}

const TIME: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };
const SIZE: Record<string, number> = { '': 1, b: 1, k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, ki: 1024, kib: 1024, mi: 1024 ** 2, mib: 1024 ** 2, gi: 1024 ** 3, gib: 1024 ** 3 };

/** Text (or a number) to the spec's base unit; NaN when it does not parse. */
function parseValue(spec: LabParamSpec, raw: string | number): number | string {
  const text = String(raw).trim();
  switch (spec.kind) {
    case 'percent': {
      const m = /^(\d+(?:\.\d+)?)(%)?$/.exec(text);
      if (!m) return NaN;
      return m[2] ? Number(m[1]) / 100 : Number(m[1]);
    }
    case 'duration': {
      const m = /^(\d+(?:\.\d+)?)(us|ms|s|m)?$/.exec(text);
      return m ? Number(m[1]) * TIME[m[2] ?? 'ms']! : NaN;
    }
    case 'size': {
      const m = /^(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?$/i.exec(text);
      return m ? Math.round(Number(m[1]) * SIZE[(m[2] ?? '').toLowerCase()]!) : NaN;
    }
    case 'rate': {
      const m = /^(\d+(?:\.\d+)?)\s*([kmg])?(?:bit|bps|b)?(?:\/s)?$/i.exec(text);
      return m ? Math.round(Number(m[1]) * SIZE[(m[2] ?? '').toLowerCase()]!) : NaN;
    }
    case 'count':
    case 'int': {
      const m = /^(-?\d+(?:\.\d+)?)(k)?$/i.exec(text.replace(/_/g, ''));
      if (!m) return NaN;
      const n = Number(m[1]) * (m[2] ? 1000 : 1);
      return Number.isInteger(n) ? n : NaN;
    }
    case 'enum':
      return text;
  }
}

function range(spec: LabParamSpec): [number, number] | undefined {
  if (spec.kind === 'enum') return undefined;
  if (spec.kind === 'percent') return [spec.min ?? 0, spec.max ?? 1];
  return [spec.min, spec.max];
}

/** A value as a person writes it: 5%, 20ms, 1400 B, 10000. */
export function formatParam(spec: LabParamSpec, v: number | string): string {
  if (typeof v === 'string') return v;
  switch (spec.kind) {
    case 'percent':
      return `${+(v * 100).toFixed(4)}%`;
    case 'duration':
      return v >= 1000 && v % 1000 === 0 ? `${v / 1000}s` : `${+v.toFixed(3)}ms`;
    case 'size':
      return v >= 1024 ** 2 && v % 1024 ** 2 === 0 ? `${v / 1024 ** 2}MiB` : v >= 1024 && v % 1024 === 0 ? `${v / 1024}KiB` : `${v}B`;
    case 'rate':
      return v >= 1e6 ? `${+(v / 1e6).toFixed(3)}Mbit/s` : v >= 1e3 ? `${+(v / 1e3).toFixed(3)}kbit/s` : `${v}bit/s`;
    default:
      return String(v);
  }
}

function checkOne(lab: string, name: string, spec: LabParamSpec, raw: string | number, from: string): number | string {
  const v = parseValue(spec, raw);
  const where = `lab ${lab}: ${from} ${name}=${raw}`;
  if (spec.kind === 'enum') {
    if (!spec.values.includes(v as string)) throw paramError(`${where}: expected one of ${spec.values.join(', ')}`);
    return v;
  }
  const hint = { percent: 'a percentage such as 5% (or 0.05)', duration: 'a time such as 20ms or 1.5s', size: 'a size such as 1400, 64KiB or 1MB', rate: 'a bit rate such as 1mbit or 100M', count: 'a whole number', int: 'a whole number' }[spec.kind];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw paramError(`${where}: expected ${hint}`);
  const [min, max] = range(spec)!;
  if (v < min || v > max) throw paramError(`${where}: out of range; ${name} goes from ${formatParam(spec, min)} to ${formatParam(spec, max)}`);
  return v;
}

/** Checks a lab's parameter declarations (defineLab): names, kinds, ranges, and that each default is valid. */
export function checkParamSpecs(lab: string, specs: unknown): string[] {
  if (specs === undefined) return [];
  if (typeof specs !== 'object' || specs === null || Array.isArray(specs)) return ['params must be an object of { name: spec }'];
  const problems: string[] = [];
  for (const [name, s] of Object.entries(specs as Record<string, LabParamSpec>)) {
    if (!NAME.test(name)) problems.push(`param ${name}: name must be kebab-case`);
    if (typeof s?.help !== 'string' || !s.help) problems.push(`param ${name}: help is required`);
    if (!['percent', 'duration', 'size', 'rate', 'count', 'int', 'enum'].includes(s?.kind)) {
      problems.push(`param ${name}: kind must be percent, duration, size, rate, count, int or enum`);
      continue;
    }
    if (s.kind === 'enum' && !(Array.isArray(s.values) && s.values.length > 0)) problems.push(`param ${name}: an enum needs values`);
    const r = range(s);
    if (r && !(Number.isFinite(r[0]) && Number.isFinite(r[1]) && r[0] <= r[1])) problems.push(`param ${name}: min and max must be numbers, min ≤ max`);
    try {
      checkOne(lab, name, s, s.default, 'default');
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  return problems;
}

/**
 * Splits `--param` flags (`loss=10%`) into name → text. Throws WL_ERR_USAGE for a flag without `=` or given twice.
 */
export function parseParamFlags(flags: readonly string[] | string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of flags === undefined ? [] : typeof flags === 'string' ? [flags] : flags) {
    const eq = f.indexOf('=');
    if (eq <= 0) throw paramError(`--param ${f}: expected NAME=VALUE (e.g. --param loss=10%)`);
    const name = f.slice(0, eq).trim();
    if (name in out) throw paramError(`--param ${name} given twice`);
    out[name] = f.slice(eq + 1).trim();
  }
  return out;
}

export interface ParamOwner {
  id: string;
  params?: LabParamSpecs;
  /** Rejects a combination where a claim could not be decided; returns why, or undefined. */
  checkParams?: (params: never) => string | undefined;
}

/**
 * The values a lab runs with: its defaults, overridden by `given` (text as typed). Throws WL_ERR_USAGE naming the
 * parameter for an unknown name, a value that does not parse, one out of range, or a combination the lab rejects.
 */
export function resolveLabParams(lab: ParamOwner, given: Readonly<Record<string, string | number>> = {}): Record<string, number | string> {
  const specs = lab.params ?? {};
  const unknown = Object.keys(given).filter((k) => !(k in specs));
  if (unknown.length > 0) {
    const known = Object.keys(specs);
    throw paramError(`lab ${lab.id}: no parameter ${unknown.join(', ')}; ${known.length ? `its parameters: ${known.join(', ')}` : 'it takes none'}`);
  }
  const out: Record<string, number | string> = {};
  for (const [name, spec] of Object.entries(specs)) {
    out[name] = name in given ? checkOne(lab.id, name, spec, given[name]!, '--param') : checkOne(lab.id, name, spec, spec.default, 'default');
  }
  const why = lab.checkParams?.(out as never);
  if (why) throw paramError(`lab ${lab.id}: ${why}`);
  return out;
}

/** `loss=5% count=10000`, for the lab's header line. */
export function describeParams(lab: ParamOwner, values: Readonly<Record<string, number | string>>): string {
  return Object.entries(values)
    .map(([k, v]) => `${k}=${formatParam(lab.params![k]!, v)}`)
    .join(' ');
}

/** The lines `wirelab lab <id> --help` prints under "parameters:". */
export function paramHelp(lab: ParamOwner): string[] {
  return Object.entries(lab.params ?? {}).map(([name, s]) => {
    const r = range(s);
    const allowed = s.kind === 'enum' ? s.values.join('|') : `${formatParam(s, r![0])}..${formatParam(s, r![1])}`;
    const left = `  --param ${name}=${s.kind.toUpperCase()}`;
    return `${left.padEnd(34)} ${s.help} (default ${formatParam(s, parseValue(s, s.default))}; ${allowed})`;
  });
}
