import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IPublishPacket } from 'mqtt';
import { client, startRig, until } from './mqtt-helpers.ts';

type Got = { topic: string; payload: string; packet: IPublishPacket };
function collect(c: import('mqtt').MqttClient): Got[] {
  const got: Got[] = [];
  c.on('message', (topic, payload, packet) => got.push({ topic, payload: payload.toString(), packet }));
  return got;
}

for (const protocolVersion of [4, 5] as const) {
  test(`MQTT ${protocolVersion === 5 ? '5' : '3.1.1'}: QoS 0, 1 and 2 publish and deliver; outgoing QoS = min(sub, message)`, async (t) => {
    const { url, sink } = await startRig(t);
    const sub = await client(t, url, { protocolVersion });
    const pub = await client(t, url, { protocolVersion });
    const got = collect(sub);
    await sub.subscribeAsync({ 'lab/+/temp': { qos: 2 } });
    await sub.subscribeAsync({ 'low/#': { qos: 0 } });
    for (const qos of [0, 1, 2] as const) await pub.publishAsync(`lab/r${qos}/temp`, `m${qos}`, { qos });
    await pub.publishAsync('low/x', 'down', { qos: 2 });
    await until(() => got.length === 4, 'four messages');
    const byTopic = Object.fromEntries(got.map((g) => [g.topic, g]));
    assert.equal(byTopic['lab/r0/temp']!.packet.qos, 0);
    assert.equal(byTopic['lab/r1/temp']!.packet.qos, 1);
    assert.equal(byTopic['lab/r2/temp']!.packet.qos, 2);
    assert.equal(byTopic['low/x']!.packet.qos, 0, 'min(sub QoS 0, message QoS 2)');
    await until(() => sink.events.some((e) => e.kind === 'qos2-step' && e.summary.startsWith('4/4') && e.summary.includes('complete')), 'PUBCOMP from the subscriber');
    const steps = sink.events.filter((e) => e.kind === 'qos2-step').map((e) => e.summary.slice(0, 3));
    for (const s of ['1/4', '2/4', '3/4', '4/4']) assert.ok(steps.includes(s), `QoS 2 step ${s} traced`);
  });
}

test('retained: delivered on subscribe with retain=1, replaced, and cleared by an empty payload', async (t) => {
  const { url, server } = await startRig(t);
  const pub = await client(t, url);
  await pub.publishAsync('home/door', 'open', { qos: 1, retain: true });
  await pub.publishAsync('home/door', 'closed', { qos: 1, retain: true });
  await pub.publishAsync('home/light', 'on', { qos: 1, retain: true });
  const s1 = await client(t, url);
  const g1 = collect(s1);
  await s1.subscribeAsync('home/#', { qos: 1 });
  await until(() => g1.length === 2, 'two retained');
  assert.deepEqual(g1.map((g) => `${g.topic}=${g.payload}`).sort(), ['home/door=closed', 'home/light=on']);
  assert.ok(g1.every((g) => g.packet.retain));
  await pub.publishAsync('home/door', '', { qos: 1, retain: true });
  assert.equal(server.door.store.retained.size, 1);
  const s2 = await client(t, url);
  const g2 = collect(s2);
  await s2.subscribeAsync('home/+', { qos: 1 });
  await until(() => g2.length === 1, 'one retained');
  assert.equal(g2[0]!.topic, 'home/light');
});

test('MQTT 5: user properties, message expiry, content type and topic aliases both ways', async (t) => {
  const { url } = await startRig(t);
  const sub = await client(t, url, { protocolVersion: 5, properties: { topicAliasMaximum: 5 } });
  const pub = await client(t, url, { protocolVersion: 5 });
  const got = collect(sub);
  await sub.subscribeAsync('v5/#', { qos: 1 });
  await pub.publishAsync('v5/a', 'one', { qos: 1, properties: { userProperties: { trace: 'abc' }, messageExpiryInterval: 60, contentType: 'text/plain', topicAlias: 3 } });
  await pub.publishAsync('', 'two', { qos: 1, properties: { topicAlias: 3 } });
  await until(() => got.length === 2, 'two messages');
  const p = got[0]!.packet.properties!;
  assert.deepEqual({ ...p.userProperties }, { trace: 'abc' });
  assert.equal(p.contentType, 'text/plain');
  assert.ok(p.messageExpiryInterval! > 0 && p.messageExpiryInterval! <= 60);
  assert.equal(got[1]!.payload, 'two');
  assert.equal(got[1]!.topic, 'v5/a', 'the alias the client set resolves to its topic');
  assert.equal(got[1]!.packet.properties?.topicAlias, 1, 'the server uses an outgoing alias the second time');
});

test('MQTT 5 shared subscriptions spread messages across members, each message to one', async (t) => {
  const { url } = await startRig(t);
  const members = await Promise.all([0, 1].map(() => client(t, url, { protocolVersion: 5 })));
  const got = members.map(collect);
  for (const m of members) await m.subscribeAsync('$share/workers/jobs/#', { qos: 1 });
  const pub = await client(t, url, { protocolVersion: 5 });
  for (let i = 0; i < 40; i++) await pub.publishAsync(`jobs/${i}`, String(i), { qos: 1 });
  await until(() => got[0]!.length + got[1]!.length === 40, '40 deliveries');
  const all = [...got[0]!, ...got[1]!].map((g) => Number(g.payload)).sort((a, b) => a - b);
  assert.deepEqual(all, [...Array(40).keys()], 'each message once');
  assert.ok(got[0]!.length > 0 && got[1]!.length > 0, 'both members got some');
});

test('persistent session: subscriptions kept, QoS 1 messages queued while away arrive on resume (session present)', async (t) => {
  const { url, server } = await startRig(t);
  const opts = { protocolVersion: 5 as const, clientId: 'keeper', clean: false, properties: { sessionExpiryInterval: 300 } };
  const a = await client(t, url, opts);
  await a.subscribeAsync('q/#', { qos: 1 });
  await a.endAsync();
  await until(() => !server.door.live.has('keeper'), 'the session offline');
  const pub = await client(t, url);
  // One topic: order is kept per topic (each topic is its own log).
  for (let i = 0; i < 20; i++) await pub.publishAsync('q/orders', String(i), { qos: 1 });
  const b = mqttWithConnack(t, url, opts);
  const got = collect(b.client);
  const connack = await b.connack;
  assert.equal(connack.sessionPresent, true);
  await until(() => got.length === 20, '20 queued messages');
  assert.deepEqual(got.map((g) => Number(g.payload)), [...Array(20).keys()], 'in order: ' + got.map((g) => g.payload + (g.packet.dup ? 'd' : '')).join(' '));
  // 3.1.1 with clean session 1 on the same id: the session is gone.
  const c = mqttWithConnack(t, url, { protocolVersion: 4, clientId: 'keeper', clean: true });
  assert.equal((await c.connack).sessionPresent, false);
});

test('last will: published on an unclean end (keep-alive silence), not after DISCONNECT; an empty id gets one assigned on 5', async (t) => {
  const { url, server } = await startRig(t);
  const watcher = await client(t, url);
  const got = collect(watcher);
  await watcher.subscribeAsync('wills/#', { qos: 1 });
  const polite = await client(t, url, { will: { topic: 'wills/polite', payload: Buffer.from('gone'), qos: 1, retain: false } });
  await polite.endAsync();
  const rude = mqttWithConnack(t, url, { protocolVersion: 5, clientId: '', keepalive: 1, will: { topic: 'wills/rude', payload: Buffer.from('lost'), qos: 1, retain: false } });
  const ack = await rude.connack;
  assert.match(String(ack.properties?.assignedClientIdentifier), /^wl-/);
  // Stop the client's pings: the server sees silence for 1.5 x keep-alive and ends it.
  (rude.client as unknown as { _destroyKeepaliveManager?: () => void })._destroyKeepaliveManager?.();
  (rude.client as unknown as { pingTimer?: { destroy(): void } }).pingTimer?.destroy();
  await until(() => got.length >= 1, 'the will', 15_000);
  assert.deepEqual(got.map((g) => g.topic), ['wills/rude']);
  assert.ok(server.stats.willsPublished >= 1);
});

test('MQTT over WebSocket (subprotocol mqtt) on the path', async (t) => {
  const { broker } = await startRig(t);
  const { startMqttServer } = await import('../../../pubsub/doors/mqtt/index.ts');
  const ws = await startMqttServer({ broker, ws: { path: '/mqtt' } });
  t.after(() => ws.close());
  assert.match(ws.url!, /^ws:\/\/127\.0\.0\.1:\d+\/mqtt$/);
  const sub = await client(t, ws.url!);
  const got = collect(sub);
  await sub.subscribeAsync('ws/#', { qos: 1 });
  const pub = await client(t, ws.url!, { protocolVersion: 5 });
  await pub.publishAsync('ws/hi', 'over ws', { qos: 2 });
  await until(() => got.length === 1, 'one message');
  assert.equal(got[0]!.payload, 'over ws');
});

function mqttWithConnack(t: { after(fn: () => Promise<void>): void }, url: string, options: import('mqtt').IClientOptions) {
  const c = connectRaw(url, options);
  t.after(() => new Promise<void>((r) => c.end(true, {}, () => r())));
  const connack = new Promise<import('mqtt').IConnackPacket>((resolve, reject) => {
    c.once('connect', (p) => resolve(p));
    c.once('error', reject);
  });
  return { client: c, connack };
}

import mqttLib from 'mqtt';
function connectRaw(url: string, options: import('mqtt').IClientOptions): import('mqtt').MqttClient {
  const c = mqttLib.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...options });
  c.on('error', () => undefined);
  return c;
}
