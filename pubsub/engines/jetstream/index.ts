/**
 * The JetStream engine (issue 13): `createJetStreamEngine({ servers })` puts the Engine interface on a NATS JetStream
 * cluster; `startNatsCluster()` starts a local one (three nats-server processes) for labs, tests and `wirelab up`.
 */
import type { Engine } from '../types.ts';
import { createJetStreamEngineImpl, type JetStreamEngineOptions } from './engine.ts';

export type { JetStreamEngineOptions } from './engine.ts';
export { startNatsCluster, type NatsCluster, type NatsClusterOptions, type NatsNode } from './cluster.ts';

/** Connects to NATS (throws WL_ERR_PUBSUB_UNAVAILABLE naming the URL when it cannot) and returns the engine. */
export async function createJetStreamEngine(options: JetStreamEngineOptions): Promise<Engine & { readonly counters: Readonly<Record<'expired' | 'retries' | 'deadLettered' | 'duplicates', number>> }> {
  return createJetStreamEngineImpl(options);
}
