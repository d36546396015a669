import { isUtf8 } from 'node:buffer';
import type { Broker, Message } from '../../broker/types.ts';
import { hasWildcard, matches } from '../../subjects.ts';
import { invalid } from './errors.ts';

/**
 * Where a stream or a poller is: the last offset delivered per topic partition, and `t`, when it started (a partition
 * it has not seen yet resumes from the first record at or after `t`: nothing it had is repeated, nothing new is
 * skipped). Written as the SSE `id:` (and the poll's `cursor`), so `Last-Event-ID` / `after` resumes with no gap and no
 * duplicate:
 *  - `41`: the one partition of the one topic, offset 41 (a topic pattern without wildcards, of one partition);
 *  - `t1764542470123,0-41,1-7`: start time, then `<partition>-<offset>` per partition seen;
 *  - `t1764542470123,orders.eu/0-41,orders.us/2-3`: the same for a wildcard pattern, with the topic.
 */
export class Cursor {
  readonly #last = new Map<string, Map<number, number>>();
  #entries = 0;

  constructor(
    readonly pattern: string,
    /** Write the bare offset (one topic, one partition). */
    readonly compact: boolean,
    readonly t: number,
    readonly maxEntries: number,
  ) {}

  /** Parses a Last-Event-ID / after value; throws WL_ERR_PUBSUB_INVALID (400) for one this pattern cannot have made. */
  static parse(raw: string, pattern: string, compact: boolean, maxEntries: number): Cursor {
    const wild = hasWildcard(pattern);
    if (/^\d+$/.test(raw)) {
      if (wild) throw invalid(`cursor ${JSON.stringify(raw.slice(0, 40))}: a bare offset needs a topic without wildcards`);
      const c = new Cursor(pattern, compact, 0, maxEntries);
      c.advance(pattern, 0, Number(raw));
      return c;
    }
    const parts = raw.split(',');
    const m0 = /^t(\d{1,15})$/.exec(parts[0] ?? '');
    if (!m0) throw invalid(`cursor ${JSON.stringify(raw.slice(0, 40))}: expected t<ms>,<partition>-<offset>...`);
    if (parts.length - 1 > maxEntries) throw invalid(`cursor names ${parts.length - 1} partitions, more than maxCursorEntries=${maxEntries}`);
    const c = new Cursor(pattern, compact, Number(m0[1]), maxEntries);
    for (const p of parts.slice(1)) {
      const m = /^(?:([^/,]+)\/)?(\d{1,9})-(\d{1,15})$/.exec(p);
      const topic = m?.[1] ?? (wild ? undefined : pattern);
      if (!m || topic === undefined || !matches(pattern, topic)) throw invalid(`cursor entry ${JSON.stringify(p.slice(0, 60))} does not fit pattern ${pattern}`);
      c.advance(topic, Number(m[2]), Number(m[3]));
    }
    return c;
  }

  last(topic: string, partition: number): number | undefined {
    return this.#last.get(topic)?.get(partition);
  }

  /** Whether `m` was delivered already (at or before the cursor). */
  seen(m: Message): boolean {
    const last = this.last(m.topic, m.partition);
    return last !== undefined && m.offset <= last;
  }

  advance(topic: string, partition: number, offset: number): void {
    let t = this.#last.get(topic);
    if (!t) this.#last.set(topic, (t = new Map()));
    if (!t.has(partition)) this.#entries++;
    t.set(partition, offset);
  }

  /** Partitions named: a stream past maxCursorEntries can no longer write a resumable id. */
  get entries(): number {
    return this.#entries;
  }

  toString(): string {
    if (this.compact && this.#entries === 1) {
      const only = this.#last.get(this.pattern)?.get(0);
      if (only !== undefined) return String(only);
    }
    const wild = hasWildcard(this.pattern);
    const out = [`t${this.t}`];
    for (const [topic, parts] of this.#last) for (const [p, o] of parts) out.push(wild ? `${topic}/${p}-${o}` : `${p}-${o}`);
    return out.join(',');
  }
}

/** Stored records after `cursor` in every partition the pattern matches, oldest first per partition (expired ones skipped). */
export async function* storedAfter(broker: Broker, cursor: Cursor, batch = 256): AsyncGenerator<Message> {
  const wild = hasWildcard(cursor.pattern);
  const topics = wild ? (await broker.topics()).filter((t) => matches(cursor.pattern, t.name)) : [await broker.engine.topic(cursor.pattern)];
  for (const topic of topics) {
    if (!topic) continue;
    for (const p of topic.partitionInfo) {
      const last = cursor.last(topic.name, p.partition);
      let from = last !== undefined ? last + 1 : await broker.engine.offsetForTime(topic.name, p.partition, cursor.t);
      from = Math.max(from, p.firstOffset);
      for (;;) {
        const records = await broker.engine.read(topic.name, p.partition, from, batch);
        if (records.length === 0) break;
        const now = Date.now();
        for (const r of records) {
          from = r.offset + 1;
          if (r.expiresAt !== undefined && r.expiresAt <= now) continue;
          const m: Message = {
            subscription: 'stored',
            topic: topic.name,
            partition: p.partition,
            offset: r.offset,
            timestamp: r.timestamp,
            headers: r.headers,
            payload: r.payload,
            attempt: 1,
          };
          if (r.key !== undefined) m.key = r.key;
          if (r.msgId !== undefined) m.msgId = r.msgId;
          if (r.expiresAt !== undefined) m.expiresAt = r.expiresAt;
          yield m;
        }
      }
    }
  }
}

/** Text safe for an SSE data line: valid UTF-8 without CR (EventSource would turn a CR into a line break). */
export function isSseText(payload: Buffer): boolean {
  return isUtf8(payload) && !payload.includes(13);
}

/** A message as JSON (poll answers, `format=json` streams, DLQ listings): the payload as UTF-8 or base64, said so. */
export function envelope(m: Message): Record<string, unknown> {
  const text = isUtf8(m.payload);
  return {
    topic: m.topic,
    partition: m.partition,
    offset: m.offset,
    timestamp: m.timestamp,
    ...(m.key !== undefined ? { key: m.key } : {}),
    headers: m.headers,
    ...(m.msgId !== undefined ? { msgId: m.msgId } : {}),
    ...(m.expiresAt !== undefined ? { expiresAt: m.expiresAt } : {}),
    ...(m.deliveryId !== undefined ? { deliveryId: m.deliveryId, attempt: m.attempt } : {}),
    encoding: text ? 'utf8' : 'base64',
    payload: m.payload.toString(text ? 'utf8' : 'base64'),
  };
}
