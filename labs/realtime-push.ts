import { EventSource } from 'undici';
import { defineLab } from '../core/lab/index.ts';
import { createHttpClient } from '../clients/http.ts';
import { connectWs } from '../clients/ws.ts';
import { EventFeed, startHttpServer, type FeedEvent } from '../servers/http/index.ts';
import { startWsServer } from '../servers/ws/index.ts';
import { r2, summarize } from './_stats.ts';


const nowEpoch = (): number => performance.timeOrigin + performance.now();

interface Delivery {
  latencies: number[];
  ids: number[];
}

export default defineLab({
  id: 'realtime-push',
  title: 'Polling, long polling, SSE and WebSocket deliver the same events',
  concept: 'Plain request/response HTTP cannot push: the client must ask. SSE (still HTTP) and WebSocket let the server send the moment something happens.',
  protocols: ['http', 'ws'],
  timeoutMs: 60_000,
  params: {
    events: { kind: 'count', default: 100, min: 20, max: 1_000, help: 'events the server publishes' },
    spacing: { kind: 'duration', default: '10ms', min: 2, max: 100, help: 'time between two events' },
    poll: { kind: 'duration', default: '100ms', min: 20, max: 2_000, help: "the polling client's interval" },
  },
  checkParams: (p) =>
    (p.events * p.spacing) / p.poll < 10 ? `events × spacing / poll is ${((p.events * p.spacing) / p.poll).toFixed(1)}: polling must ask at least 10 times for its claims to be decided`
    : p.events * p.spacing > 20_000 ? 'events × spacing is over 20 s; lower one of them'
    : undefined,
  async run(ctx) {
    const { events: EVENTS, spacing: SPACING_MS, poll: POLL_MS } = ctx.params;
    const feed = new EventFeed({ maxEvents: EVENTS * 2 });
    const tracer = ctx.tracer;
    // One server per way of delivering, all on the same feed, so each one's requests and bytes are its own.
    const pollSrv = await ctx.start(startHttpServer({ tracer, feed }));
    const longSrv = await ctx.start(startHttpServer({ tracer, feed }));
    const sseSrv = await ctx.start(startHttpServer({ tracer, feed }));
    const wsSrv = await ctx.start(startWsServer({ tracer, feed }));
    const pollClient = await createHttpClient({ tracer });
    const longClient = await createHttpClient({ tracer, headersTimeoutMs: 10_000 });
    const got: Record<string, Delivery> = {
      polling: { latencies: [], ids: [] },
      'long polling': { latencies: [], ids: [] },
      SSE: { latencies: [], ids: [] },
      WebSocket: { latencies: [], ids: [] },
    };
    const take = (d: Delivery, e: FeedEvent): void => {
      d.latencies.push(nowEpoch() - e.at);
      d.ids.push(e.id);
    };
    let stop = false;
    ctx.defer(() => (stop = true));

    // Polling: ask every POLL_MS whatever is new.
    const polling = (async () => {
      let since = 0;
      while (!stop && got.polling!.ids.length < EVENTS) {
        const r = await pollClient.request(`${pollSrv.url}/events?since=${since}`);
        const body = r.json<{ events: FeedEvent[]; lastId: number }>();
        for (const e of body.events) take(got.polling!, e);
        since = body.lastId;
        if (got.polling!.ids.length < EVENTS) await new Promise((res) => setTimeout(res, POLL_MS));
      }
    })();
    // Long polling: ask, and the server holds the answer until there is something.
    const longPolling = (async () => {
      let since = 0;
      while (!stop && got['long polling']!.ids.length < EVENTS) {
        const r = await longClient.request(`${longSrv.url}/events?since=${since}&wait=5000`);
        const body = r.json<{ events: FeedEvent[]; lastId: number }>();
        for (const e of body.events) take(got['long polling']!, e);
        since = body.lastId;
      }
    })();
    // SSE: one request whose response never ends; undici's EventSource reads it.
    const es = new EventSource(`${sseSrv.url}/events/stream`);
    ctx.defer(() => es.close());
    const sseDone = new Promise<void>((resolve, reject) => {
      es.addEventListener('feed', (m) => {
        take(got.SSE!, JSON.parse((m as unknown as { data: string }).data) as FeedEvent);
        if (got.SSE!.ids.length >= EVENTS) resolve();
      });
      es.onerror = () => reject(new Error('EventSource failed'));
    });
    await new Promise<void>((resolve) => (es.onopen = () => resolve()));
    // WebSocket: one upgrade, then the server sends a message per event.
    const ws = await connectWs({ url: `${wsSrv.url}/feed`, tracer });
    const wsDone = (async () => {
      while (got.WebSocket!.ids.length < EVENTS) take(got.WebSocket!, JSON.parse((await ws.next(5000)).data.toString()) as FeedEvent);
    })();

    for (let i = 1; i <= EVENTS; i++) {
      feed.publish(JSON.stringify({ n: i, price: 100 + Math.sin(i) }));
      await new Promise((res) => setTimeout(res, SPACING_MS));
    }
    await Promise.all([polling, longPolling, sseDone, wsDone]);
    es.close();
    await ws.close();
    await Promise.all([pollClient.close(), longClient.close()]);
    await new Promise((res) => setTimeout(res, 100)); // let every socket close so its bytes are counted

    const requests: Record<string, number> = {
      polling: pollSrv.stats.requests,
      'long polling': longSrv.stats.requests,
      SSE: sseSrv.stats.requests,
      WebSocket: wsSrv.stats.connections,
    };
    const bytes: Record<string, number> = {
      polling: pollSrv.stats.bytesIn + pollSrv.stats.bytesOut,
      'long polling': longSrv.stats.bytesIn + longSrv.stats.bytesOut,
      SSE: sseSrv.stats.bytesIn + sseSrv.stats.bytesOut,
      WebSocket: wsSrv.stats.bytesIn + wsSrv.stats.bytesOut,
    };
    const s = Object.fromEntries(Object.entries(got).map(([k, d]) => [k, summarize(d.latencies)]));
    ctx.samples('delivery latency', 'ms', Object.fromEntries(Object.entries(got).map(([k, d]) => [k, d.latencies])));
    ctx.table(`${EVENTS} events, one every ${SPACING_MS} ms (polling every ${POLL_MS} ms)`, ['delivery', 'events', 'latency p50 ms', 'p99 ms', 'requests made', 'bytes on the wire / event'],
      Object.keys(got).map((k) => [k, got[k]!.ids.length, r2(s[k]!.p50), r2(s[k]!.p99), requests[k]!, r2(bytes[k]! / EVENTS)]));

    const inOrder = (ids: number[]): boolean => ids.length === EVENTS && ids.every((id, i) => id === i + 1);
    ctx.claim('each of the four ways delivered all events, in order, none twice', Object.values(got).every((d) => inOrder(d.ids)),
      Object.entries(got).map(([k, d]) => `${k} ${d.ids.length}`).join(', '));
    ctx.claim(`the seed's "HTTP: one-way, no real-time" holds for request/response: polling waits for the next ask (p50 ${r2(s.polling!.p50)} ms, about half the ${POLL_MS} ms interval)`,
      s.polling!.p50 > POLL_MS / 5 && s.polling!.p50 > 2 * s.SSE!.p50, `polling p50 ${r2(s.polling!.p50)} ms vs SSE ${r2(s.SSE!.p50)} ms`);
    ctx.claim('polling asks again and again, each ask with a full request and response head: more bytes per event than SSE', requests.polling! > 5 && bytes.polling! > bytes.SSE!,
      `${requests.polling} requests, ${r2(bytes.polling! / EVENTS)} B/event vs SSE ${r2(bytes.SSE! / EVENTS)}`);
    ctx.claim('SSE is the counter-example: one plain HTTP response that pushed every event as it happened, sooner than polling', requests.SSE === 1 && s.SSE!.p50 < s.polling!.p50,
      `1 request, p50 ${r2(s.SSE!.p50)} ms, p99 ${r2(s.SSE!.p99)} ms`);
    ctx.claim('WebSocket pushed every event over one connection, with the fewest bytes per event', requests.WebSocket === 1 && bytes.WebSocket! <= Math.min(bytes.polling!, bytes['long polling']!, bytes.SSE!),
      `${r2(bytes.WebSocket! / EVENTS)} B/event`);
    ctx.claim('long polling is near real time, at the cost of a request per answer', s['long polling']!.p50 < s.polling!.p50 && requests['long polling']! > 1,
      `p50 ${r2(s['long polling']!.p50)} ms, ${requests['long polling']} requests`);
  },
});
