/**
 * The JetStream engine (issue 13): `createJetStreamEngine({ servers })` puts the Engine interface on a NATS JetStream
 * cluster; `startNatsCluster()` starts a local one (three nats-server processes) for labs, tests and `wirelab up`.
 */
import { connect, type JetStreamManager, type NatsConnection } from 'nats';
import { ErrorCodes, PubsubError } from '../../../core/errors.ts';
import type { Engine } from '../types.ts';
import { JetStreamEngineImpl } from './engine.ts';
import { PROTO, resolveOptions, type JetStreamEngineOptions } from './options.ts';

export type { JetStreamEngineOptions } from './options.ts';
export { startNatsCluster, type NatsCluster, type NatsClusterOptions, type NatsNode } from './cluster.ts';

export type JetStreamEngine = Engine & { readonly counters: Readonly<Record<'expired' | 'retries' | 'deadLettered' | 'duplicates', number>> };

/** Connects to NATS (throws WL_ERR_PUBSUB_UNAVAILABLE naming the URL when it cannot) and returns the engine. */
export async function createJetStreamEngine(options: JetStreamEngineOptions): Promise<JetStreamEngine> {
  const o = resolveOptions(options);
  const servers = o.servers;
  let nc: NatsConnection;
  try {
    nc = await connect({ servers, name: 'wirelab-engine', timeout: o.connectTimeoutMs, maxReconnectAttempts: -1, reconnectTimeWait: 250, waitOnFirstConnect: false,
      // No Error (with its stack) made per request for a timeout that almost never comes: a tenth of the broker's CPU
      // per publish was there (bench/fixtures/pubsub-jetstream.ts); a timeout still says which request timed out.
      noAsyncTraces: true,
    });
  } catch (err) {
    throw new PubsubError(ErrorCodes.PUBSUB_UNAVAILABLE, `cannot reach NATS at ${servers.join(',')}: ${(err as Error).message}`, { cause: err });
  }
  const tracer = o.tracer;
  void (async () => {
    for await (const s of nc.status()) tracer.emit(PROTO, 'engine', '*', `nats-${s.type}`, () => ({ summary: `nats ${s.type} ${typeof s.data === 'string' ? s.data : ''}` }));
  })().catch(() => undefined);
  const replicas = o.replicas ?? (nc.info?.cluster ? 3 : 1);
  let jsm: JetStreamManager;
  try {
    jsm = await nc.jetstreamManager({ timeout: o.connectTimeoutMs });
  } catch (err) {
    await nc.close();
    throw new PubsubError(ErrorCodes.PUBSUB_UNAVAILABLE, `JetStream is not available at ${servers.join(',')}: ${(err as Error).message}`, { cause: err });
  }
  const engine = new JetStreamEngineImpl({ ...o, servers, replicas }, nc, nc.jetstream({ timeout: o.publishTimeoutMs }), jsm);
  await engine.watch();
  return engine;
}
