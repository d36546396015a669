import type { ServerResponse } from 'node:http';
import { HttpError } from '../../core/errors.ts';
import type { LiveTracer, TraceEvent, TraceSink } from '../../core/trace/index.ts';
import type { Ctx } from '../../servers/http/index.ts';

/** Limits of the live event stream (`GET /_wirelab/api/events`, Server-Sent Events). */
export interface StreamLimits {
  /** Pages watching at once; one more gets 503. Default 8. */
  maxWatchers: number;
  /** Bytes waiting in one response's buffer (a slow page) past which events are dropped and counted. Default 1 MiB. */
  maxBufferedBytes: number;
  /** Events are sent in batches this often (ms), so a busy server makes one write per batch, not one per event. Default 100. */
  flushMs: number;
  /** Characters of an event's summary sent; the rest is cut. Default 2000. */
  maxSummaryChars: number;
  /** Bytes of an event's payload sent as hex (`data`). Default 256. */
  maxDataBytes: number;
}

export const STREAM_DEFAULTS: Readonly<StreamLimits> = Object.freeze({ maxWatchers: 8, maxBufferedBytes: 1024 * 1024, flushMs: 100, maxSummaryChars: 2000, maxDataBytes: 256 });

/** One event as the page gets it: the tracer's shape, plus `ts` (wall clock, ms since the epoch) and `data` as hex. */
export function eventForPage(e: TraceEvent, limits: StreamLimits): Record<string, unknown> {
  const out: Record<string, unknown> = { ts: Date.now(), t: e.t, proto: e.proto, cid: e.cid, dir: e.dir, kind: e.kind, summary: e.summary.length > limits.maxSummaryChars ? e.summary.slice(0, limits.maxSummaryChars) + '…' : e.summary };
  if (e.bytes !== undefined) out.bytes = e.bytes;
  if (e.meta) out.meta = e.meta;
  if (e.data) out.data = Buffer.from(e.data.buffer, e.data.byteOffset, Math.min(e.data.byteLength, limits.maxDataBytes)).toString('hex');
  return out;
}

/**
 * A filter from the query: `proto=http,smtp`, `cid=http#3`, `dir=>` (every one optional). The raw `bytes` events of
 * socket taps (recorded for the pcapng download) are left out unless `wire=1`.
 */
function filterOf(q: URLSearchParams): (e: TraceEvent) => boolean {
  const protos = q.get('proto')?.split(',').filter(Boolean);
  const cid = q.get('cid');
  const dir = q.get('dir');
  const wire = q.get('wire') === '1';
  return (e) => (wire || e.kind !== 'bytes') && (!protos?.length || protos.includes(e.proto)) && (!cid || e.cid === cid) && (!dir || e.dir === dir);
}

/** Counts shared by every watcher, for /_wirelab/api/status. */
export interface StreamStats {
  watchers: number;
  sent: number;
  dropped: number;
}

/**
 * Serves one page's stream: attaches a sink to the live tracer (so tracing turns on for every server in the process),
 * sends batches of events as SSE `trace` messages, and detaches when the page goes (tracing off again when it was the
 * last). A page that reads too slowly loses events (counted, and told in a `dropped` message), never memory.
 */
export function serveEventStream(ctx: Ctx, tracer: LiveTracer, stats: StreamStats, limits: StreamLimits, also?: TraceSink): void {
  if (stats.watchers >= limits.maxWatchers) throw new HttpError(503, `maxWatchers=${limits.maxWatchers} pages are already watching`, { headers: { 'retry-after': '5' } });
  const res = ctx.res as ServerResponse;
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
  res.write(`retry: 2000\n\n`);
  const wanted = filterOf(ctx.url.searchParams);
  let batch: Record<string, unknown>[] = [];
  let dropped = 0;
  let id = 0;
  const sink: TraceSink = {
    // While a page watches, socket taps run when the recorder keeps payloads (the session download's pcapng).
    wantsWire: also?.wantsWire === true,
    write: (e) => {
      also?.write(e);
      if (!wanted(e)) return;
      try {
        if (res.writableLength > limits.maxBufferedBytes) {
          dropped++;
          stats.dropped++;
          return;
        }
        batch.push(eventForPage(e, limits));
      } catch {
        dropped++;
      }
    },
  };
  const flush = (): void => {
    if (batch.length > 0) {
      let text: string;
      try {
        text = JSON.stringify(batch, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v));
      } catch {
        text = JSON.stringify(batch.map((b) => ({ ...b, meta: undefined })));
      }
      stats.sent += batch.length;
      batch = [];
      res.write(`id: ${++id}\nevent: trace\ndata: ${text}\n\n`);
    }
    if (dropped > 0) {
      res.write(`event: dropped\ndata: ${dropped}\n\n`);
      dropped = 0;
    }
  };
  const timer = setInterval(flush, limits.flushMs);
  stats.watchers++;
  const detach = tracer.attach(sink);
  res.once('close', () => {
    clearInterval(timer);
    detach();
    stats.watchers--;
  });
}
