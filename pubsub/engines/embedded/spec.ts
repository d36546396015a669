/** Checks a ConsumerSpec and fills in its defaults (contract: pubsub/engines/types.ts). Bad input: WL_ERR_PUBSUB_INVALID. */
import { ErrorCodes, PubsubError } from '../../../core/errors.ts';
import { checkPattern, checkTopic } from '../../subjects.ts';
import type { ConsumerSpec } from '../types.ts';
import type { GroupSettings } from './group.ts';

export const CONSUMER_DEFAULTS = { ackWaitMs: 30_000, maxDeliver: 5, maxAckPending: 1000 } as const;

/** Group names become file names (`<dir>/groups/<name>.json`) and delivery-id prefixes: no '/', no leading '.'. */
const GROUP_NAME = /^[\p{L}\p{N}_\-$:@#+=~][\p{L}\p{N}_\-$:@#+=~.]{0,199}$/u;

function invalid(what: string): PubsubError {
  return new PubsubError(ErrorCodes.PUBSUB_INVALID, `consumer: ${what}`);
}

function int(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw invalid(`${name} must be an integer in [${min}, ${max}]`);
  return v;
}

export function checkConsumerSpec(spec: ConsumerSpec): { settings: GroupSettings; maxAckPending: number } {
  if (typeof spec !== 'object' || spec === null) throw invalid('spec must be an object');
  const pattern = checkPattern(spec.pattern);
  const ack = spec.ack ?? 'manual';
  if (ack !== 'none' && ack !== 'manual') throw invalid(`ack must be 'none' or 'manual'`);
  if (spec.group !== undefined) {
    if (typeof spec.group.name !== 'string' || !GROUP_NAME.test(spec.group.name)) throw invalid(`bad group name ${JSON.stringify(spec.group.name)}`);
    if (spec.group.mode !== 'queue' && spec.group.mode !== 'partitioned') throw invalid(`group mode must be 'queue' or 'partitioned'`);
  }
  const start = spec.start ?? { kind: 'new' };
  switch (start.kind) {
    case 'new':
    case 'earliest':
      break;
    case 'offset':
      int('start.offset', start.offset, 0, Number.MAX_SAFE_INTEGER);
      if (start.partition !== undefined) int('start.partition', start.partition, 0, 65_535);
      break;
    case 'time':
      if (typeof start.time !== 'number' || !Number.isFinite(start.time)) throw invalid('start.time must be a number (ms since the epoch)');
      break;
    default:
      throw invalid(`unknown start kind ${JSON.stringify((start as { kind: unknown }).kind)}`);
  }
  const ackWaitMs = int('ackWaitMs', spec.ackWaitMs ?? CONSUMER_DEFAULTS.ackWaitMs, 1, 2 ** 31 - 1);
  const backoffMs = spec.backoffMs ?? [];
  if (!Array.isArray(backoffMs) || backoffMs.length > 100) throw invalid('backoffMs must be an array of at most 100 delays');
  backoffMs.forEach((d, i) => int(`backoffMs[${i}]`, d, 0, 2 ** 31 - 1));
  const maxDeliver = int('maxDeliver', spec.maxDeliver ?? CONSUMER_DEFAULTS.maxDeliver, 0, 1_000_000);
  const maxAckPending = int('maxAckPending', spec.maxAckPending ?? CONSUMER_DEFAULTS.maxAckPending, 1, 10_000_000);
  const settings: GroupSettings = { pattern, ack, start, ackWaitMs, backoffMs: [...backoffMs], maxDeliver };
  if (spec.deadLetterTopic !== undefined) settings.deadLetterTopic = checkTopic(spec.deadLetterTopic);
  return { settings, maxAckPending };
}
