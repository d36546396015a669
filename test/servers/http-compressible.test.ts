import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { createHttpClient } from '../../clients/http.ts';
import { startHttpServer, type RunningHttpServer } from '../../servers/http/index.ts';
import { accessLogText, MAX_COMPRESSIBLE_KB } from '../../servers/http/routes/encoding.ts';

let server: RunningHttpServer;
before(async () => {
  server = await startHttpServer();
});
after(() => server.close());

const get = async (path: string, accept: string) => {
  const res = await fetch(`${server.url}${path}`, { headers: { 'accept-encoding': accept } });
  return { status: res.status, coding: res.headers.get('content-encoding') ?? 'identity', body: Buffer.from(await res.arrayBuffer()) };
};

test('/compressible/:kb serves the same deterministic text in each negotiated coding', async () => {
  const text = accessLogText(16);
  assert.equal(text.length, 16 * 1024);
  assert.deepEqual(accessLogText(16), text);
  // fetch() decodes what it asked for itself; undici's own client shows the raw coding.
  const client = await createHttpClient();
  try {
    for (const [accept, coding, decode] of [
      ['identity', undefined, (b: Buffer) => b],
      ['gzip', 'gzip', gunzipSync],
      ['br;q=1, gzip;q=0.5', 'br', brotliDecompressSync],
    ] as const) {
      const r = await client.request(`${server.url}/compressible/16`, { headers: { 'accept-encoding': accept } });
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-encoding'], coding);
      assert.ok(decode(r.body).equals(text), accept);
    }
  } finally {
    await client.close();
  }
});

test('/compressible/:kb refuses a size past MAX_COMPRESSIBLE_KB, or not a number, with 400', async () => {
  for (const kb of [String(MAX_COMPRESSIBLE_KB + 1), '0', 'abc']) assert.equal((await get(`/compressible/${kb}`, 'gzip')).status, 400, kb);
  assert.equal((await get('/hello', 'gzip')).status, 200);
});
