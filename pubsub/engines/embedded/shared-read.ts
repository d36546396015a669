/**
 * What the groups of one engine share when they read: the last read of each partition log (one decode serves every
 * group of a fan-out), and the delivery object handed to members.
 */
import type { LogRecord, PartitionLog } from '../../log/types.ts';
import type { Delivery } from '../types.ts';

/**
 * The last read of each partition log. The groups of a fan-out (one per subscriber) read the same records at about the
 * same time: the first read serves the others (one decode, and the same record objects: the MQTT door encodes a
 * message once for all of them). Records are immutable once appended, so a batch read from an offset at or below a
 * group's cursor holds exactly what a read from the cursor would return, up to the batch's end. The batch array is
 * shared: PartState.buffer is never written to.
 */
interface SharedRead {
  from: number;
  result: Promise<LogRecord[]>;
  records?: LogRecord[];
}
const lastReads = new WeakMap<PartitionLog, SharedRead>();

/** Records from `from` on (`records[at..]`), from the log's last read when it covers `from`, else from a new read. */
export async function readShared(log: PartitionLog, from: number, max: number): Promise<{ records: LogRecord[]; at: number }> {
  const now = readSharedNow(log, from, max);
  if (now !== undefined) return now;
  const last = lastReads.get(log);
  if (last !== undefined && last.from <= from) {
    const records = last.records ?? (await last.result.catch(() => []));
    let at = from - last.from;
    // Offsets are dense unless the log skipped expired records: then search back for the first one at or after `from`.
    if (at >= records.length || records[at]!.offset !== from) at = records.findIndex((r) => r.offset >= from);
    // Never serve from the copy what the log no longer has: records below a first offset retention moved up, or past
    // the end of a log cut shorter since (a simulated power loss).
    if (at >= 0 && records[at]!.offset >= log.firstOffset && records[records.length - 1]!.offset < log.nextOffset) return { records, at };
  }
  const read: SharedRead = { from, result: log.read(from, max) };
  lastReads.set(log, read);
  try {
    read.records = await read.result;
  } catch (err) {
    if (lastReads.get(log) === read) lastReads.delete(log);
    throw err;
  }
  return { records: read.records, at: 0 };
}

/**
 * The same without waiting, when it can be served from memory: the log's last read (once it has come back) or the
 * log's tail (`readNow`: the records just written or queued). Undefined when a read from the file is needed. At a low
 * rate every append is read at the tail, so the groups of a fan-out deliver in the turn the record arrives.
 */
export function readSharedNow(log: PartitionLog, from: number, max: number): { records: LogRecord[]; at: number } | undefined {
  const last = lastReads.get(log);
  if (last !== undefined && last.records !== undefined && last.from <= from) {
    const records = last.records;
    let at = from - last.from;
    if (at >= records.length || records[at]!.offset !== from) at = records.findIndex((r) => r.offset >= from);
    if (at >= 0 && records[at]!.offset >= log.firstOffset && records[records.length - 1]!.offset < log.nextOffset) return { records, at };
  }
  const records = log.readNow?.(from, max);
  if (records === undefined) return undefined;
  lastReads.set(log, { from, result: Promise.resolve(records), records });
  return { records, at: 0 };
}

/** A delivery; its id (`${group.id}/${topic}/${partition}/${offset}/${attempt}`) is built when asked for (at-most-once never acks). */
export class GroupDelivery implements Delivery {
  constructor(
    private readonly prefix: string,
    readonly topic: string,
    readonly partition: number,
    readonly record: LogRecord,
    readonly attempt: number,
  ) {}

  get id(): string {
    return `${this.prefix}/${this.topic}/${this.partition}/${this.record.offset}/${this.attempt}`;
  }
}
