import { ErrorCodes, WirelabError } from '../../errors.ts';
import type { Prng } from '../prng.ts';

/** Gilbert-Elliott bursty loss: a good and a bad state, each with its own loss probability. */
export interface GilbertElliott {
  /** Probability of moving good → bad, per datagram. */
  p: number;
  /** Probability of moving bad → good, per datagram. Mean burst length is 1 / r. */
  r: number;
  /** Loss probability in the good state. Default 0. */
  lossGood?: number;
  /** Loss probability in the bad state. Default 1. */
  lossBad?: number;
}

/** What a UDP relay does to one direction's datagrams. Every field is optional; none means pass everything. */
export interface UdpImpairments {
  /** Uniform loss probability, 0 to 1. */
  loss?: number;
  /** Bursty loss instead of (or on top of) uniform loss. */
  gilbert?: GilbertElliott;
  /** Probability that a datagram is sent twice. */
  duplicate?: number;
  /** Probability that a datagram is held back until `reorderGap` later ones have passed it. */
  reorder?: number;
  /** Datagrams that overtake a reordered one. Default 3. */
  reorderGap?: number;
  /** Added delay, ms. Delay and jitter keep the order (reordering is its own impairment). */
  delayMs?: number;
  /** ± this many ms, uniformly. */
  jitterMs?: number;
  /** Probability that one bit of a datagram is flipped. */
  corrupt?: number;
  /** Rate limit in kbit/s (1 kbit = 1000 bits); datagrams wait in a queue to leave at this rate. */
  rateKbit?: number;
  /** Datagrams waiting (delay, rate, reordering) at most; past it new ones are dropped (tail drop). Default 1000. */
  queueLimit?: number;
}

const PROBABILITIES = ['loss', 'duplicate', 'reorder', 'corrupt'] as const;
const RANGES: Record<string, [number, number]> = {
  reorderGap: [1, 1000],
  delayMs: [0, 600_000],
  jitterMs: [0, 600_000],
  rateKbit: [1, 100_000_000],
  queueLimit: [1, 1_000_000],
};

function invalid(message: string): WirelabError {
  return new WirelabError(ErrorCodes.IMPAIR_INVALID, message, { status: 400 });
}

function probability(name: string, v: unknown): number {
  if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw invalid(`${name} must be a probability from 0 to 1, got ${JSON.stringify(v)}`);
  return v;
}

/** Checks impairments given by code or the control API (the key `stream` is ignored). Throws status 400. */
export function parseImpairments(input: unknown): UdpImpairments {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw invalid('impairments are a JSON object');
  const out: UdpImpairments = {};
  for (const [k, v] of Object.entries(input)) {
    if (k === 'stream' || v === undefined) continue;
    if ((PROBABILITIES as readonly string[]).includes(k)) {
      out[k as (typeof PROBABILITIES)[number]] = probability(k, v);
    } else if (k in RANGES) {
      const [min, max] = RANGES[k]!;
      if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
        throw invalid(`${k} must be a number from ${min} to ${max}, got ${JSON.stringify(v)}`);
      }
      (out as Record<string, number>)[k] = v;
    } else if (k === 'gilbert') {
      if (typeof v !== 'object' || v === null) throw invalid('gilbert is an object { p, r, lossGood?, lossBad? }');
      const g = v as Record<string, unknown>;
      out.gilbert = {
        p: probability('gilbert.p', g.p),
        r: probability('gilbert.r', g.r),
        lossGood: probability('gilbert.lossGood', g.lossGood ?? 0),
        lossBad: probability('gilbert.lossBad', g.lossBad ?? 1),
      };
    } else {
      throw invalid(`unknown UDP impairment ${k}; known: ${[...PROBABILITIES, ...Object.keys(RANGES), 'gilbert'].join(', ')}`);
    }
  }
  return out;
}

/** The fate of one datagram, drawn in a fixed order so the same seed and the same datagrams give the same fates. */
export interface Fate {
  lost: boolean;
  /** The bit flipped, or -1. */
  corruptBit: number;
  duplicated: boolean;
  reordered: boolean;
  delayMs: number;
}

/** Draws fates for one direction; keeps the Gilbert-Elliott state between datagrams. */
export class FateDrawer {
  #bad = false;
  constructor(readonly prng: Prng) {}

  draw(imp: UdpImpairments, bytes: number): Fate {
    const r = this.prng;
    let lost = r.chance(imp.loss ?? 0);
    if (imp.gilbert) {
      const g = imp.gilbert;
      this.#bad = this.#bad ? !r.chance(g.r) : r.chance(g.p);
      if (r.chance(this.#bad ? (g.lossBad ?? 1) : (g.lossGood ?? 0))) lost = true;
    }
    if (lost) return { lost, corruptBit: -1, duplicated: false, reordered: false, delayMs: 0 };
    const corruptBit = bytes > 0 && r.chance(imp.corrupt ?? 0) ? r.int(0, bytes * 8 - 1) : -1;
    const duplicated = r.chance(imp.duplicate ?? 0);
    const reordered = r.chance(imp.reorder ?? 0);
    const delayMs = Math.max(0, r.around(imp.delayMs ?? 0, imp.jitterMs ?? 0));
    return { lost, corruptBit, duplicated, reordered, delayMs };
  }

  /** In the bad state of Gilbert-Elliott now. */
  get bad(): boolean {
    return this.#bad;
  }
}

export function describeImpairments(imp: UdpImpairments): string {
  const parts: string[] = [];
  const pct = (v: number): string => `${+(v * 100).toFixed(3)}%`;
  if (imp.loss) parts.push(`loss ${pct(imp.loss)}`);
  if (imp.gilbert) parts.push(`Gilbert-Elliott p=${imp.gilbert.p} r=${imp.gilbert.r}`);
  if (imp.duplicate) parts.push(`duplicate ${pct(imp.duplicate)}`);
  if (imp.reorder) parts.push(`reorder ${pct(imp.reorder)} gap ${imp.reorderGap ?? 3}`);
  if (imp.delayMs || imp.jitterMs) parts.push(`delay ${imp.delayMs ?? 0}±${imp.jitterMs ?? 0} ms`);
  if (imp.corrupt) parts.push(`corrupt ${pct(imp.corrupt)}`);
  if (imp.rateKbit) parts.push(`rate ${imp.rateKbit} kbit/s`);
  return parts.join(', ') || 'none';
}
