import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import { tempDir, until } from './mqtt-helpers.ts';

const CHILD = fileURLToPath(new URL('./mqtt-child.ts', import.meta.url));

/** Starts the broker process on `dir`; resolves with it and its MQTT port. */
async function startChild(t: { after(fn: () => void): void }, dir: string, port = 0): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['--conditions=wirelab-source', '--import', 'tsx', CHILD, dir, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  child.on('error', () => undefined);
  t.after(() => void (child.exitCode === null && child.kill('SIGKILL')));
  const got = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n')[0];
      if (out.includes('\n')) resolve((JSON.parse(line!) as { port: number }).port);
    });
    child.once('exit', (code) => reject(new Error(`broker child exited (${code})`)));
  });
  return { child, port: got };
}

function connect(url: string, options: mqtt.IClientOptions): Promise<{ c: MqttClient; sessionPresent: boolean }> {
  const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 10_000, ...options });
  c.on('error', () => undefined);
  return new Promise((resolve, reject) => {
    c.once('connect', (ack) => resolve({ c, sessionPresent: ack.sessionPresent }));
    c.once('error', reject);
  });
}

test('kill -9 of the broker mid-stream: every QoS 1 message PUBACKed for an offline persistent session arrives after restart', async (t) => {
  const dir = tempDir(t);
  const first = await startChild(t, dir);
  const url = `mqtt://127.0.0.1:${first.port}`;
  const session = { clientId: 'durable-1', clean: false, protocolVersion: 4 as const };
  const sub = await connect(url, session);
  await sub.c.subscribeAsync('kill/test', { qos: 1 });
  await sub.c.endAsync();

  // A publisher sends QoS 1 messages as fast as PUBACKs come back; the broker is SIGKILLed by PID mid-stream.
  const pub = await connect(url, { clientId: 'pub-1', protocolVersion: 4 });
  const acked = new Set<number>();
  let sent = 0;
  const stop = { now: false };
  const publishing = (async () => {
    while (!stop.now) {
      const id = sent++;
      const p = pub.c.publishAsync('kill/test', String(id), { qos: 1 }).then(() => void acked.add(id), () => undefined);
      if (sent % 50 === 0) await p;
    }
  })();
  await until(() => acked.size >= 300, '300 acked publishes', 30_000);
  first.child.kill('SIGKILL');
  stop.now = true;
  await new Promise((r) => first.child.once('exit', r));
  // Every PUBACK the publisher read before the process was gone counts.
  const ackedAtKill = [...acked];
  // Publishes in flight at the kill are failed by the forced end (they were never acked: not counted).
  pub.c.end(true);
  await publishing;

  const second = await startChild(t, dir);
  const again = await connect(`mqtt://127.0.0.1:${second.port}`, session);
  t.after(() => void again.c.end(true));
  assert.equal(again.sessionPresent, true, 'the session survived kill -9');
  const got = new Set<number>();
  again.c.on('message', (_topic, payload) => got.add(Number(payload.toString())));
  await until(() => ackedAtKill.every((id) => got.has(id)), `all ${ackedAtKill.length} acked messages`, 30_000);
  const lost = ackedAtKill.filter((id) => !got.has(id));
  assert.equal(lost.length, 0, `acknowledged QoS 1 messages lost: ${lost.length} of ${ackedAtKill.length}`);
  t.diagnostic(`sent ${sent}, PUBACKed before kill -9 ${ackedAtKill.length}, delivered after restart ${got.size}, lost 0`);
  second.child.kill('SIGTERM');
  await new Promise((r) => second.child.once('exit', r));
});
