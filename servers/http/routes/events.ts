import type { ServerResponse } from 'node:http';
import { headerValue, json, readBody, type Ctx } from '../context.ts';
import type { FeedEvent } from '../feed.ts';
import { HttpError } from '../limits.ts';
import type { Router } from '../router.ts';


/** One SSE message (the `id:` line lets EventSource resume with Last-Event-ID). */
export function sseMessage(id: number | string, event: string, data: string): string {
  return `id: ${id}\nevent: ${event}\n${data.split('\n').map((l) => `data: ${l}`).join('\n')}\n\n`;
}

function openStream(ctx: Ctx): ServerResponse {
  const res = ctx.res as ServerResponse;
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
  res.flushHeaders?.();
  return res;
}

function lastEventId(ctx: Ctx, fallback: number): number {
  const raw = headerValue(ctx.req, 'last-event-id') ?? ctx.url.searchParams.get('since');
  const n = raw === undefined || raw === null ? fallback : Number(raw);
  return Number.isInteger(n) && n >= 0 ? n : fallback;
}

const eventJson = (e: FeedEvent): string => JSON.stringify(e);

/**
 * The same feed four ways (the realtime-push lab): GET /events?since=N polls (answers at once), with &wait=ms it long
 * polls (held until an event or the wait ends), GET /events/stream is SSE; POST /events publishes. /sse is a ticker.
 */
export function registerEvents(router: Router): void {
  router.add('GET', '/events', async (ctx) => {
    const since = lastEventId(ctx, 0);
    const wait = Math.min(ctx.state.options.maxLongPollMs, Math.max(0, Number(ctx.url.searchParams.get('wait') ?? 0) || 0));
    const feed = ctx.state.feed;
    let events = feed.since(since);
    if (events.length === 0 && wait > 0) {
      events = await new Promise<FeedEvent[]>((resolve) => {
        const done = (list: FeedEvent[]): void => {
          clearTimeout(timer);
          unsubscribe();
          ctx.res.off('close', gone);
          resolve(list);
        };
        const gone = (): void => done([]);
        const unsubscribe = feed.subscribe(() => done(feed.since(since)));
        const timer = setTimeout(() => done([]), wait);
        ctx.res.once('close', gone);
      });
    }
    json(ctx, 200, { events, lastId: events.length ? events[events.length - 1]!.id : Math.max(since, 0) }, { 'cache-control': 'no-store' });
  });
  router.add('POST', '/events', async (ctx) => {
    const body = await readBody(ctx);
    const e = ctx.state.feed.publish(body.toString('utf8'));
    json(ctx, 201, { id: e.id });
  });
  router.add('GET', '/events/stream', (ctx) => {
    const feed = ctx.state.feed;
    const res = openStream(ctx);
    for (const e of feed.since(lastEventId(ctx, feed.lastId))) res.write(sseMessage(e.id, 'feed', eventJson(e)));
    const unsubscribe = feed.subscribe((e) => res.write(sseMessage(e.id, 'feed', eventJson(e))));
    res.once('close', unsubscribe);
  });

  // /sse?count=10&interval=1000: a ticker; resumes after Last-Event-ID; count=0 ticks until the client leaves.
  router.add('GET', '/sse', (ctx) => {
    const q = ctx.url.searchParams;
    const count = Number(q.get('count') ?? 10);
    const interval = Number(q.get('interval') ?? 1000);
    if (!Number.isInteger(count) || count < 0 || count > 100_000) throw new HttpError(400, 'count must be 0..100000');
    if (!(interval >= 1) || interval > 60_000) throw new HttpError(400, 'interval must be 1..60000 ms');
    let i = lastEventId(ctx, 0);
    const res = openStream(ctx);
    res.write(`retry: ${Math.max(100, interval)}\n\n`);
    const tick = (): void => {
      i++;
      res.write(sseMessage(i, 'tick', JSON.stringify({ n: i, at: Date.now() })));
      if (count !== 0 && i >= count) {
        clearInterval(timer);
        res.end();
      }
    };
    const timer = setInterval(tick, interval);
    res.once('close', () => clearInterval(timer));
  });
}
