import type { ServiceEntry } from '../../../core/registry.ts';
import type { RunningServer } from '../../../core/server.ts';
import type { Tracer } from '../../../core/trace/index.ts';
import type { Broker } from '../../broker/types.ts';
import { startPubsubHttpServer } from './index.ts';

/** nats-server's monitoring port: the HTTP door listens on port base + this (15222 with the default base). */
export const PUBSUB_HTTP_PORT = 8222;

/** How pubsub/services.ts starts a door on the process's shared broker (and releases it on close). */
export type OnSharedBroker = <S extends RunningServer>(start: (broker: Broker) => Promise<S>, tracer: Tracer) => Promise<S>;

/**
 * The `wirelab up` row of the HTTP door. The admin API is open to every session here: `wirelab up`'s broker is the
 * local playground's (anonymous, 127.0.0.1 only); a broker with users keeps the default adminUsers ['admin'].
 */
export function pubsubHttpService(onSharedBroker: OnSharedBroker): ServiceEntry {
  return {
    name: 'pubsub-http',
    proto: 'pubsub-http',
    wellKnownPort: PUBSUB_HTTP_PORT,
    describe: "the broker over HTTP: POST publishes, SSE and long polling subscribe, /admin (README \"### HTTP\")",
    start: (o) => onSharedBroker((broker) => startPubsubHttpServer({ ...o, broker, adminUsers: ['*'] }), o.tracer),
    tryWith: (s) => `curl -i -X POST -H 'Content-Type: text/plain' --data-binary 'hello over http' http://${s.host}:${s.port}/topics/demo`,
    extra: (s) => ({
      subscribe: `curl -N 'http://${s.host}:${s.port}/topics/demo/events?from=earliest'`,
      resume: `curl -N -H 'Last-Event-ID: 0' http://${s.host}:${s.port}/topics/demo/events`,
      poll: `curl -i 'http://${s.host}:${s.port}/topics/demo/poll?from=earliest&timeoutMs=5000'`,
      admin: `curl http://${s.host}:${s.port}/admin/topics`,
    }),
  };
}
