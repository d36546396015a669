import { test } from 'node:test';
import assert from 'node:assert/strict';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { PacketReader, connectLevel, type FramingError } from '../../../pubsub/doors/mqtt/framing.ts';

function reader(max = 1024): { r: PacketReader; packets: Packet[]; errors: FramingError[] } {
  const packets: Packet[] = [];
  const errors: FramingError[] = [];
  const r = new PacketReader(max, { packet: (p) => packets.push(p), error: (e) => errors.push(e) });
  return { r, packets, errors };
}

const connect = mqttPacket.generate({ cmd: 'connect', clientId: 'c1', protocolVersion: 4, clean: true, keepalive: 30 });
const publish = mqttPacket.generate({ cmd: 'publish', topic: 'a/b', payload: Buffer.from('x'.repeat(200)), qos: 1, messageId: 7, retain: false, dup: false });
const ping = mqttPacket.generate({ cmd: 'pingreq' });

test('packets split at every byte boundary come out whole and in order', () => {
  const all = Buffer.concat([connect, publish, ping, publish]);
  for (const step of [1, 2, 3, 7, 64, all.length]) {
    const { r, packets, errors } = reader();
    for (let i = 0; i < all.length; i += step) r.push(all.subarray(i, i + step));
    assert.deepEqual(errors, []);
    assert.deepEqual(packets.map((p) => p.cmd), ['connect', 'publish', 'pingreq', 'publish'], `step ${step}`);
  }
});

test('a huge remaining length is refused from the fixed header, before any body byte is buffered', () => {
  const { r, packets, errors } = reader(1024 * 1024);
  // The largest length four bytes hold (256 MB); a 300 MB claim needs a fifth length byte: malformed, below.
  const header = Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f]);
  r.push(header);
  assert.equal(packets.length, 0);
  assert.equal(errors[0]?.kind, 'too-large');
  assert.ok(errors[0]!.kind === 'too-large' && errors[0]!.size > 268_000_000);
  const five = reader();
  five.r.push(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x80, 0x01]));
  assert.equal(five.errors[0]?.kind, 'malformed-length');
});

test('a QoS 3 publish and a bad CONNECT level are codec errors naming what was seen', () => {
  const { r, errors } = reader();
  r.push(Buffer.from([0x36, 0x03, 0x00, 0x01, 0x61]));
  assert.equal(errors[0]?.kind, 'codec');
  const bad = Buffer.from(connect);
  bad[8] = 9; // protocol level byte: fixed header (2) + name length (2) + "MQTT" (4)
  const c = reader();
  c.r.push(bad);
  const e = c.errors[0];
  assert.ok(e && e.kind === 'codec');
  assert.equal(connectLevel(e.head), 9);
});
