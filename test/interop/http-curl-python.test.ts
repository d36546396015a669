import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import { getTlsMaterial } from '../../core/tls/index.ts';
import { startHttpServer, type RunningHttpServer } from '../../servers/http/index.ts';
import { requirePeer } from '../helpers/peers.ts';

let server: RunningHttpServer;
let tls: RunningHttpServer;
let ca: string;

before(async () => {
  server = await startHttpServer({ rateLimitBurst: 0 });
  tls = await startHttpServer({ tls: true, rateLimitBurst: 0 });
  ca = (await getTlsMaterial()).caCertPath;
});
after(async () => {
  await server.close();
  await tls.close();
});

// Async so the server in this process can answer while curl runs.
function run(cmd: string, args: string[], input?: string): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => resolve({ code, out, err }));
    p.stdin.end(input ?? '');
  });
}
const curl = (...args: string[]) => run('curl', ['-s', '--max-time', '10', ...args]);

test('curl: every method gets its answer', async (t) => {
  if (!requirePeer(t, 'curl', 'curl')) return;
  for (const m of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']) {
    const r = await curl('-X', m, '-d', m === 'GET' ? '' : 'x=1', `${server.url}/anything`);
    assert.equal(JSON.parse(r.out).method, m, r.err);
  }
  const head = await curl('-I', `${server.url}/bytes/123`);
  assert.match(head.out, /^HTTP\/1\.1 200/);
  assert.match(head.out, /content-length: 123/i);
  const opts = await curl('-i', '-X', 'OPTIONS', `${server.url}/headers`);
  assert.match(opts.out, /^HTTP\/1\.1 204[\s\S]*allow: GET, HEAD, OPTIONS/i);
  const trace = await curl('-i', '-X', 'TRACE', `${server.url}/anything`);
  assert.match(trace.out, /^HTTP\/1\.1 405/);
  const connect = await curl('-i', '-p', '-x', server.url, `${server.url}/hello`);
  assert.match(connect.out, /403/);
});

test('curl: --http2 over TLS, conditional GET, a 100-continue upload, --compressed', async (t) => {
  if (!requirePeer(t, 'curl', 'curl')) return;
  const h2 = await curl('-i', '--http2', '--cacert', ca, `https://localhost:${tls.port}/anything`);
  assert.match(h2.out, /^HTTP\/2 200/, h2.err);
  const etag = /etag: (\S+)/i.exec((await curl('-i', `${server.url}/cache`)).out)![1]!;
  const cond = await curl('-i', '-H', `If-None-Match: ${etag}`, `${server.url}/cache`);
  assert.match(cond.out, /^HTTP\/1\.1 304/);
  const up = await run('curl', ['-s', '-v', '-H', 'Expect: 100-continue', '--data-binary', '@-', `${server.url}/upload`], 'a'.repeat(5000));
  assert.match(up.err, /< HTTP\/1\.1 100 Continue/);
  assert.equal(JSON.parse(up.out).bytes, 5000);
  for (const path of ['/gzip', '/deflate', '/brotli', '/compressed']) {
    const z = await curl('--compressed', `${server.url}${path}`);
    assert.equal(JSON.parse(z.out).method, 'GET', path);
  }
});

test('curl -r 0-0,5-9 gets 206 multipart/byteranges; Python reads the parts with the email package', async (t) => {
  if (!requirePeer(t, 'curl', 'curl')) return;
  const r = await curl('-i', '-r', '0-0,5-9', `${server.url}/bytes/16?seed=1`);
  assert.match(r.out, /^HTTP\/1\.1 206/);
  assert.match(r.out, /content-type: multipart\/byteranges; boundary=/i);
  assert.match(r.out, /Content-Range: bytes 0-0\/16/);
  assert.match(r.out, /Content-Range: bytes 5-9\/16/);
  const unit = await curl('-i', '-H', 'Range: items=0-1', `${server.url}/bytes/16`);
  assert.match(unit.out, /^HTTP\/1\.1 200/);
  const none = await curl('-i', '-r', '100-200', `${server.url}/bytes/16`);
  assert.match(none.out, /^HTTP\/1\.1 416[\s\S]*content-range: bytes \*\/16/i);
  if (!requirePeer(t, 'python3', 'python3')) return;
  const code = [
    'import email, http.client',
    `c = http.client.HTTPConnection('127.0.0.1', ${server.port}, timeout=5)`,
    "c.request('GET', '/bytes/16?seed=1', headers={'Range': 'bytes=0-0,5-9'}); r = c.getresponse(); body = r.read()",
    "assert r.status == 206, r.status",
    "m = email.message_from_bytes(b'Content-Type: ' + r.getheader('Content-Type').encode() + b'\\r\\n\\r\\n' + body)",
    "parts = [(p['Content-Range'], p.get_payload(decode=True)) for p in m.get_payload()]",
    "whole = bytes(((i * 31 + 1) & 0xff) for i in range(16))",
    "assert parts == [('bytes 0-0/16', whole[0:1]), ('bytes 5-9/16', whole[5:10])], parts",
    "print('ok')",
  ].join('\n');
  const py = await run('python3', ['-c', code]);
  assert.equal(py.out.trim(), 'ok', py.err);
});

test("Python's http.client over HTTP/1.1 and TLS", async (t) => {
  if (!requirePeer(t, 'python3', 'python3')) return;
  const code = [
    'import http.client, json, ssl',
    `c = http.client.HTTPConnection('127.0.0.1', ${server.port}, timeout=5)`,
    "c.request('GET', '/anything?a=1'); r = c.getresponse(); b = json.loads(r.read()); assert r.status == 200 and b['args'] == {'a': '1'}, b",
    "c.request('POST', '/anything', body=json.dumps({'k': 1}), headers={'Content-Type': 'application/json'}); r = c.getresponse(); assert json.loads(r.read())['json'] == {'k': 1}",
    "c.request('HEAD', '/bytes/10'); r = c.getresponse(); r.read(); assert r.getheader('Content-Length') == '10'",
    "c.request('GET', '/docs'); r = c.getresponse(); r.read(); assert r.status == 301 and r.getheader('Location') == '/docs/'",
    "c.request('GET', '/nope'); r = c.getresponse(); r.read(); assert r.status == 404",
    "c.request('GET', '/admin'); r = c.getresponse(); r.read(); assert r.status == 401 and r.getheader('WWW-Authenticate').startswith('Basic')",
    `s = http.client.HTTPSConnection('localhost', ${tls.port}, context=ssl.create_default_context(cafile='${ca}'), timeout=5)`,
    "s.request('GET', '/hello'); r = s.getresponse(); assert r.status == 200 and r.read() == b'hello\\n'",
    "print('ok')",
  ].join('\n');
  const r = await run('python3', ['-c', code]);
  assert.equal(r.out.trim(), 'ok', r.err);
});
