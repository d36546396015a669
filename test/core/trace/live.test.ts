import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect } from 'node:net';
import { createTracer, FanoutTracer, LiveTracer, MemorySink, type TraceSink } from '../../../core/trace/index.ts';
import { DiagramTracer } from '../../../core/export/diagram.ts';
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

test('the fan-out: enabled and wire follow the sinks attached, and a sink may detach itself while an event is handed out', () => {
  const fan = new FanoutTracer();
  let built = 0;
  const emit = (): void => fan.emit('tcp', 'tcp#1', '>', 'read', () => `read ${++built}`);
  emit();
  assert.deepEqual([fan.enabled, fan.wire, built], [false, false, 0]);
  const wire = new MemorySink({ wire: true });
  const detachWire = fan.attach(wire);
  assert.deepEqual([fan.enabled, fan.wire], [true, true]);
  // A sink that leaves after its first event: the sink after it in the list still gets that event.
  let once: (() => void) | undefined;
  const leaving: TraceSink = { attached: (d) => (once = d), write: () => once?.() };
  fan.attach(leaving);
  const last = new MemorySink();
  fan.attach(last);
  assert.equal(fan.sinkCount, 3);
  emit();
  assert.deepEqual([fan.sinkCount, last.events.length, built], [2, 1, 1]);
  detachWire();
  assert.deepEqual([fan.enabled, fan.wire], [true, false]);
  emit();
  assert.equal(wire.events.length, 1);
  assert.equal(last.events.length, 2);
});

test('a diagram tracer with no user tracer turns itself off once the diagram is full, and counts what it skips', () => {
  const tracer = new DiagramTracer(undefined, { maxArrows: 2 });
  let built = 0;
  const emit = (dir: '>' | '*'): void => tracer.emit('ws', 'ws#1', dir, 'frame', () => `f ${++built}`);
  emit('*');
  emit('>');
  assert.equal(tracer.enabled, true);
  emit('>');
  assert.equal(tracer.enabled, false, 'full: no sink wants events');
  emit('>');
  emit('*');
  assert.equal(built, 2);
  assert.equal(tracer.sink.model().omitted, 1);
});
