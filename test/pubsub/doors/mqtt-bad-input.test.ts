import { test } from 'node:test';
import assert from 'node:assert/strict';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { client, raw, startRig, until, type MqttRig } from './mqtt-helpers.ts';

const gen = (p: Packet, protocolVersion: 4 | 5 = 4): Buffer => mqttPacket.generate(p, { protocolVersion } as never);
const connect = (v: 4 | 5, clientId = 'bad'): Buffer => gen({ cmd: 'connect', clientId, protocolVersion: v, clean: true, keepalive: 30 }, v);

function parse(buf: Buffer, protocolVersion: 4 | 5): Packet[] {
  const out: Packet[] = [];
  const p = mqttPacket.parser({ protocolVersion } as never);
  p.on('packet', (x: Packet) => out.push(x));
  p.on('error', () => undefined);
  p.parse(buf);
  return out;
}

/** Sends `bytes` (after an optional CONNECT), waits for the server to close, returns what it answered. */
async function exchange(t: Parameters<typeof raw>[0], rig: MqttRig, v: 4 | 5, bytes: Buffer, withConnect = true): Promise<Packet[]> {
  const c = await raw(t, rig.server.port);
  c.socket.write(withConnect ? Buffer.concat([connect(v), bytes]) : bytes);
  await c.closed;
  return parse(c.received(), v);
}

async function stillServing(t: Parameters<typeof raw>[0], rig: MqttRig): Promise<void> {
  const ok = await client(t, rig.url);
  await ok.publishAsync('alive/check', 'yes', { qos: 1 });
}

function badInputTraced(rig: MqttRig, kind: string): void {
  assert.ok(rig.sink.events.some((e) => e.kind === 'bad-input' && e.meta?.kind === kind), `trace event bad-input ${kind}`);
}

test('a packet before CONNECT: closed, traced, the server keeps serving', async (t) => {
  const rig = await startRig(t);
  const answer = await exchange(t, rig, 4, gen({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'a', qos: 0 }] }), false);
  assert.deepEqual(answer, []);
  badInputTraced(rig, 'before-connect');
  await stillServing(t, rig);
});

test('a bad remaining length (5 bytes): 3.1.1 closes; 5 gets DISCONNECT 0x81', async (t) => {
  const rig = await startRig(t);
  const bad = Buffer.from([0x30, 0x80, 0x80, 0x80, 0x80, 0x01]);
  assert.deepEqual((await exchange(t, rig, 4, bad)).map((p) => p.cmd), ['connack']);
  const five = await exchange(t, rig, 5, bad);
  assert.deepEqual(five.map((p) => p.cmd), ['connack', 'disconnect']);
  assert.equal((five[1] as { reasonCode?: number }).reasonCode, 0x81);
  badInputTraced(rig, 'malformed-length');
  await stillServing(t, rig);
});

test('a 256 MB remaining length is refused from the header (maxPacketBytes): DISCONNECT 0x95 on 5', async (t) => {
  const rig = await startRig(t);
  const huge = Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x01, 0x61]);
  const five = await exchange(t, rig, 5, huge);
  assert.equal((five[1] as { reasonCode?: number }).reasonCode, 0x95);
  assert.deepEqual((await exchange(t, rig, 4, huge)).map((p) => p.cmd), ['connack']);
  badInputTraced(rig, 'packet-too-large');
  await stillServing(t, rig);
});

test('a QoS 3 PUBLISH: malformed (DISCONNECT 0x81 on 5, closed on 3.1.1)', async (t) => {
  const rig = await startRig(t);
  const qos3 = Buffer.from([0x36, 0x05, 0x00, 0x01, 0x61, 0x00, 0x01]);
  const five = await exchange(t, rig, 5, qos3);
  assert.equal((five[1] as { reasonCode?: number }).reasonCode, 0x81);
  assert.deepEqual((await exchange(t, rig, 4, qos3)).map((p) => p.cmd), ['connack']);
  badInputTraced(rig, 'malformed');
  await stillServing(t, rig);
});

test('a wildcard in a PUBLISH topic: DISCONNECT 0x90 on 5, closed on 3.1.1', async (t) => {
  const rig = await startRig(t);
  for (const v of [4, 5] as const) {
    const pub = gen({ cmd: 'publish', topic: 'a/+/b', payload: Buffer.from('x'), qos: 1, messageId: 1, retain: false, dup: false }, v);
    const answer = await exchange(t, rig, v, pub);
    assert.deepEqual(answer.map((p) => p.cmd), v === 5 ? ['connack', 'disconnect'] : ['connack']);
    if (v === 5) assert.equal((answer[1] as { reasonCode?: number }).reasonCode, 0x90);
  }
  badInputTraced(rig, 'wildcard-topic');
  await stillServing(t, rig);
});

test('# in the middle of a filter: SUBACK 0x80 (3.1.1) / 0x8F (5) for that filter, the others granted', async (t) => {
  const rig = await startRig(t);
  for (const v of [4, 5] as const) {
    const c = await raw(t, rig.server.port);
    const sub = gen({ cmd: 'subscribe', messageId: 9, subscriptions: [{ topic: 'a/#/b', qos: 1 }, { topic: 'ok/+', qos: 1 }] }, v);
    c.socket.write(Buffer.concat([connect(v, `sub${v}`), sub]));
    await until(() => parse(c.received(), v).some((p) => p.cmd === 'suback'), 'SUBACK');
    const suback = parse(c.received(), v).find((p) => p.cmd === 'suback') as { granted: number[] };
    assert.deepEqual(suback.granted, [v === 5 ? 0x8f : 0x80, 1]);
    c.socket.end();
  }
  await stillServing(t, rig);
});

test('an unsupported protocol level: CONNACK 0x01 (3.1.1 form) for level 3, 0x84 (5 form) for level 6', async (t) => {
  const rig = await startRig(t);
  const v3 = gen({ cmd: 'connect', clientId: 'old', protocolVersion: 3, protocolId: 'MQIsdp', clean: true, keepalive: 30 });
  const a3 = await exchange(t, rig, 4, v3, false);
  assert.equal((a3[0] as { returnCode?: number }).returnCode, 0x01);
  const v6 = Buffer.from(connect(5));
  v6[8] = 6;
  const a6 = await exchange(t, rig, 5, v6, false);
  assert.equal((a6[0] as { reasonCode?: number }).reasonCode, 0x84);
  assert.ok(rig.sink.events.some((e) => e.kind === 'refused' && e.meta?.kind === 'unsupported-protocol-level'));
  await stillServing(t, rig);
});

test('no CONNECT within connectTimeoutMs: closed and traced', async (t) => {
  const rig = await startRig(t, { server: { limits: { connectTimeoutMs: 50 } } });
  const c = await raw(t, rig.server.port);
  await c.closed;
  badInputTraced(rig, 'connect-timeout');
  await until(() => rig.server.stats.badInput >= 1);
});
