import { test } from 'node:test';
import assert from 'node:assert/strict';
import mqtt from 'mqtt';
import { ErrorCodes } from '../../../core/errors.ts';
import { startMqttServer } from '../../../pubsub/doors/mqtt/index.ts';
import { client, startRig, until } from './mqtt-helpers.ts';

function connack(url: string, options: mqtt.IClientOptions, t: { after(fn: () => void): void }): Promise<{ c: mqtt.MqttClient; code: number | undefined }> {
  const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...options });
  t.after(() => void c.end(true));
  return new Promise((resolve) => {
    c.on('error', (err: Error & { code?: number }) => resolve({ c, code: err.code }));
    c.once('connect', (p) => resolve({ c, code: p.reasonCode ?? p.returnCode ?? 0 }));
  });
}

test('bad options throw InvalidOptionError naming the option', async (t) => {
  const { broker } = await startRig(t);
  await assert.rejects(startMqttServer({ broker, limits: { maxPacketBytes: 1 } }), (e: { code?: string; option?: string }) => e.code === ErrorCodes.INVALID_OPTION && e.option === 'limits.maxPacketBytes');
  await assert.rejects(startMqttServer({ broker, limits: { maxPackets: 1 } as never }), (e: { option?: string }) => e.option === 'limits.maxPackets');
  await assert.rejects(startMqttServer({ broker, ws: { path: 'mqtt' } }), (e: { option?: string }) => e.option === 'ws.path');
  await assert.rejects(startMqttServer({} as never), (e: { option?: string }) => e.option === 'broker');
});

test('a second CONNECT with the same client id takes the session over (DISCONNECT 0x8E on 5)', async (t) => {
  const { url, server } = await startRig(t);
  const first = await client(t, url, { protocolVersion: 5, clientId: 'twin' });
  const reason = new Promise<number | undefined>((r) => first.once('disconnect', (p) => r(p.reasonCode)));
  await client(t, url, { protocolVersion: 5, clientId: 'twin' });
  assert.equal(await reason, 0x8e);
  assert.equal(server.door.live.size, 1);
});

test('a persistent session ends after its expiry; a delayed will is cancelled when the client comes back', async (t) => {
  const { url, server } = await startRig(t);
  const short = await client(t, url, { protocolVersion: 5, clientId: 'brief', clean: false, properties: { sessionExpiryInterval: 1 } });
  await short.subscribeAsync('x/#', { qos: 1 });
  await short.endAsync();
  assert.ok(server.door.store.sessions.has('brief'));
  await until(() => !server.door.store.sessions.has('brief'), 'the session expired', 5000);
  assert.equal(server.stats.sessionsExpired, 1);

  const watcher = await client(t, url);
  const wills: string[] = [];
  watcher.on('message', (topic) => wills.push(topic));
  await watcher.subscribeAsync('will/#', { qos: 1 });
  const will = { topic: 'will/delayed', payload: Buffer.from('x'), qos: 1 as const, retain: false, properties: { willDelayInterval: 60 } };
  const opts = { protocolVersion: 5 as const, clientId: 'comeback', clean: false, properties: { sessionExpiryInterval: 120 }, will };
  const a = await client(t, url, opts);
  (a as unknown as { stream: { destroy(): void } }).stream.destroy();
  await until(() => !server.door.live.has('comeback'), 'the unclean end seen');
  await client(t, url, opts);
  await watcher.publishAsync('will/sync', 'marker', { qos: 1 });
  await until(() => wills.includes('will/sync'), 'marker');
  assert.deepEqual(wills, ['will/sync'], 'the delayed will was not published');
});

test('maxSessions: a persistent session past it is refused (CONNACK 0x97 on 5, 0x03 on 3.1.1)', async (t) => {
  const { url } = await startRig(t, { server: { limits: { maxSessions: 1 } } });
  await client(t, url, { protocolVersion: 5, clientId: 'p1', clean: false, properties: { sessionExpiryInterval: 60 } });
  assert.equal((await connack(url, { protocolVersion: 5, clientId: 'p2', clean: false, properties: { sessionExpiryInterval: 60 } }, t)).code, 0x97);
  assert.equal((await connack(url, { protocolVersion: 4, clientId: 'p3', clean: false }, t)).code, 0x03);
  assert.equal((await connack(url, { protocolVersion: 4, clientId: 'p4', clean: true }, t)).code, 0, 'clean sessions are not counted');
});

test('ACL refusals: SUBACK 0x87 on 5 / 0x80 on 3.1.1, PUBACK 0x87 on 5', async (t) => {
  const { url } = await startRig(t, {
    broker: { anonymousPermissions: { subscribe: { deny: ['secret.>'] }, publish: { deny: ['secret.>'] } } },
  });
  const c5 = await client(t, url, { protocolVersion: 5 });
  // mqtt.js rejects a SUBACK with a failure code; the packet rides on the error.
  const granted = (c: typeof c5, filters: Record<string, { qos: 0 | 1 | 2 }>) =>
    c.subscribeAsync(filters).then((g) => g.map((x) => x.qos), (e: { packet?: { granted?: number[] } }) => e.packet?.granted);
  assert.deepEqual(await granted(c5, { 'secret/#': { qos: 1 }, 'open/#': { qos: 1 } }), [0x87, 1]);
  const c4 = await client(t, url, { protocolVersion: 4 });
  assert.deepEqual(await granted(c4, { 'secret/x': { qos: 1 } }), [0x80]);
  await assert.rejects(c5.publishAsync('secret/x', 'no', { qos: 1 }), (e: { code?: number }) => e.code === 0x87);
});
