import { send, type Ctx } from '../context.ts';
import { HttpError } from '../limits.ts';
import type { Router } from '../router.ts';

export const REDIRECT_CODES = [301, 302, 303, 307, 308];

function hops(ctx: Ctx): number {
  const n = Number(ctx.params[0]);
  const max = ctx.state.options.maxRedirectHops;
  if (!Number.isInteger(n) || n < 1 || n > max) throw new HttpError(400, `hops must be 1..${max}`);
  return n;
}

function code(ctx: Ctx, fallback: number): number {
  const raw = ctx.url.searchParams.get('status') ?? ctx.url.searchParams.get('status_code');
  const c = raw === null ? fallback : Number(raw);
  if (!REDIRECT_CODES.includes(c)) throw new HttpError(400, `redirect status must be one of ${REDIRECT_CODES.join(', ')}`);
  return c;
}

/** Redirect chains of n hops, relative or absolute, ending at /anything; and /redirect-to for any target. */
export function registerRedirects(router: Router): void {
  const chain = (absolute: boolean) => (ctx: Ctx) => {
    const n = hops(ctx);
    const status = code(ctx, 302);
    const qs = ctx.url.search;
    const base = ctx.url.pathname.split('/')[1];
    const next = n === 1 ? `/anything${qs}` : `/${base}/${n - 1}${qs}`;
    send(ctx, status, '', { location: absolute ? new URL(next, ctx.state.origin).href : next });
  };
  router.add('*', '/redirect/:n', chain(false));
  router.add('*', '/relative-redirect/:n', chain(false));
  router.add('*', '/absolute-redirect/:n', chain(true));
  router.add('*', '/redirect-to', (ctx) => {
    const url = ctx.url.searchParams.get('url');
    if (!url) throw new HttpError(400, 'redirect-to needs ?url=');
    send(ctx, code(ctx, 302), '', { location: url });
  });
}
