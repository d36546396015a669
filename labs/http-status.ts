import { defineLab } from '../core/lab/index.ts';
import { createHttpClient, type HttpResponse } from '../clients/http.ts';
import { startHttpServer } from '../servers/http/index.ts';
import { rawExchange, rawHeader } from './_raw-http.ts';

const basic = (user: string, pass: string): string => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

export default defineLab({
  id: 'http-status',
  title: 'Every status code of the table, each from its real cause',
  concept: 'A status code is the server telling the client what happened and what to do next; none here comes from /status.',
  protocols: ['http'],
  timeoutMs: 60_000,
  async run(ctx) {
    const tracer = ctx.tracer;
    const main = await ctx.start(startHttpServer({ tracer, requestTimeoutMs: 600, gatewayTimeoutMs: 300 }));
    // Small limits on servers of their own, so one cause does not spill into another's numbers.
    const rated = await ctx.start(startHttpServer({ tracer, rateLimitBurst: 3, rateLimitPerSecond: 1 }));
    const untilActive = async (n: number): Promise<boolean> => {
      for (let i = 0; i < 200 && busy.active < n; i++) await new Promise((r) => setTimeout(r, 5));
      return busy.active >= n;
    };
    const busy = await ctx.start(startHttpServer({ tracer, maxConcurrentRequests: 1 }));
    const client = await createHttpClient({ tracer });
    const follower = await createHttpClient({ tracer, maxRedirections: 5 });
    const polite = await createHttpClient({ tracer, retry: { statuses: [429, 503], maxRetries: 2, maxWaitMs: 3000 } });
    ctx.defer(() => Promise.all([client.close(), follower.close(), polite.close()]));

    const rows: Array<Array<string | number>> = [];
    const check = (code: number, got: number, cause: string, header: string, next: string, extra = true, evidence = ''): void => {
      rows.push([code, cause, header, next]);
      ctx.claim(`${code}: ${cause}`, got === code && extra, evidence || `got ${got}${header !== '-' ? `, ${header}` : ''}`);
    };
    const h = (r: HttpResponse, name: string): string => `${name}: ${String(r.headers[name.toLowerCase()] ?? '(none)')}`;

    // 100: the client asks before sending the body; the server says go on, then answers the request.
    const cont = await rawExchange(main.port, ['POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n', 'hello'], { gapMs: 100, waitMs: 2000 });
    check(100, cont.statuses[0] ?? 0, 'the client sent Expect: 100-continue and waited before the body', 'Expect: 100-continue', 'send the body (the final answer follows)',
      cont.statuses[1] === 200, `status lines in order: ${cont.statuses.join(', ')}`);

    const ok = await client.request(`${main.url}/anything`);
    check(200, ok.status, 'a GET of a resource that exists', h(ok, 'Content-Type'), 'use the body');

    await client.request(`${main.url}/resources/gone`, { method: 'PUT', body: '{}' });
    const deleted = await client.request(`${main.url}/resources/gone`, { method: 'DELETE' });
    check(204, deleted.status, 'a DELETE that worked: nothing left to show', `Content-Length: ${deleted.headers['content-length'] ?? '(none)'}`, 'nothing to read', deleted.bodyBytes === 0);

    const moved = await follower.request(`${main.url}/docs`);
    const hop = moved.hops[0];
    check(301, hop?.status ?? moved.status, 'a folder URL without its trailing slash moved for good', `Location: ${hop ? new URL(hop.location).pathname : '(none)'}`,
      'undici followed it (and may cache it)', moved.status === 200 && moved.url.endsWith('/docs/'), `hop ${hop?.status} → ${moved.url} ${moved.status}`);

    const bad = await client.request(`${main.url}/resources`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name": ' });
    check(400, bad.status, 'a POST whose JSON body is cut short', h(bad, 'Content-Type'), 'fix the request; resending it unchanged fails again');

    const anon = await client.request(`${main.url}/admin`);
    check(401, anon.status, '/admin without credentials', h(anon, 'WWW-Authenticate'), 'ask the user to log in, resend with Authorization', String(anon.headers['www-authenticate']).startsWith('Basic'));

    const guest = await client.request(`${main.url}/admin`, { headers: { authorization: basic('guest', 'guest') } });
    const admin = await client.request(`${main.url}/admin`, { headers: { authorization: basic('admin', 'admin') } });
    check(403, guest.status, '/admin with valid credentials of a user who is not admin', 'no WWW-Authenticate: logging in again will not help', 'stop; do not retry',
      guest.headers['www-authenticate'] === undefined && admin.status === 200, `guest ${guest.status}, admin ${admin.status}`);

    const missing = await client.request(`${main.url}/no/such/page`);
    check(404, missing.status, 'a path no route serves', '-', 'do not retry; check the URL');

    const wrong = await client.request(`${main.url}/headers`, { method: 'POST', body: 'x' });
    check(405, wrong.status, 'POST to /headers, which serves only GET', h(wrong, 'Allow'), 'use a method from Allow', String(wrong.headers.allow).includes('GET'));

    // 408: headers started and never finished (slowloris): the server stops waiting after requestTimeoutMs.
    const slow = await rawExchange(main.port, ['GET /anything HTTP/1.1\r\nHost: x\r\n'], { waitMs: 3000 });
    check(408, slow.statuses[0] ?? 0, 'the request did not arrive within requestTimeoutMs=600', `Connection: ${rawHeader(slow.text, 'connection') ?? '(none)'}`,
      'open a new connection and send it faster', slow.closedByServer, `${slow.statuses[0]} after ${slow.ms} ms, then the server closed`);

    // 429: a burst past the client's token bucket; a polite client waits Retry-After and gets through. The bucket
    // refills while the burst runs, so the requests are sent until the first 429 and their count is checked against
    // the tokens that can have been there: the burst, plus one per second the burst took.
    const BURST = 3;
    const burst: number[] = [];
    let limited: HttpResponse | undefined;
    const burstStarted = performance.now();
    for (let i = 0; i < 10 && !limited; i++) {
      const r = await client.request(`${rated.url}/hello`);
      burst.push(r.status);
      if (r.status === 429) limited = r;
    }
    const burstSeconds = (performance.now() - burstStarted) / 1000;
    const admitted = burst.filter((x) => x === 200).length;
    const backedOff = await polite.request(`${rated.url}/hello`);
    check(429, limited?.status ?? 0, `requests in a row against a bucket of ${BURST} tokens, refilled at 1/s`, limited ? h(limited, 'Retry-After') : 'Retry-After: (none)',
      `wait Retry-After, then retry: the polite client got ${backedOff.status} after ${backedOff.retries.map((x) => `${x.status} + ${x.waitedMs} ms`).join(', ') || 'no wait'}`,
      limited?.headers['retry-after'] !== undefined && backedOff.status === 200 && admitted >= BURST && admitted <= BURST + Math.ceil(burstSeconds),
      `burst: ${burst.join(' ')} (${admitted} admitted in ${burstSeconds.toFixed(2)} s: at most ${BURST} + 1 per second)`);

    const boom = await client.request(`${main.url}/boom`);
    const after = await client.request(`${main.url}/hello`);
    check(500, boom.status, 'a handler that throws', '-', 'report it; the server kept serving', after.status === 200, `${boom.status}, then /hello ${after.status}`);

    // 503: the only slot is held by a slow request (1 s); the next one, sent once the server reports the slot taken, is
    // turned away with Retry-After, and the claim checks the holder was still running when that answer came.
    let holderDone = false;
    const holder = client.request(`${busy.url}/delay/1`).finally(() => (holderDone = true));
    const held = await untilActive(1);
    const turned = await client.request(`${busy.url}/hello`);
    const stillHeld = !holderDone;
    const retried = await polite.request(`${busy.url}/hello`);
    await holder;
    check(503, turned.status, 'maxConcurrentRequests=1 and a slow request holds the slot', h(turned, 'Retry-After'),
      `back off for Retry-After: the polite client got ${retried.status}${retried.retries.length ? ` after waiting ${retried.retries.map((x) => x.waitedMs).join(' + ')} ms` : ''}`,
      held && stillHeld && turned.headers['retry-after'] !== undefined && retried.status === 200,
      `got ${turned.status} while the slow request still held the slot: ${stillHeld}`);

    const fast = await client.request(`${main.url}/gateway?delay=10`);
    const timedOut = await client.request(`${main.url}/gateway?delay=2000`);
    check(504, timedOut.status, 'the gateway\'s upstream took 2000 ms, past gatewayTimeoutMs=300', '-', 'retry later, maybe elsewhere (the upstream is slow, not the gateway)',
      fast.status === 200 && timedOut.timing.doneMs < 1500, `fast upstream ${fast.status}; slow upstream ${timedOut.status} after ${Math.round(timedOut.timing.doneMs)} ms`);

    ctx.table('each status from its real cause', ['code', 'cause', 'the header that matters', 'what a well-behaved client does next'], rows);
    const counted = [main, rated, busy].map((s) => s.stats.statuses);
    const seen = new Set(counted.flatMap((c) => Object.keys(c).map(Number)));
    ctx.claim('the servers themselves counted every final code of the table', [200, 204, 301, 400, 401, 403, 404, 405, 408, 429, 500, 503, 504].every((c) => seen.has(c)),
      [...seen].sort().join(' '));
  },
});
