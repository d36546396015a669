/**
 * Replay of a partition log: `for await (const rec of replay(log, from, { pace }))` yields the records from an offset
 * (or the first at/after a timestamp) up to the end the log has when the replay gets there, then ends.
 *
 * - `pace: 'instant'` (default): as fast as the log reads them.
 * - `pace: 'original'`: waits the gap between consecutive records' timestamps before yielding the next one (the first
 *   at once), each wait capped at `maxGapMs`, so a replay reproduces the original rhythm without stalling on a
 *   night-long silence. Timestamps that go backwards wait 0.
 *
 * `signal` ends the replay early (the iterator returns; no error). Records are read `batchRecords` at a time.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { checkInt, checkOneOf, withDefaults } from '../../core/options.ts';
import type { LogRecord, PartitionLog } from './types.ts';

export type ReplayPace = 'instant' | 'original';

export interface ReplayOptions {
  /** Default 'instant'. */
  pace?: ReplayPace;
  signal?: AbortSignal;
  /** Longest single wait with pace 'original', ms. Default 10,000. */
  maxGapMs?: number;
  /** Records per read. Default 256. */
  batchRecords?: number;
}

export const REPLAY_DEFAULTS = Object.freeze({ pace: 'instant' as ReplayPace, maxGapMs: 10_000, batchRecords: 256 });

/** Where a replay starts: an offset, or `{ time }` (ms since the epoch) for the first record at or after it. */
export type ReplayFrom = number | { time: number };

/** Checks the options now (a bad one throws InvalidOptionError here), then replays lazily. */
export function replay(log: PartitionLog, from: ReplayFrom, options: ReplayOptions = {}): AsyncGenerator<LogRecord, void, undefined> {
  const o = withDefaults(REPLAY_DEFAULTS, options);
  checkOneOf('pace', o.pace, ['instant', 'original'] as const);
  checkInt('maxGapMs', o.maxGapMs, 0, 2 ** 31 - 1);
  checkInt('batchRecords', o.batchRecords, 1, 1_000_000);
  return run(log, from, o);
}

async function* run(log: PartitionLog, from: ReplayFrom, o: Required<Omit<ReplayOptions, 'signal'>> & ReplayOptions): AsyncGenerator<LogRecord, void, undefined> {
  const signal = o.signal;
  let cursor = typeof from === 'number' ? from : await log.offsetForTime(from.time);
  let lastTs: number | undefined;
  while (!signal?.aborted) {
    const batch = await log.read(cursor, o.batchRecords);
    if (batch.length === 0) return;
    for (const rec of batch) {
      if (o.pace === 'original' && lastTs !== undefined) {
        const gap = Math.min(o.maxGapMs, Math.max(0, rec.timestamp - lastTs));
        if (gap > 0) {
          try {
            await sleep(gap, undefined, signal ? { signal } : {});
          } catch {
            return; // aborted
          }
        }
      }
      if (signal?.aborted) return;
      lastTs = rec.timestamp;
      yield rec;
    }
    cursor = batch[batch.length - 1]!.offset + 1;
  }
}
