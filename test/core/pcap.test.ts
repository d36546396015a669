import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePcap } from '../../core/capture/pcap.ts';

/** A classic little-endian pcap with raw-IP frames (link type 101). */
function pcap(frames: Buffer[]): Buffer {
  const head = Buffer.alloc(24);
  head.writeUInt32LE(0xa1b2c3d4, 0);
  head.writeUInt16LE(2, 4);
  head.writeUInt16LE(4, 6);
  head.writeUInt32LE(65535, 16);
  head.writeUInt32LE(101, 20);
  const recs = frames.map((f, i) => {
    const r = Buffer.alloc(16);
    r.writeUInt32LE(1000 + i, 0);
    r.writeUInt32LE(f.length, 8);
    r.writeUInt32LE(f.length, 12);
    return Buffer.concat([r, f]);
  });
  return Buffer.concat([head, ...recs]);
}

function ipv4(proto: number, l4: Buffer, totalOverride?: number): Buffer {
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(totalOverride ?? 20 + l4.length, 2);
  ip[9] = proto;
  Buffer.from([127, 0, 0, 1]).copy(ip, 12);
  Buffer.from([127, 0, 0, 1]).copy(ip, 16);
  return Buffer.concat([ip, l4]);
}

test('UDP: the length field and the IP payload are read, not assumed', () => {
  const udp = Buffer.alloc(8 + 10);
  udp.writeUInt16BE(5000, 0);
  udp.writeUInt16BE(6000, 2);
  udp.writeUInt16BE(18, 4);
  // A second datagram whose UDP length disagrees with IP's (a truncated or forged one): the parser shows both.
  const odd = Buffer.from(udp);
  odd.writeUInt16BE(12, 4);
  const [a, b] = parsePcap(pcap([ipv4(17, udp), ipv4(17, odd)]));
  assert.equal(a!.proto, 'udp');
  assert.equal(a!.ipPayload, 18);
  assert.equal(a!.udpLength, 18);
  assert.equal(a!.payload, 10);
  assert.equal(b!.udpLength, 12);
  assert.equal(b!.ipPayload, 18);
});

test('TCP: header length from the data offset, options by name, payload from the IP length', () => {
  const tcp = Buffer.alloc(32 + 5);
  tcp.writeUInt16BE(40000, 0);
  tcp.writeUInt16BE(80, 2);
  tcp[12] = 8 << 4; // 32 B header
  tcp[13] = 0x18; // PSH ACK
  Buffer.from([1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]).copy(tcp, 20);
  const [p] = parsePcap(pcap([ipv4(6, tcp)]));
  assert.equal(p!.l4Header, 32);
  assert.deepEqual(p!.options, ['nop', 'nop', 'ts']);
  assert.deepEqual(p!.flags, ['ACK', 'PSH']);
  assert.equal(p!.payload, 5);
  assert.equal(p!.ipPayload, 37);
});

test('TCP: sequence, acknowledgement and the raw window field (a zero window reads 0)', () => {
  const tcp = Buffer.alloc(20);
  tcp.writeUInt16BE(40000, 0);
  tcp.writeUInt16BE(80, 2);
  tcp.writeUInt32BE(0xfffffffe, 4);
  tcp.writeUInt32BE(123456789, 8);
  tcp[12] = 5 << 4;
  tcp[13] = 0x10; // ACK
  const zero = Buffer.from(tcp);
  tcp.writeUInt16BE(512, 14);
  const [open, closed] = parsePcap(pcap([ipv4(6, tcp), ipv4(6, zero)]));
  assert.equal(open!.seq, 0xfffffffe);
  assert.equal(open!.ack, 123456789);
  assert.equal(open!.window, 512);
  assert.equal(closed!.window, 0);
});
