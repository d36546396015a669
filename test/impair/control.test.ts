import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connectTcp } from '../../clients/tcp.ts';
import { startTcpServer } from '../../servers/tcp/index.ts';
import { startUdpServer } from '../../servers/udp/index.ts';
import { startControlApi, startUdpRelay } from '../../core/impair/index.ts';
import { createTracer, MemorySink } from '../../core/trace/index.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON answers are checked field by field
type Json = any;

async function call(base: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: Json }> {
  const res = await fetch(base + path, { method, ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }) });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

test('control API: create a proxy, add, change and remove a toxic, read the counters (Toxiproxy paths)', async () => {
  const server = await startTcpServer({ framing: 'line' });
  const api = await startControlApi();
  const created = await call(api.url!, 'POST', '/proxies', { name: 'echo', listen: '127.0.0.1:0', upstream: `127.0.0.1:${server.port}` });
  assert.equal(created.status, 201);
  const port = Number(created.json.listen.split(':')[1]);
  const added = await call(api.url!, 'POST', '/proxies/echo/toxics', { type: 'latency', attributes: { latency: 5, jitter: 1 } });
  assert.equal(added.status, 200);
  assert.equal(added.json.name, 'latency_downstream');
  const c = await connectTcp({ port, framing: 'line' });
  await c.send('hi');
  assert.equal((await c.next()).toString(), 'hi');
  await c.end();
  const updated = await call(api.url!, 'POST', '/proxies/echo/toxics/latency_downstream', { attributes: { latency: 9 } });
  assert.equal(updated.json.attributes.latency, 9);
  assert.equal(updated.json.attributes.jitter, 1);
  const got = await call(api.url!, 'GET', '/proxies/echo');
  assert.equal(got.json.stats.connections, 1);
  assert.equal(got.json.stats.toxics.latency_downstream, 1);
  assert.equal((await call(api.url!, 'DELETE', '/proxies/echo/toxics/latency_downstream')).status, 204);
  assert.deepEqual((await call(api.url!, 'GET', '/proxies/echo/toxics')).json, []);
  assert.equal((await call(api.url!, 'DELETE', '/proxies/echo')).status, 204);
  await api.close();
  await server.close();
});

test('control API: unknown toxics, out-of-range values, bad JSON and oversized bodies get 4xx with a message; the API keeps serving', async () => {
  const server = await startTcpServer();
  const sink = new MemorySink();
  const api = await startControlApi({ maxBodyBytes: 1024, maxProxies: 1, tracer: createTracer([sink]) });
  await call(api.url!, 'POST', '/proxies', { name: 'p', upstream: `127.0.0.1:${server.port}` });
  const cases: Array<[string, string, unknown, number]> = [
    ['POST', '/proxies/p/toxics', { type: 'packet_loss' }, 400],
    ['POST', '/proxies/p/toxics', { type: 'latency', attributes: { latency: -5 } }, 400],
    ['POST', '/proxies/p/toxics', { type: 'latency', attributes: { speed: 1 } }, 400],
    ['POST', '/proxies/p/toxics', { type: 'bandwidth', attributes: { rate: 0 } }, 400],
    ['POST', '/proxies/p/toxics', { type: 'latency', toxicity: 2 }, 400],
    ['POST', '/proxies/p/toxics', { type: 'latency', stream: 'sideways' }, 400],
    ['POST', '/proxies/p/toxics', '{not json', 400],
    ['POST', '/proxies/p/toxics', 'x'.repeat(5000), 413],
    ['POST', '/proxies/nope/toxics', { type: 'latency' }, 404],
    ['DELETE', '/proxies/p/toxics/nope', undefined, 404],
    ['PUT', '/proxies', {}, 405],
    ['POST', '/proxies', { name: 'p', upstream: '127.0.0.1:1' }, 409],
    ['POST', '/proxies', { name: 'q', upstream: 'nowhere' }, 400],
    ['POST', '/proxies', { name: 'q', upstream: '127.0.0.1:1' }, 429],
  ];
  for (const [method, path, body, status] of cases) {
    const r = await call(api.url!, method, path, body);
    assert.equal(r.status, status, `${method} ${path} ${JSON.stringify(body)}`);
    assert.equal(typeof r.json.error, 'string');
  }
  assert.equal(sink.find({ kind: 'error' }).length, cases.length, 'each refusal is traced');
  assert.equal((await call(api.url!, 'POST', '/proxies/p/toxics', { type: 'latency' })).json.code, undefined);
  assert.equal((await call(api.url!, 'POST', '/proxies/p/toxics', { type: 'latency' })).json.code, 'WL_ERR_IMPAIR_CONFLICT');
  assert.equal((await call(api.url!, 'GET', '/version')).status, 200);
  await api.close();
  await server.close();
});

test('control API: a UDP relay\'s impairments change at run time; POST /reset clears them', async () => {
  const udp = await startUdpServer();
  const relay = await startUdpRelay({ upstreamPort: udp.port, name: 'u' });
  const api = await startControlApi();
  api.relays.set('u', relay);
  const r = await call(api.url!, 'POST', '/relays/u/impairments', { stream: 'upstream', loss: 0.5, gilbert: { p: 0.1, r: 0.5 } });
  assert.equal(r.status, 200);
  assert.equal(relay.get('upstream').loss, 0.5);
  assert.equal((await call(api.url!, 'POST', '/relays/u/impairments', { stream: 'upstream', loss: 1.5 })).status, 400);
  assert.equal((await call(api.url!, 'POST', '/relays/u/impairments', { stream: 'upstream', teleport: 1 })).status, 400);
  assert.equal((await call(api.url!, 'POST', '/reset')).status, 204);
  assert.deepEqual(relay.get('upstream'), {});
  await api.close();
  await relay.close();
  await udp.close();
});

test('control API: a proxy made toward a server with its own wireMask masks both legs with it (wireMaskFor)', async () => {
  const server = await startTcpServer({ framing: 'line' });
  const sink = new MemorySink({ wire: true });
  const asked: number[] = [];
  // A protocol's mask in miniature: the first client line is a secret.
  const firstLineMask = () => {
    let first = true;
    return (chunk: Buffer, dir: string): Buffer => (dir === '>' && first && !(first = false) ? Buffer.alloc(chunk.length, 0x2a) : chunk);
  };
  const api = await startControlApi({ tracer: createTracer([sink]), wireMaskFor: (_h, p) => (asked.push(p), p === server.port ? firstLineMask : undefined) });
  const created = await call(api.url!, 'POST', '/proxies', { name: 'secret', upstream: `127.0.0.1:${server.port}` });
  const c = await connectTcp({ port: Number(created.json.listen.split(':')[1]), framing: 'line' });
  await c.send('s3cret-binary-credential');
  assert.equal((await c.next()).toString(), 's3cret-binary-credential');
  await c.end();
  await api.close();
  await server.close();
  assert.deepEqual(asked, [server.port]);
  const legs = sink.events.filter((e) => e.kind === 'bytes' && e.data);
  assert.ok(legs.some((e) => e.cid.endsWith('.up')) && legs.some((e) => !e.cid.endsWith('.up')), 'both legs traced');
  for (const e of legs.filter((x) => x.dir === '>')) assert.equal(Buffer.from(e.data!).toString().includes('s3cret'), false, `${e.cid}: masked`);
  assert.ok(legs.some((e) => e.dir === '<' && Buffer.from(e.data!).toString().includes('s3cret')), 'the echo back is not the first client line: left as it is');
});
