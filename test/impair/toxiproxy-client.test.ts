import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { Toxiproxy } from 'toxiproxy-node-client';
import { connectTcp } from '../../clients/tcp.ts';
import { startControlApi } from '../../core/impair/index.ts';
import { startTcpServer } from '../../servers/tcp/index.ts';

// Interop: the control API driven by a Toxiproxy client nobody here wrote (npm toxiproxy-node-client).
test('a Toxiproxy client creates, changes, disables and deletes proxies and toxics through the control API', async () => {
  const server = await startTcpServer({ framing: 'line' });
  const api = await startControlApi();
  const toxiproxy = new Toxiproxy(api.url!);
  try {
    const proxy = await toxiproxy.createProxy({ name: 'echo', listen: '127.0.0.1:0', upstream: `127.0.0.1:${server.port}` });
    const port = Number(proxy.listen.split(':')[1]);
    const toxic = await proxy.addToxic({ type: 'latency', name: 'slow', stream: 'downstream', toxicity: 1, attributes: { latency: 25, jitter: 0 } } as never);
    assert.equal(toxic.name, 'slow');
    const c = await connectTcp({ port, framing: 'line' });
    const t0 = performance.now();
    await c.send('hi');
    assert.equal((await c.next()).toString(), 'hi');
    assert.ok(performance.now() - t0 >= 24);
    await c.end();

    const got = await proxy.getToxic('slow');
    assert.equal((got.attributes as { latency: number }).latency, 25);
    await got.update({ ...got.toJson(), attributes: { latency: 5, jitter: 0 } } as never);
    assert.equal(((await proxy.getToxic('slow')).attributes as { latency: number }).latency, 5);
    assert.deepEqual(Object.keys(await toxiproxy.getAll()), ['echo']);

    await proxy.update({ name: 'echo', listen: proxy.listen, upstream: proxy.upstream, enabled: false } as never);
    const refused = await new Promise<string | undefined>((r) => net.connect(port, '127.0.0.1').on('error', (e: NodeJS.ErrnoException) => r(e.code)).on('connect', () => r(undefined)));
    assert.equal(refused, 'ECONNREFUSED');
    await proxy.update({ name: 'echo', listen: proxy.listen, upstream: proxy.upstream, enabled: true } as never);
    const again = await connectTcp({ port, framing: 'line' });
    await again.send('back');
    assert.equal((await again.next()).toString(), 'back');
    await again.end();

    await toxiproxy.reset();
    assert.deepEqual(await (await fetch(`${api.url}/proxies/echo/toxics`)).json(), []);
    await proxy.remove();
    assert.deepEqual(await toxiproxy.getAll(), {});
    await assert.rejects(toxiproxy.get('echo'));
  } finally {
    await api.close();
    await server.close();
  }
});
