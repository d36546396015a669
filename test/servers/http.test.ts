import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import { after, before, test } from 'node:test';
import { createHttpClient, type HttpClient } from '../../clients/http.ts';
import { createTracer, MemorySink } from '../../core/trace/index.ts';
import { startHttpServer, type RunningHttpServer } from '../../servers/http/index.ts';
import { patternBytes } from '../../servers/http/routes/timing.ts';
import { parseRanges } from '../../servers/http/range.ts';
import { negotiateEncoding } from '../../servers/http/routes/encoding.ts';
import { pickStatus } from '../../servers/http/routes/echo.ts';
import { TokenBuckets } from '../../servers/http/limits.ts';
import { startTcpServer, type RunningTcpServer } from '../../servers/tcp/index.ts';
import { rawExchange } from '../../labs/_raw-http.ts';

const sink = new MemorySink();
let server: RunningHttpServer;
let tls: RunningHttpServer;
let echo: RunningTcpServer;
let client: HttpClient;
let h2: HttpClient;

before(async () => {
  echo = await startTcpServer({ mode: 'echo', framing: 'line' });
  const tracer = createTracer([sink]);
  server = await startHttpServer({ tracer, connectTargets: [`localhost:${echo.port}`], gatewayTimeoutMs: 200 });
  tls = await startHttpServer({ tracer, tls: true });
  client = await createHttpClient({ tracer });
  h2 = await createHttpClient({ tracer, http2: true });
});
after(async () => {
  await client.close();
  await h2.close();
  await server.close();
  await tls.close();
  await echo.close();
});

test('/anything echoes method, args, headers and a JSON body', async () => {
  const r = await client.request(`${server.url}/anything/x?a=1`, { method: 'PATCH', headers: { 'content-type': 'application/json', 'x-t': 'y' }, body: '{"k":2}' });
  const j = r.json<{ method: string; args: Record<string, string>; headers: Record<string, string>; json: unknown; path: string }>();
  assert.equal(j.method, 'PATCH');
  assert.deepEqual(j.args, { a: '1' });
  assert.equal(j.headers['x-t'], 'y');
  assert.deepEqual(j.json, { k: 2 });
  assert.equal(j.path, '/anything/x');
});

test('redirect chains: relative and absolute, each hop visible; the status is kept', async () => {
  const follower = await createHttpClient({ maxRedirections: 10 });
  try {
    const rel = await follower.request(`${server.url}/redirect/3`);
    assert.equal(rel.status, 200);
    assert.deepEqual(rel.hops.map((h) => h.status), [302, 302, 302]);
    const abs = await follower.request(`${server.url}/absolute-redirect/2?status=308`);
    assert.deepEqual(abs.hops.map((h) => h.status), [308, 308]);
    assert.ok(abs.hops[0]!.location.startsWith('http://'));
    // 303 turns a POST into a GET; 307 keeps the POST.
    const see = await follower.request(`${server.url}/redirect-to?url=/anything&status_code=303`, { method: 'POST', body: 'x' });
    assert.equal(see.json<{ method: string }>().method, 'GET');
    const keep = await follower.request(`${server.url}/redirect-to?url=/anything&status_code=307`, { method: 'POST', body: 'x' });
    assert.equal(keep.json<{ method: string; data: string }>().method, 'POST');
  } finally {
    await follower.close();
  }
  const raw = await client.request(`${server.url}/redirect/1`);
  assert.equal(raw.status, 302);
  assert.equal(raw.headers.location, '/anything');
  assert.equal((await client.request(`${server.url}/redirect-to?url=/x&status_code=200`)).status, 400);
});

test('/bytes honours Range: 206 with Content-Range, 416 when unsatisfiable', async () => {
  const whole = await client.request(`${server.url}/bytes/1000?seed=7`);
  assert.equal(whole.headers['accept-ranges'], 'bytes');
  assert.deepEqual(whole.body, patternBytes(0, 1000, 7));
  const part = await client.request(`${server.url}/bytes/1000?seed=7`, { headers: { range: 'bytes=100-199' } });
  assert.equal(part.status, 206);
  assert.equal(part.headers['content-range'], 'bytes 100-199/1000');
  assert.deepEqual(part.body, whole.body.subarray(100, 200));
  const suffix = await client.request(`${server.url}/bytes/1000`, { headers: { range: 'bytes=-10' } });
  assert.equal(suffix.bodyBytes, 10);
  const bad = await client.request(`${server.url}/bytes/1000`, { headers: { range: 'bytes=5000-' } });
  assert.equal(bad.status, 416);
  assert.equal(bad.headers['content-range'], 'bytes */1000');
});

/** Splits a multipart/byteranges body into its parts: each part's Content-Range and bytes. */
function byteRangeParts(body: Buffer, contentType: string): Array<{ range: string; data: Buffer }> {
  const boundary = /boundary=([^;\s]+)/.exec(contentType)?.[1];
  assert.ok(boundary, contentType);
  const text = body.toString('latin1');
  const close = text.indexOf(`\r\n--${boundary}--\r\n`);
  assert.ok(close > 0, 'closing delimiter');
  assert.equal(close + `\r\n--${boundary}--\r\n`.length, text.length);
  return text
    .slice(0, close)
    .split(new RegExp(`(?:^|\r\n)--${boundary}\r\n`))
    .slice(1)
    .map((part) => {
      const [head, data] = [part.slice(0, part.indexOf('\r\n\r\n')), part.slice(part.indexOf('\r\n\r\n') + 4)];
      return { range: /^content-range: (.*)$/im.exec(head)![1]!, data: Buffer.from(data, 'latin1') };
    });
}

test('/bytes: several ranges get 206 multipart/byteranges; an unknown unit or a malformed set is ignored (200); 416 only when none is satisfiable', async () => {
  const whole = patternBytes(0, 1000, 3);
  const multi = await client.request(`${server.url}/bytes/1000?seed=3`, { headers: { range: 'bytes=0-0,5-9' } });
  assert.equal(multi.status, 206);
  assert.match(String(multi.headers['content-type']), /^multipart\/byteranges; boundary=/);
  assert.equal(Number(multi.headers['content-length']), multi.bodyBytes);
  assert.deepEqual(byteRangeParts(multi.body, String(multi.headers['content-type'])), [
    { range: 'bytes 0-0/1000', data: whole.subarray(0, 1) },
    { range: 'bytes 5-9/1000', data: whole.subarray(5, 10) },
  ]);
  // One satisfiable range among unsatisfiable ones: a single-part 206 for it.
  const one = await client.request(`${server.url}/bytes/1000?seed=3`, { headers: { range: 'bytes=5000-6000, 990-' } });
  assert.equal(one.status, 206);
  assert.equal(one.headers['content-range'], 'bytes 990-999/1000');
  assert.deepEqual(one.body, whole.subarray(990));
  for (const range of ['items=0-1', 'bytes=9-2', 'bytes=abc', 'bytes=,']) {
    const r = await client.request(`${server.url}/bytes/1000?seed=3`, { headers: { range } });
    assert.equal(r.status, 200, range);
    assert.deepEqual(r.body, whole, range);
  }
  const none = await client.request(`${server.url}/bytes/1000`, { headers: { range: 'bytes=1000-,2000-2001,-0' } });
  assert.equal(none.status, 416);
  assert.equal(none.headers['content-range'], 'bytes */1000');
  // HEAD: the same headers, no body.
  const head = await client.request(`${server.url}/bytes/1000`, { method: 'HEAD', headers: { range: 'bytes=0-0,5-9' } });
  assert.equal(head.status, 206);
  assert.equal(head.bodyBytes, 0);
  // If-Range with a stale validator: the whole body.
  const stale = await client.request(`${server.url}/bytes/1000?seed=3`, { headers: { range: 'bytes=0-0,5-9', 'if-range': '"old"' } });
  assert.equal(stale.status, 200);
  assert.equal(stale.bodyBytes, 1000);
  // Over HTTP/2 too.
  const viaH2 = await h2.request(`https://localhost:${tls.port}/bytes/100?seed=3`, { headers: { range: 'bytes=0-0,5-9' } });
  assert.equal(viaH2.status, 206);
  assert.equal(byteRangeParts(viaH2.body, String(viaH2.headers['content-type'])).length, 2);
  assert.ok(sink.events.some((e) => e.kind === 'range' && /Range ignored \(unknown range unit "items"\)/.test(e.summary)));
});

test('parseRanges: suffixes, open ends, list syntax, overlaps coalesced, maxRanges', () => {
  assert.deepEqual(parseRanges('bytes=0-0', 10, 16), { kind: 'ranges', ranges: [{ start: 0, end: 1 }] });
  assert.deepEqual(parseRanges('bytes=-3', 10, 16), { kind: 'ranges', ranges: [{ start: 7, end: 10 }] });
  assert.deepEqual(parseRanges('Bytes = 8- , ,1-2', 10, 16), { kind: 'ranges', ranges: [{ start: 8, end: 10 }, { start: 1, end: 3 }] });
  assert.deepEqual(parseRanges('bytes=0-,0-,0-', 10, 16), { kind: 'ranges', ranges: [{ start: 0, end: 10 }] });
  assert.deepEqual(parseRanges('bytes=4-6,0-4', 10, 16), { kind: 'ranges', ranges: [{ start: 0, end: 7 }] });
  assert.deepEqual(parseRanges('bytes=0-0', 0, 16), { kind: 'unsatisfiable' });
  assert.equal(parseRanges(undefined, 10, 16).kind, 'ignore');
  assert.equal(parseRanges('items=0-1', 10, 16).kind, 'ignore');
  assert.equal(parseRanges('bytes=0-0,2-2,4-4', 10, 2).kind, 'ignore');
});

test('maxRanges is checked when the server is built', async () => {
  await assert.rejects(startHttpServer({ maxRanges: 0 }), { code: 'WL_ERR_INVALID_OPTION' });
});

test('cookies are set and deleted with Set-Cookie; the server keeps none', async () => {
  const set = await client.request(`${server.url}/cookies/set?a=1&b=two`);
  assert.equal(set.status, 302);
  const cookies = ([] as string[]).concat(set.headers['set-cookie'] ?? []);
  assert.equal(cookies.length, 2);
  assert.match(cookies[0]!, /^a=1; Path=\/; HttpOnly/);
  const seen = await client.request(`${server.url}/cookies`, { headers: { cookie: 'a=1; b=two' } });
  assert.deepEqual(seen.json(), { cookies: { a: '1', b: 'two' } });
  const del = await client.request(`${server.url}/cookies/delete?a`);
  assert.match(String(del.headers['set-cookie']), /a=; Path=\/; Max-Age=0/);
});

test('basic and bearer auth: 401 with WWW-Authenticate, then 200; /admin gives 403 to a non-admin', async () => {
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  const none = await client.request(`${server.url}/basic-auth/u/p`);
  assert.equal(none.status, 401);
  assert.match(String(none.headers['www-authenticate']), /^Basic realm="wirelab"/);
  assert.equal((await client.request(`${server.url}/basic-auth/u/p`, { headers: { authorization: `Basic ${b64('u:p')}` } })).status, 200);
  assert.equal((await client.request(`${server.url}/basic-auth/u/p`, { headers: { authorization: `Basic ${b64('u:x')}` } })).status, 401);
  assert.equal((await client.request(`${server.url}/bearer`)).headers['www-authenticate'], 'Bearer realm="wirelab"');
  assert.equal((await client.request(`${server.url}/bearer`, { headers: { authorization: 'Bearer wirelab-token' } })).status, 200);
  assert.equal((await client.request(`${server.url}/admin`, { headers: { authorization: `Basic ${b64('guest:guest')}` } })).status, 403);
});

test('conditional GET: If-None-Match and If-Modified-Since give 304', async () => {
  const first = await client.request(`${server.url}/cache`);
  const etag = String(first.headers.etag);
  const lm = String(first.headers['last-modified']);
  const a = await client.request(`${server.url}/cache`, { headers: { 'if-none-match': etag } });
  assert.equal(a.status, 304);
  assert.equal(a.bodyBytes, 0);
  assert.equal((await client.request(`${server.url}/cache`, { headers: { 'if-modified-since': lm } })).status, 304);
  assert.equal((await client.request(`${server.url}/cache`, { headers: { 'if-none-match': '"other"' } })).status, 200);
  assert.equal((await client.request(`${server.url}/cache/60`)).headers['cache-control'], 'public, max-age=60');
});

test('gzip, deflate and brotli, and negotiation by Accept-Encoding', async () => {
  const decode = { gzip: gunzipSync, deflate: inflateSync, br: brotliDecompressSync } as const;
  for (const [path, coding] of [['/gzip', 'gzip'], ['/deflate', 'deflate'], ['/brotli', 'br']] as const) {
    const r = await client.request(`${server.url}${path}`);
    assert.equal(r.headers['content-encoding'], coding);
    assert.equal(JSON.parse(decode[coding](r.body).toString())[coding], true);
  }
  assert.equal(negotiateEncoding('gzip;q=0.5, br;q=0.1'), 'gzip');
  assert.equal(negotiateEncoding('identity'), 'identity');
  assert.equal(negotiateEncoding('*'), 'br');
});

test('/upload hashes the body; Expect: 100-continue gets 100 first, or 413 before the body when too large', async () => {
  const body = Buffer.alloc(5000, 1);
  const r = await client.request(`${server.url}/upload`, { method: 'POST', body });
  assert.equal(r.json<{ sha256: string }>().sha256, createHash('sha256').update(body).digest('hex'));
  const cont = await rawExchange(server.port, ['POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n', 'abc'], { gapMs: 50 });
  assert.deepEqual(cont.statuses, [100, 200]);
  const big = await startHttpServer({ maxBodyBytes: 10 });
  try {
    const refused = await rawExchange(big.port, ['POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n']);
    assert.deepEqual(refused.statuses, [413]);
  } finally {
    await big.close();
  }
});

test('/sse streams events with ids; /events polls and long-polls the feed', async () => {
  const sse = await client.request(`${server.url}/sse?count=3&interval=5`);
  assert.equal(sse.headers['content-type'], 'text/event-stream; charset=utf-8');
  assert.equal((sse.text().match(/^id: /gm) ?? []).length, 3);
  const resumed = await client.request(`${server.url}/sse?count=3&interval=5`, { headers: { 'last-event-id': '2' } });
  assert.deepEqual(resumed.text().match(/^id: \d+/gm), ['id: 3']);
  const waiting = client.request(`${server.url}/events?since=${server.feed.lastId}&wait=2000`);
  setTimeout(() => server.feed.publish('hello'), 50);
  const got = (await waiting).json<{ events: Array<{ data: string }> }>();
  assert.equal(got.events[0]!.data, 'hello');
});

test('CONNECT tunnels to an allowed wirelab server, 403 for anything else', async () => {
  const ok = await rawExchange(server.port, [`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\n\r\n`, 'hi\n'], { gapMs: 30, until: (t) => t.endsWith('hi\n') });
  assert.equal(ok.statuses[0], 200);
  assert.ok(ok.text.endsWith('hi\n'));
  for (const target of ['example.com:443', `127.0.0.1:${server.port}`, '10.0.0.1:80']) {
    const no = await rawExchange(server.port, [`CONNECT ${target} HTTP/1.1\r\n\r\n`]);
    assert.equal(no.statuses[0], 403, target);
  }
});

test('TRACE is 405 with Allow unless allowTrace, which reflects the request', async () => {
  const off = await client.request(`${server.url}/headers`, { method: 'TRACE' });
  assert.equal(off.status, 405);
  assert.equal(off.headers.allow, 'GET, HEAD, OPTIONS');
  const on = await startHttpServer({ allowTrace: true });
  try {
    const r = await client.request(`${on.url}/x`, { method: 'TRACE', headers: { cookie: 'c=1' } });
    assert.equal(r.headers['content-type'], 'message/http');
    assert.match(r.text(), /^TRACE \/x HTTP\/1\.1\r\n[\s\S]*cookie: c=1/i);
  } finally {
    await on.close();
  }
});

test('the gateway gives 504 when its upstream is slower than gatewayTimeoutMs, 200 otherwise', async () => {
  assert.equal((await client.request(`${server.url}/gateway?delay=1`)).status, 200);
  assert.equal((await client.request(`${server.url}/gateway?delay=1000`)).status, 504);
});

test('429 with Retry-After past the token bucket; 503 with Retry-After past maxConcurrentRequests', async () => {
  const rated = await startHttpServer({ rateLimitBurst: 2, rateLimitPerSecond: 0.5 });
  const busy = await startHttpServer({ maxConcurrentRequests: 1 });
  try {
    const codes = [];
    for (let i = 0; i < 3; i++) codes.push((await client.request(`${rated.url}/hello`)).status);
    assert.deepEqual(codes, [200, 200, 429]);
    const slow = client.request(`${busy.url}/delay/0.3`);
    await new Promise((r) => setTimeout(r, 50));
    const turned = await client.request(`${busy.url}/hello`);
    assert.equal(turned.status, 503);
    assert.equal(turned.headers['retry-after'], '1');
    assert.equal((await slow).status, 200);
  } finally {
    await rated.close();
    await busy.close();
  }
  const b = new TokenBuckets(1, 1);
  assert.equal(b.take('a', 0), 0);
  assert.equal(b.take('a', 10), 1);
  assert.equal(b.take('a', 1100), 0);
});

test('HTTP/2 by ALPN on the TLS server, HTTP/1.1 still there; HEAD has no body', async () => {
  const r = await h2.request(`https://localhost:${tls.port}/anything`);
  assert.equal(r.httpVersion, '2');
  assert.equal(r.json<{ httpVersion: string }>().httpVersion, '2.0');
  const one = await client.request(`https://localhost:${tls.port}/hello`);
  assert.equal(one.httpVersion, '1.1');
  const head = await h2.request(`https://localhost:${tls.port}/bytes/100`, { method: 'HEAD' });
  assert.equal(head.bodyBytes, 0);
  assert.equal(head.headers['content-length'], '100');
  assert.equal(tls.stats.versions['2.0']! >= 2, true);
});

test('a throwing handler gives 500 and the server keeps serving; unknown paths 404; /status picks by weight', async () => {
  assert.equal((await client.request(`${server.url}/boom`)).status, 500);
  assert.equal((await client.request(`${server.url}/hello`)).status, 200);
  assert.equal((await client.request(`${server.url}/nope`)).status, 404);
  assert.equal((await client.request(`${server.url}/status/418`)).status, 418);
  assert.equal(pickStatus('200:0,500:1'), 500);
  assert.equal(pickStatus('200,404', () => 0.9), 404);
  assert.ok(server.stats.handlerErrors >= 1);
});

test('requests and responses are traced with the phases, and credentials are redacted', async () => {
  const n = sink.events.length;
  await client.request(`${server.url}/hello`, { headers: { authorization: 'Bearer SECRET', cookie: 'x=SECRET' } });
  const events = sink.events.slice(n);
  const req = events.find((e) => e.kind === 'request' && e.summary.startsWith('GET /hello'));
  assert.ok(req);
  assert.ok(!JSON.stringify(events).includes('SECRET'));
  const done = events.find((e) => e.kind === 'done');
  assert.ok(done && typeof done.meta?.firstByteMs === 'number' && typeof done.meta?.doneMs === 'number');
});
