/**
 * Fan-out where subscribers need different packets (shared-encode.ts encodes a QoS 0 PUBLISH once for every subscriber
 * that gets the same bytes): a 3.1.1 subscriber, two plain MQTT 5 subscribers, one with topic aliases and one with a
 * subscription identifier. Raw sockets, so the bytes each one got are compared with what mqtt-packet encodes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import mqttPacket, { type IPublishPacket, type Packet } from 'mqtt-packet';
import { client, startRig, until } from './mqtt-helpers.ts';

type After = { after(fn: () => Promise<void> | void): void };

/** A raw MQTT client: CONNECT, SUBSCRIBE to `filter`, then every frame it gets, as bytes. */
async function rawSubscriber(t: After, port: number, version: 4 | 5, filter: string, o: { connect?: Record<string, unknown>; subscribe?: Record<string, unknown> } = {}) {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  t.after(() => void socket.destroy());
  const frames: Buffer[] = [];
  let pending = Buffer.alloc(0);
  socket.on('data', (d: Buffer) => {
    pending = Buffer.concat([pending, d]);
    for (;;) {
      let len = 0;
      let mul = 1;
      let i = 1;
      for (; i < pending.length; i++) {
        len += (pending[i]! & 0x7f) * mul;
        mul *= 128;
        if ((pending[i]! & 0x80) === 0) break;
      }
      if (i >= pending.length || pending.length < i + 1 + len) return;
      frames.push(pending.subarray(0, i + 1 + len));
      pending = pending.subarray(i + 1 + len);
    }
  });
  await new Promise<void>((r) => socket.once('connect', () => r()));
  const gen = (p: Packet): Buffer => mqttPacket.generate(p, { protocolVersion: version } as Parameters<typeof mqttPacket.generate>[1]);
  socket.write(gen({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: version, clientId: `raw-${version}-${Math.random().toString(16).slice(2)}`, clean: true, keepalive: 0, ...(o.connect ? { properties: o.connect } : {}) } as Packet));
  await until(() => frames.length >= 1, 'CONNACK');
  socket.write(gen({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: filter, qos: 0 }], ...(o.subscribe ? { properties: o.subscribe } : {}) } as Packet));
  await until(() => frames.length >= 2, 'SUBACK');
  const publishes = (): Buffer[] => frames.slice(2);
  return { publishes, parse: (b: Buffer) => parse(b, version) };
}

function parse(bytes: Buffer, version: 4 | 5): IPublishPacket {
  const parser = mqttPacket.parser({ protocolVersion: version } as Parameters<typeof mqttPacket.parser>[0]);
  let out: Packet | undefined;
  parser.on('packet', (p: Packet) => (out = p));
  parser.on('error', (err: Error) => {
    throw err;
  });
  parser.parse(bytes);
  assert.ok(out && out.cmd === 'publish', 'a PUBLISH');
  return out as IPublishPacket;
}

test('QoS 0 fan-out to 3.1.1 and 5 subscribers (topic alias, subscription id): each gets correct bytes, identical packets are encoded once', async (t) => {
  const { server } = await startRig(t);
  const port = server.port;
  const v4 = await rawSubscriber(t, port, 4, 'fan/t');
  const plainA = await rawSubscriber(t, port, 5, 'fan/t');
  const plainB = await rawSubscriber(t, port, 5, 'fan/t');
  const aliased = await rawSubscriber(t, port, 5, 'fan/t', { connect: { topicAliasMaximum: 4 } });
  const withId = await rawSubscriber(t, port, 5, 'fan/t', { subscribe: { subscriptionIdentifier: 7 } });
  const before = { ...server.door.encodings.stats };
  const pub = await client(t, server.url!, { protocolVersion: 5 });
  await pub.publishAsync('fan/t', 'm1', { qos: 0, properties: { userProperties: { k: 'v' } } });
  await pub.publishAsync('fan/t', 'm2', { qos: 0, properties: { userProperties: { k: 'v' } } });
  const all = [v4, plainA, plainB, aliased, withId];
  await until(() => all.every((s) => s.publishes().length === 2), 'two PUBLISHes at every subscriber');

  for (const [i, payload] of ['m1', 'm2'].entries()) {
    const base = { cmd: 'publish', topic: 'fan/t', payload: Buffer.from(payload), qos: 0, retain: false, dup: false } as const;
    // 3.1.1: no properties, the plain packet.
    assert.deepEqual(v4.publishes()[i], mqttPacket.generate(base, { protocolVersion: 4 } as Parameters<typeof mqttPacket.generate>[1]), `3.1.1 bytes of ${payload}`);
    // 5 without aliases or ids: the same bytes for both (one encoding), with the user property.
    const v5 = mqttPacket.generate({ ...base, properties: { userProperties: { k: 'v' } } }, { protocolVersion: 5 } as Parameters<typeof mqttPacket.generate>[1]);
    assert.deepEqual(plainA.publishes()[i], v5, `MQTT 5 bytes of ${payload}`);
    assert.deepEqual(plainB.publishes()[i], v5, `the other MQTT 5 subscriber's bytes of ${payload}`);
    // Subscription identifier: its own packet.
    const p = withId.parse(withId.publishes()[i]!);
    assert.equal(p.properties?.subscriptionIdentifier, 7);
    assert.deepEqual({ ...p.properties?.userProperties }, { k: 'v' });
    assert.equal(p.payload.toString(), payload);
  }
  // Topic alias: the topic and alias 1 first, then the alias alone.
  const [a1, a2] = aliased.publishes().map((b) => aliased.parse(b));
  assert.equal(a1!.topic, 'fan/t');
  assert.equal(a1!.properties?.topicAlias, 1);
  assert.equal(a2!.topic, '');
  assert.equal(a2!.properties?.topicAlias, 1);
  assert.equal(a2!.payload.toString(), 'm2');
  assert.deepEqual({ ...a2!.properties?.userProperties }, { k: 'v' });

  // Per message: one encoding for 3.1.1 and one for plain 5 (the second plain subscriber reuses it).
  const stats = server.door.encodings.stats;
  assert.equal(stats.encoded - before.encoded, 4, 'two shared encodings per message');
  assert.equal(stats.reused - before.reused, 2, 'the second plain MQTT 5 subscriber got the first one\'s bytes');
});
