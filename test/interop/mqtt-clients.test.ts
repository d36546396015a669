import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { getTlsMaterial } from '../../core/tls/index.ts';
import { startMqttServer } from '../../pubsub/doors/mqtt/index.ts';
import { requirePeer } from '../helpers/peers.ts';
import { client, startRig, until } from '../pubsub/doors/mqtt-helpers.ts';

const run = promisify(execFile);
const PY = '/usr/bin/python3';

/** Starts mosquitto_sub, resolves with its stdout once it exits (after -C n messages). */
function mosquittoSub(args: string[]): { done: Promise<string> } {
  const child = spawn('mosquitto_sub', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.on('error', () => undefined);
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  const done = new Promise<string>((resolve) => child.on('close', () => (clearTimeout(timer), resolve(out))));
  return { done };
}

for (const qos of [0, 1, 2]) {
  test(`mosquitto_pub and mosquitto_sub at QoS ${qos} (MQTT 3.1.1 and 5)`, async (t) => {
    if (!requirePeer(t, 'mosquitto_sub', 'mosquitto-clients')) return;
    const rig = await startRig(t);
    const a = ['-h', '127.0.0.1', '-p', String(rig.server.port)];
    const sub = mosquittoSub([...a, '-t', 'interop/#', '-q', String(qos), '-v', '-C', '2', '-W', '12']);
    await until(() => rig.sink.events.some((e) => e.kind === 'suback'), 'mosquitto_sub subscribed');
    await run('mosquitto_pub', [...a, '-t', 'interop/v311', '-m', 'hello 3.1.1', '-q', String(qos)], { timeout: 10_000 });
    await run('mosquitto_pub', [...a, '-V', 'mqttv5', '-t', 'interop/v5', '-m', 'hello 5', '-q', String(qos)], { timeout: 10_000 });
    assert.equal(await sub.done, 'interop/v311 hello 3.1.1\ninterop/v5 hello 5\n');
  });
}

test('mosquitto_pub -r stores a retained message that a later mosquitto_sub gets; -n -r clears it', async (t) => {
  if (!requirePeer(t, 'mosquitto_sub', 'mosquitto-clients')) return;
  const rig = await startRig(t);
  const a = ['-h', '127.0.0.1', '-p', String(rig.server.port)];
  await run('mosquitto_pub', [...a, '-t', 'ret/a', '-m', 'kept', '-r', '-q', '1'], { timeout: 10_000 });
  const got = await mosquittoSub([...a, '-t', 'ret/#', '-v', '-C', '1', '-W', '10']).done;
  assert.equal(got, 'ret/a kept\n');
  await run('mosquitto_pub', [...a, '-t', 'ret/a', '-n', '-r', '-q', '1'], { timeout: 10_000 });
  assert.equal(rig.server.door.store.retained.size, 0);
});

test('mosquitto_pub / mosquitto_sub over TLS (mqtts) with the local CA', async (t) => {
  if (!requirePeer(t, 'mosquitto_sub', 'mosquitto-clients')) return;
  const rig = await startRig(t);
  const tls = await startMqttServer({ broker: rig.broker, tls: true, tracer: rig.tracer });
  t.after(() => tls.close());
  const ca = (await getTlsMaterial()).caCertPath;
  const a = ['-h', 'localhost', '-p', String(tls.port), '--cafile', ca];
  const sub = mosquittoSub([...a, '-t', 'tls/#', '-q', '1', '-C', '1', '-W', '12']);
  await until(() => rig.sink.events.some((e) => e.kind === 'suback'), 'mosquitto_sub subscribed over TLS');
  await run('mosquitto_pub', [...a, '-t', 'tls/x', '-m', 'secret', '-q', '1'], { timeout: 10_000 });
  assert.equal(await sub.done, 'secret\n');
});

test('Python paho (python3-paho-mqtt) publishes and subscribes, over TCP and WebSocket', async (t) => {
  if (!requirePeer(t, PY, 'python3')) return;
  if (spawnSync(PY, ['-c', 'import paho.mqtt.client']).status !== 0) {
    if (process.env.CI === 'true') throw new Error('CI=true and paho missing (Debian package python3-paho-mqtt)');
    return t.skip('needs python3-paho-mqtt (Debian package python3-paho-mqtt)');
  }
  const rig = await startRig(t);
  const ws = await startMqttServer({ broker: rig.broker, ws: { path: '/mqtt' } });
  t.after(() => ws.close());
  const watcher = await client(t, rig.url);
  const got: string[] = [];
  watcher.on('message', (topic, payload) => got.push(`${topic}=${payload.toString()}`));
  await watcher.subscribeAsync('py/#', { qos: 1 });
  // paho publishes over TCP and over WebSocket.
  await run(PY, ['-c', `import paho.mqtt.publish as p; p.single('py/tcp', 'from paho', qos=1, hostname='127.0.0.1', port=${rig.server.port})`], { timeout: 10_000 });
  await run(PY, ['-c', `import paho.mqtt.publish as p; p.single('py/ws', 'from paho ws', qos=1, hostname='127.0.0.1', port=${ws.port}, transport='websockets')`], { timeout: 10_000 });
  await until(() => got.length === 2, 'paho publishes');
  assert.deepEqual(got.sort(), ['py/tcp=from paho', 'py/ws=from paho ws']);
  // paho subscribes (subscribe.simple returns after one message).
  const script = `import paho.mqtt.subscribe as s; m = s.simple('py/in', qos=1, hostname='127.0.0.1', port=${rig.server.port}); print(m.topic, m.payload.decode())`;
  const sub = run(PY, ['-c', script], { timeout: 15_000 });
  await until(() => rig.sink.events.filter((e) => e.kind === 'suback').length >= 2, 'paho subscribed');
  const pub = await client(t, rig.url);
  await pub.publishAsync('py/in', 'to paho', { qos: 1 });
  assert.equal((await sub).stdout.trim(), 'py/in to paho');
});
