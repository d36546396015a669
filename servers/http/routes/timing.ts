import { createHash, randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { sleep } from '../../../core/time.ts';
import { headerValue, json, send, type Ctx } from '../context.ts';
import { HttpError } from '../limits.ts';
import { byteRangesBody, parseRanges, type ByteRange } from '../range.ts';
import type { Router } from '../router.ts';

function seconds(ctx: Ctx, raw: string | null | undefined, fallback: number): number {
  const s = raw === null || raw === undefined ? fallback : Number(raw);
  if (!(s >= 0) || s > ctx.state.options.maxDelaySeconds) {
    throw new HttpError(400, `seconds must be 0..maxDelaySeconds=${ctx.state.options.maxDelaySeconds}`);
  }
  return s;
}

function sizeParam(ctx: Ctx, raw: string | undefined | null): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > ctx.state.options.maxGeneratedBytes) {
    throw new HttpError(400, `size must be 0..maxGeneratedBytes=${ctx.state.options.maxGeneratedBytes}`);
  }
  return n;
}

/** Deterministic bytes (a pattern seeded by `seed`), so a client can check a Range against the whole. */
export function patternBytes(start: number, end: number, seed = 0): Buffer {
  const buf = Buffer.allocUnsafe(end - start);
  for (let i = 0; i < buf.length; i++) buf[i] = ((start + i) * 31 + seed) & 0xff;
  return buf;
}

/** Writes pattern bytes [start, end) in 64 KiB pieces, respecting back-pressure; false when the client went away. */
async function writePattern(res: ServerResponse, start: number, end: number, seed: number): Promise<boolean> {
  let at = start;
  while (at < end) {
    if (res.destroyed) return false;
    const next = Math.min(end, at + 65536);
    const ok = res.write(patternBytes(at, next, seed));
    at = next;
    if (!ok) {
      const drained = await new Promise<boolean>((resolve) => {
        const done = (v: boolean) => (): void => {
          res.off('drain', onDrain);
          res.off('close', onClose);
          resolve(v);
        };
        const onDrain = done(true);
        const onClose = done(false);
        res.once('drain', onDrain);
        res.once('close', onClose);
      });
      if (!drained) return false;
    }
  }
  return true;
}

/**
 * The body of /bytes: the whole pattern, one range, or several as multipart/byteranges (RFC 9110 section 14.6). A
 * HEAD gets the same headers and no body.
 */
async function sendPattern(ctx: Ctx, status: number, headers: Record<string, string>, size: number, seed: number, ranges?: ByteRange[]): Promise<void> {
  const res = ctx.res as ServerResponse;
  const head = ctx.method === 'HEAD';
  if (!ranges) {
    res.writeHead(status, { ...headers, 'content-length': size });
    if (!head && !(await writePattern(res, 0, size, seed))) return;
  } else if (ranges.length === 1) {
    const r = ranges[0]!;
    res.writeHead(status, { ...headers, 'content-range': `bytes ${r.start}-${r.end - 1}/${size}`, 'content-length': r.end - r.start });
    if (!head && !(await writePattern(res, r.start, r.end, seed))) return;
  } else {
    const body = byteRangesBody(ranges, size, headers['content-type'] ?? 'application/octet-stream');
    res.writeHead(status, { ...headers, 'content-type': body.contentType, 'content-length': body.contentLength });
    if (!head) {
      for (const [i, r] of ranges.entries()) {
        res.write(body.heads[i]);
        if (!(await writePattern(res, r.start, r.end, seed))) return;
      }
      res.write(body.tail);
    }
  }
  res.end();
}

/** /delay, /drip, /stream, /bytes with Range. */
export function registerTiming(router: Router): void {
  router.add(['GET', 'POST', 'PUT', 'PATCH', 'DELETE'], '/delay/:s', async (ctx) => {
    const s = seconds(ctx, ctx.params[0], 0);
    await sleep(s * 1000, ctx.signal);
    json(ctx, 200, { delayed: s, url: ctx.url.href });
  });

  // /drip?numbytes=10&duration=2&delay=0&code=200: numbytes '*' spread over duration seconds.
  router.add('GET', '/drip', async (ctx) => {
    const q = ctx.url.searchParams;
    const n = sizeParam(ctx, q.get('numbytes') ?? '10');
    const duration = seconds(ctx, q.get('duration'), 2);
    const delay = seconds(ctx, q.get('delay'), 0);
    const status = Number(q.get('code') ?? 200);
    if (n > 10_000) throw new HttpError(400, 'drip sends at most 10000 bytes');
    await sleep(delay * 1000, ctx.signal);
    const res = ctx.res as ServerResponse;
    res.writeHead(status, { 'content-type': 'application/octet-stream', 'content-length': n });
    const gap = n > 0 ? (duration * 1000) / n : 0;
    for (let i = 0; i < n && !res.destroyed; i++) {
      res.write('*');
      if (i < n - 1) await sleep(gap, ctx.signal);
    }
    res.end();
  });

  // /stream/:n: n JSON lines, each its own chunk.
  router.add('GET', '/stream/:n', async (ctx) => {
    const n = Number(ctx.params[0]);
    if (!Number.isInteger(n) || n < 0 || n > 1000) throw new HttpError(400, 'n must be 0..1000');
    const res = ctx.res as ServerResponse;
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    for (let i = 0; i < n && !res.destroyed; i++) {
      if (!res.write(JSON.stringify({ id: i, url: ctx.url.href }) + '\n')) await new Promise((r) => res.once('drain', r));
    }
    res.end();
  });

  // /bytes/:n?seed=s: n deterministic bytes; honours Range (206, Content-Range) and says so (Accept-Ranges).
  router.add('GET', '/bytes/:n', async (ctx) => {
    const size = sizeParam(ctx, ctx.params[0]);
    const seed = Number(ctx.url.searchParams.get('seed') ?? 0) & 0xff;
    const etag = `"bytes-${size}-${seed}"`;
    const range = parseRanges(headerValue(ctx.req, 'range'), size, ctx.state.options.maxRanges);
    const ifRange = headerValue(ctx.req, 'if-range');
    const common = { 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream', etag };
    if (range.kind !== 'ignore' || range.reason !== 'no Range') {
      ctx.state.tracer.emit('http', ctx.cid, '*', 'range', () =>
        range.kind === 'ranges' ? `${range.ranges.length} range(s) of ${size} B` : range.kind === 'unsatisfiable' ? `no range satisfiable in ${size} B: 416` : `Range ignored (${range.reason}): 200`,
      );
    }
    // If-Range with another validator: the representation changed, so the whole of it (RFC 9110 section 13.1.5).
    if (range.kind === 'ignore' || (ifRange !== undefined && ifRange !== etag)) {
      await sendPattern(ctx, 200, common, size, seed);
      return;
    }
    if (range.kind === 'unsatisfiable') {
      send(ctx, 416, '', { ...common, 'content-range': `bytes */${size}` });
      return;
    }
    await sendPattern(ctx, 206, common, size, seed, range.ranges);
  });

  // /base64/:value decodes; /uuid for a quick unique value.
  router.add('GET', '/uuid', (ctx) => json(ctx, 200, { uuid: randomUUID() }));
  router.add('GET', '/sha256/:n', (ctx) => {
    const n = sizeParam(ctx, ctx.params[0]);
    json(ctx, 200, { bytes: n, sha256: createHash('sha256').update(patternBytes(0, n)).digest('hex') });
  });
}
