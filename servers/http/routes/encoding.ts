import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { headerValue, send, type Ctx } from '../context.ts';
import { describeRequest } from './echo.ts';
import type { Router } from '../router.ts';

export type Coding = 'br' | 'gzip' | 'deflate' | 'identity';
const ENCODERS: Record<Exclude<Coding, 'identity'>, (b: Buffer) => Buffer> = { br: brotliCompressSync, gzip: gzipSync, deflate: deflateSync };

/** The coding to use for an Accept-Encoding value, by q-value then server preference (br, gzip, deflate). */
export function negotiateEncoding(accept: string | undefined): Coding {
  if (!accept) return 'identity';
  const q = new Map<string, number>();
  for (const part of accept.split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    const qp = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    q.set(name!, qp ? Number(qp.slice(2)) : 1);
  }
  const score = (c: string): number => q.get(c) ?? q.get('*') ?? 0;
  let best: Coding = 'identity';
  let bestQ = 0;
  for (const c of ['br', 'gzip', 'deflate'] as const) {
    if (score(c) > bestQ) {
      best = c;
      bestQ = score(c);
    }
  }
  return best;
}

async function compressed(ctx: Ctx, coding: Coding): Promise<void> {
  const info = await describeRequest(ctx, false);
  const body = Buffer.from(JSON.stringify({ ...info, [coding]: true }, null, 2) + '\n');
  const headers = { 'content-type': 'application/json', vary: 'Accept-Encoding' };
  if (coding === 'identity') return send(ctx, 200, body, headers);
  send(ctx, 200, ENCODERS[coding](body), { ...headers, 'content-encoding': coding });
}

/** Largest text /compressible/:kb makes, in KiB; past it: 400. */
export const MAX_COMPRESSIBLE_KB = 1024;

/**
 * `kb` KiB of a web server's access log (deterministic: the same bytes every time), the kind of text compression is
 * made for: repeated words, numbers that differ a little from line to line.
 */
export function accessLogText(kb: number): Buffer {
  const paths = ['/', '/index.html', '/style.css', '/app.js', '/api/items', '/api/items/42', '/img/logo.png', '/login'];
  const agents = ['Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0', 'curl/8.5.0', 'Mozilla/5.0 (Macintosh) Safari/605.1.15'];
  const lines: string[] = [];
  let size = 0;
  for (let i = 0; size < kb * 1024; i++) {
    const line = `127.0.0.${(i * 7) % 250} - - [01/Dec/2026:10:${String(Math.floor(i / 60) % 60).padStart(2, '0')}:${String(i % 60).padStart(2, '0')} +0000] "GET ${paths[(i * 5) % paths.length]} HTTP/1.1" ${i % 13 === 0 ? 404 : 200} ${(i * 7919) % 50_000} "-" "${agents[i % agents.length]}"\n`;
    lines.push(line);
    size += line.length;
  }
  return Buffer.from(lines.join('')).subarray(0, kb * 1024);
}

/** /gzip, /deflate, /brotli always use that coding; /compressed negotiates from Accept-Encoding, as does /compressible/:kb. */
export function registerEncoding(router: Router): void {
  router.add('GET', '/gzip', (ctx) => compressed(ctx, 'gzip'));
  router.add('GET', '/deflate', (ctx) => compressed(ctx, 'deflate'));
  router.add('GET', '/brotli', (ctx) => compressed(ctx, 'br'));
  router.add('GET', '/compressed', (ctx) => compressed(ctx, negotiateEncoding(headerValue(ctx.req, 'accept-encoding'))));
  // A bigger resource than the request echo above: `kb` KiB of log text, encoded as Accept-Encoding asks.
  router.add('GET', '/compressible/:kb', (ctx) => {
    const kb = Number(ctx.params[0]);
    if (!Number.isInteger(kb) || kb < 1 || kb > MAX_COMPRESSIBLE_KB) {
      return send(ctx, 400, `kb must be an integer from 1 to ${MAX_COMPRESSIBLE_KB} (MAX_COMPRESSIBLE_KB)\n`, { 'content-type': 'text/plain' });
    }
    const body = accessLogText(kb);
    const coding = negotiateEncoding(headerValue(ctx.req, 'accept-encoding'));
    const headers = { 'content-type': 'text/plain; charset=utf-8', vary: 'Accept-Encoding' };
    if (coding === 'identity') return send(ctx, 200, body, headers);
    send(ctx, 200, ENCODERS[coding](body), { ...headers, 'content-encoding': coding });
  });
}
