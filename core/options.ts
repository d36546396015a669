/**
 * Option checking for entry points: every public entry point merges `{ ...DEFAULTS, ...options }` and checks the result
 * when the object is built, throwing a TypeError that names the option (undici style).
 */

export class InvalidOptionError extends TypeError {
  readonly code = 'WL_ERR_INVALID_OPTION';
  constructor(readonly option: string, expected: string, got: unknown) {
    super(`invalid option ${option}: expected ${expected}, got ${describe(got)}`);
    this.name = 'InvalidOptionError';
  }
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v == null) return String(v);
  return typeof v;
}

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
