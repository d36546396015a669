import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect } from 'node:net';
import { createTracer, LiveTracer, MemorySink } from '../../../core/trace/index.ts';
import { startHttpServer } from '../../../servers/http/index.ts';

test('a live tracer builds nothing until a sink is attached, and stops again when the last one leaves', () => {
  const tracer = new LiveTracer();
  let built = 0;
  const emit = (): void => tracer.emit('tcp', 'tcp#1', '>', 'read', () => `read ${++built}`);
  emit();
  assert.equal(tracer.enabled, false);
  assert.equal(built, 0);
  const a = new MemorySink();
  const b = new MemorySink();
  const detachA = tracer.attach(a);
  const detachB = tracer.attach(b);
  assert.equal(tracer.enabled, true);
  assert.equal(tracer.watchers, 2);
  emit();
  assert.equal(built, 1, 'built once for two sinks');
  assert.deepEqual([a.events.length, b.events.length], [1, 1]);
  detachA();
  detachA();
  emit();
  assert.deepEqual([a.events.length, b.events.length], [1, 2]);
  detachB();
  assert.equal(tracer.enabled, false);
  emit();
  assert.equal(built, 2);
});

test("a live tracer keeps the command line's tracer as its base: always on, and it still gets every event", async () => {
  const base = new MemorySink();
  const tracer = new LiveTracer(createTracer([base]));
  assert.equal(tracer.enabled, true);
  tracer.emit('udp', 'udp#1', '<', 'datagram', () => ({ summary: 'one', bytes: 3 }));
  const live = new MemorySink();
  const detach = tracer.attach(live);
  tracer.emit('udp', 'udp#1', '>', 'datagram', () => 'two');
  detach();
  assert.equal(tracer.enabled, true);
  assert.deepEqual(base.events.map((e) => e.summary), ['one', 'two']);
  assert.deepEqual(live.events.map((e) => e.summary), ['two']);
  await tracer.close();
});

test('a server started with the tracer off traces its next connection once a sink is attached', async () => {
  const tracer = new LiveTracer();
  const server = await startHttpServer({ port: 0, tracer });
  const get = async (path: string): Promise<void> => {
    const r = await fetch(`${server.url}${path}`, { headers: { connection: 'close' } });
    await r.arrayBuffer();
  };
  try {
    await get('/hello');
    const sink = new MemorySink();
    const detach = tracer.attach(sink);
    await get('/anything?watched=1');
    // The request and response events come from the HTTP server's call sites that check tracer.enabled per request.
    assert.ok(sink.events.some((e) => e.kind === 'request' && e.summary.includes('/anything?watched=1')), JSON.stringify(sink.events.map((e) => e.summary)));
    assert.ok(sink.events.some((e) => e.kind === 'response' && e.summary.startsWith('200')));
    assert.ok(!sink.events.some((e) => e.summary.includes('/hello')));
    detach();
    const before = sink.events.length;
    // A raw connection after the detach: nothing more arrives.
    await new Promise<void>((resolve, reject) => {
      const s = connect(server.port, '127.0.0.1', () => s.end('GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
      s.on('error', reject);
      s.resume();
      s.on('close', () => resolve());
    });
    assert.equal(sink.events.length, before);
  } finally {
    await server.close();
  }
});
