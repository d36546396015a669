/**
 * Effectively-once on the consumer side: at-least-once delivery plus a handler that remembers what it processed.
 * `createIdempotentHandler(handler, { store, windowMs })` runs `handler` once per message key (the producer's msgId,
 * else topic/partition/offset) within `windowMs`; a redelivered or duplicated message is skipped (and should be acked).
 * The store is a Map (in memory) or a file path (one JSON line `[key, time]` appended per processed message, read back when
 * the handler is made, so a restarted consumer still skips what it processed before the crash; a crash between the
 * handler and the append still gives one repeat: the window the file cannot close without the handler's own
 * transaction).
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { checkInt } from '../../core/options.ts';

export interface IdempotentMessage {
  topic: string;
  partition: number;
  offset: number;
  msgId?: string;
}

export interface IdempotentOptions {
  /** Where processed keys are kept: a Map (default: a new one) or a file path. */
  store?: Map<string, number> | string;
  /** How long a key is remembered. Default 600,000 ms (10 minutes). */
  windowMs?: number;
  /** Keys remembered at most (oldest forgotten first). Default 100,000. */
  maxKeys?: number;
}

export interface IdempotentHandler<M extends IdempotentMessage> {
  /** Runs the handler unless this message's key was processed within the window; true when it ran. */
  (message: M): Promise<boolean>;
  readonly skipped: number;
  readonly processed: number;
}

export function messageKey(m: IdempotentMessage): string {
  return m.msgId !== undefined && m.msgId !== '' ? `id:${m.topic}:${m.msgId}` : `at:${m.topic}/${m.partition}/${m.offset}`;
}

export function createIdempotentHandler<M extends IdempotentMessage>(
  handler: (message: M) => unknown,
  options: IdempotentOptions = {},
): IdempotentHandler<M> {
  const windowMs = checkInt('windowMs', options.windowMs ?? 600_000, 1, 2 ** 31);
  const maxKeys = checkInt('maxKeys', options.maxKeys ?? 100_000, 1, 2 ** 31);
  const file = typeof options.store === 'string' ? options.store : undefined;
  const seen: Map<string, number> = options.store instanceof Map ? options.store : new Map();
  if (file !== undefined && existsSync(file)) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      try {
        const [key, at] = JSON.parse(line) as [string, number];
        if (typeof key === 'string' && typeof at === 'number') seen.set(key, at);
      } catch {
        // a torn last line (a crash mid-append): that message was not recorded, so it runs again
      }
    }
  }
  const inFlight = new Map<string, Promise<boolean>>();
  let skipped = 0;
  let processed = 0;
  const run = async (message: M): Promise<boolean> => {
    const key = messageKey(message);
    const now = Date.now();
    const at = seen.get(key);
    if ((at !== undefined && now - at < windowMs) || inFlight.has(key)) {
      skipped++;
      if (inFlight.has(key)) await inFlight.get(key);
      return false;
    }
    const p = (async () => {
      await handler(message);
      seen.delete(key);
      seen.set(key, Date.now());
      if (file !== undefined) appendFileSync(file, `${JSON.stringify([key, Date.now()])}\n`);
      processed++;
      while (seen.size > maxKeys) seen.delete(seen.keys().next().value!);
      return true;
    })();
    inFlight.set(key, p);
    try {
      return await p;
    } finally {
      inFlight.delete(key);
    }
  };
  Object.defineProperty(run, 'skipped', { get: () => skipped });
  Object.defineProperty(run, 'processed', { get: () => processed });
  return run as IdempotentHandler<M>;
}
