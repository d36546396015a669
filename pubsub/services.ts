/**
 * The pub/sub rows of `wirelab up`. This file was started on the HTTP door's branch with its row only: the native
 * branch's version (the shared broker, its own rows, bin/commands/up.ts listing them) supersedes it on merge, keeping
 * `pubsubHttpService(onSharedBroker)` at its "pubsub-http" marker.
 */
import { join } from 'node:path';
import { dataDir } from '../core/paths.ts';
import type { ServiceEntry } from '../core/registry.ts';
import type { RunningServer } from '../core/server.ts';
import type { Tracer } from '../core/trace/index.ts';
import { createBroker } from './broker/index.ts';
import type { Broker } from './broker/types.ts';
import { pubsubHttpService } from './doors/http/service.ts';

/** A broker for one door, closed with it (the native branch shares one broker between every door instead). */
async function onSharedBroker<S extends RunningServer>(start: (broker: Broker) => Promise<S>, tracer: Tracer): Promise<S> {
  const broker = await createBroker({ dataDir: join(dataDir(), 'pubsub'), fsync: 'batch', tracer });
  let server: S;
  try {
    server = await start(broker);
  } catch (err) {
    await broker.close();
    throw err;
  }
  const close = server.close.bind(server);
  server.close = async () => {
    await close();
    await broker.close();
  };
  return server;
}

export const PUBSUB_SERVICES: ServiceEntry[] = [
  // ---- pubsub-http ----
  pubsubHttpService(onSharedBroker),
];
