import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createHttpClient } from '../../../clients/http.ts';
import { toHar, type HarEntry } from '../../../core/export/har.ts';
import { createTracer, MemorySink } from '../../../core/trace/index.ts';
import { startHttpServer, type RunningHttpServer } from '../../../servers/http/index.ts';
import { harErrors } from '../../helpers/har.ts';

let server: RunningHttpServer;
const serverSink = new MemorySink();
const clientSink = new MemorySink();
before(async () => {
  server = await startHttpServer({ rateLimitBurst: 0, tracer: createTracer([serverSink]) });
  const client = await createHttpClient({ tracer: createTracer([clientSink]), connections: 1 });
  try {
    await client.request(`${server.url}/anything?x=1&y=two`, { headers: { authorization: 'Bearer sekrit-token', cookie: 'sid=sekrit-cookie' } });
    await client.request(`${server.url}/anything/post`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'ann', password: 'sekrit-pw' }) });
    await client.request(`${server.url}/hello`, { method: 'HEAD' });
    await client.request(`${server.url}/cookies/set?session=sekrit-session`);
    await client.request(`${server.url}/bytes/200000`);
  } finally {
    await client.close();
  }
});
after(() => server.close());

const byUrl = (entries: HarEntry[], part: string, method = 'GET'): HarEntry => {
  const e = entries.find((x) => x.request.url.includes(part) && x.request.method === method);
  assert.ok(e, `an entry for ${method} ${part}`);
  return e;
};

test('client and server sides each give a valid HAR 1.2 entry per request, saying which side in _side', async () => {
  const har = toHar([...clientSink.events, ...serverSink.events]);
  assert.deepEqual(await harErrors(har), []);
  const sides = har.log.entries.map((e) => e._side);
  assert.equal(sides.filter((s) => s === 'client').length, 5);
  assert.equal(sides.filter((s) => s === 'server').length, 5);
  for (const e of har.log.entries) assert.match(e.comment, e._side === 'client' ? /client side/ : /server side/);
});

test('the client entry has its phases from undici: a new connection connects once, then reuses it', () => {
  const client = toHar(clientSink.events).log.entries;
  const first = byUrl(client, '/anything?x=1');
  assert.ok(first.timings.connect >= 0, 'the first request opened the connection');
  assert.equal(first.timings.ssl, -1, 'plain HTTP: no TLS phase');
  const post = byUrl(client, '/anything/post', 'POST');
  assert.equal(post.timings.connect, -1, 'the second request reused it');
  for (const e of client) for (const k of ['send', 'wait', 'receive'] as const) assert.ok(e.timings[k] >= 0, `${k} of ${e.request.url}`);
  assert.deepEqual(first.request.queryString, [{ name: 'x', value: '1' }, { name: 'y', value: 'two' }]);
});

test('headers and bodies on both sides, secrets redacted, big bodies cut at TRACED_BODY_MAX_BYTES', () => {
  const har = toHar([...clientSink.events, ...serverSink.events]);
  const text = JSON.stringify(har);
  // The echo routes answer what they were sent: /anything echoes the headers as JSON, whose "Authorization" and "Cookie"
  // fields are redacted as secret fields. (A cookie value the user put in a URL stays in the URL: it is not a header.)
  for (const secret of ['sekrit-token', 'sekrit-cookie', 'sekrit-pw']) assert.ok(!text.includes(secret), `${secret} appears in the HAR: …${text.slice(text.indexOf(secret) - 300, text.indexOf(secret) + 40)}`);
  const headerText = JSON.stringify(har.log.entries.map((e) => [e.request.headers, e.response.headers]));
  assert.ok(!headerText.includes('sekrit-session'), 'a Set-Cookie value appears in a header');
  for (const side of ['client', 'server'] as const) {
    const entries = har.log.entries.filter((e) => e._side === side);
    const get = byUrl(entries, '/anything?x=1');
    assert.ok(get.request.headers.some((h) => h.name.toLowerCase() === 'authorization' && h.value === '****'), `${side}: Authorization redacted`);
    const post = byUrl(entries, '/anything/post', 'POST');
    assert.equal(post.request.postData?.mimeType, 'application/json');
    assert.deepEqual(JSON.parse(post.request.postData!.text), { user: 'ann', password: '****' });
    assert.equal(post.response.status, 200);
    assert.match(post.response.content.mimeType, /json/);
    const head = byUrl(entries, '/hello', 'HEAD');
    assert.equal(head.response.content.size, 0);
    const big = byUrl(entries, '/bytes/200000');
    assert.equal(big.response.content.size, 200000);
    assert.equal(big.response.content.encoding, 'base64');
    assert.equal(Buffer.from(big.response.content.text!, 'base64').length, 64 * 1024);
    const set = byUrl(entries, '/cookies/set');
    assert.ok(set.response.headers.some((h) => h.name.toLowerCase() === 'set-cookie' && h.value === '****'), `${side}: Set-Cookie redacted`);
  }
});

test('HTTP/2 over TLS: both sides say HTTP/2 and https, the client has its ssl phase, body sizes agree', async () => {
  const sink = new MemorySink();
  const tracer = createTracer([sink]);
  const h2 = await startHttpServer({ tls: {}, http2: true, rateLimitBurst: 0, tracer });
  const client = await createHttpClient({ http2: true, tracer });
  try {
    await client.request(`${h2.url}/bytes/100000`);
  } finally {
    await client.close();
    await h2.close();
  }
  const har = toHar(sink.events);
  assert.deepEqual(await harErrors(har), []);
  assert.deepEqual(har.log.entries.map((e) => [e._side, e.request.httpVersion, new URL(e.request.url).protocol, e.response.content.size]).sort(), [
    ['client', 'HTTP/2', 'https:', 100000],
    ['server', 'HTTP/2', 'https:', 100000],
  ]);
  assert.ok(har.log.entries.find((e) => e._side === 'client')!.timings.ssl >= 0);
});
