import { clientAddress, json, problem, readBody, send, type Ctx } from '../context.ts';
import { HttpError } from '../limits.ts';
import type { Router } from '../router.ts';
import { INDEX_PAGE } from './index-page.ts';

/** What /anything echoes: the request as the server parsed it. */
export async function describeRequest(ctx: Ctx, withBody: boolean): Promise<Record<string, unknown>> {
  const body = withBody ? await readBody(ctx) : Buffer.alloc(0);
  const type = String(ctx.req.headers['content-type'] ?? '');
  const text = body.toString('utf8');
  let parsed: unknown = null;
  if (type.includes('json') && body.length > 0) {
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new HttpError(400, 'body is not valid JSON');
    }
  }
  return {
    method: ctx.method,
    url: ctx.url.href,
    path: ctx.url.pathname,
    args: Object.fromEntries(ctx.url.searchParams),
    headers: Object.fromEntries(Object.entries(ctx.req.headers).filter(([k]) => !k.startsWith(':'))),
    httpVersion: ctx.req.httpVersion,
    origin: clientAddress(ctx.req),
    data: text,
    json: parsed,
    form: type.includes('application/x-www-form-urlencoded') ? Object.fromEntries(new URLSearchParams(text)) : null,
  };
}

/** Picks a code from "200", "200,404" or weighted "200:3,500:1". */
export function pickStatus(spec: string, random = Math.random): number {
  const choices = spec.split(',').map((part) => {
    const [code, weight] = part.split(':');
    const c = Number(code);
    const w = weight === undefined ? 1 : Number(weight);
    if (!Number.isInteger(c) || c < 200 || c > 599 || !(w >= 0)) throw new HttpError(400, `bad status spec "${part}": codes 200-599, weights >= 0`);
    return { c, w };
  });
  const total = choices.reduce((s, x) => s + x.w, 0);
  if (total <= 0) throw new HttpError(400, 'the weights add up to 0');
  let r = random() * total;
  for (const x of choices) {
    if ((r -= x.w) < 0) return x.c;
  }
  return choices[choices.length - 1]!.c;
}

export function registerEcho(router: Router): void {
  router.add(['GET'], '/', (ctx) => send(ctx, 200, INDEX_PAGE, { 'content-type': 'text/html; charset=utf-8' }));
  router.add(['GET'], '/hello', (ctx) => send(ctx, 200, 'hello\n', { 'content-type': 'text/plain' }));
  const anything = async (ctx: Ctx): Promise<void> => json(ctx, 200, await describeRequest(ctx, ctx.method !== 'GET' && ctx.method !== 'HEAD'));
  router.add(['GET', 'POST', 'PUT', 'PATCH', 'DELETE'], '/anything', anything);
  router.add(['GET', 'POST', 'PUT', 'PATCH', 'DELETE'], '/anything/*', anything);
  // The body back as it came, with its Content-Type: the smallest round trip HTTP can make (the latency lab).
  router.add(['POST', 'PUT'], '/echo', async (ctx) => {
    const body = await readBody(ctx);
    send(ctx, 200, body, { 'content-type': String(ctx.req.headers['content-type'] ?? 'application/octet-stream') });
  });
  router.add('GET', '/headers', (ctx) => json(ctx, 200, { headers: ctx.req.headers }));
  router.add('GET', '/ip', (ctx) => json(ctx, 200, { origin: clientAddress(ctx.req) }));
  router.add('GET', '/user-agent', (ctx) => json(ctx, 200, { 'user-agent': ctx.req.headers['user-agent'] ?? null }));
  router.add(['GET', 'POST', 'PUT', 'PATCH', 'DELETE'], '/status/:codes', (ctx) => {
    const code = pickStatus(ctx.params[0]!);
    const headers: Record<string, string> = { 'x-wirelab-note': 'chosen by /status, not by a real cause' };
    if (code === 401) headers['www-authenticate'] = 'Basic realm="wirelab"';
    if (code >= 300 && code < 400 && code !== 304) headers.location = '/redirect/1';
    if (code === 429 || code === 503) headers['retry-after'] = '1';
    send(ctx, code, '', headers);
  });
  // A handler that throws: the server answers 500 and keeps serving.
  router.add('GET', '/boom', () => {
    throw new Error('boom: this handler throws on purpose');
  });
  // A folder's URL without its trailing slash moved permanently to the one with it: a real 301.
  router.add('GET', '/docs', (ctx) => send(ctx, 301, '', { location: '/docs/' }));
  router.add('GET', '/docs/', (ctx) => send(ctx, 200, '<!doctype html><title>docs</title><p>The docs moved here for good.</p>\n', { 'content-type': 'text/html; charset=utf-8' }));
  router.add('GET', '/json', (ctx) => json(ctx, 200, { slideshow: { title: 'wirelab', slides: [{ title: 'one' }, { title: 'two' }] } }));
  router.add('GET', '/robots.txt', (ctx) => send(ctx, 200, 'User-agent: *\nDisallow: /deny\n', { 'content-type': 'text/plain' }));
  router.add('GET', '/teapot', (ctx) => problem(ctx, 418, 'this server is a teapot'));
}
