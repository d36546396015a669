import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { test } from 'node:test';
import { decodeAnswer, encodeQuery, queryTcp, queryUdp, TYPE_TXT } from '../../labs/measure/dns.ts';

/** A DNS answer to `query` with TXT records, the answer names compressed to the question (pointer 0xc00c). */
function answer(query: Buffer, texts: string[], truncated = false): Buffer {
  const head = Buffer.from(query.subarray(0, 12));
  head.writeUInt16BE(0x8180 | (truncated ? 0x0200 : 0), 2);
  head.writeUInt16BE(texts.length, 6);
  head.writeUInt16BE(0, 10);
  const qEnd = query.indexOf(0, 12) + 5;
  const rrs = texts.map((t) => {
    const rr = Buffer.alloc(12);
    rr.writeUInt16BE(0xc00c, 0);
    rr.writeUInt16BE(TYPE_TXT, 2);
    rr.writeUInt16BE(1, 4);
    rr.writeUInt32BE(60, 6);
    rr.writeUInt16BE(t.length + 1, 10);
    return Buffer.concat([rr, Buffer.from([t.length]), Buffer.from(t, 'latin1')]);
  });
  return Buffer.concat([head, query.subarray(12, qEnd), ...rrs]);
}

test('dns codec: a query with and without an OPT record; an answer with compressed names and the TC bit', () => {
  const q = encodeQuery(0x1234, 'big.wirelab.test', TYPE_TXT);
  assert.equal(q.readUInt16BE(0), 0x1234);
  assert.equal(q.readUInt16BE(10), 0, 'no additional record');
  const withOpt = encodeQuery(1, 'big.wirelab.test', TYPE_TXT, 4096);
  assert.equal(withOpt.readUInt16BE(10), 1);
  assert.equal(withOpt.readUInt16BE(withOpt.length - 8), 4096, 'the OPT class carries the UDP size');
  const a = decodeAnswer(answer(q, ['one', 'two'], true));
  assert.equal(a.id, 0x1234);
  assert.equal(a.truncated, true);
  assert.deepEqual(a.txt, ['one', 'two']);
});

test('dns codec: a short or cut answer throws WL_ERR_DNS_MALFORMED', () => {
  assert.throws(() => decodeAnswer(Buffer.alloc(5)), { code: 'WL_ERR_DNS_MALFORMED' });
  const q = encodeQuery(7, 'x.test', TYPE_TXT);
  assert.throws(() => decodeAnswer(q.subarray(0, 15)), { code: 'WL_ERR_DNS_MALFORMED' });
});

test('dns client: the same question over UDP and over TCP (2-byte length prefix) against a tiny loopback server', async () => {
  const udp = dgram.createSocket('udp4');
  udp.on('error', () => undefined);
  udp.on('message', (m, r) => udp.send(answer(m, ['cut'], true), r.port, r.address));
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
  const port = udp.address().port;
  const tcp = net.createServer((s) => {
    s.on('error', () => undefined);
    s.once('data', (d: Buffer) => {
      const body = answer(d.subarray(2), ['whole', 'answer']);
      const len = Buffer.alloc(2);
      len.writeUInt16BE(body.length);
      // Cut in two writes: the client must wait for the length the prefix announced.
      s.write(Buffer.concat([len, body.subarray(0, 5)]));
      setTimeout(() => s.end(body.subarray(5)), 20);
    });
  });
  tcp.on('error', () => undefined);
  await new Promise<void>((r) => tcp.listen(port, '127.0.0.1', () => r()));
  try {
    const overUdp = await queryUdp({ host: '127.0.0.1', port, name: 'big.wirelab.test' });
    assert.equal(overUdp.truncated, true);
    const overTcp = await queryTcp({ host: '127.0.0.1', port, name: 'big.wirelab.test' });
    assert.equal(overTcp.truncated, false);
    assert.deepEqual(overTcp.txt, ['whole', 'answer']);
  } finally {
    udp.close();
    await new Promise<void>((r) => tcp.close(() => r()));
  }
});
