import { checkInt, InvalidOptionError, withDefaults } from '../../core/options.ts';
import { DEFAULT_HOST } from '../../core/server.ts';
import type { TlsSettings } from '../../core/tls/index.ts';
import type { Tracer } from '../../core/trace/index.ts';
import type { EventFeed } from './feed.ts';
import type { Router } from './router.ts';

/**
 * Every unbounded input has a named limit (DESIGN.md convention 2). Each maps to the status a client gets past it.
 */
export interface HttpLimits {
  /** Request line plus headers, in bytes; past it: 431 Request Header Fields Too Large. Default 16,384. */
  maxHeaderBytes?: number;
  /** Request body, in bytes; past it (declared or streamed): 413 Content Too Large. Default 10 MiB. */
  maxBodyBytes?: number;
  /** Time for a whole request (headers and body) to arrive; past it: 408 Request Timeout. Default 30,000 ms. */
  requestTimeoutMs?: number;
  /** Time for the headers alone (slowloris); past it: 408. Default: requestTimeoutMs. */
  headersTimeoutMs?: number;
  /** Requests in progress at once; one more gets 503 Service Unavailable with Retry-After. Default 256. */
  maxConcurrentRequests?: number;
  /** Per-client token bucket (key: the client's address): burst size. 0 turns rate limiting off. Default 200. */
  rateLimitBurst?: number;
  /** Tokens refilled per second; an empty bucket gets 429 Too Many Requests with Retry-After. Default 100. */
  rateLimitPerSecond?: number;
  /** Longest /delay and /drip, in seconds. Default 10. */
  maxDelaySeconds?: number;
  /** Largest /bytes and /stream-bytes answer, in bytes. Default 128 MiB. */
  maxGeneratedBytes?: number;
  /** Longest hold of a long poll (GET /events?wait=ms); a longer wait is cut to it. Default 30,000 ms. */
  maxLongPollMs?: number;
  /** Most hops /redirect/:n (and its relative and absolute forms) may ask for; more get 400. Default 50. */
  maxRedirectHops?: number;
  /**
   * Ranges one Range header may ask for (/bytes); a header with more is ignored and the whole body sent with 200
   * (RFC 9110 section 14.2 lets a server ignore such a request). Default 16.
   */
  maxRanges?: number;
  /** Time the gateway waits for its upstream; past it: 504 Gateway Timeout. Default 2000 ms. */
  gatewayTimeoutMs?: number;
  /** Keep-alive idle time of a connection between requests. Default 5000 ms (node's). */
  keepAliveTimeoutMs?: number;
}

export interface HttpServerOptions extends HttpLimits {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** Serve HTTPS with the local certificate (core/tls); with `http2` on, ALPN offers h2 then http/1.1. Default off. */
  tls?: TlsSettings | boolean;
  /** Offer HTTP/2 over TLS (ALPN "h2"), HTTP/1.1 staying available. Only with tls. Default true. */
  http2?: boolean;
  /** Answer TRACE by reflecting the request (Cookie and Authorization included: why it is off). Default false (405). */
  allowTrace?: boolean;
  /**
   * CONNECT targets allowed, as "host:port" (wirelab's own servers); any other target gets 403. Default none.
   */
  connectTargets?: string[];
  /** Users for /admin (Basic auth): name → password. An authenticated user other than `admin` gets 403. */
  users?: Record<string, string>;
  /** Bearer tokens /bearer accepts. Default ["wirelab-token"]. */
  bearerTokens?: string[];
  /** The event feed behind /events (polling, long polling, SSE). Default: a new one, fed by POST /events. */
  feed?: EventFeed;
  /**
   * More routes, each a function that registers its own on the router after the playground's (servers/index.ts adds
   * the WebRTC page this way: the HTTP server knows no other protocol). Default none.
   */
  routes?: Array<(router: Router) => void>;
  /**
   * Serve the playground's own routes (/anything, /events, /sse...). False leaves only `routes`: a server built on this
   * one for another purpose (the pub/sub HTTP door) keeps the limits, tracing, TLS and HTTP/2 without them. Default true.
   */
  playground?: boolean;
  tracer?: Tracer;
}

export type ResolvedHttpOptions = Required<Omit<HttpServerOptions, 'tls' | 'tracer' | 'feed'>> & {
  tls: TlsSettings | false;
};

export const HTTP_SERVER_DEFAULTS = Object.freeze({
  host: DEFAULT_HOST,
  port: 0,
  http2: true,
  playground: true,
  allowTrace: false,
  connectTargets: [] as string[],
  users: { admin: 'admin', guest: 'guest' } as Record<string, string>,
  bearerTokens: ['wirelab-token'],
  routes: [] as Array<(router: Router) => void>,
  maxHeaderBytes: 16 * 1024,
  maxBodyBytes: 10 * 1024 * 1024,
  requestTimeoutMs: 30_000,
  maxConcurrentRequests: 256,
  rateLimitBurst: 200,
  rateLimitPerSecond: 100,
  maxDelaySeconds: 10,
  maxGeneratedBytes: 128 * 1024 * 1024,
  maxLongPollMs: 30_000,
  maxRedirectHops: 50,
  maxRanges: 16,
  gatewayTimeoutMs: 2000,
  keepAliveTimeoutMs: 5000,
});

/** Merges the defaults and checks every option, throwing an InvalidOptionError that names the bad one. */
export function resolveHttpOptions(options: HttpServerOptions): ResolvedHttpOptions {
  const o = withDefaults(HTTP_SERVER_DEFAULTS, options);
  checkInt('port', o.port, 0, 65535);
  checkInt('maxHeaderBytes', o.maxHeaderBytes, 256, 1024 * 1024);
  checkInt('maxBodyBytes', o.maxBodyBytes, 0, 4 * 1024 * 1024 * 1024);
  checkInt('requestTimeoutMs', o.requestTimeoutMs, 1, 3600_000);
  const headersTimeoutMs = checkInt('headersTimeoutMs', options.headersTimeoutMs ?? o.requestTimeoutMs, 1, o.requestTimeoutMs);
  checkInt('maxConcurrentRequests', o.maxConcurrentRequests, 1, 1_000_000);
  checkInt('rateLimitBurst', o.rateLimitBurst, 0, 1_000_000_000);
  if (typeof o.rateLimitPerSecond !== 'number' || !(o.rateLimitPerSecond > 0)) {
    throw new InvalidOptionError('rateLimitPerSecond', 'a number above 0', o.rateLimitPerSecond);
  }
  checkInt('maxDelaySeconds', o.maxDelaySeconds, 0, 3600);
  checkInt('maxGeneratedBytes', o.maxGeneratedBytes, 0, 4 * 1024 * 1024 * 1024);
  checkInt('maxLongPollMs', o.maxLongPollMs, 0, 3600_000);
  checkInt('maxRedirectHops', o.maxRedirectHops, 1, 10_000);
  checkInt('maxRanges', o.maxRanges, 1, 10_000);
  checkInt('gatewayTimeoutMs', o.gatewayTimeoutMs, 1, 600_000);
  checkInt('keepAliveTimeoutMs', o.keepAliveTimeoutMs, 0, 3600_000);
  if (!Array.isArray(o.connectTargets) || o.connectTargets.some((t) => typeof t !== 'string' || !/^.+:\d+$/.test(t))) {
    throw new InvalidOptionError('connectTargets', 'an array of "host:port" strings', o.connectTargets);
  }
  if (!Array.isArray(o.routes) || o.routes.some((r) => typeof r !== 'function')) {
    throw new InvalidOptionError('routes', 'an array of functions (router) => void', o.routes);
  }
  if (typeof o.users !== 'object' || o.users === null || Array.isArray(o.users) || Object.values(o.users).some((p) => typeof p !== 'string')) {
    throw new InvalidOptionError('users', 'an object of user name → password', o.users);
  }
  if (!Array.isArray(o.bearerTokens) || o.bearerTokens.some((t) => typeof t !== 'string' || t === '')) {
    throw new InvalidOptionError('bearerTokens', 'an array of non-empty strings', o.bearerTokens);
  }
  if (typeof o.http2 !== 'boolean') throw new InvalidOptionError('http2', 'a boolean', o.http2);
  if (typeof o.playground !== 'boolean') throw new InvalidOptionError('playground', 'a boolean', o.playground);
  if (typeof o.allowTrace !== 'boolean') throw new InvalidOptionError('allowTrace', 'a boolean', o.allowTrace);
  const tls = options.tls === true ? {} : options.tls ? options.tls : false;
  return { ...o, headersTimeoutMs, tls };
}
