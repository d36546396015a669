import { ErrorCodes, PubsubError } from '../../../core/errors.ts';
import type { Tracer } from '../../../core/trace/index.ts';
import type { Ctx } from '../../../servers/http/index.ts';
import type { Broker } from '../../broker/types.ts';
import { answerFor, sendError } from './errors.ts';
import type { ResolvedPubsubHttpOptions } from './options.ts';
import { PendingAcks, SessionCache } from './sessions.ts';

/** What the door counted (on top of the HTTP server's own stats). */
export interface PubsubHttpStats {
  published: number;
  /** Messages written to SSE streams and poll answers. */
  delivered: number;
  /** SSE streams and long polls open now. */
  streams: number;
  /** Streams resumed from Last-Event-ID / after, and the stored messages they caught up with. */
  resumed: number;
  caughtUp: number;
  /** Messages a resumed stream skipped because the client had them already. */
  skippedDuplicates: number;
  /** Times a stream's write returned false (the broker was told to hold deliveries until 'drain'). */
  backpressure: number;
  settled: number;
  /** Error answers by code (WL_ERR_PUBSUB_ACL...). */
  refused: Record<string, number>;
}

/** The state every route of the door shares. */
export interface Door {
  readonly broker: Broker;
  readonly options: ResolvedPubsubHttpOptions;
  readonly tracer: Tracer;
  readonly sessions: SessionCache;
  readonly pending: PendingAcks;
  readonly stats: PubsubHttpStats;
  /** Counts a stream (SSE or long poll) in; throws WL_ERR_PUBSUB_LIMIT (503) past maxStreams. Returns its release. */
  openStream(): () => void;
}

export function createDoor(broker: Broker, options: ResolvedPubsubHttpOptions, tracer: Tracer): Door {
  const stats: PubsubHttpStats = { published: 0, delivered: 0, streams: 0, resumed: 0, caughtUp: 0, skippedDuplicates: 0, backpressure: 0, settled: 0, refused: {} };
  const l = options.limits;
  return {
    broker,
    options,
    tracer,
    sessions: new SessionCache(broker, Boolean(options.tls), l.maxSessions, l.sessionIdleMs, tracer),
    pending: new PendingAcks(l.maxPendingAcks),
    stats,
    openStream() {
      if (stats.streams >= l.maxStreams) {
        throw new PubsubError(ErrorCodes.PUBSUB_LIMIT, `maxStreams=${l.maxStreams} SSE streams and long polls are open`, { limit: 'maxStreams' });
      }
      stats.streams++;
      let released = false;
      return () => {
        if (!released) stats.streams--;
        released = true;
      };
    },
  };
}

/**
 * A route handler whose errors become answers: a PubsubError its status (errors.ts), traced and counted; after the
 * response has started (an SSE stream) the stream is ended instead. The server keeps serving either way.
 */
export function guarded(door: Door, handler: (door: Door, ctx: Ctx) => Promise<void> | void): (ctx: Ctx) => Promise<void> {
  return async (ctx) => {
    try {
      await handler(door, ctx);
    } catch (err) {
      const a = answerFor(err);
      door.stats.refused[a.body.code] = (door.stats.refused[a.body.code] ?? 0) + 1;
      door.tracer.emit('pubsub-http', ctx.cid, '<', 'refused', () => ({
        summary: `${ctx.method} ${ctx.path}: ${a.status} ${a.body.code}${a.body.limit ? ` (${a.body.limit})` : ''}: ${a.body.detail}`,
        meta: { status: a.status, code: a.body.code, limit: a.body.limit },
      }));
      if (ctx.res.headersSent) {
        ctx.res.end();
        return;
      }
      sendError(ctx, err);
    }
  };
}
