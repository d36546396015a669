import { ErrorCodes, WirelabError } from '../errors.ts';

/**
 * Toxiproxy's toxics, with its names, attributes and units, so its documentation and clients apply:
 * https://github.com/Shopify/toxiproxy#toxics. `upstream` is client → server, `downstream` server → client.
 */
export type ToxicType = 'latency' | 'bandwidth' | 'slow_close' | 'timeout' | 'reset_peer' | 'slicer' | 'limit_data';
export type Stream = 'upstream' | 'downstream';
export const STREAMS: readonly Stream[] = ['upstream', 'downstream'];

export interface Toxic {
  /** Unique in its proxy. Default `<type>_<stream>`. */
  name: string;
  type: ToxicType;
  /** Default downstream, as in Toxiproxy. */
  stream: Stream;
  /** Probability in [0, 1] that the toxic applies to a given connection (drawn once per connection). Default 1. */
  toxicity: number;
  attributes: Record<string, number>;
}

/** What a caller hands over: type required, everything else defaulted. */
export interface ToxicInput {
  name?: string;
  type: ToxicType | string;
  stream?: Stream | string;
  toxicity?: number;
  attributes?: Record<string, unknown>;
}

interface AttributeSpec {
  default: number;
  min: number;
  max: number;
  /** The unit, for error messages and the README. */
  unit: string;
}

const DAY_MS = 24 * 3600_000;

/** Every toxic's attributes, their defaults and their allowed ranges. */
export const TOXIC_ATTRIBUTES: Record<ToxicType, Record<string, AttributeSpec>> = {
  latency: {
    latency: { default: 0, min: 0, max: 600_000, unit: 'ms added to each chunk' },
    jitter: { default: 0, min: 0, max: 600_000, unit: 'ms, ± uniformly' },
  },
  bandwidth: { rate: { default: 0, min: 1, max: 10_000_000, unit: 'KB/s (1 KB = 1000 bytes)' } },
  slow_close: { delay: { default: 0, min: 0, max: DAY_MS, unit: 'ms before the close is passed on' } },
  timeout: { timeout: { default: 0, min: 0, max: DAY_MS, unit: 'ms before both ends are closed (0: never, data dropped)' } },
  reset_peer: { timeout: { default: 0, min: 0, max: DAY_MS, unit: 'ms before both ends are reset (RST)' } },
  slicer: {
    average_size: { default: 0, min: 1, max: 1_048_576, unit: 'bytes per slice' },
    size_variation: { default: 0, min: 0, max: 1_048_576, unit: 'bytes, ± uniformly' },
    delay: { default: 0, min: 0, max: 60_000_000, unit: 'µs between slices' },
  },
  limit_data: { bytes: { default: 0, min: 0, max: Number.MAX_SAFE_INTEGER, unit: 'bytes before the connection is closed' } },
};

export const TOXIC_TYPES = Object.keys(TOXIC_ATTRIBUTES) as ToxicType[];

function invalid(message: string): WirelabError {
  return new WirelabError(ErrorCodes.IMPAIR_INVALID, message, { status: 400 });
}

/** Checks a toxic as given by the control API or the TypeScript API and fills in its defaults. Throws status 400. */
export function parseToxic(input: unknown): Toxic {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw invalid('a toxic is a JSON object');
  const t = input as ToxicInput;
  if (typeof t.type !== 'string' || !(TOXIC_TYPES as string[]).includes(t.type)) {
    throw invalid(`unknown toxic type ${JSON.stringify(t.type)}; types: ${TOXIC_TYPES.join(', ')}`);
  }
  const type = t.type as ToxicType;
  const stream = t.stream ?? 'downstream';
  if (!(STREAMS as readonly string[]).includes(stream)) {
    throw invalid(`stream must be upstream or downstream, got ${JSON.stringify(stream)}`);
  }
  const toxicity = t.toxicity ?? 1;
  if (typeof toxicity !== 'number' || !(toxicity >= 0 && toxicity <= 1)) {
    throw invalid(`toxicity must be a number from 0 to 1, got ${JSON.stringify(toxicity)}`);
  }
  const name = t.name ?? `${type}_${stream}`;
  if (typeof name !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(name)) {
    throw invalid('name must be 1 to 64 letters, digits, _ . or -');
  }
  const given = t.attributes ?? {};
  if (typeof given !== 'object' || given === null || Array.isArray(given)) throw invalid('attributes is a JSON object');
  const specs = TOXIC_ATTRIBUTES[type];
  const attributes: Record<string, number> = {};
  for (const key of Object.keys(given)) {
    if (!(key in specs)) throw invalid(`${type} has no attribute ${key}; attributes: ${Object.keys(specs).join(', ')}`);
  }
  for (const [key, spec] of Object.entries(specs)) {
    const v = (given as Record<string, unknown>)[key] ?? spec.default;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < spec.min || v > spec.max) {
      throw invalid(`${type}.${key} must be a number from ${spec.min} to ${spec.max} (${spec.unit}), got ${JSON.stringify(v)}`);
    }
    attributes[key] = v;
  }
  return { name, type, stream: stream as Stream, toxicity, attributes };
}

/** The toxic after an update: the stored one with the given fields (attributes merged), checked again. */
export function updateToxic(current: Toxic, patch: unknown): Toxic {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) throw invalid('a toxic update is a JSON object');
  const p = patch as Partial<ToxicInput>;
  if (p.type !== undefined && p.type !== current.type) throw invalid('a toxic\'s type cannot change; delete it and add a new one');
  if (p.name !== undefined && p.name !== current.name) throw invalid('a toxic\'s name cannot change');
  return parseToxic({
    ...current,
    ...p,
    attributes: { ...current.attributes, ...((p.attributes as Record<string, unknown> | undefined) ?? {}) },
  });
}
