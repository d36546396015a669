import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { MemorySink, createTracer, type Tracer } from '../../../core/trace/index.ts';
import { createBroker, type BrokerOptions } from '../../../pubsub/broker/index.ts';
import type { Broker } from '../../../pubsub/broker/types.ts';
import { createEngine } from '../../../pubsub/engines/index.ts';
import type { Engine } from '../../../pubsub/engines/types.ts';
import { startMqttServer, type MqttServerOptions, type RunningMqttServer } from '../../../pubsub/doors/mqtt/index.ts';

type After = { after(fn: () => Promise<void> | void): void };

export interface MqttRig {
  broker: Broker;
  engine: Engine;
  server: RunningMqttServer;
  sink: MemorySink;
  tracer: Tracer;
  url: string;
  dir: string | null;
}

export function tempDir(t: After, prefix = 'wl-mqtt-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A broker on an embedded engine (in memory, or on `dir`) and one MQTT listener; closed by t.after. */
export async function startRig(
  t: After,
  o: { dir?: string | null; broker?: BrokerOptions; server?: Omit<MqttServerOptions, 'broker'> } = {},
): Promise<MqttRig> {
  const sink = new MemorySink();
  const tracer = createTracer([sink]);
  const engine = await createEngine({ kind: 'embedded', dir: o.dir ?? null });
  const broker = await createBroker({ engine, tracer, ...o.broker });
  const server = await startMqttServer({ broker, tracer, ...o.server });
  t.after(async () => {
    await server.close();
    await broker.close();
    await engine.close();
  });
  return { broker, engine, server, sink, tracer, url: server.url!, dir: o.dir ?? null };
}

/** An mqtt.js client, connected; ended by t.after. */
export async function client(t: After, url: string, options: IClientOptions = {}): Promise<MqttClient> {
  const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...options });
  c.on('error', () => undefined);
  t.after(() => new Promise<void>((r) => c.end(true, {}, () => r())));
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve());
    c.once('error', reject);
    c.once('close', () => reject(new Error('closed before CONNACK')));
  });
  return c;
}

export async function until(f: () => boolean | Promise<boolean>, what = 'condition', maxMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!(await f())) {
    if (Date.now() - start > maxMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A raw TCP connection collecting every byte it gets, for the bad-input tests. */
export async function raw(t: After, port: number): Promise<{ socket: net.Socket; received: () => Buffer; closed: Promise<void> }> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  t.after(() => void socket.destroy());
  const chunks: Buffer[] = [];
  socket.on('data', (d: Buffer) => chunks.push(d));
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  await new Promise<void>((r) => socket.once('connect', () => r()));
  return { socket, received: () => Buffer.concat(chunks), closed };
}
