import { checkBoolean, checkInt, InvalidOptionError, withDefaults } from '../../../core/options.ts';
import { DEFAULT_HOST } from '../../../core/server.ts';
import type { TlsSettings } from '../../../core/tls/index.ts';
import type { Tracer } from '../../../core/trace/index.ts';
import type { HttpLimits } from '../../../servers/http/index.ts';
import type { Broker } from '../../broker/types.ts';

/** The door's own limits (every unbounded input named, with its default), plus the HTTP server's it passes on. */
export interface PubsubHttpLimits
  extends Pick<
    HttpLimits,
    'maxHeaderBytes' | 'maxBodyBytes' | 'requestTimeoutMs' | 'headersTimeoutMs' | 'maxConcurrentRequests' | 'rateLimitBurst' | 'rateLimitPerSecond' | 'keepAliveTimeoutMs'
  > {
  /** SSE streams and long polls open at once; one more gets 503 with Retry-After. Default 1,000. */
  maxStreams?: number;
  /** An SSE comment line (`: hb`) every this often, so proxies and clients see the stream alive. Default 15,000 ms. */
  heartbeatMs?: number;
  /** Longest hold of a long poll (`timeoutMs` is cut to it). Default 30,000 ms. */
  maxPollMs?: number;
  /** Most messages in one long-poll answer (`max` is cut to it). Default 100. */
  maxPollBatch?: number;
  /** Partitions a resume cursor (`Last-Event-ID`, `after`) may name; a longer one gets 400. Default 256. */
  maxCursorEntries?: number;
  /** Broker sessions kept for publishers and admin requests (one per credentials + client address). Default 1,000. */
  maxSessions?: number;
  /** A kept session unused this long is closed. Default 60,000 ms. */
  sessionIdleMs?: number;
  /** Delivery ids remembered for POST /acks (oldest forgotten first). Default 100,000. */
  maxPendingAcks?: number;
}

export interface PubsubHttpOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (a free port). */
  port?: number;
  broker: Broker;
  /** HTTPS (and HTTP/2 by ALPN) with core/tls. Default off: a password over cleartext is then the broker's call. */
  tls?: TlsSettings | boolean;
  tracer?: Tracer;
  limits?: PubsubHttpLimits;
  /** Users allowed under /admin; '*' lets any session the broker accepts in (anonymous too). Default ['admin']. */
  adminUsers?: string[];
  /** Offer HTTP/2 over TLS. Default true. */
  http2?: boolean;
}

export const PUBSUB_HTTP_LIMITS = {
  maxHeaderBytes: 16 * 1024,
  maxBodyBytes: 8 * 1024 * 1024,
  requestTimeoutMs: 30_000,
  maxConcurrentRequests: 1100,
  // The broker has its own per-publisher token bucket (WL_ERR_PUBSUB_RATE -> 429): the HTTP server's is off.
  rateLimitBurst: 0,
  rateLimitPerSecond: 100,
  keepAliveTimeoutMs: 5000,
  maxStreams: 1000,
  heartbeatMs: 15_000,
  maxPollMs: 30_000,
  maxPollBatch: 100,
  maxCursorEntries: 256,
  maxSessions: 1000,
  sessionIdleMs: 60_000,
  maxPendingAcks: 100_000,
};

export const PUBSUB_HTTP_DEFAULTS = {
  host: DEFAULT_HOST,
  port: 0,
  tls: false as TlsSettings | boolean,
  adminUsers: ['admin'],
  http2: true,
};

export type ResolvedPubsubHttpLimits = typeof PUBSUB_HTTP_LIMITS & { headersTimeoutMs?: number };
export type ResolvedPubsubHttpOptions = Omit<PubsubHttpOptions, 'limits'> & typeof PUBSUB_HTTP_DEFAULTS & { limits: ResolvedPubsubHttpLimits };

export function resolvePubsubHttpOptions(options: PubsubHttpOptions): ResolvedPubsubHttpOptions {
  if (!options || typeof options.broker?.connect !== 'function') throw new InvalidOptionError('broker', 'a Broker (pubsub/broker)', options?.broker);
  const o = withDefaults(PUBSUB_HTTP_DEFAULTS, options);
  const limits = withDefaults(PUBSUB_HTTP_LIMITS, options.limits ?? {});
  checkInt('port', o.port, 0, 65535);
  checkBoolean('http2', o.http2);
  if (!Array.isArray(o.adminUsers) || o.adminUsers.some((u) => typeof u !== 'string')) {
    throw new InvalidOptionError('adminUsers', 'an array of user names', o.adminUsers);
  }
  checkInt('limits.maxStreams', limits.maxStreams, 1, 1_000_000);
  checkInt('limits.heartbeatMs', limits.heartbeatMs, 10, 3600_000);
  checkInt('limits.maxPollMs', limits.maxPollMs, 0, 3600_000);
  checkInt('limits.maxPollBatch', limits.maxPollBatch, 1, 100_000);
  checkInt('limits.maxCursorEntries', limits.maxCursorEntries, 1, 100_000);
  checkInt('limits.maxSessions', limits.maxSessions, 1, 1_000_000);
  checkInt('limits.sessionIdleMs', limits.sessionIdleMs, 1, 86_400_000);
  checkInt('limits.maxPendingAcks', limits.maxPendingAcks, 1, 100_000_000);
  // The HTTP server checks the limits it owns (maxBodyBytes, maxHeaderBytes...) itself, naming them.
  return { ...o, limits };
}
