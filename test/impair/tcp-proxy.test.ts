import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { connectTcp } from '../../clients/tcp.ts';
import { startTcpServer } from '../../servers/tcp/index.ts';
import { startTcpProxy, type ToxicInput } from '../../core/impair/index.ts';
import { createTracer, MemorySink } from '../../core/trace/index.ts';

async function echoBehindProxy(toxics: ToxicInput[], extra: { seed?: number; maxBufferBytes?: number; mode?: 'echo' | 'discard' } = {}) {
  const server = await startTcpServer({ mode: extra.mode ?? 'echo' });
  const sink = new MemorySink();
  const proxy = await startTcpProxy({ upstreamPort: server.port, toxics, seed: extra.seed ?? 1, tracer: createTracer([sink]), ...(extra.maxBufferBytes ? { maxBufferBytes: extra.maxBufferBytes } : {}) });
  return { server, proxy, sink, close: async () => { await proxy.close(); await server.close(); } };
}

test('no toxics: bytes pass both ways unchanged and are counted', async () => {
  const p = await echoBehindProxy([]);
  const c = await connectTcp({ port: p.proxy.port });
  const payload = Buffer.alloc(100_000, 7);
  await c.send(payload);
  const back = await c.readBytes(payload.length);
  assert.ok(back.equals(payload));
  await c.end();
  assert.equal(p.proxy.stats.bytesUp, 100_000);
  assert.equal(p.proxy.stats.bytesDown, 100_000);
  assert.equal(p.proxy.stats.connections, 1);
  await p.close();
});

test('latency + jitter (seeded): downstream chunks wait at least the drawn delay; the same seed draws the same delays', async () => {
  const draws: number[][] = [];
  for (let run = 0; run < 2; run++) {
    const p = await echoBehindProxy([{ type: 'latency', stream: 'downstream', attributes: { latency: 30, jitter: 10 } }], { seed: 42 });
    const c = await connectTcp({ port: p.proxy.port, framing: 'line' });
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      await c.send(`hello ${i}\n`.slice(0, -1));
      await c.next();
      assert.ok(performance.now() - t0 >= 19, 'at least latency − jitter');
    }
    await c.end();
    draws.push(p.sink.find({ kind: 'delay' }).map((e) => e.meta!.drawMs as number));
    assert.equal(p.proxy.stats.toxics.latency_downstream, 3);
    await p.close();
  }
  assert.equal(draws[0]!.length, 3);
  assert.deepEqual(draws[0], draws[1]);
  for (const d of draws[0]!) assert.ok(d >= 20 && d <= 40, `draw ${d} in 30 ± 10`);
});

test('bandwidth: a fast sender behind a 50 KB/s cap does not grow the proxy\'s buffer past maxBufferBytes', async () => {
  const p = await echoBehindProxy([{ type: 'bandwidth', stream: 'upstream', attributes: { rate: 50 } }], { maxBufferBytes: 64 * 1024, mode: 'discard' });
  const sock = net.connect({ port: p.proxy.port, host: '127.0.0.1' });
  await new Promise((r) => sock.once('connect', r));
  const chunk = Buffer.alloc(64 * 1024);
  // Offer 16 MiB at once: the client's own buffer holds it; the proxy must not.
  for (let i = 0; i < 256; i++) sock.write(chunk);
  await new Promise((r) => setTimeout(r, 600));
  const { maxBufferedBytes, bytesUp } = p.proxy.stats;
  assert.ok(maxBufferedBytes <= 64 * 1024 + 65536, `held at most maxBufferBytes + one read, held ${maxBufferedBytes}`);
  assert.ok(bytesUp < 16 * 1024 * 1024 / 4, `the proxy stopped reading: read ${bytesUp} of 16 MiB`);
  assert.ok(p.proxy.stats.toxics.bandwidth_upstream! > 0);
  sock.destroy();
  await p.close();
});

test('slicer: a 200-byte message reaches the server as many small reads', async () => {
  const p = await echoBehindProxy([{ type: 'slicer', stream: 'upstream', attributes: { average_size: 20, size_variation: 5, delay: 5000 } }]);
  const c = await connectTcp({ port: p.proxy.port });
  await c.send(Buffer.alloc(200, 65));
  const back = await c.readBytes(200);
  assert.equal(back.length, 200);
  assert.ok(c.reads.length > 3, `echo came back in ${c.reads.length} reads`);
  await c.end();
  await p.close();
});

test('limit_data: the connection closes once the limit has passed, with exactly that many bytes delivered', async () => {
  const p = await echoBehindProxy([{ type: 'limit_data', stream: 'upstream', attributes: { bytes: 10 } }], { mode: 'discard' });
  const c = await connectTcp({ port: p.proxy.port });
  await c.send(Buffer.alloc(100, 1));
  const info = await c.closed;
  assert.ok(['fin', 'rst'].includes(info.how));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(p.server.stats.bytesIn, 10);
  await p.close();
});

test('slow_close: the server\'s close reaches the client only after the delay', async () => {
  const p = await echoBehindProxy([{ type: 'slow_close', stream: 'downstream', attributes: { delay: 150 } }]);
  const c = await connectTcp({ port: p.proxy.port, framing: 'line' });
  await c.send('up');
  await c.next(); // the server has this connection now
  const t0 = performance.now();
  await p.server.close(); // the server ends the connection
  const info = await c.closed;
  assert.ok(performance.now() - t0 >= 140, 'close held');
  assert.equal(info.how, 'fin');
  assert.equal(p.proxy.stats.toxics.slow_close_downstream, 1);
  await p.proxy.close();
});

test('timeout: data stops, and both ends are closed after the timeout', async () => {
  const p = await echoBehindProxy([{ type: 'timeout', stream: 'upstream', attributes: { timeout: 100 } }]);
  const c = await connectTcp({ port: p.proxy.port });
  await c.send('dropped');
  await c.closed;
  assert.equal(p.server.stats.bytesIn, 0);
  assert.equal(p.proxy.stats.toxics.timeout_upstream, 1);
  await p.close();
});

test('reset_peer: the client sees a reset after the timeout', async () => {
  const p = await echoBehindProxy([{ type: 'reset_peer', stream: 'downstream', attributes: { timeout: 50 } }]);
  const c = await connectTcp({ port: p.proxy.port });
  const info = await c.closed;
  assert.equal(info.how, 'rst');
  assert.equal(p.proxy.stats.toxics.reset_peer_downstream, 1);
  await p.close();
});

test('toxicity (seeded): a toxic applies to a share of connections, the same ones for the same seed', async () => {
  const hit: boolean[][] = [];
  for (let run = 0; run < 2; run++) {
    const p = await echoBehindProxy([{ type: 'latency', stream: 'downstream', toxicity: 0.5, attributes: { latency: 1 } }], { seed: 7 });
    const row: boolean[] = [];
    for (let i = 0; i < 12; i++) {
      const before = p.proxy.stats.toxics.latency_downstream!;
      const c = await connectTcp({ port: p.proxy.port, framing: 'line' });
      await c.send('x');
      await c.next();
      await c.end();
      row.push(p.proxy.stats.toxics.latency_downstream! > before);
    }
    hit.push(row);
    await p.close();
  }
  assert.deepEqual(hit[0], hit[1]);
  assert.ok(hit[0]!.some((h) => h) && hit[0]!.some((h) => !h), `some but not all: ${hit[0]}`);
});

test('toxics change at run time on an open connection', async () => {
  const p = await echoBehindProxy([]);
  const c = await connectTcp({ port: p.proxy.port, framing: 'line' });
  await c.send('a');
  await c.next();
  p.proxy.addToxic({ name: 'slow', type: 'latency', attributes: { latency: 40 } });
  const t0 = performance.now();
  await c.send('b');
  await c.next();
  assert.ok(performance.now() - t0 >= 39);
  p.proxy.updateToxic('slow', { attributes: { latency: 1 } });
  assert.equal(p.proxy.toxics[0]!.attributes.latency, 1);
  p.proxy.removeToxic('slow');
  await c.send('c');
  await c.next();
  assert.equal(p.proxy.stats.toxics.slow, 1);
  assert.throws(() => p.proxy.removeToxic('slow'), { code: 'WL_ERR_IMPAIR_NOT_FOUND' });
  assert.throws(() => p.proxy.addToxic({ type: 'latency', attributes: { latency: -1 } }), { code: 'WL_ERR_IMPAIR_INVALID' });
  await c.end();
  await p.close();
});

test('an upstream that refuses: the client sees a reset, and the proxy keeps serving', async () => {
  const gone = await startTcpServer();
  const port = gone.port;
  await gone.close();
  const proxy = await startTcpProxy({ upstreamPort: port });
  for (let i = 0; i < 2; i++) {
    const s = net.connect({ port: proxy.port, host: '127.0.0.1' });
    const err = await new Promise<NodeJS.ErrnoException | undefined>((r) => {
      s.once('error', r);
      s.once('close', () => r(undefined));
    });
    assert.equal(err?.code, 'ECONNRESET');
  }
  assert.equal(proxy.stats.upstreamErrors, 2);
  await proxy.close();
});

test('maxConnections: a connection past the limit is closed at once and counted; the first one still works', async () => {
  const server = await startTcpServer({ framing: 'line' });
  const proxy = await startTcpProxy({ upstreamPort: server.port, maxConnections: 1 });
  const a = await connectTcp({ port: proxy.port, framing: 'line' });
  await a.send('a');
  await a.next();
  const b = await connectTcp({ port: proxy.port, framing: 'line' });
  await b.closed;
  assert.equal(proxy.stats.refused, 1);
  await a.send('still');
  assert.equal((await a.next()).toString(), 'still');
  await a.end();
  await proxy.close();
  await server.close();
});

test('bad options throw a TypeError naming the option', async () => {
  await assert.rejects(startTcpProxy({ upstreamPort: 70000 }), { code: 'WL_ERR_INVALID_OPTION', name: 'InvalidOptionError' });
  await assert.rejects(startTcpProxy({ upstreamPort: 1, maxBufferBytes: 0 }), { code: 'WL_ERR_INVALID_OPTION', option: 'maxBufferBytes' });
});
