/** Checks a ConsumerSpec (contract: pubsub/engines/types.ts). Bad input: WL_ERR_PUBSUB_INVALID. */
import { ErrorCodes, PubsubError } from '../../../core/errors.ts';
import { checkPattern } from '../../subjects.ts';
import type { ConsumerSpec } from '../types.ts';

const GROUP_NAME = /^[\p{L}\p{N}_\-$:@#+=~][\p{L}\p{N}_\-$:@#+=~.]{0,199}$/u;

function invalid(what: string): PubsubError {
  return new PubsubError(ErrorCodes.PUBSUB_INVALID, `consumer: ${what}`);
}

function int(name: string, v: unknown, min: number, max: number): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw invalid(`${name} must be an integer in [${min}, ${max}]`);
}

export function checkConsumerSpec(spec: ConsumerSpec): void {
  if (typeof spec !== 'object' || spec === null) throw invalid('spec must be an object');
  checkPattern(spec.pattern);
  if (spec.ack !== undefined && spec.ack !== 'none' && spec.ack !== 'manual') throw invalid(`ack must be 'none' or 'manual'`);
  if (spec.group !== undefined) {
    if (typeof spec.group.name !== 'string' || !GROUP_NAME.test(spec.group.name)) throw invalid(`bad group name ${JSON.stringify(spec.group.name)}`);
    if (spec.group.mode !== 'queue' && spec.group.mode !== 'partitioned') throw invalid(`group mode must be 'queue' or 'partitioned'`);
  }
  const start = spec.start ?? { kind: 'new' };
  if (start.kind === 'offset') int('start.offset', start.offset, 0, Number.MAX_SAFE_INTEGER);
  else if (start.kind === 'time') int('start.time', start.time, 0, Number.MAX_SAFE_INTEGER);
  else if (start.kind !== 'new' && start.kind !== 'earliest') throw invalid(`unknown start kind ${JSON.stringify((start as { kind: unknown }).kind)}`);
  if (spec.ackWaitMs !== undefined) int('ackWaitMs', spec.ackWaitMs, 1, 2 ** 31 - 1);
  if (spec.backoffMs !== undefined) {
    if (!Array.isArray(spec.backoffMs) || spec.backoffMs.length > 100) throw invalid('backoffMs must be an array of at most 100 delays');
    spec.backoffMs.forEach((d, i) => int(`backoffMs[${i}]`, d, 1, 2 ** 31 - 1));
  }
  if (spec.maxDeliver !== undefined) int('maxDeliver', spec.maxDeliver, 0, 1_000_000);
  if (spec.maxAckPending !== undefined) int('maxAckPending', spec.maxAckPending, 1, 10_000_000);
  if (spec.deadLetterTopic !== undefined && typeof spec.deadLetterTopic !== 'string') throw invalid('deadLetterTopic must be a topic');
}
