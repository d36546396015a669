/**
 * The pub/sub rows of `wirelab up` (bin/commands/up.ts lists them after servers/ SERVICES: servers/ may not import
 * pubsub). Every door in one process shares one broker: the first door started creates it (an embedded engine on
 * <data dir>/pubsub, fsync 'batch', so a publish with acks=all is fsync'd before its ack), the last one closed closes it.
 *
 * Ports (port base + ...): 4222 native TCP (nats's port), 4223 native WebSocket; the MQTT and HTTP doors add their rows
 * below, at the marked places. A proto must not end in "s" unless the port is TLS: test/fuzz reads it that way
 * (so the WebSocket door is `pubsub-websocket`, not `pubsub-ws`).
 */
import { join } from 'node:path';
import { dataDir } from '../core/paths.ts';
import type { ServiceEntry } from '../core/registry.ts';
import type { RunningServer } from '../core/server.ts';
import type { Tracer } from '../core/trace/index.ts';
import { PUBSUB_TCP_PORT, PUBSUB_WS_PORT } from '../protocols/pubsub.ts';
import { createBroker, type BrokerOptions } from './broker/index.ts';
import type { Broker } from './broker/types.ts';
import { startPubsubTcpServer, startPubsubWsServer } from './doors/native/index.ts';
import { pubsubHttpService } from './doors/http/service.ts';
import { mqttServices } from './doors/mqtt/services.ts';
import { createEngine } from './engines/index.ts';
import { upEngineChoice } from './engines/jetstream/up.ts';
import { startSchemaRegistry } from './schema/http.ts';

/** Confluent Schema Registry's port. */
export const SCHEMA_REGISTRY_PORT = 8081;

/** Where `wirelab up`'s broker keeps its log: $WIRELAB_PUBSUB_DIR, else <data dir>/pubsub ($WIRELAB_DATA_DIR moves it). */
export function pubsubDataDir(): string {
  return process.env.WIRELAB_PUBSUB_DIR || join(dataDir(), 'pubsub');
}

/**
 * The broker on the engine `up --engine` chose: embedded on the data dir (default), or JetStream on the cluster `up`
 * started or was given (the broker does not close an engine it did not make, so its close is wrapped here).
 */
async function makeBroker(tracer: Tracer, options: BrokerOptions): Promise<Broker> {
  const choice = upEngineChoice();
  if (choice.kind === 'embedded') return createBroker({ dataDir: pubsubDataDir(), fsync: 'batch', tracer, ...options });
  const engine = await createEngine({ kind: 'jetstream', servers: choice.servers, onUnavailable: choice.onUnavailable, tracer });
  let broker: Broker;
  try {
    broker = await createBroker({ engine, tracer, ...options });
  } catch (err) {
    await engine.close();
    throw err;
  }
  const close = broker.close.bind(broker);
  broker.close = async () => {
    await close();
    await engine.close();
  };
  return broker;
}

let shared: { broker: Promise<Broker>; users: number } | undefined;

/** The process's broker, created on first use with `options` (later callers share it). */
export async function acquireSharedBroker(tracer: Tracer, options: BrokerOptions = {}): Promise<Broker> {
  if (!shared) {
    const made = { broker: makeBroker(tracer, options), users: 0 };
    shared = made;
    made.broker.catch(() => {
      if (shared === made) shared = undefined;
    });
  }
  shared.users++;
  return shared.broker;
}

/** The process's broker when some door has started it, without taking a share (the dashboard only looks). */
export function currentSharedBroker(): Promise<Broker> | undefined {
  return shared?.broker;
}

/** One user fewer; the last closes the broker. */
export async function releaseSharedBroker(): Promise<void> {
  const s = shared;
  if (!s) return;
  if (--s.users > 0) return;
  shared = undefined;
  await (await s.broker).close();
}

/** A door's (or the chat app's) start on the shared broker; its close releases the broker. */
export function onSharedBroker<S extends RunningServer>(start: (broker: Broker) => Promise<S>, tracer: Tracer): Promise<S> {
  return acquireSharedBroker(tracer).then(
    async (broker) => {
      let server: S;
      try {
        server = await start(broker);
      } catch (err) {
        await releaseSharedBroker();
        throw err;
      }
      const close = server.close.bind(server);
      let closed = false;
      server.close = async () => {
        await close();
        if (!closed) {
          closed = true;
          await releaseSharedBroker();
        }
      };
      return server;
    },
    async (err: unknown) => {
      await releaseSharedBroker();
      throw err;
    },
  );
}

/**
 * A publish over the TCP framing in Python's standard library: hello, then pub, then the welcome and the puback as
 * the broker sent them (length | type | header length | JSON header | payload).
 */
function pyPublish(s: RunningServer): string {
  return (
    `python3 -c "import socket,struct,json;s=socket.create_connection(('${s.host}',${s.port}));` +
    `f=lambda c,h,p=b'':struct.pack('>IBH',3+len(h)+len(p),c,len(h))+h+p;` +
    `s.sendall(f(1,json.dumps({'version':1}).encode())+f(2,json.dumps({'id':1,'topic':'demo'}).encode(),b'hello from python'));` +
    `import time;time.sleep(0.5);print(s.recv(4096))"`
  );
}

export const PUBSUB_SERVICES: ServiceEntry[] = [
  {
    name: 'pubsub-tcp',
    proto: 'pubsub-tcp',
    wellKnownPort: PUBSUB_TCP_PORT,
    describe: "the broker's native protocol over TCP: length-prefixed binary frames (README \"The native protocol\")",
    start: (o) => onSharedBroker((broker) => startPubsubTcpServer({ ...o, broker }), o.tracer),
    tryWith: (s) => `npx wirelab pub demo hello --url tcp://${s.host}:${s.port}`,
    extra: (s) => ({
      subscribe: `npx wirelab sub demo --from earliest --url tcp://${s.host}:${s.port}`,
      python: pyPublish(s),
      dataDir: pubsubDataDir(),
    }),
  },
  {
    name: 'pubsub-ws',
    proto: 'pubsub-websocket',
    wellKnownPort: PUBSUB_WS_PORT,
    describe: 'the native protocol over WebSocket: JSON text frames at /pubsub (the browser and the chat app)',
    start: (o) => onSharedBroker((broker) => startPubsubWsServer({ ...o, broker }), o.tracer),
    url: (s) => `ws://${s.host}:${s.port}/pubsub`,
    tryWith: (s) => `npx wirelab sub 'demo.>' --count 1 --url ws://${s.host}:${s.port}/pubsub`,
  },
  pubsubHttpService(onSharedBroker),
  ...mqttServices(onSharedBroker),
  {
    name: 'schema-registry',
    proto: 'http',
    wellKnownPort: SCHEMA_REGISTRY_PORT,
    describe: "schema registry: Confluent's REST core (Avro, JSON Schema), kept in the broker's $schemas topic (README \"Schema registry\")",
    start: (o) => onSharedBroker((broker) => startSchemaRegistry({ ...o, engine: broker.engine }), o.tracer),
    tryWith: (s) =>
      `curl -s -H 'Content-Type: application/vnd.schemaregistry.v1+json' --data '{"schema":"{\\"type\\":\\"string\\"}"}' http://${s.host}:${s.port}/subjects/demo-value/versions`,
    extra: (s) => ({ subjects: `curl -s http://${s.host}:${s.port}/subjects` }),
  },
];
