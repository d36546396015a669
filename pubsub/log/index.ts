/**
 * The durable log (issue 12): `openPartitionLog(dir, options)` opens (or creates) one partition's segment files in
 * `dir`; `dir: null` gives the in-memory log with the same interface and semantics except durability.
 */
import { FilePartitionLog } from './file/log.ts';
import { MemoryPartitionLog } from './memory.ts';
import type { PartitionLog, PartitionLogOptions } from './types.ts';

export { LOG_DEFAULTS } from './common.ts';
export { MemoryPartitionLog } from './memory.ts';
export { FilePartitionLog } from './file/log.ts';
export type * from './types.ts';
export { FSYNC_POLICIES } from './types.ts';
export { replay, REPLAY_DEFAULTS, type ReplayFrom, type ReplayOptions, type ReplayPace } from './replay.ts';

export async function openPartitionLog(dir: string | null, options: PartitionLogOptions = {}): Promise<PartitionLog> {
  if (dir === null) return new MemoryPartitionLog(options);
  return FilePartitionLog.open(dir, options);
}
