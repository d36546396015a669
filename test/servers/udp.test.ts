import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { test } from 'node:test';
import { openUdp } from '../../clients/udp.ts';
import { MAX_UDP_PAYLOAD } from '../../core/datagram.ts';
import { decodeHeader, encodeDatagram, HEADER_BYTES } from '../../protocols/datagram.ts';
import { createTracer, MemorySink } from '../../core/trace/index.ts';
import { startUdpServer } from '../../servers/udp/index.ts';

test('echo carries sequence numbers and send timestamps; each datagram is traced', async (t) => {
  const mem = new MemorySink();
  const server = await startUdpServer({ tracer: createTracer([mem]) });
  t.after(() => server.close());
  const c = await openUdp({ port: server.port, tracer: createTracer([mem]) });
  t.after(() => c.close());
  const replies = [];
  for (let i = 0; i < 5; i++) replies.push(await c.echo(`hello ${i}`));
  assert.deepEqual(replies.map((r) => r.seq), [0, 1, 2, 3, 4]);
  assert.ok(replies.every((r) => r.rttMs >= 0 && r.rttMs < 1000));
  const atServer = mem.find({ proto: 'udp', cid: 'udp-server', kind: 'datagram', dir: '>' });
  assert.equal(atServer.length, 5);
  assert.match(atServer[0]!.summary, /seq=0 one-way=\d+\.\d{3} ms/);
  assert.equal(atServer[0]!.bytes, HEADER_BYTES + 'hello 0'.length);
  assert.equal(server.stats.echoed, 5);
});

test('the header round-trips and anything else is not mistaken for one', () => {
  const buf = encodeDatagram(42, Buffer.from('x'), 1234.5);
  assert.deepEqual(decodeHeader(buf), { seq: 42, sentAt: 1234.5, flags: 0 });
  assert.equal(decodeHeader(Buffer.from('not a wirelab datagram')), null);
  assert.equal(decodeHeader(Buffer.alloc(0)), null);
});

test('a payload over 65,507 bytes gets a clear error before anything is sent', async (t) => {
  const server = await startUdpServer({});
  t.after(() => server.close());
  const c = await openUdp({ port: server.port });
  t.after(() => c.close());
  await assert.rejects(c.sendRaw(Buffer.alloc(MAX_UDP_PAYLOAD + 1)), { code: 'WL_ERR_DATAGRAM_TOO_LARGE' });
  await assert.rejects(c.send(Buffer.alloc(MAX_UDP_PAYLOAD - HEADER_BYTES + 1)), { code: 'WL_ERR_DATAGRAM_TOO_LARGE' });
  assert.equal(c.sent, 0);
  const max = await c.echo(Buffer.alloc(MAX_UDP_PAYLOAD - HEADER_BYTES));
  assert.equal(max.bytes, MAX_UDP_PAYLOAD);
});

test('datagrams of every size and of garbage are echoed unchanged; the server keeps serving', async (t) => {
  const server = await startUdpServer({});
  t.after(() => server.close());
  const raw = dgram.createSocket('udp4');
  t.after(() => new Promise<void>((r) => raw.close(() => r())));
  await new Promise<void>((r) => raw.connect(server.port, '127.0.0.1', r));
  const sizes = [0, 1, 2, 15, 16, 17, 100, 1472, 1473, 9000, 32768, 65507];
  for (let i = 0; i < 200; i++) sizes.push((i * 7919) % 65508);
  for (const size of sizes) {
    const payload = Buffer.alloc(size);
    for (let i = 0; i < size; i++) payload[i] = (i * 31 + size) & 0xff;
    const back = new Promise<Buffer>((r) => raw.once('message', r));
    raw.send(payload);
    assert.deepEqual(await back, payload, `size ${size}`);
  }
  const c = await openUdp({ port: server.port });
  assert.equal((await c.echo('still there?')).seq, 0);
  await c.close();
});

test('past maxEchoPerSecond datagrams are dropped and counted, not echoed', async (t) => {
  const server = await startUdpServer({ maxEchoPerSecond: 10 });
  t.after(() => server.close());
  const c = await openUdp({ port: server.port });
  t.after(() => c.close());
  for (let i = 0; i < 30; i++) await c.send('x');
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(server.stats.received, 30);
  assert.equal(server.stats.echoed, 10);
  assert.equal(server.stats.dropped, 20);
});

test('options are checked when the server is built', async () => {
  await assert.rejects(startUdpServer({ port: -1 }), { code: 'WL_ERR_INVALID_OPTION' });
  await assert.rejects(startUdpServer({ maxEchoPerSecond: 0 }), { code: 'WL_ERR_INVALID_OPTION', option: 'maxEchoPerSecond' });
});
