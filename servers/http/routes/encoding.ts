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

/** /gzip, /deflate, /brotli always use that coding; /compressed negotiates from Accept-Encoding. */
export function registerEncoding(router: Router): void {
  router.add('GET', '/gzip', (ctx) => compressed(ctx, 'gzip'));
  router.add('GET', '/deflate', (ctx) => compressed(ctx, 'deflate'));
  router.add('GET', '/brotli', (ctx) => compressed(ctx, 'br'));
  router.add('GET', '/compressed', (ctx) => compressed(ctx, negotiateEncoding(headerValue(ctx.req, 'accept-encoding'))));
}
