/**
 * MQTT, one load generator (the `mqtt` npm client) against three brokers, each in its own process: wirelab's MQTT
 * door (embedded engine on a temp dir, fsync batch), aedes (in memory) and mosquitto 2.0.11 (persistence on).
 * Fan-out: 1 publisher -> SUBS subscribers, QoS 0, 128 B, delivered messages/s. Durable: QoS 1 publishes/s with
 * WINDOW in flight (wirelab PUBACKs after the fsync'd append; mosquitto PUBACKs from memory, autosave later).
 */
import { spawn, fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import net from 'node:net';
import mqtt, { type MqttClient } from 'mqtt';
import { median } from '../core/stats.ts';
import { defineBench, type BenchRow } from './harness.ts';

const SUBS = 10;
const PAYLOAD = Buffer.alloc(128, 0x61);
const MS = 2000;
const ROUNDS = 3;
const WINDOW = 100;

interface Target {
  name: string;
  port: number;
  cpuMs(): Promise<number>;
  stop(): Promise<void>;
}

async function forkBroker(kind: 'wirelab' | 'aedes', dir: string): Promise<Target> {
  const child = fork(fileURLToPath(new URL('./fixtures/mqtt-broker.ts', import.meta.url)), [kind, dir], { execArgv: ['--conditions=wirelab-source', '--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m) => resolve((m as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`${kind} exited with ${code}`)));
  });
  return {
    name: kind,
    port,
    cpuMs: () => new Promise((r) => (child.once('message', (m) => r((m as { cpu: number }).cpu)), child.send('cpu'))),
    stop: () => new Promise<void>((r) => (child.once('exit', () => r()), child.send('exit'))),
  };
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function startMosquitto(dir: string): Promise<Target> {
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, `user root\nlistener ${port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location ${dir}/\nmax_queued_messages 100000\n`);
  const child: ChildProcess = spawn('mosquitto', ['-c', conf], { stdio: 'ignore' });
  child.on('error', () => undefined);
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(port, '127.0.0.1', () => (s.destroy(), r(true)));
      s.on('error', () => r(false));
    });
    if (ok) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const cpuMs = async (): Promise<number> => {
    const { readFileSync } = await import('node:fs');
    const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
  };
  return { name: 'mosquitto', port, cpuMs, stop: () => new Promise<void>((r) => (child.once('exit', () => r()), child.kill('SIGTERM'))) };
}

async function connect(port: number, opts: mqtt.IClientOptions = {}): Promise<MqttClient> {
  const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, ...opts });
  c.on('error', () => undefined);
  await new Promise<void>((r, j) => (c.once('connect', () => r()), c.once('error', j)));
  return c;
}

/** Delivered messages/s to SUBS subscribers, with at most 1000 messages per subscriber not yet delivered. */
async function fanout(port: number): Promise<number> {
  const subs = await Promise.all(Array.from({ length: SUBS }, () => connect(port)));
  const counts = subs.map(() => 0);
  subs.forEach((s, i) => s.on('message', () => counts[i]!++));
  await Promise.all(subs.map((s) => s.subscribeAsync('bench/fan', { qos: 0 })));
  const pub = await connect(port);
  let sent = 0;
  const start = performance.now();
  while (performance.now() - start < MS) {
    if (sent - Math.min(...counts) > 1000) {
      await new Promise((r) => setImmediate(r));
      continue;
    }
    for (let i = 0; i < 100; i++) pub.publish('bench/fan', PAYLOAD, { qos: 0 });
    sent += 100;
    await new Promise((r) => setImmediate(r));
  }
  const rate = counts.reduce((a, b) => a + b, 0) / ((performance.now() - start) / 1000);
  for (const c of [...subs, pub]) c.end(true);
  return rate;
}

/** QoS 1 publishes/s acknowledged, WINDOW in flight, one subscriber with a persistent session offline (queued). */
async function durable(port: number, round: number): Promise<number> {
  const id = `bench-durable-${round}`;
  const sub = await connect(port, { clientId: id, clean: false });
  await sub.subscribeAsync('bench/durable', { qos: 1 });
  await sub.endAsync();
  const pub = await connect(port);
  let acked = 0;
  const start = performance.now();
  const worker = async (): Promise<void> => {
    while (performance.now() - start < MS) {
      await pub.publishAsync('bench/durable', PAYLOAD, { qos: 1 });
      acked++;
    }
  };
  await Promise.all(Array.from({ length: WINDOW }, worker));
  const rate = acked / ((performance.now() - start) / 1000);
  pub.end(true);
  return rate;
}

export default defineBench({
  name: 'mqtt',
  title: `MQTT with the mqtt npm client: fan-out 1 -> ${SUBS} subscribers QoS 0 ${PAYLOAD.length} B; QoS 1 acked publishes (window ${WINDOW}) for an offline persistent session; ${ROUNDS} rounds of ${MS / 1000} s taking turns, medians; broker CPU ms per 1000 messages`,
  async run(): Promise<BenchRow[]> {
    const dir = mkdtempSync(join(tmpdir(), 'wl-bench-mqtt-'));
    try {
      const targets = [await forkBroker('wirelab', join(dir, 'wirelab')), await forkBroker('aedes', dir), await startMosquitto(dir)];
      const fan: Record<string, number[]> = {};
      const dur: Record<string, number[]> = {};
      const cpu: Record<string, number[]> = {};
      for (let round = 0; round < ROUNDS; round++) {
        for (const t of targets) {
          const c0 = await t.cpuMs();
          const rate = await fanout(t.port);
          const c1 = await t.cpuMs();
          (fan[t.name] ??= []).push(rate);
          (cpu[t.name] ??= []).push(((c1 - c0) / (rate * (MS / 1000))) * 1000);
          (dur[t.name] ??= []).push(await durable(t.port, round));
        }
      }
      await Promise.all(targets.map((t) => t.stop()));
      const m = (x: number[] | undefined): number => median(x ?? [0]);
      return [
        { label: 'fan-out mosquitto QoS 0', value: m(fan.mosquitto), unit: 'msg/s' },
        { label: 'fan-out aedes QoS 0', value: m(fan.aedes), unit: 'msg/s' },
        { label: 'fan-out wirelab MQTT QoS 0', value: m(fan.wirelab), unit: 'msg/s', baseline: 'fan-out aedes QoS 0', target: 2 },
        { label: 'fan-out wirelab vs mosquitto', value: m(fan.wirelab), unit: 'msg/s', baseline: 'fan-out mosquitto QoS 0', target: 1 },
        { label: 'broker CPU mosquitto', value: m(cpu.mosquitto), unit: 'ms/1k deliveries', lowerIsBetter: true },
        { label: 'broker CPU aedes', value: m(cpu.aedes), unit: 'ms/1k deliveries', lowerIsBetter: true },
        { label: 'broker CPU wirelab', value: m(cpu.wirelab), unit: 'ms/1k deliveries', lowerIsBetter: true, baseline: 'broker CPU mosquitto' },
        { label: 'QoS 1 acked mosquitto (persistence, not fsync\'d)', value: m(dur.mosquitto), unit: 'pub/s' },
        { label: 'QoS 1 acked aedes (memory)', value: m(dur.aedes), unit: 'pub/s' },
        { label: 'QoS 1 acked wirelab (fsync batch)', value: m(dur.wirelab), unit: 'pub/s', baseline: 'QoS 1 acked mosquitto (persistence, not fsync\'d)', target: 1 },
      ];
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
});
