import { AsyncLocalStorage } from 'node:async_hooks';
import diagnostics from 'node:diagnostics_channel';
import type net from 'node:net';
import type tls from 'node:tls';
import { Agent, buildConnector, type Dispatcher } from 'undici';
import { ErrorCodes, WirelabError } from '../core/errors.ts';
import { checkBoolean, checkInt, InvalidOptionError, withDefaults } from '../core/options.ts';
import { tlsClientOptions, type TlsSettings } from '../core/tls/index.ts';
import { NOOP_TRACER, nextCid, redactLine, socketEnds, type Tracer } from '../core/trace/index.ts';
import { round } from '../core/stats.ts';
import { ExchangeRecord, subscribeExchangeChannels } from './http-exchange.ts';
import { sleep } from '../core/time.ts';

export interface HttpClientOptions {
  /** Reuse connections between requests (keep-alive). Off: every request says Connection: close, so each opens a new connection. Default true. */
  keepAlive?: boolean;
  /** Requests sent on one connection before the first answer comes back (HTTP/1.1 pipelining). Default 1 (none). */
  pipelining?: number;
  /** Connections per origin at most. Default 10. */
  connections?: number;
  /** Offer HTTP/2 by ALPN on https:// origins. Default false. */
  http2?: boolean;
  /** TLS settings for https:// (the local CA is trusted; nothing is turned off). Default {}. */
  tls?: TlsSettings;
  /** Redirects followed, each hop traced and returned in `hops`; 0 returns the 3xx itself. Default 0. */
  maxRedirections?: number;
  /** Retry on these statuses after the server's Retry-After (a well-behaved client backing off). Default none. */
  retry?: { statuses: number[]; maxRetries?: number; maxWaitMs?: number };
  /** Time to the response headers. Default 30,000 ms. */
  headersTimeoutMs?: number;
  /** Time between body chunks. Default 30,000 ms. */
  bodyTimeoutMs?: number;
  tracer?: Tracer;
}

export interface HttpRequestOptions {
  method?: string;
  headers?: Record<string, string | string[]>;
  body?: string | Buffer | Uint8Array;
  /** 'buffer' keeps the body (default); 'discard' only counts it (bulk transfers). */
  consume?: 'buffer' | 'discard';
  signal?: AbortSignal;
}

/** Milliseconds per phase of one request, as this client saw them. */
export interface HttpTiming {
  /** TCP connect, when this request opened a connection. */
  connectMs?: number;
  /** TLS handshake after the TCP connect, when this request opened a TLS connection. */
  tlsMs?: number;
  /** From the start to the response headers. */
  firstByteMs: number;
  /** From the start to the last body byte. */
  doneMs: number;
}

export interface HttpHop {
  status: number;
  url: string;
  location: string;
  ms: number;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  bodyBytes: number;
  url: string;
  /** "1.1" or "2". */
  httpVersion: string;
  /** True when the request went on a connection that was already open. */
  reusedConnection: boolean;
  timing: HttpTiming;
  /** Redirects followed to get here, in order. */
  hops: HttpHop[];
  /** Earlier answers retried after Retry-After (429, 503...). */
  retries: Array<{ status: number; waitedMs: number }>;
  text(): string;
  json<T = unknown>(): T;
}

export interface HttpClientStats {
  requests: number;
  connectionsOpened: number;
}

interface RequestCtx {
  client: HttpClient;
  reused?: boolean;
  connectMs?: number;
  tlsMs?: number;
  httpVersion?: string;
}

interface SocketInfo {
  client: HttpClient;
  cid: string;
  connectMs: number;
  tlsMs?: number;
  used: boolean;
}

const als = new AsyncLocalStorage<RequestCtx>();
const sockets = new WeakMap<object, SocketInfo>();
const requests = new WeakMap<object, { ctx?: RequestCtx; client: HttpClient; cid: string; line: string; rec?: ExchangeRecord }>();
let subscribed = false;

/** undici's own diagnostics channels, subscribed once when the first client is made (no monkey-patching). */
function subscribeChannels(): void {
  if (subscribed) return;
  subscribed = true;
  diagnostics.subscribe('undici:request:create', (m) => {
    const { request } = m as { request: object };
    const ctx = als.getStore();
    // A HAR record only for a client that traces: its phases and bodies for the `done` event.
    if (ctx) requests.set(request, { ctx, client: ctx.client, cid: '', line: '', ...(ctx.client.tracer.enabled ? { rec: new ExchangeRecord() } : {}) });
  });
  diagnostics.subscribe('undici:client:sendHeaders', (m) => {
    const { request, headers, socket } = m as { request: { method: string; path: string; origin: string }; headers: string; socket: object };
    const info = sockets.get(socket);
    const entry = requests.get(request);
    const client = info?.client ?? entry?.client;
    if (!client) return;
    const h2 = (socket as tls.TLSSocket).alpnProtocol === 'h2';
    const line = `${request.method} ${request.origin}${request.path}`;
    const reused = info ? info.used : true;
    if (info) info.used = true;
    const cid = info?.cid ?? 'http';
    requests.set(request, { ...(entry ?? {}), client, cid, line });
    const rec = entry?.rec;
    if (rec) {
      rec.sentHeadersAt = performance.now();
      rec.method = request.method;
      rec.url = `${request.origin}${request.path}`;
      rec.h2 = h2;
      rec.connection = cid;
      rec.serverIPAddress = (socket as net.Socket).remoteAddress ?? '';
      rec.requestHeaders = headers.split('\r\n').filter(Boolean).map(redactLine);
      if (!reused && info) {
        rec.connectMs = info.connectMs;
        if (info.tlsMs !== undefined) rec.tlsMs = info.tlsMs;
      }
    }
    if (entry?.ctx) {
      entry.ctx.reused = reused;
      entry.ctx.httpVersion = h2 ? '2' : '1.1';
      if (!reused && info) {
        entry.ctx.connectMs = info.connectMs;
        if (info.tlsMs !== undefined) entry.ctx.tlsMs = info.tlsMs;
      }
    }
    client.tracer.emit('http', cid, '>', 'request', () => {
      const lines = headers.split('\r\n').filter(Boolean).map(redactLine);
      return { summary: `${h2 ? `${line} (h2)` : lines[0] ?? line}${reused ? ' [reused connection]' : ' [new connection]'}`, meta: { headers: lines, reused, h2 } };
    });
  });
  diagnostics.subscribe('undici:request:headers', (m) => {
    const { request, response } = m as { request: object; response: { statusCode: number; statusText: string; headers: Buffer[] } };
    const entry = requests.get(request);
    if (!entry) return;
    if (entry.rec) {
      const rec = entry.rec;
      rec.headersAt = performance.now();
      rec.status = response.statusCode;
      rec.statusText = response.statusText ?? '';
      for (let i = 0; i + 1 < response.headers.length; i += 2) rec.responseHeaders.push(redactLine(`${response.headers[i]}: ${response.headers[i + 1]}`));
    }
    entry.client.tracer.emit('http', entry.cid, '<', 'response', () => {
      const lines: string[] = [];
      for (let i = 0; i + 1 < response.headers.length; i += 2) lines.push(redactLine(`${response.headers[i]}: ${response.headers[i + 1]}`));
      return { summary: `${response.statusCode} ${response.statusText ?? ''}`.trimEnd() + ` ← ${entry.line}`, meta: { status: response.statusCode, headers: lines } };
    });
  });
  diagnostics.subscribe('undici:request:error', (m) => {
    const { request, error } = m as { request: { method: string; origin: string; path: string }; error: Error };
    const entry = requests.get(request);
    entry?.client.tracer.emit('http', entry.cid || 'http', '*', 'error', () => `${request.method} ${request.origin}${request.path}: ${error.message}`);
  });
  diagnostics.subscribe('undici:client:connected', (m) => {
    const { socket, connectParams } = m as { socket: object; connectParams: { host: string; protocol: string } };
    const info = sockets.get(socket);
    if (!info) return;
    info.client.tracer.emit('http', info.cid, '*', 'connected', () => ({
      summary: `${connectParams.protocol}//${connectParams.host}: TCP ${info.connectMs} ms${info.tlsMs !== undefined ? `, TLS ${info.tlsMs} ms (ALPN ${(socket as tls.TLSSocket).alpnProtocol || 'none'})` : ''}`,
      meta: { connectMs: info.connectMs, tlsMs: info.tlsMs },
      ...socketEnds(socket as net.Socket, 'client'),
    }));
  });
  diagnostics.subscribe('undici:client:connectError', (m) => {
    const { error, connectParams } = m as { error: Error; connectParams: { host: string } };
    const ctx = als.getStore();
    ctx?.client.tracer.emit('http', 'http', '*', 'error', () => `connect to ${connectParams.host} failed: ${error.message}`);
  });
}

/** The end of a traced response: one `done` event carrying the client's side of the exchange (for HAR). */
function emitDone(request: object, rec: ExchangeRecord): void {
  const entry = requests.get(request);
  if (!entry) return;
  delete entry.rec;
  const x = rec.exchange();
  entry.client.tracer.emit('http', entry.cid || 'http', '*', 'done', () => ({
    summary: `${x.status} ${x.method} ${x.url}: wait ${x.timings.wait} ms, receive ${x.timings.receive} ms`,
    ...(x.responseBody ? { bytes: x.responseBody.size } : {}),
    meta: { status: x.status, exchange: x },
  }));
}

/** Seconds (or an HTTP date) in Retry-After, as milliseconds. */
export function retryAfterMs(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v) * 1000;
  const date = Date.parse(v);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Every default of HttpClientOptions, and of `retry` when it leaves a field out. */
export const HTTP_CLIENT_DEFAULTS = Object.freeze({
  keepAlive: true,
  pipelining: 1,
  connections: 10,
  maxRedirections: 0,
  headersTimeoutMs: 30_000,
  bodyTimeoutMs: 30_000,
  http2: false,
  retry: Object.freeze({ maxRetries: 2, maxWaitMs: 10_000 }),
});

/**
 * An HTTP client over undici: a pool per origin with keep-alive on or off, pipelining, HTTP/2; redirects followed hop
 * by hop; Retry-After honoured. Traced through undici's diagnostics_channel.
 */
export class HttpClient {
  readonly tracer: Tracer;
  readonly stats: HttpClientStats = { requests: 0, connectionsOpened: 0 };
  readonly #agent: Agent;
  readonly #keepAlive: boolean;
  readonly #maxRedirections: number;
  readonly #retry: { statuses: number[]; maxRetries: number; maxWaitMs: number } | undefined;

  private constructor(agent: Agent, o: HttpClientOptions) {
    this.#agent = agent;
    this.tracer = o.tracer ?? NOOP_TRACER;
    this.#keepAlive = o.keepAlive ?? HTTP_CLIENT_DEFAULTS.keepAlive;
    this.#maxRedirections = o.maxRedirections ?? HTTP_CLIENT_DEFAULTS.maxRedirections;
    this.#retry = o.retry ? withDefaults(HTTP_CLIENT_DEFAULTS.retry, o.retry) : undefined;
  }

  static async create(options: HttpClientOptions = {}): Promise<HttpClient> {
    const o = withDefaults(HTTP_CLIENT_DEFAULTS, options);
    const pipelining = checkInt('pipelining', o.pipelining, 0, 128);
    const connections = checkInt('connections', o.connections, 1, 10_000);
    checkInt('maxRedirections', o.maxRedirections, 0, 100);
    const headersTimeout = checkInt('headersTimeoutMs', o.headersTimeoutMs, 1, 3600_000);
    const bodyTimeout = checkInt('bodyTimeoutMs', o.bodyTimeoutMs, 1, 3600_000);
    checkBoolean('keepAlive', o.keepAlive);
    checkBoolean('http2', o.http2);
    if (options.retry) {
      const r = withDefaults(HTTP_CLIENT_DEFAULTS.retry, options.retry);
      checkInt('retry.maxRetries', r.maxRetries, 0, 100);
      checkInt('retry.maxWaitMs', r.maxWaitMs, 0, 3600_000);
    }
    if (options.retry && !Array.isArray(options.retry.statuses)) throw new InvalidOptionError('retry.statuses', 'an array of status codes', options.retry.statuses);
    const tlsOpts = await tlsClientOptions(options.tls ?? {});
    const base = buildConnector({ ca: tlsOpts.ca, minVersion: tlsOpts.minVersion, maxVersion: tlsOpts.maxVersion, allowH2: options.http2 ?? false } as buildConnector.BuildOptions);
    const owner: { client?: HttpClient } = {};
    // Our connector wraps undici's: it counts and times each connection (TCP, then TLS) for the phases of a request.
    const connect: buildConnector.connector = (opts, callback) => {
      const started = performance.now();
      let tcpAt = 0;
      const socket = base({ ...opts, servername: opts.protocol === 'https:' ? 'localhost' : opts.servername } as typeof opts, (err, s) => {
        if (err || !s) return callback(err as Error, null);
        const end = performance.now();
        const tcp = tcpAt || end;
        const info: SocketInfo = { client: owner.client!, cid: nextCid('http'), connectMs: round(tcp - started), used: false };
        if (opts.protocol === 'https:') info.tlsMs = round(end - tcp);
        sockets.set(s, info);
        owner.client!.stats.connectionsOpened++;
        callback(null, s);
      });
      (socket as unknown as net.Socket).once('connect', () => (tcpAt = performance.now()));
      return socket;
    };
    const agent = new Agent({
      connect,
      pipelining,
      connections,
      headersTimeout,
      bodyTimeout,
      allowH2: options.http2 ?? false,
      ...(options.keepAlive === false ? { keepAliveTimeout: 1, keepAliveMaxTimeout: 1 } : {}),
    });
    const client = new HttpClient(agent, options);
    owner.client = client;
    // Always on: the channels also tell each response whether its connection was new or reused.
    subscribeChannels();
    if (client.tracer.enabled) subscribeExchangeChannels((request) => requests.get(request)?.rec, emitDone);
    return client;
  }

  /** One request, following redirects and retrying after Retry-After as configured. */
  async request(url: string | URL, options: HttpRequestOptions = {}): Promise<HttpResponse> {
    const hops: HttpHop[] = [];
    const retries: Array<{ status: number; waitedMs: number }> = [];
    let current = new URL(url);
    let method = (options.method ?? 'GET').toUpperCase();
    let body = options.body;
    for (;;) {
      const res = await this.#once(current, method, body, options);
      const location = res.headers.location;
      if (res.status >= 300 && res.status < 400 && typeof location === 'string' && hops.length < this.#maxRedirections) {
        const next = new URL(location, current);
        hops.push({ status: res.status, url: current.href, location: next.href, ms: res.timing.doneMs });
        this.tracer.emit('http', 'http', '*', 'redirect', () => `hop ${hops.length}: ${res.status} ${current.href} → ${next.href}`);
        // 303 always, and 301/302 after a POST (as browsers do), turn into a GET without a body; 307/308 keep both.
        if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
          method = 'GET';
          body = undefined;
        }
        current = next;
        continue;
      }
      const r = this.#retry;
      if (r && r.statuses.includes(res.status) && retries.length < r.maxRetries) {
        const wait = Math.min(r.maxWaitMs, retryAfterMs(res.headers['retry-after']) ?? 1000);
        this.tracer.emit('http', 'http', '*', 'backoff', () => `${res.status} with Retry-After ${res.headers['retry-after'] ?? '(none)'}: waiting ${wait} ms before retry ${retries.length + 1}`);
        await sleep(wait);
        retries.push({ status: res.status, waitedMs: wait });
        continue;
      }
      return { ...res, hops, retries };
    }
  }

  async #once(url: URL, method: string, body: HttpRequestOptions['body'], options: HttpRequestOptions): Promise<HttpResponse> {
    const ctx: RequestCtx = { client: this };
    const started = performance.now();
    this.stats.requests++;
    const headers: Record<string, string | string[]> = { ...(options.headers ?? {}) };
    const params: Dispatcher.RequestOptions = {
      origin: url.origin,
      path: url.pathname + url.search,
      method: method as Dispatcher.HttpMethod,
      headers,
      ...(body !== undefined ? { body } : {}),
      ...(this.#keepAlive ? {} : { reset: true }),
      ...(options.signal ? { signal: options.signal } : {}),
    };
    let res: Dispatcher.ResponseData;
    try {
      res = await als.run(ctx, () => this.#agent.request(params));
    } catch (err) {
      throw new WirelabError(ErrorCodes.CLOSED, `${method} ${url.href} failed: ${(err as Error).message}`, { cause: err });
    }
    const firstByte = performance.now();
    let bytes = 0;
    const parts: Buffer[] = [];
    for await (const chunk of res.body) {
      bytes += (chunk as Buffer).length;
      if (options.consume !== 'discard') parts.push(chunk as Buffer);
    }
    const done = performance.now();
    const buf = Buffer.concat(parts, options.consume === 'discard' ? 0 : bytes);
    const timing: HttpTiming = { firstByteMs: round(firstByte - started), doneMs: round(done - started) };
    if (ctx.connectMs !== undefined) timing.connectMs = ctx.connectMs;
    if (ctx.tlsMs !== undefined) timing.tlsMs = ctx.tlsMs;
    return {
      status: res.statusCode,
      headers: res.headers,
      body: buf,
      bodyBytes: bytes,
      url: url.href,
      httpVersion: ctx.httpVersion ?? '1.1',
      reusedConnection: ctx.reused ?? false,
      timing,
      hops: [],
      retries: [],
      text: () => buf.toString('utf8'),
      json: <T>() => JSON.parse(buf.toString('utf8')) as T,
    };
  }

  close(): Promise<void> {
    return this.#agent.close();
  }

  /** Drops every connection at once. */
  destroy(): Promise<void> {
    return this.#agent.destroy();
  }
}

export function createHttpClient(options: HttpClientOptions = {}): Promise<HttpClient> {
  return HttpClient.create(options);
}

/** One request with a client made for it and closed after it. */
export async function httpRequest(url: string | URL, options: HttpRequestOptions & HttpClientOptions = {}): Promise<HttpResponse> {
  const client = await HttpClient.create(options);
  try {
    return await client.request(url, options);
  } finally {
    await client.close();
  }
}
