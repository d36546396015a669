import { defineLab } from '../core/lab/index.ts';
import { createHttpClient } from '../clients/http.ts';
import { startHttpServer } from '../servers/http/index.ts';
import { r2, summarize } from './_stats.ts';

const REQUESTS = 100;

export default defineLab({
  id: 'http-stateless',
  title: 'HTTP remembers nothing between requests',
  concept: 'Each request stands alone: state comes back only because the client sends a cookie; a kept-alive connection saves the handshake, not state.',
  protocols: ['http'],
  timeoutMs: 60_000,
  async run(ctx) {
    const server = await ctx.start(startHttpServer({ tracer: ctx.tracer }));
    const keep = await createHttpClient({ tracer: ctx.tracer });
    const fresh = await createHttpClient({ tracer: ctx.tracer, keepAlive: false });
    ctx.defer(() => Promise.all([keep.close(), fresh.close()]));
    const cookies = (r: { json<T>(): T }): Record<string, string> => r.json<{ cookies: Record<string, string> }>().cookies;

    // 1. Two requests share nothing until a cookie is set, and the cookie is the client's to send.
    const first = await keep.request(`${server.url}/cookies`);
    const set = await keep.request(`${server.url}/cookies/set?session=abc123`);
    const setCookie = ([] as string[]).concat(set.headers['set-cookie'] ?? []);
    const sameConnNoCookie = await keep.request(`${server.url}/cookies`);
    const cookie = setCookie[0]?.split(';')[0] ?? '';
    const newConnWithCookie = await fresh.request(`${server.url}/cookies`, { headers: { cookie } });
    ctx.table('state is what the client sends back', ['request', 'connection', 'Cookie sent', 'server saw'], [
      ['GET /cookies', first.reusedConnection ? 'reused' : 'new', '-', JSON.stringify(cookies(first))],
      ['GET /cookies/set?session=abc123', set.reusedConnection ? 'reused' : 'new', '-', `302, Set-Cookie: ${cookie}`],
      ['GET /cookies', sameConnNoCookie.reusedConnection ? 'reused' : 'new', '-', JSON.stringify(cookies(sameConnNoCookie))],
      ['GET /cookies', newConnWithCookie.reusedConnection ? 'reused' : 'new', cookie, JSON.stringify(cookies(newConnWithCookie))],
    ]);
    ctx.claim('before any cookie, the server knows nothing of the client', Object.keys(cookies(first)).length === 0, JSON.stringify(cookies(first)));
    ctx.claim('on the same kept-alive connection, without the cookie, the server still knows nothing: the connection is not a session',
      sameConnNoCookie.reusedConnection && Object.keys(cookies(sameConnNoCookie)).length === 0, `reused connection: ${sameConnNoCookie.reusedConnection}, cookies seen: ${JSON.stringify(cookies(sameConnNoCookie))}`);
    ctx.claim('on a brand-new connection, with the cookie, the server knows the session: state travels in every request',
      !newConnWithCookie.reusedConnection && cookies(newConnWithCookie).session === 'abc123', JSON.stringify(cookies(newConnWithCookie)));

    // 2. Keep-alive versus a new connection per request: connections opened, time per request.
    // The two clients take turns, one request each, so a burst of load on this machine lands on both alike.
    const run = async (): Promise<Array<{ opened: number; ms: number[] }>> => {
      const clients = [keep, fresh];
      const before = clients.map((c) => c.stats.connectionsOpened);
      const ms: number[][] = [[], []];
      for (let i = 0; i < REQUESTS; i++) {
        for (const [k, c] of clients.entries()) ms[k]!.push((await c.request(`${server.url}/hello`)).timing.doneMs);
      }
      return clients.map((c, k) => ({ opened: c.stats.connectionsOpened - before[k]!, ms: ms[k]! }));
    };
    const serverBefore = server.stats.connections;
    await run(); // warm-up: the JIT, the pools
    const [a, b] = (await run()) as [{ opened: number; ms: number[] }, { opened: number; ms: number[] }];
    const sa = summarize(a.ms);
    const sb = summarize(b.ms);
    ctx.table(`${REQUESTS} GET /hello, one after another`, ['client', 'connections opened', 'p50 ms / request', 'p90 ms', 'mean ms'], [
      ['keep-alive', a.opened, r2(sa.p50), r2(sa.p90), r2(sa.mean)],
      ['new connection each time (Connection: close)', b.opened, r2(sb.p50), r2(sb.p90), r2(sb.mean)],
    ]);
    ctx.measure('new connection / keep-alive, median time per request', r2(sb.p50 / sa.p50), 'x');
    ctx.claim(`keep-alive sent ${REQUESTS} requests over at most one new connection`, a.opened <= 1, `${a.opened} opened`);
    ctx.claim(`without keep-alive every request opened its own connection`, b.opened === REQUESTS, `${b.opened} opened`);
    ctx.claim('the server counted the connections the clients opened', server.stats.connections - serverBefore >= b.opened + a.opened, `${server.stats.connections - serverBefore} accepted`);
    ctx.claim('a request on a kept-alive connection is faster (median): no TCP handshake, no accept', sa.p50 < sb.p50, `${r2(sa.p50)} ms vs ${r2(sb.p50)} ms`);
  },
});
