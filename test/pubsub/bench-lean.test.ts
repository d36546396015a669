// The lean MQTT load generator of `npm run bench -- pubsub` (bench/fixtures/pubsub-lean.ts): its framer counts every
// packet mqtt-packet encodes, whatever the chunking, and a small fan-out through wirelab's MQTT door (in this process)
// counts every delivery.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import mqttPacket from 'mqtt-packet';
import { processCpuMs } from '../../bench/fixtures/brokers.ts';
import { leanFanOut } from '../../bench/fixtures/pubsub-lean.ts';
import { framer } from '../../bench/fixtures/pubsub-lean-subs.ts';
import { createBroker } from '../../pubsub/broker/index.ts';
import { startMqttServer } from '../../pubsub/doors/mqtt/index.ts';

test('lean framer: packet types counted whatever the chunk boundaries (remaining lengths of 0 to 3 bytes)', () => {
  const packets = [
    mqttPacket.generate({ cmd: 'suback', messageId: 1, granted: [0] }),
    ...[0, 1, 127, 128, 300, 16_383, 16_384, 70_000].map((n) => mqttPacket.generate({ cmd: 'publish', topic: 'a/b', payload: Buffer.alloc(n, 1), qos: 0, retain: false, dup: false })),
    mqttPacket.generate({ cmd: 'pingresp' }),
  ];
  const stream = Buffer.concat(packets);
  const expected = packets.map((p) => p[0]! >> 4);
  for (const step of [1, 2, 3, 7, 64, 1000, stream.length]) {
    const seen: number[] = [];
    const frame = framer((type) => seen.push(type));
    for (let i = 0; i < stream.length; i += step) {
      // Every other chunk is passed inside a larger buffer with an end, as the onread path does.
      const chunk = stream.subarray(i, Math.min(stream.length, i + step));
      if ((i / step) % 2 === 0) frame(chunk);
      else frame(Buffer.concat([chunk, Buffer.alloc(5, 0xff)]), chunk.length);
    }
    assert.deepEqual(seen, expected, `chunks of ${step}`);
  }
});

test('lean generator: 8 subscribers x 300 messages through the MQTT door, every delivery counted', { timeout: 20_000 }, async () => {
  const broker = await createBroker({});
  const door = await startMqttServer({ broker, host: '127.0.0.1', port: 0 });
  try {
    const bench = { name: 'self', ports: { mqtt: door.port }, pid: process.pid, cpuMs: () => processCpuMs(process.pid), stop: async () => undefined };
    const r = await leanFanOut(bench, door.port, 'lean/test', { subscribers: 8, messages: 300, payloadBytes: 64, window: 100, workers: 2 });
    assert.ok(r.rate > 0, `rate ${r.rate}`);
    assert.equal(r.delivered, 8 * 300);
    assert.ok(r.generatorCpuPerDelivery > 0);
  } finally {
    await door.close();
    await broker.close();
  }
});
