import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { connectTcp } from '../../clients/tcp.ts';
import { encodeFrame } from '../../core/framing.ts';
import { createTracer, MemorySink } from '../../core/trace/index.ts';
import { chargenLine, startTcpServer } from '../../servers/tcp/index.ts';

/** A raw client: connect, run `fn`, collect what the server sent until it closes or `ms` pass. */
function rawExchange(port: number, fn: (s: net.Socket) => void, ms = 2000): Promise<{ data: Buffer; closedByServer: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const parts: Buffer[] = [];
    let closedByServer = false;
    const timer = setTimeout(() => s.destroy(), ms);
    s.on('data', (d) => parts.push(d));
    s.on('end', () => (closedByServer = true));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ data: Buffer.concat(parts), closedByServer });
    });
    s.on('connect', () => fn(s));
  });
}

async function assertStillServes(port: number, framing: 'raw' | 'line' | 'length' = 'line'): Promise<void> {
  const c = await connectTcp({ port, framing });
  await c.send('still there?');
  assert.equal(String(await c.next()), 'still there?');
  await c.end();
}

test('echo in each framing returns what was sent', async (t) => {
  for (const framing of ['raw', 'line', 'length'] as const) {
    const server = await startTcpServer({ framing });
    t.after(() => server.close());
    const c = await connectTcp({ port: server.port, framing });
    await c.send('one');
    if (framing === 'raw') assert.equal(String(await c.readBytes(3)), 'one');
    else {
      await c.send('two');
      assert.equal(String(await c.next()), 'one');
      assert.equal(String(await c.next()), 'two');
    }
    assert.ok(c.connectMs > 0);
    const closed = await c.end();
    assert.equal(closed.how, 'local');
  }
});

test('discard reads everything and answers nothing; chargen streams RFC 864 lines', async (t) => {
  const discard = await startTcpServer({ mode: 'discard' });
  const chargen = await startTcpServer({ mode: 'chargen' });
  t.after(() => Promise.all([discard.close(), chargen.close()]));
  const d = await rawExchange(discard.port, (s) => s.end(Buffer.alloc(100_000)));
  assert.equal(d.data.length, 0);
  assert.equal(d.closedByServer, true);
  const c = await connectTcp({ port: chargen.port });
  const first = await c.readBytes(74 * 3);
  assert.deepEqual(first, Buffer.concat([chargenLine(0), chargenLine(1), chargenLine(2)]));
  assert.equal(String(chargenLine(0)), String.fromCharCode(...Array.from({ length: 72 }, (_, i) => 0x20 + i)) + '\r\n');
  await c.destroy();
  assert.ok(discard.stats.bytesIn >= 100_000);
});

test('the trace says how writes were coalesced or split on arrival and how the connection ended', async (t) => {
  const mem = new MemorySink();
  const server = await startTcpServer({ framing: 'line', tracer: createTracer([mem]) });
  t.after(() => server.close());
  const s = net.connect(server.port, '127.0.0.1');
  s.resume();
  await new Promise((r) => s.once('connect', r));
  s.write('a\nb\nc\n');
  await new Promise((r) => setTimeout(r, 50));
  s.write('par');
  await new Promise((r) => setTimeout(r, 50));
  s.write('tial\n');
  await new Promise((r) => setTimeout(r, 50));
  s.end();
  await new Promise((r) => s.once('close', r));
  await new Promise((r) => setTimeout(r, 20));
  const reads = mem.find({ kind: 'read' }).map((e) => e.summary);
  assert.match(reads[0]!, /3 messages in one read \(coalesced\)/);
  assert.match(reads[1]!, /partial message, 3 B pending \(split\)/);
  assert.match(reads[2]!, /first message completed a split one/);
  const close = mem.find({ kind: 'close' })[0]!;
  assert.equal(close.meta?.how, 'fin');
  assert.equal(close.meta?.bytesIn, 14);
  assert.equal(mem.find({ kind: 'accept' }).length, 1);
});

test('an RST from the client and an idle timeout are told apart from a FIN', async (t) => {
  const mem = new MemorySink();
  const server = await startTcpServer({ idleTimeoutMs: 100, tracer: createTracer([mem]) });
  t.after(() => server.close());
  const c = await connectTcp({ port: server.port });
  await c.reset();
  const idle = await connectTcp({ port: server.port });
  const closed = await idle.closed;
  assert.equal(closed.how, 'fin', 'the server closed the idle connection with a FIN');
  await new Promise((r) => setTimeout(r, 20));
  const hows = mem.find({ kind: 'close' }).map((e) => e.meta?.how);
  assert.deepEqual(hows.sort(), ['rst', 'timeout']);
});

test('a line past maxLineLength gets a clear error reply, the connection is closed, the server keeps serving', async (t) => {
  const mem = new MemorySink();
  const server = await startTcpServer({ framing: 'line', maxLineLength: 64, tracer: createTracer([mem]) });
  t.after(() => server.close());
  const r = await rawExchange(server.port, (s) => s.write('x'.repeat(1000)));
  assert.match(String(r.data), /^ERR line too long: \d+ bytes without a newline, limit maxLineLength=64\n$/);
  assert.equal(r.closedByServer, true);
  assert.equal(mem.find({ kind: 'limit' }).length, 1);
  await assertStillServes(server.port);
});

test('a length frame past maxFrameLength gets an error frame and a close', async (t) => {
  const server = await startTcpServer({ framing: 'length', maxFrameLength: 16 });
  t.after(() => server.close());
  const r = await rawExchange(server.port, (s) => s.write(encodeFrame('length', Buffer.alloc(17))));
  const len = r.data.readUInt32BE(0);
  assert.match(String(r.data.subarray(4, 4 + len)), /^ERR frame too long/);
  assert.equal(r.closedByServer, true);
  await assertStillServes(server.port, 'length');
});

test('garbage, half-open connections and a connection flood leave the server serving', async (t) => {
  const server = await startTcpServer({ framing: 'line', maxConnections: 64 });
  t.after(() => server.close());
  // Garbage: random bytes with and without newlines.
  const garbage = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256));
  await rawExchange(server.port, (s) => s.end(garbage), 1000);
  // Half-open: connections that send nothing and stay.
  const idle = await Promise.all(Array.from({ length: 20 }, () => connectTcp({ port: server.port })));
  // A client that half-closes still gets its echo.
  const half = await rawExchange(server.port, (s) => s.end('bye\n'));
  assert.equal(String(half.data), 'bye\n');
  await assertStillServes(server.port);
  await Promise.all(idle.map((c) => c.destroy()));
  // More connections than maxConnections: the extra ones are refused, the server survives.
  const many = await Promise.allSettled(Array.from({ length: 80 }, () => connectTcp({ port: server.port })));
  // The clients' connects complete in the kernel before the server's accepts run: wait for them (a count, not a delay).
  for (let i = 0; i < 200 && server.stats.refused === 0; i++) await new Promise((r) => setTimeout(r, 25));
  assert.ok(server.stats.refused > 0, `refused ${server.stats.refused}`);
  await Promise.all(many.map((m) => (m.status === 'fulfilled' ? m.value.destroy() : undefined)));
  await assertStillServes(server.port);
});

test('10,000 connects and closes in a loop, then a valid client is served', async (t) => {
  const server = await startTcpServer({ framing: 'line' });
  t.after(() => server.close());
  const total = 10_000;
  const parallel = 50;
  let done = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (done < total) {
        done++;
        await new Promise<void>((resolve) => {
          const s = net.connect(server.port, '127.0.0.1', () => s.destroy());
          s.on('error', () => {});
          s.on('close', () => resolve());
        });
      }
    }),
  );
  // A client is done once it has closed; the server may still be accepting the last ones: let it catch up.
  const seen = (): number => server.stats.connections + server.stats.refused;
  for (let i = 0; i < 100 && seen() < total; i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(seen(), total);
  await assertStillServes(server.port);
});

test('options are checked when the server is built', async () => {
  await assert.rejects(startTcpServer({ mode: 'nope' as never }), { code: 'WL_ERR_INVALID_OPTION', name: 'InvalidOptionError' });
  await assert.rejects(startTcpServer({ port: 70000 }), { code: 'WL_ERR_INVALID_OPTION', option: 'port' });
  await assert.rejects(startTcpServer({ maxLineLength: 0 }), { code: 'WL_ERR_INVALID_OPTION', option: 'maxLineLength' });
});

test('a port in use is a WirelabError naming the port', async (t) => {
  const server = await startTcpServer({});
  t.after(() => server.close());
  await assert.rejects(startTcpServer({ port: server.port }), { code: 'WL_ERR_PORT_IN_USE', status: server.port });
});

test('client maxQueued: one unread message past the limit closes the connection with WL_ERR_QUEUE_FULL after the queued ones', async (t) => {
  const server = await startTcpServer({ port: 0, mode: 'echo', framing: 'line' });
  t.after(() => server.close());
  await assert.rejects(connectTcp({ port: server.port, maxQueued: 0 }), { code: 'WL_ERR_INVALID_OPTION' });
  const c = await connectTcp({ port: server.port, framing: 'line', maxQueued: 3 });
  for (let i = 0; i < 5; i++) await c.send(`m${i}`);
  await c.closed;
  const got: string[] = [];
  for (let i = 0; i < 3; i++) got.push(String(await c.next()));
  assert.deepEqual(got, ['m0', 'm1', 'm2']);
  await assert.rejects(c.next(), { code: 'WL_ERR_QUEUE_FULL' });
  await assertStillServes(server.port);
});
