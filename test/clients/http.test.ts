import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createHttpClient, httpRequest, retryAfterMs } from '../../clients/http.ts';
import { createTracer, MemorySink } from '../../core/trace/index.ts';
import { startHttpServer, type RunningHttpServer } from '../../servers/http/index.ts';

let server: RunningHttpServer;
before(async () => {
  server = await startHttpServer({ rateLimitBurst: 0 });
});
after(() => server.close());

test('pipelining sends several requests on one connection before the answers come back', async () => {
  const client = await createHttpClient({ pipelining: 4, connections: 1 });
  try {
    const before = server.stats.connections;
    const all = await Promise.all(Array.from({ length: 8 }, (_, i) => client.request(`${server.url}/anything?i=${i}`)));
    assert.deepEqual(all.map((r) => r.json<{ args: { i: string } }>().args.i), ['0', '1', '2', '3', '4', '5', '6', '7']);
    assert.equal(client.stats.connectionsOpened, 1);
    assert.equal(server.stats.connections - before, 1);
  } finally {
    await client.close();
  }
});

test('keep-alive off opens a connection per request; on, it reuses one', async () => {
  const off = await createHttpClient({ keepAlive: false });
  const on = await createHttpClient({ connections: 1 });
  try {
    for (let i = 0; i < 3; i++) {
      assert.equal((await off.request(`${server.url}/hello`)).reusedConnection, false);
      await on.request(`${server.url}/hello`);
    }
    assert.equal(off.stats.connectionsOpened, 3);
    assert.equal(on.stats.connectionsOpened, 1);
    assert.equal((await on.request(`${server.url}/hello`)).reusedConnection, true);
  } finally {
    await off.close();
    await on.close();
  }
});

test('the client is traced through diagnostics_channel: connect, request, response, each redirect hop', async () => {
  const sink = new MemorySink();
  const r = await httpRequest(`${server.url}/redirect/2`, { maxRedirections: 5, tracer: createTracer([sink]) });
  assert.equal(r.status, 200);
  const kinds = sink.events.map((e) => e.kind);
  assert.ok(kinds.includes('connected'));
  assert.equal(sink.find({ kind: 'request' }).length, 3);
  assert.equal(sink.find({ kind: 'response' }).length, 3);
  assert.equal(sink.find({ kind: 'redirect' }).length, 2);
  assert.ok(typeof r.timing.firstByteMs === 'number' && r.timing.doneMs >= r.timing.firstByteMs);
});

test('Retry-After in seconds or as a date; bad options throw naming the option', async () => {
  assert.equal(retryAfterMs('3'), 3000);
  assert.equal(retryAfterMs(new Date(10_000).toUTCString(), 4000), 6000);
  assert.equal(retryAfterMs('soon'), undefined);
  await assert.rejects(createHttpClient({ pipelining: -1 }), (e: Error & { option?: string }) => e instanceof TypeError && e.option === 'pipelining');
});

test('a refused connection is a WirelabError with a stable code', async () => {
  const dead = await startHttpServer();
  const url = dead.url;
  await dead.close();
  await assert.rejects(httpRequest(`${url}/hello`), (e: Error & { code?: string }) => e.code === 'WL_ERR_CLOSED');
});
