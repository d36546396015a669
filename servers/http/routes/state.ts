import { createHash, timingSafeEqual } from 'node:crypto';
import { headerValue, json, problem, readBody, send, type Ctx } from '../context.ts';
import { HttpError } from '../limits.ts';
import type { Router } from '../router.ts';

export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    out[part.slice(0, eq).trim()] = decodeURIComponent(part.slice(eq + 1).trim());
  }
  return out;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The Basic credentials of a request, or null. */
export function basicCredentials(ctx: Ctx): { user: string; pass: string } | null {
  const auth = headerValue(ctx.req, 'authorization');
  const m = auth ? /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(auth) : null;
  if (!m) return null;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon === -1 ? null : { user: decoded.slice(0, colon), pass: decoded.slice(colon + 1) };
}

const REALM = 'Basic realm="wirelab", charset="UTF-8"';

/** Cookies, Basic and Bearer auth, /admin (401 vs 403), conditional GET, and the /resources collection. */
export function registerState(router: Router): void {
  router.add('GET', '/cookies', (ctx) => json(ctx, 200, { cookies: parseCookies(headerValue(ctx.req, 'cookie')) }));
  router.add('GET', '/cookies/set', (ctx) => {
    const set: string[] = [];
    for (const [k, v] of ctx.url.searchParams) {
      if (!TOKEN.test(k)) throw new HttpError(400, `cookie name "${k}" is not a token`);
      set.push(`${k}=${encodeURIComponent(v)}; Path=/; HttpOnly; SameSite=Lax`);
    }
    send(ctx, 302, '', { location: '/cookies', 'set-cookie': set });
  });
  router.add('GET', '/cookies/delete', (ctx) => {
    const set = [...ctx.url.searchParams.keys()].filter((k) => TOKEN.test(k)).map((k) => `${k}=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT`);
    send(ctx, 302, '', { location: '/cookies', 'set-cookie': set });
  });

  router.add('GET', '/basic-auth/:user/:pass', (ctx) => {
    const c = basicCredentials(ctx);
    if (!c) return problem(ctx, 401, 'no Basic credentials', { 'www-authenticate': REALM });
    if (!sameSecret(c.user, ctx.params[0]!) || !sameSecret(c.pass, ctx.params[1]!)) {
      return problem(ctx, 401, 'wrong user or password', { 'www-authenticate': REALM });
    }
    json(ctx, 200, { authenticated: true, user: c.user });
  });
  router.add('GET', '/bearer', (ctx) => {
    const auth = headerValue(ctx.req, 'authorization');
    const m = auth ? /^Bearer\s+(\S+)$/i.exec(auth) : null;
    if (!m) return problem(ctx, 401, 'no Bearer token', { 'www-authenticate': 'Bearer realm="wirelab"' });
    if (!ctx.state.options.bearerTokens.some((t) => sameSecret(t, m[1]!))) {
      return problem(ctx, 401, 'unknown token', { 'www-authenticate': 'Bearer realm="wirelab", error="invalid_token"' });
    }
    json(ctx, 200, { authenticated: true, token: 'accepted' });
  });
  // 401 = who are you? 403 = we know who you are, and the answer is still no.
  router.add('GET', '/admin', (ctx) => {
    const c = basicCredentials(ctx);
    const users = ctx.state.options.users;
    const known = c !== null && Object.hasOwn(users, c.user) && sameSecret(users[c.user]!, c.pass);
    if (!known) return problem(ctx, 401, c ? 'wrong user or password' : 'log in first', { 'www-authenticate': REALM });
    if (c.user !== 'admin') return problem(ctx, 403, `user "${c.user}" is authenticated but not allowed here`);
    json(ctx, 200, { dashboard: 'admin', user: c.user });
  });

  // Conditional GET: the classic HTTP lab. ETag from the body, Last-Modified = server start.
  const cached = (ctx: Ctx, maxAge: number | null): void => {
    const body = JSON.stringify({ resource: 'cache', startedAt: ctx.state.startedAt.toISOString() }) + '\n';
    const etag = `"${createHash('sha1').update(body).digest('base64url').slice(0, 16)}"`;
    const lastModified = ctx.state.startedAt.toUTCString();
    const headers: Record<string, string> = {
      etag,
      'last-modified': lastModified,
      'cache-control': maxAge === null ? 'no-cache' : `public, max-age=${maxAge}`,
    };
    const inm = headerValue(ctx.req, 'if-none-match');
    const ims = headerValue(ctx.req, 'if-modified-since');
    // If-None-Match wins over If-Modified-Since when both are there (RFC 9110 13.2.2).
    const notModified = inm !== undefined ? inm.split(',').some((t) => t.trim() === etag || t.trim() === '*' || t.trim() === `W/${etag}`)
      : ims !== undefined && Date.parse(ims) >= Math.floor(ctx.state.startedAt.getTime() / 1000) * 1000;
    if (notModified) {
      (ctx.res as import('node:http').ServerResponse).writeHead(304, headers);
      ctx.res.end();
      return;
    }
    send(ctx, 200, body, { ...headers, 'content-type': 'application/json' });
  };
  router.add('GET', '/cache', (ctx) => cached(ctx, null));
  router.add('GET', '/cache/:seconds', (ctx) => {
    const s = Number(ctx.params[0]);
    if (!Number.isInteger(s) || s < 0) throw new HttpError(400, 'seconds must be a whole number');
    cached(ctx, s);
  });
  router.add('GET', '/etag/:etag', (ctx) => {
    const etag = `"${ctx.params[0]}"`;
    const inm = headerValue(ctx.req, 'if-none-match');
    if (inm && inm.split(',').some((t) => t.trim() === etag || t.trim() === '*')) {
      (ctx.res as import('node:http').ServerResponse).writeHead(304, { etag });
      ctx.res.end();
      return;
    }
    json(ctx, 200, { etag: ctx.params[0] }, { etag });
  });

  // /resources: POST adds (201, Location), PUT replaces or creates (201 then 200), PATCH merges, DELETE (204 then 404).
  const store = (ctx: Ctx): Map<string, unknown> => ctx.state.resources;
  const bodyJson = async (ctx: Ctx): Promise<unknown> => {
    const raw = await readBody(ctx);
    try {
      return raw.length === 0 ? null : JSON.parse(raw.toString('utf8'));
    } catch {
      throw new HttpError(400, 'the body is not valid JSON');
    }
  };
  router.add('GET', '/resources', (ctx) => json(ctx, 200, Object.fromEntries(store(ctx))));
  router.add('POST', '/resources', async (ctx) => {
    const value = await bodyJson(ctx);
    const id = String(ctx.state.nextResourceId++);
    store(ctx).set(id, value);
    json(ctx, 201, { id, value }, { location: `/resources/${id}` });
  });
  router.add('GET', '/resources/:id', (ctx) => {
    const id = ctx.params[0]!;
    if (!store(ctx).has(id)) return problem(ctx, 404, `no resource ${id}`);
    json(ctx, 200, store(ctx).get(id));
  });
  router.add('PUT', '/resources/:id', async (ctx) => {
    const id = ctx.params[0]!;
    const value = await bodyJson(ctx);
    const existed = store(ctx).has(id);
    store(ctx).set(id, value);
    json(ctx, existed ? 200 : 201, { id, value }, existed ? {} : { location: `/resources/${id}` });
  });
  router.add('PATCH', '/resources/:id', async (ctx) => {
    const id = ctx.params[0]!;
    if (!store(ctx).has(id)) return problem(ctx, 404, `no resource ${id}`);
    const patch = await bodyJson(ctx);
    const old = store(ctx).get(id);
    if (typeof patch !== 'object' || patch === null || typeof old !== 'object' || old === null) {
      throw new HttpError(400, 'PATCH merges a JSON object into a JSON object');
    }
    const merged = { ...old, ...patch };
    store(ctx).set(id, merged);
    json(ctx, 200, { id, value: merged });
  });
  router.add('DELETE', '/resources/:id', (ctx) => {
    const id = ctx.params[0]!;
    if (!store(ctx).delete(id)) return problem(ctx, 404, `no resource ${id}`);
    send(ctx, 204, '');
  });
}
