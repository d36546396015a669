import type { ServerResponse } from 'node:http';
import { headerValue, json, readBody, send, sseMessage, type Ctx } from '../../../servers/http/index.ts';
import type { StartPosition } from '../../engines/types.ts';
import type { Message, Session, SubscribeInput, Subscription } from '../../broker/types.ts';
import { checkPattern, hasWildcard } from '../../subjects.ts';
import { Cursor, envelope, isSseText, storedAfter } from './cursor.ts';
import type { Door } from './door.ts';
import { invalid } from './errors.ts';
import { authKey } from './sessions.ts';

/** Messages a stream holds from its live subscription while it catches up from the log (then the broker buffers). */
const LIVE_HOLD = 1024;

function intQuery(ctx: Ctx, name: string, min: number, max: number): number | undefined {
  const raw = ctx.url.searchParams.get(name);
  if (raw === null) return undefined;
  const n = Number(raw);
  if (!/^\d{1,15}$/.test(raw) || n < min || n > max) throw invalid(`${name} must be an integer in [${min}, ${max}]`);
  return n;
}

/** `from`: new | earliest | <offset> | <ISO time> | @<ms since the epoch> (with `partition` for an offset). */
export function parseFrom(raw: string | null, partition: number | undefined): StartPosition | undefined {
  if (raw === null || raw === '') return undefined;
  if (raw === 'new') return { kind: 'new' };
  if (raw === 'earliest') return { kind: 'earliest' };
  if (/^\d{1,15}$/.test(raw)) return partition === undefined ? { kind: 'offset', offset: Number(raw) } : { kind: 'offset', offset: Number(raw), partition };
  const time = raw.startsWith('@') && /^@\d{1,15}$/.test(raw) ? Number(raw.slice(1)) : Date.parse(raw);
  if (!Number.isFinite(time)) throw invalid(`from must be new, earliest, an offset, an ISO time or @<ms>, got ${JSON.stringify(raw.slice(0, 40))}`);
  return { kind: 'time', time };
}

/** The query of GET /topics/:pattern/events and /poll: group, mode, from, ack and the consumer settings. */
export function subscribeInput(ctx: Ctx, pattern: string): SubscribeInput {
  const q = ctx.url.searchParams;
  const input: SubscribeInput = { pattern };
  const group = q.get('group');
  const mode = q.get('mode') ?? 'queue';
  if (mode !== 'queue' && mode !== 'partitioned') throw invalid('mode must be queue or partitioned');
  if (group !== null) {
    if (!/^[\w.\-:]{1,128}$/.test(group)) throw invalid('group must be 1-128 of [A-Za-z0-9_.-:]');
    input.group = { name: group, mode };
  }
  const ack = q.get('ack') ?? 'none';
  if (ack !== 'none' && ack !== 'manual') throw invalid('ack must be none or manual');
  input.ack = ack;
  const start = parseFrom(q.get('from'), intQuery(ctx, 'partition', 0, 1_000_000));
  if (start) input.start = start;
  const ackWaitMs = intQuery(ctx, 'ackWaitMs', 1, 86_400_000);
  if (ackWaitMs !== undefined) input.ackWaitMs = ackWaitMs;
  const maxDeliver = intQuery(ctx, 'maxDeliver', 0, 1_000_000);
  if (maxDeliver !== undefined) input.maxDeliver = maxDeliver;
  const maxAckPending = intQuery(ctx, 'maxAckPending', 1, 1_000_000);
  if (maxAckPending !== undefined) input.maxAckPending = maxAckPending;
  return input;
}

function formatOf(ctx: Ctx): 'text' | 'json' {
  const f = ctx.url.searchParams.get('format') ?? 'text';
  if (f !== 'text' && f !== 'json') throw invalid('format must be text or json');
  return f;
}

/** One SSE event: `message` with the UTF-8 payload, `message.base64` when it is not text, or the JSON envelope. */
function sseFrame(id: string, m: Message, format: 'text' | 'json'): string {
  if (format === 'json') return sseMessage(id, 'message', JSON.stringify(envelope(m)));
  return isSseText(m.payload) ? sseMessage(id, 'message', m.payload.toString('utf8')) : sseMessage(id, 'message.base64', m.payload.toString('base64'));
}

/** Resolves on 'drain' or 'close', whichever comes first. */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/**
 * Whether ids may be bare offsets: one topic of one partition. A topic that does not exist yet counts as one (if it is
 * created with more, the first message of another partition switches the ids to the full form; a bare offset read back
 * then means "partition 0 at N, the others from their start", right for a topic younger than the stream).
 */
async function isCompact(door: Door, pattern: string): Promise<boolean> {
  if (hasWildcard(pattern)) return false;
  const info = await door.broker.engine.topic(pattern);
  return info === undefined || info.partitions === 1;
}

/**
 * GET /topics/:pattern/events: Server-Sent Events. Each event's `id:` is a cursor (cursor.ts): `Last-Event-ID` (or
 * `?lastEventId=`) resumes a fan-out stream from the log with no gap and no duplicate: the live subscription starts
 * first, stored records after the cursor are sent, then the live ones the cursor has not passed. A group stream resumes
 * from the group's committed offsets instead. A write that returns false holds the broker's deliveries until 'drain'.
 */
export async function sse(door: Door, ctx: Ctx): Promise<void> {
  const pattern = checkPattern(ctx.params[0] ?? '');
  const input = subscribeInput(ctx, pattern);
  const format = formatOf(ctx);
  const lastId = headerValue(ctx.req, 'last-event-id') ?? ctx.url.searchParams.get('lastEventId') ?? undefined;
  const compact = await isCompact(door, pattern);
  const limits = door.options.limits;
  const resumeFrom = lastId !== undefined && lastId !== '' && !input.group ? Cursor.parse(lastId, pattern, compact, limits.maxCursorEntries) : undefined;
  const cursor = resumeFrom ?? new Cursor(pattern, compact, Date.now(), limits.maxCursorEntries);
  const res = ctx.res as ServerResponse;
  // HEAD (served by this GET route) checks the request without opening a stream that would never carry a body.
  if (ctx.method === 'HEAD') return send(ctx, 200, '', { 'content-type': 'text/event-stream; charset=utf-8' });
  const release = door.openStream();
  let session: Session | undefined;
  let sub: Subscription | undefined;
  const timers: { heartbeat?: NodeJS.Timeout } = {};
  let ended = false;
  const auth = authKey(ctx);
  const cleanup = (): void => {
    if (ended) return;
    ended = true;
    release();
    if (timers.heartbeat) clearInterval(timers.heartbeat);
    if (session) {
      door.pending.forget(session);
      const s = session;
      void (sub ? sub.close() : Promise.resolve()).catch(() => {}).then(() => s.close('stream closed')).catch(() => {});
    }
    door.tracer.emit('pubsub-http', ctx.cid, '*', 'unsubscribe', () => `SSE stream on ${pattern} closed`);
  };
  res.once('close', cleanup);

  // Until the stream is open and caught up, live deliveries wait here (deliver may be called before subscribe resolves).
  let holding = true;
  const held: Message[] = [];
  const write = (m: Message): boolean => {
    if (!input.group) {
      if (cursor.seen(m)) {
        door.stats.skippedDuplicates++;
        return true;
      }
    }
    cursor.advance(m.topic, m.partition, m.offset);
    if (!input.group && cursor.entries > limits.maxCursorEntries) {
      res.end(sseMessage(cursor.toString(), 'error', JSON.stringify({ code: 'WL_ERR_PUBSUB_LIMIT', limit: 'maxCursorEntries' })));
      return false;
    }
    if (m.deliveryId !== undefined && session) door.pending.add(m.deliveryId, session, auth);
    door.stats.delivered++;
    const ok = res.write(sseFrame(cursor.toString(), m, format));
    if (!ok) door.stats.backpressure++;
    return ok;
  };
  const deliver = (m: Message): boolean => {
    if (ended) return false;
    if (holding) {
      held.push(m);
      return held.length < LIVE_HOLD;
    }
    const ok = write(m);
    if (!ok) void drained(res).then(() => !ended && sub?.resume());
    return ok;
  };

  try {
    session = await door.sessions.connect(ctx);
    if (ended) return cleanup();
    session.onClosed((reason) => {
      if (ended) return;
      res.end(sseMessage(cursor.toString(), 'error', JSON.stringify({ code: 'WL_ERR_PUBSUB_CLOSED', reason })));
    });
    const subInput: SubscribeInput = resumeFrom ? { ...input, start: { kind: 'new' } } : input;
    sub = await session.subscribe(subInput, deliver);
  } catch (err) {
    cleanup();
    throw err;
  }
  if (ended) return;
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
  res.write(`: subscribed to ${pattern}${input.group ? ` as group ${input.group.name} (${input.group.mode})` : ''}\nretry: 1000\n\n`);
  door.tracer.emit('pubsub-http', ctx.cid, '*', 'subscribe', () => ({
    summary: `SSE ${pattern}${input.group ? ` group=${input.group.name}` : ''} ack=${input.ack}${resumeFrom ? ` resume ${lastId}` : ''}`,
    meta: { pattern, group: input.group?.name, ack: input.ack, lastEventId: lastId },
  }));
  timers.heartbeat = setInterval(() => res.write(': hb\n\n'), limits.heartbeatMs);

  if (resumeFrom) {
    door.stats.resumed++;
    for await (const m of storedAfter(door.broker, cursor)) {
      if (ended) return;
      door.stats.caughtUp++;
      if (!write(m)) await drained(res);
    }
  }
  holding = false;
  let ok = true;
  for (const m of held.splice(0)) ok = write(m) && ok;
  if (ended) return;
  if (ok) sub.resume();
  else void drained(res).then(() => !ended && sub?.resume());
}

/**
 * GET /topics/:pattern/poll?after=<cursor>&timeoutMs=&max=: long polling for clients without SSE. Answers at once with
 * what is stored after the cursor (200, JSON {messages, cursor}), else holds until a message arrives or timeoutMs
 * passes (204, the cursor in X-Cursor). Without `after`, it starts now (or at the oldest record with from=earliest).
 */
export async function poll(door: Door, ctx: Ctx): Promise<void> {
  const pattern = checkPattern(ctx.params[0] ?? '');
  const limits = door.options.limits;
  const q = ctx.url.searchParams;
  if (q.get('group') !== null) throw invalid('long polling is for fan-out reads; a group consumes over SSE (GET /topics/:pattern/events?group=)');
  const timeoutMs = Math.min(limits.maxPollMs, intQuery(ctx, 'timeoutMs', 0, 3_600_000) ?? limits.maxPollMs);
  const max = Math.min(limits.maxPollBatch, intQuery(ctx, 'max', 1, 1_000_000) ?? limits.maxPollBatch);
  const after = q.get('after') ?? headerValue(ctx.req, 'last-event-id');
  const from = q.get('from') ?? 'new';
  if (from !== 'new' && from !== 'earliest') throw invalid('from must be new or earliest (or pass after=<cursor>)');
  const compact = await isCompact(door, pattern);
  const cursor = after ? Cursor.parse(after, pattern, compact, limits.maxCursorEntries) : new Cursor(pattern, compact, from === 'earliest' ? 0 : Date.now(), limits.maxCursorEntries);
  const release = door.openStream();
  try {
    await door.sessions.use(ctx, async (session) => {
      let wake = (): void => {};
      let woke = false;
      // The subscription checks the ACL and wakes the poll; the messages themselves are read from the log.
      const sub = await session.subscribe({ pattern, ack: 'none', start: { kind: 'new' } }, () => {
        woke = true;
        wake();
        return true;
      });
      try {
        const collect = async (): Promise<Message[]> => {
          const out: Message[] = [];
          for await (const m of storedAfter(door.broker, cursor)) {
            cursor.advance(m.topic, m.partition, m.offset);
            out.push(m);
            if (out.length >= max) break;
          }
          if (cursor.entries > limits.maxCursorEntries) throw invalid(`this poll spans more than maxCursorEntries=${limits.maxCursorEntries} partitions`);
          return out;
        };
        let batch = await collect();
        if (batch.length === 0 && timeoutMs > 0 && !ctx.signal.aborted) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(done, timeoutMs);
            function done(): void {
              clearTimeout(timer);
              ctx.signal.removeEventListener('abort', done);
              resolve();
            }
            wake = done;
            ctx.signal.addEventListener('abort', done);
            if (woke) done();
          });
          if (woke && !ctx.signal.aborted) batch = await collect();
        }
        if (ctx.signal.aborted) return;
        door.stats.delivered += batch.length;
        if (batch.length === 0) return send(ctx, 204, '', { 'x-cursor': cursor.toString(), 'cache-control': 'no-store' });
        json(ctx, 200, { messages: batch.map(envelope), cursor: cursor.toString() }, { 'cache-control': 'no-store' });
      } finally {
        await sub.close();
      }
    });
  } finally {
    release();
  }
}

type Settle = 'ack' | 'nak' | 'inProgress' | 'term';
const SETTLES: Settle[] = ['ack', 'nak', 'inProgress', 'term'];

/**
 * POST /acks {"ack": [ids], "nak": [id | {id, delayMs}], "inProgress": [ids], "term": [id | {id, reason}]}: settles
 * deliveries of manual-ack streams (ids from `format=json` events). Only the credentials that received a delivery may
 * settle it. 200 {settled, unknown}; 404 when none was known.
 */
export async function acks(door: Door, ctx: Ctx): Promise<void> {
  const body = await readBody(ctx);
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw invalid('the body must be JSON: {"ack": ["<deliveryId>"...], "nak": [...], "inProgress": [...], "term": [...]}');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw invalid('the body must be a JSON object');
  const auth = authKey(ctx);
  let settled = 0;
  const unknown: string[] = [];
  let total = 0;
  for (const kind of SETTLES) {
    const list = (parsed as Record<string, unknown>)[kind];
    if (list === undefined) continue;
    if (!Array.isArray(list)) throw invalid(`${kind} must be an array`);
    for (const item of list) {
      const id = typeof item === 'string' ? item : typeof item === 'object' && item !== null ? (item as { id?: unknown }).id : undefined;
      if (typeof id !== 'string') throw invalid(`${kind} entries are delivery ids or {"id": ...}`);
      if (++total > door.options.limits.maxPollBatch * 10) throw invalid(`more than ${door.options.limits.maxPollBatch * 10} ids in one request`);
      const session = door.pending.take(id, auth, kind !== 'inProgress');
      if (!session) {
        unknown.push(id);
        continue;
      }
      const o = item as { delayMs?: unknown; reason?: unknown };
      try {
        if (kind === 'ack') session.ack(id);
        else if (kind === 'nak') session.nak(id, typeof o.delayMs === 'number' && o.delayMs >= 0 ? o.delayMs : undefined);
        else if (kind === 'inProgress') session.inProgress(id);
        else session.term(id, typeof o.reason === 'string' ? o.reason.slice(0, 200) : undefined);
      } catch {
        // Settled already, or its session ended (WL_ERR_PUBSUB_NOT_FOUND): the engine redelivers it after ackWaitMs.
        unknown.push(id);
        continue;
      }
      settled++;
    }
  }
  door.stats.settled += settled;
  door.tracer.emit('pubsub-http', ctx.cid, '>', 'acks', () => `settled ${settled}, unknown ${unknown.length}`);
  json(ctx, settled === 0 && unknown.length > 0 ? 404 : 200, { settled, unknown });
}
