/**
 * Option checking for entry points: every public entry point merges `{ ...DEFAULTS, ...options }` and checks the result
 * when the object is built, throwing a TypeError that names the option (undici style).
 */
import { InvalidOptionError } from './errors.ts';

export { InvalidOptionError };

export function checkInt(option: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new InvalidOptionError(option, `an integer in [${min}, ${max}]`, v);
  }
  return v;
}

export function checkPort(option: string, v: unknown): number {
  return checkInt(option, v, 0, 65535);
}

export function checkOneOf<T extends string>(option: string, v: unknown, allowed: readonly T[]): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw new InvalidOptionError(option, `one of ${allowed.join(', ')}`, v);
  }
  return v as T;
}

export function checkString(option: string, v: unknown): string {
  if (typeof v !== 'string' || v.length === 0) throw new InvalidOptionError(option, 'a non-empty string', v);
  return v;
}

export function checkBoolean(option: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw new InvalidOptionError(option, 'true or false', v);
  return v;
}

/**
 * Option names used before the limits got one vocabulary (issue 11), and the name each server takes now. Every
 * server passes its options through `rejectRenamed`, so an old name is not silently ignored: it throws a TypeError
 * naming the new one.
 */
export const RENAMED_OPTIONS: Readonly<Record<string, string>> = Object.freeze({
  maxClients: 'maxConnections',
  socketTimeoutMs: 'idleTimeoutMs',
  maxBadCommands: 'maxUnknownCommands',
  maxLoginFailures: 'maxAuthFailures',
  loginFailDelayMs: 'authFailureDelayMs',
});

/** Throws an InvalidOptionError naming the new name if `options` sets one of the old names in `renamed`. */
export function rejectRenamed(options: object, renamed: Readonly<Record<string, string>> = RENAMED_OPTIONS): void {
  for (const [old, now] of Object.entries(renamed)) {
    const v = (options as Record<string, unknown>)[old];
    if (v !== undefined) throw new InvalidOptionError(old, now, v, { renamedTo: now });
  }
}

/**
 * `{ ...defaults, ...options }`, except that an option given as `undefined` keeps its default (as undici and ws read
 * options), so a caller can pass `{ maxConnections: flags.max }` through without checking first.
 */
export function withDefaults<D extends object, O extends object>(defaults: D, options: O): WithDefaults<D, O> {
  const out: Record<string, unknown> = { ...(defaults as Record<string, unknown>) };
  for (const [k, v] of Object.entries(options)) if (v !== undefined) out[k] = v;
  return out as WithDefaults<D, O>;
}

/** The options with every defaulted field present: the option's own (declared) type where it has one. */
export type WithDefaults<D, O> = Omit<O, keyof D> & { -readonly [K in keyof D]-?: K extends keyof O ? Exclude<O[K], undefined> : D[K] };
