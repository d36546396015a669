/**
 * The broker's HTTP front door (issue 12): publish with POST, subscribe with Server-Sent Events or long polling, settle
 * manual acks, and a REST admin. Built on servers/http (its limits, tracing, TLS and HTTP/2), with the playground
 * routes left out; every route maps the broker's refusals onto statuses (errors.ts, README "### HTTP").
 */
import { NOOP_TRACER } from '../../../core/trace/index.ts';
import { json, startHttpServer, type Router, type RunningHttpServer } from '../../../servers/http/index.ts';
import { registerAdmin } from './admin.ts';
import { createDoor, guarded, type PubsubHttpStats } from './door.ts';
import { resolvePubsubHttpOptions, type PubsubHttpOptions } from './options.ts';
import { publish } from './publish.ts';
import { acks, poll, sse } from './subscribe.ts';

export { PUBSUB_HTTP_DEFAULTS, PUBSUB_HTTP_LIMITS, type PubsubHttpLimits, type PubsubHttpOptions } from './options.ts';
export { STATUS_FOR_CODE, STATUS_FOR_LIMIT, WWW_AUTHENTICATE } from './errors.ts';
export { Cursor } from './cursor.ts';
export type { PubsubHttpStats } from './door.ts';

export interface RunningPubsubHttpServer extends RunningHttpServer {
  readonly doorStats: PubsubHttpStats;
}

/** The routes, for the README table and GET /. */
export const PUBSUB_HTTP_ROUTES: ReadonlyArray<{ method: string; path: string; does: string }> = [
  { method: 'POST', path: '/topics/:topic', does: 'publish the body; the reply is the ack' },
  { method: 'GET', path: '/topics/:pattern/events', does: 'subscribe over SSE (Last-Event-ID resumes)' },
  { method: 'GET', path: '/topics/:pattern/poll', does: 'long poll: a JSON batch after a cursor, or 204' },
  { method: 'POST', path: '/acks', does: 'ack / nak / inProgress / term deliveries of manual-ack streams' },
  { method: 'GET', path: '/admin/topics', does: 'topics, partitions, offsets, sizes' },
  { method: 'GET', path: '/admin/topics/:topic', does: 'one topic' },
  { method: 'GET', path: '/admin/groups', does: 'consumer groups, lag per partition' },
  { method: 'GET', path: '/admin/dlq/:topic', does: 'dead letters of a topic' },
  { method: 'POST', path: '/admin/dlq/:topic/redrive', does: 'republish dead letters to their topics' },
  { method: 'GET', path: '/admin/lineage/:topic/:partition/:offset', does: "a message's lineage (published, persisted, delivered, acked...)" },
  { method: 'GET', path: '/admin/stats', does: "the broker's and the door's counters" },
];

export async function startPubsubHttpServer(options: PubsubHttpOptions): Promise<RunningPubsubHttpServer> {
  const o = resolvePubsubHttpOptions(options);
  const tracer = options.tracer ?? NOOP_TRACER;
  const door = createDoor(o.broker, o, tracer);
  const { maxStreams: _s, heartbeatMs: _h, maxPollMs: _p, maxPollBatch: _b, maxCursorEntries: _c, maxSessions: _m, sessionIdleMs: _i, maxPendingAcks: _a, ...httpLimits } = o.limits;
  const routes = (router: Router): void => {
    router.add('GET', '/', (ctx) => json(ctx, 200, { service: 'wirelab pub/sub HTTP door', routes: PUBSUB_HTTP_ROUTES }));
    router.add('POST', '/topics/:topic', guarded(door, publish));
    router.add('GET', '/topics/:pattern/events', guarded(door, sse));
    router.add('GET', '/topics/:pattern/poll', guarded(door, poll));
    router.add('POST', '/acks', guarded(door, acks));
    registerAdmin(router, door);
  };
  const server = await startHttpServer({
    ...httpLimits,
    host: o.host,
    port: o.port,
    tls: o.tls,
    http2: o.http2,
    tracer,
    playground: false,
    routes: [routes],
  });
  const closeHttp = server.close.bind(server);
  return Object.assign(server, {
    doorStats: door.stats,
    close: async () => {
      await closeHttp();
      await door.sessions.close();
    },
  }) as RunningPubsubHttpServer;
}
