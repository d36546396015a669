/**
 * `npm run bench -- pubsub`: wirelab's broker next to mosquitto, aedes, nats-server and redis-server, each in its own
 * process, driven by the same load generator in this process (the `mqtt` npm client for every MQTT broker, each
 * other broker's own client), taking turns, medians of the rounds. Three measures:
 *   fan-out   1 publisher -> 50 subscribers, 128 B, as fast as the broker delivers: deliveries/s and server CPU µs
 *             per delivery (at-most-once: QoS 0, core NATS, redis PUBLISH, wirelab ack 'none')
 *   lean      the same fan-out for the MQTT brokers with a lean generator (raw sockets, pre-encoded PUBLISH,
 *             subscribers in worker threads that only count packets: bench/fixtures/pubsub-lean.ts), so the generator
 *             is not what caps the rate; its own CPU per delivery is printed beside the broker's
 *   latency   2,000 msg/s to 10 subscribers for 3 s: p50 / p99 publish -> receive
 *   durable   acknowledged publishes/s with 64 in flight: mosquitto QoS 1 (persistence on), redis XADD (AOF everysec),
 *             wirelab acks=all with fsync batch (fsync'd before the ack: a stronger guarantee than both)
 *   jetstream acks=1 acked publishes/s and server CPU µs per message: raw nats client -> R3 stream on a 3-node cluster
 *             (nats-server x3), wirelab on the jetstream engine (broker + nats-server x3), wirelab embedded (broker)
 * Needs mosquitto, nats-server and redis-server (npm run peers); a missing one is reported, and its rows left out.
 * While iterating: WIRELAB_BENCH_ONLY=fanout (or lean, latency, durable, jetstream; comma-separated) runs only those measures, and
 * WIRELAB_BENCH_BROKERS=mosquitto,aedes,wirelab MQTT only the brokers whose label starts with one of those.
 */
import { spawnSync } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { percentile, median } from '../core/stats.ts';
import { sleep } from '../core/time.ts';
import { defineBench, type BenchRow } from './harness.ts';
import { startMosquitto, startNats, startNodeBroker, startRedis, type BenchBroker } from './fixtures/brokers.ts';
import { drivers, type Driver } from './fixtures/pubsub-drivers.ts';
import { jetstreamRows } from './fixtures/pubsub-jetstream.ts';
import { leanFanOut } from './fixtures/pubsub-lean.ts';

const SUBSCRIBERS = 50;
const MESSAGES = 10_000;
const PAYLOAD_BYTES = 128;
const WINDOW = 200; // messages published ahead of the slowest delivery count
const LATENCY_RATE = 2000;
const LATENCY_SUBSCRIBERS = 10;
const LATENCY_MS = 3000;
const DURABLE_MS = 3000;
const DURABLE_IN_FLIGHT = 256;
const ROUNDS = 3;
const LEAN_WORKERS = 2; // subscriber threads of the lean MQTT generator (bench/fixtures/pubsub-lean.ts)

const only = process.env.WIRELAB_BENCH_ONLY?.split(',').map((s) => s.trim());
const runs = (measure: string): boolean => only === undefined || only.includes(measure);
const brokerFilter = process.env.WIRELAB_BENCH_BROKERS?.split(',').map((s) => s.trim());

const have = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

interface Subject {
  label: string;
  start(): Promise<BenchBroker>;
  driver: (b: BenchBroker) => Driver;
  /** An MQTT broker: also measured with the lean generator. */
  mqtt?: boolean;
}

/** Deliveries per second and server CPU µs per delivery for one fan-out run. */
async function fanOut(broker: BenchBroker, driver: Driver, topic: string): Promise<{ rate: number; cpuPerDelivery: number }> {
  let delivered = 0;
  let last = 0;
  await driver.subscribe(SUBSCRIBERS, topic, () => {
    delivered++;
    last = performance.now();
  });
  const pub = await driver.publisher(topic);
  const payload = Buffer.alloc(PAYLOAD_BYTES, 0x61);
  const cpu0 = broker.cpuMs();
  const t0 = performance.now();
  for (let i = 0; i < MESSAGES; i++) {
    pub.publish(payload);
    if (i % 50 === 49) {
      await pub.flush();
      // Keep at most WINDOW messages ahead of what the subscribers got; a broker that drops (QoS 0) must not stall us.
      let stalled = 0;
      while ((i + 1 - WINDOW) * SUBSCRIBERS > delivered && stalled < 200) {
        const before = delivered;
        await sleep(1);
        stalled = delivered === before ? stalled + 1 : 0;
      }
    }
  }
  await pub.flush();
  for (let idle = 0; delivered < MESSAGES * SUBSCRIBERS && idle < 50; ) {
    const before = delivered;
    await sleep(10);
    idle = delivered === before ? idle + 1 : 0;
  }
  const elapsed = (last - t0) / 1000;
  const cpu = broker.cpuMs() - cpu0;
  await driver.close();
  return { rate: delivered / elapsed, cpuPerDelivery: (cpu * 1000) / Math.max(1, delivered) };
}

interface Latency {
  p50: number;
  p99: number;
  /** p99 event-loop delay (ms) of the generator and (a Node broker) of the broker during the run: where a tail comes from. */
  generatorLoopP99: number;
  brokerLoopP99?: number;
  /** The broker's CPU µs per published message (with its LATENCY_SUBSCRIBERS deliveries). */
  cpuPerMessage: number;
}

/** p50 and p99 latency (ms) at LATENCY_RATE msg/s to LATENCY_SUBSCRIBERS subscribers. */
async function latency(broker: BenchBroker, driver: Driver, topic: string): Promise<Latency> {
  const samples: number[] = [];
  await driver.subscribe(LATENCY_SUBSCRIBERS, topic, (payload) => {
    samples.push(Number(process.hrtime.bigint() - payload.readBigUInt64BE(0)) / 1e6);
  });
  const pub = await driver.publisher(topic);
  const total = (LATENCY_RATE * LATENCY_MS) / 1000;
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  await broker.loopDelay?.();
  const cpu0 = broker.cpuMs();
  const t0 = performance.now();
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / LATENCY_RATE;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    const payload = Buffer.alloc(PAYLOAD_BYTES);
    payload.writeBigUInt64BE(process.hrtime.bigint(), 0);
    pub.publish(payload);
    await pub.flush();
  }
  for (let idle = 0; samples.length < total * LATENCY_SUBSCRIBERS && idle < 50; idle++) await sleep(10);
  loop.disable();
  const cpuPerMessage = ((broker.cpuMs() - cpu0) * 1000) / total;
  const brokerLoop = await broker.loopDelay?.();
  await driver.close();
  samples.sort((a, b) => a - b);
  return { p50: percentile(samples, 50), p99: percentile(samples, 99), generatorLoopP99: loop.percentile(99) / 1e6, cpuPerMessage, ...(brokerLoop ? { brokerLoopP99: brokerLoop.p99 } : {}) };
}

/** Acknowledged publishes per second with DURABLE_IN_FLIGHT outstanding, and the broker's and generator's CPU per ack. */
async function durable(broker: BenchBroker, driver: Driver, topic: string): Promise<Durable> {
  const pub = await driver.durablePublisher!(topic);
  const payload = Buffer.alloc(PAYLOAD_BYTES, 0x62);
  let acked = 0;
  const cpu0 = broker.cpuMs();
  const gen0 = process.cpuUsage();
  const end = performance.now() + DURABLE_MS;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: DURABLE_IN_FLIGHT }, async () => {
    while (performance.now() < end) {
      await pub.publishAcked(payload);
      acked++;
    }
  }));
  const rate = acked / ((performance.now() - t0) / 1000);
  const gen = process.cpuUsage(gen0);
  const n = Math.max(1, acked);
  const r = { rate, cpuPerAck: ((broker.cpuMs() - cpu0) * 1000) / n, generatorCpuPerAck: (gen.user + gen.system) / n };
  await driver.close();
  return r;
}

interface Durable {
  rate: number;
  cpuPerAck: number;
  generatorCpuPerAck: number;
}

export default defineBench({
  name: 'pubsub',
  title: `pub/sub brokers side by side: fan-out 1 -> ${SUBSCRIBERS} x ${MESSAGES} msgs of ${PAYLOAD_BYTES} B (${ROUNDS} rounds, medians), p99 at ${LATENCY_RATE} msg/s to ${LATENCY_SUBSCRIBERS}, durable acked publishes with ${DURABLE_IN_FLIGHT} in flight`,
  async run(): Promise<BenchRow[]> {
    const subjects: Subject[] = [];
    const missing: string[] = [];
    if (have('mosquitto')) subjects.push({ label: 'mosquitto QoS0', start: startMosquitto, driver: (b) => drivers.mqtt(b.ports.mqtt!), mqtt: true });
    else missing.push('mosquitto');
    subjects.push({ label: 'aedes QoS0', start: () => startNodeBroker('aedes'), driver: (b) => drivers.mqtt(b.ports.mqtt!), mqtt: true });
    if (have('nats-server')) subjects.push({ label: 'nats-server', start: startNats, driver: (b) => drivers.nats(b.ports.nats!) });
    else missing.push('nats-server');
    if (have('redis-server')) subjects.push({ label: 'redis pub/sub', start: startRedis, driver: (b) => drivers.redis(b.ports.redis!) });
    else missing.push('redis-server');
    subjects.push({ label: 'wirelab MQTT QoS0', start: () => startNodeBroker('wirelab'), driver: (b) => drivers.mqtt(b.ports.mqtt!), mqtt: true });
    subjects.push({ label: 'wirelab native TCP', start: () => startNodeBroker('wirelab'), driver: (b) => drivers.native(b.ports.native!) });
    if (missing.length) console.log(`  not measured (missing: ${missing.join(', ')}; npm run peers installs them)`);
    if (brokerFilter) subjects.splice(0, subjects.length, ...subjects.filter((s) => brokerFilter.some((b) => s.label.startsWith(b))));

    const brokers = new Map<string, BenchBroker>();
    for (const s of subjects) brokers.set(s.label, await s.start());
    const rate: Record<string, number[]> = {};
    const cpu: Record<string, number[]> = {};
    const lean: Record<string, { rate: number[]; cpu: number[]; gen: number[] }> = {};
    const lat: Record<string, Latency> = {};
    const acked: Record<string, Durable> = {};
    // Like for like with mosquitto's QoS 1 (acked from memory): wirelab acked once written, before the fsync.
    const likeForLike: Subject[] = runs('durable') && (!brokerFilter || brokerFilter.some((b) => 'wirelab'.startsWith(b))) ? [
      { label: 'wirelab MQTT acks=1', start: () => startNodeBroker('wirelab-acks1'), driver: (b) => drivers.mqtt(b.ports.mqtt!) },
      { label: 'wirelab native acks=1', start: () => startNodeBroker('wirelab-acks1'), driver: (b) => drivers.native(b.ports.native!, 1) },
    ] : [];
    for (const s of likeForLike) brokers.set(s.label, await s.start());
    try {
      for (let round = 0; round < (runs('fanout') ? ROUNDS : 0); round++) {
        for (const s of subjects) {
          const b = brokers.get(s.label)!;
          const r = await fanOut(b, s.driver(b), `bench.fan${round}`);
          (rate[s.label] ??= []).push(r.rate);
          (cpu[s.label] ??= []).push(r.cpuPerDelivery);
        }
      }
      for (let round = 0; round < (runs('lean') ? ROUNDS : 0); round++) {
        for (const s of subjects.filter((x) => x.mqtt)) {
          const b = brokers.get(s.label)!;
          const r = await leanFanOut(b, b.ports.mqtt!, `bench/lean${round}`, { subscribers: SUBSCRIBERS, messages: MESSAGES, payloadBytes: PAYLOAD_BYTES, window: WINDOW, workers: LEAN_WORKERS });
          const l = (lean[s.label] ??= { rate: [], cpu: [], gen: [] });
          l.rate.push(r.rate);
          l.cpu.push(r.cpuPerDelivery);
          l.gen.push(r.generatorCpuPerDelivery);
        }
      }
      for (const s of subjects) {
        const b = brokers.get(s.label)!;
        if (runs('latency')) lat[s.label] = await latency(b, s.driver(b), 'bench.latency');
      }
      for (const s of runs('durable') ? [...subjects, ...likeForLike] : []) {
        const b = brokers.get(s.label)!;
        const d = s.driver(b);
        if (d.durablePublisher) acked[s.label] = await durable(b, d, 'bench.durable');
        else await d.close();
      }
    } finally {
      for (const b of brokers.values()) await b.stop();
    }
    const rows: BenchRow[] = [];
    const fanRow = (label: string, baseline?: string, target?: number): void => {
      if (!rate[label]) return;
      rows.push({ label: `fan-out: ${label}`, value: median(rate[label]!), unit: 'deliveries/s', ...(baseline && rate[baseline] ? { baseline: `fan-out: ${baseline}` } : {}), ...(target ? { target } : {}) });
    };
    fanRow('mosquitto QoS0');
    fanRow('aedes QoS0', 'mosquitto QoS0');
    fanRow('nats-server', 'mosquitto QoS0');
    fanRow('redis pub/sub', 'mosquitto QoS0');
    fanRow('wirelab MQTT QoS0', 'mosquitto QoS0', 1);
    if (rate['wirelab MQTT QoS0'] && rate['aedes QoS0']) {
      rows.push({ label: 'fan-out: wirelab MQTT QoS0 (vs aedes)', value: median(rate['wirelab MQTT QoS0']!), unit: 'deliveries/s', baseline: 'fan-out: aedes QoS0', target: 2 });
    }
    if (rate['wirelab native TCP']) {
      rows.push({ label: 'fan-out: wirelab native TCP', value: median(rate['wirelab native TCP']!), unit: 'deliveries/s', ...(rate['redis pub/sub'] ? { baseline: 'fan-out: redis pub/sub', target: 0.5 } : {}) });
    }
    // The lean generator's rows (fan-out, broker CPU and the generator's own CPU per delivery), MQTT brokers only.
    const leanLabel = (l: string): string => `fan-out, lean generator: ${l}`;
    for (const [label, l] of Object.entries(lean)) {
      const wl = label.startsWith('wirelab');
      const base = label !== 'mosquitto QoS0' && lean['mosquitto QoS0'] ? { baseline: leanLabel('mosquitto QoS0') } : {};
      rows.push({ label: leanLabel(label), value: median(l.rate), unit: 'deliveries/s', ...base, ...(wl && base.baseline ? { target: 1 } : {}) });
      if (wl && lean['aedes QoS0']) rows.push({ label: `${leanLabel(label)} (vs aedes)`, value: median(l.rate), unit: 'deliveries/s', baseline: leanLabel('aedes QoS0'), target: 2 });
      rows.push({ label: `server CPU, lean generator: ${label}`, value: median(l.cpu), unit: 'µs/delivery', lowerIsBetter: true });
      rows.push({ label: `generator CPU, lean generator: ${label}`, value: median(l.gen), unit: 'µs/delivery', lowerIsBetter: true });
    }
    for (const label of Object.keys(cpu)) {
      rows.push({ label: `server CPU: ${label}`, value: median(cpu[label]!), unit: 'µs/delivery', lowerIsBetter: true, ...(label !== 'mosquitto QoS0' && cpu['mosquitto QoS0'] ? { baseline: 'server CPU: mosquitto QoS0' } : {}) });
    }
    for (const [label, l] of Object.entries(lat)) {
      const base = lat['mosquitto QoS0'] && label !== 'mosquitto QoS0' ? { baseline: 'p99: mosquitto QoS0' } : {};
      rows.push({ label: `p99: ${label}`, value: l.p99, unit: 'ms', lowerIsBetter: true, ...base, ...(label.startsWith('wirelab') && base.baseline ? { target: 1 } : {}) });
      rows.push({ label: `p50: ${label}`, value: l.p50, unit: 'ms', lowerIsBetter: true });
      rows.push({ label: `server CPU at ${LATENCY_RATE} msg/s: ${label}`, value: l.cpuPerMessage, unit: `µs/message (${LATENCY_SUBSCRIBERS} deliveries)`, lowerIsBetter: true });
      rows.push({ label: `loop delay p99, generator: ${label}`, value: l.generatorLoopP99, unit: l.brokerLoopP99 === undefined ? 'ms' : `ms (broker ${l.brokerLoopP99.toFixed(2)})`, lowerIsBetter: true });
    }
    const durableBase = 'durable: mosquitto QoS1, persistence on';
    for (const [label, v] of Object.entries(acked)) {
      const name = {
        'mosquitto QoS0': 'mosquitto QoS1, persistence on', 'aedes QoS0': 'aedes QoS1, in memory', 'redis pub/sub': 'redis XADD, AOF everysec',
        'wirelab MQTT QoS0': 'wirelab MQTT QoS1, acks=all, fsync batch', 'wirelab native TCP': 'wirelab native, acks=all, fsync batch',
        'wirelab MQTT acks=1': 'wirelab MQTT QoS1, acks=1 (written, not fsync\'d)', 'wirelab native acks=1': 'wirelab native, acks=1 (written, not fsync\'d)',
      }[label] ?? label;
      const base = acked['mosquitto QoS0'] && label !== 'mosquitto QoS0' ? { baseline: durableBase } : {};
      rows.push({ label: `durable: ${name}`, value: v.rate, unit: 'acked/s', ...base, ...(label.startsWith('wirelab') && base.baseline ? { target: 1 } : {}) });
      rows.push({ label: `durable CPU, server / generator: ${name}`, value: v.cpuPerAck, unit: `µs/ack (generator ${v.generatorCpuPerAck.toFixed(1)})`, lowerIsBetter: true });
    }
    // Issue 13: the jetstream engine next to the embedded one and raw JetStream publishing (bench/fixtures/pubsub-jetstream.ts).
    if (have('nats-server') && runs('jetstream')) rows.push(...(await jetstreamRows()));
    return rows;
  },
});
