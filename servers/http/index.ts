import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type net from 'node:net';
import type tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { closeTcpServer, listenTcp, SocketSet, type RunningServer } from '../../core/server.ts';
import { attachKeylog, handshakeInfo, tlsServerOptions } from '../../core/tls/index.ts';
import { lineMask, NOOP_TRACER, nextCid, socketEnds, tapSocket, type Tracer } from '../../core/trace/index.ts';
import { http2Mask, tapHttp2 } from './h2-wire.ts';
import { handleConnect, normalizeTarget } from './connect.ts';
import { clientAddress, problem, RequestContext, STATUS_TEXT, type Ctx, type Req, type Res, type ServerState } from './context.ts';
import { EventFeed } from './feed.ts';
import { HttpError, TokenBuckets } from './limits.ts';
import { resolveHttpOptions, type HttpServerOptions, type ResolvedHttpOptions } from './options.ts';
import { KNOWN_METHODS, Router } from './router.ts';
import { registerEcho } from './routes/echo.ts';
import { registerEncoding } from './routes/encoding.ts';
import { registerEvents } from './routes/events.ts';
import { registerGateway } from './routes/gateway.ts';
import { registerRedirects } from './routes/redirects.ts';
import { registerState } from './routes/state.ts';
import { registerTiming } from './routes/timing.ts';
import { registerUpload } from './routes/upload.ts';
import { redactedHeaders, traceRequest, traceResponse } from './trace.ts';

export { HTTP_SERVER_DEFAULTS, type HttpLimits, type HttpServerOptions } from './options.ts';
export { EventFeed, type FeedEvent } from './feed.ts';
export { Router } from './router.ts';
// What a route of `routes` (or a user's own router) needs: the context, and send().
export { headerValue, json, readBody, send, type Ctx } from './context.ts';
export { sseMessage } from './routes/events.ts';

/** What the server counted: each status it answered, and each limit that fired. */
export interface HttpServerStats {
  connections: number;
  requests: number;
  /** Responses by status code. */
  statuses: Record<number, number>;
  /** Times each named limit answered: maxHeaderBytes (431), maxBodyBytes (413), requestTimeoutMs (408)... */
  limits: Record<string, number>;
  /** Requests by protocol version: "1.1", "2.0". */
  versions: Record<string, number>;
  /** 400s for requests the parser refused (malformed request line, bad headers...). */
  parseErrors: number;
  /** Handlers that threw (answered 500). */
  handlerErrors: number;
  /** Bytes read and written on connections that have closed (TLS records included on https). */
  bytesIn: number;
  bytesOut: number;
}

export interface RunningHttpServer extends RunningServer {
  url: string;
  readonly stats: HttpServerStats;
  readonly feed: EventFeed;
  /** Requests in progress now. */
  readonly active: number;
  /** The route table, consulted per request: routes added after start serve at once (`wirelab up`'s dashboard). */
  readonly router: Router;
}

/** The full route table of the playground (exported so a user's own server can extend it). */
export function playgroundRouter(): Router {
  const router = new Router();
  registerEcho(router);
  registerRedirects(router);
  registerTiming(router);
  registerState(router);
  registerEncoding(router);
  registerUpload(router);
  registerEvents(router);
  registerGateway(router);
  return router;
}

/** Which named limit a parser error is, and the status it earns. */
function clientErrorStatus(code: string | undefined): { status: number; limit?: string } {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return { status: 431, limit: 'maxHeaderBytes' };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { status: 408, limit: 'requestTimeoutMs' };
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
    case 'HPE_INVALID_CONTENT_LENGTH':
    case 'HPE_INVALID_TRANSFER_ENCODING':
      return { status: 400 };
    default:
      return { status: 400 };
  }
}

/**
 * The HTTP playground on node:http: every route of the playground API, each limit named and answered with its status.
 * With `tls` it serves HTTPS, and HTTP/2 through ALPN (h2, then http/1.1) unless `http2` is false.
 */
export async function startHttpServer(options: HttpServerOptions = {}): Promise<RunningHttpServer> {
  const o: ResolvedHttpOptions = resolveHttpOptions(options);
  const tracer: Tracer = options.tracer ?? NOOP_TRACER;
  const feed = options.feed ?? new EventFeed();
  const router = o.playground ? playgroundRouter() : new Router();
  for (const register of o.routes) register(router);
  const buckets = new TokenBuckets(o.rateLimitBurst, o.rateLimitPerSecond);
  const allowedTargets = new Set(o.connectTargets.map((t) => normalizeTarget(t)?.key ?? t));
  const stats: HttpServerStats = { connections: 0, requests: 0, statuses: {}, limits: {}, versions: {}, parseErrors: 0, handlerErrors: 0, bytesIn: 0, bytesOut: 0 };
  const state: ServerState = { options: o, tracer, feed, resources: new Map(), nextResourceId: 1, startedAt: new Date(), origin: '' };
  const sockets = new SocketSet();
  const cids = new WeakMap<object, string>();
  const scheme = o.tls ? 'https' : 'http';
  const proto = 'http';
  let active = 0;

  const limitHit = (name: string): void => {
    stats.limits[name] = (stats.limits[name] ?? 0) + 1;
  };
  const cidOf = (req: Req): string => {
    const key = req.httpVersionMajor === 2 ? (req as http2.Http2ServerRequest).stream.session : req.socket;
    return (key && cids.get(key)) ?? 'http';
  };

  // One listener shared by every response (no closure per request): 'close' comes once, when the response is done.
  function onResponseClose(this: Res): void {
    active--;
    stats.statuses[this.statusCode] = (stats.statuses[this.statusCode] ?? 0) + 1;
  }

  const onRequest = (req: Req, res: Res): void => {
    const cid = cidOf(req);
    stats.requests++;
    stats.versions[req.httpVersion] = (stats.versions[req.httpVersion] ?? 0) + 1;
    active++;
    res.on('close', onResponseClose);
    if (tracer.enabled) {
      traceRequest(tracer, cid, req);
      traceResponse(tracer, cid, req, res, performance.now());
    }
    const method = req.method ?? 'GET';
    const ctx = new RequestContext(req, res, method, state, cid);

    // Overload first (cheapest answer for a busy server), then the client's own rate.
    if (active > o.maxConcurrentRequests) {
      limitHit('maxConcurrentRequests');
      tracer.emit(proto, cid, '*', 'limit', () => `maxConcurrentRequests=${o.maxConcurrentRequests} reached: 503`);
      return problem(ctx, 503, `the server is at maxConcurrentRequests=${o.maxConcurrentRequests}`, { 'retry-after': '1' });
    }
    const wait = buckets.take(clientAddress(req));
    if (wait > 0) {
      limitHit('rateLimit');
      tracer.emit(proto, cid, '*', 'limit', () => `rate limit (${o.rateLimitBurst} burst, ${o.rateLimitPerSecond}/s) for ${clientAddress(req)}: 429, retry in ${wait} s`);
      return problem(ctx, 429, `more than rateLimitBurst=${o.rateLimitBurst} requests, refilled at ${o.rateLimitPerSecond}/s`, { 'retry-after': String(wait) });
    }
    // HTTP/2 has no parser limit of node's to trip (a SETTINGS value is only advice): count the header list here.
    if (ctx.h2 && headerListSize(req) > o.maxHeaderBytes) {
      limitHit('maxHeaderBytes');
      tracer.emit(proto, cid, '*', 'limit', () => `HTTP/2 header list over maxHeaderBytes=${o.maxHeaderBytes}: 431`);
      return problem(ctx, 431, `header list exceeds maxHeaderBytes=${o.maxHeaderBytes}`);
    }
    if (method === 'TRACE') return trace(ctx);
    if (method === 'OPTIONS' && req.url === '*') {
      return problem(ctx, 204, '', { allow: KNOWN_METHODS.filter((m) => m !== 'TRACE' || o.allowTrace).join(', ') });
    }
    const path = ctx.path;
    const m = router.match(method, path);
    if (m.kind === 'none') return problem(ctx, 404, `no route for ${path}`);
    if (m.kind === 'method') {
      const allow = m.allow.join(', ');
      if (method === 'OPTIONS') return problem(ctx, 204, '', { allow });
      return problem(ctx, 405, `${method} is not allowed on ${path}`, { allow });
    }
    ctx.params = m.params;
    let result: void | Promise<void>;
    try {
      result = m.handler(ctx);
    } catch (err) {
      return failed(ctx, err);
    }
    if (result) result.catch((err: unknown) => failed(ctx, err));
  };

  /** A handler's error: its HttpError status, or 500 for anything else; the server keeps serving. */
  const failed = (ctx: Ctx, err: unknown): void => {
    const res = ctx.res as ServerResponse;
    if (!(err instanceof HttpError)) {
      stats.handlerErrors++;
      tracer.emit(proto, ctx.cid, '*', 'error', () => `handler for ${ctx.method} ${ctx.url.pathname} threw: ${err instanceof Error ? err.message : String(err)}`);
    } else if (err.status === 413) limitHit('maxBodyBytes');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const close = err instanceof HttpError && err.closeConnection;
    // After a refused body the rest of it is unread: HTTP/1 must close the connection; HTTP/2 resets just the stream.
    if (close && !ctx.h2) res.setHeader('connection', 'close');
    if (err instanceof HttpError) problem(ctx, err.status, err.message, err.headers);
    else problem(ctx, 500, 'the handler threw; see the server trace');
  };

  const trace = (ctx: Ctx): void => {
    const allow = router.allowed(ctx.path).filter((x) => x !== 'TRACE');
    if (!o.allowTrace) {
      return problem(ctx, 405, 'TRACE is off (allowTrace=false): it would reflect Cookie and Authorization back to the page that sent it', {
        allow: (allow.length ? allow : KNOWN_METHODS.filter((x) => x !== 'TRACE' && x !== 'CONNECT')).join(', '),
      });
    }
    // On purpose unredacted: this is what TRACE does, and why it is off by default (cross-site tracing).
    const lines = [`${ctx.method} ${ctx.req.url} HTTP/${ctx.req.httpVersion}`];
    for (let i = 0; i + 1 < ctx.req.rawHeaders.length; i += 2) lines.push(`${ctx.req.rawHeaders[i]}: ${ctx.req.rawHeaders[i + 1]}`);
    const body = lines.join('\r\n') + '\r\n\r\n';
    (ctx.res as ServerResponse).writeHead(200, { 'content-type': 'message/http', 'content-length': Buffer.byteLength(body) });
    ctx.res.end(body);
  };

  /** Expect: 100-continue: refuse a declared body over the limit before it is sent, else say 100 Continue. */
  const onCheckContinue = (req: Req, res: Res): void => {
    const declared = Number(req.headers['content-length'] ?? NaN);
    const cid = cidOf(req);
    if (declared > o.maxBodyBytes) {
      limitHit('maxBodyBytes');
      stats.requests++;
      tracer.emit(proto, cid, '*', 'limit', () => `Expect: 100-continue with Content-Length ${declared} > maxBodyBytes=${o.maxBodyBytes}: 413 before the body is sent`);
      const body = JSON.stringify({ status: 413, error: 'Content Too Large', detail: `declared ${declared} B exceeds maxBodyBytes=${o.maxBodyBytes}` }) + '\n';
      const r = res as ServerResponse;
      r.writeHead(413, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...(req.httpVersionMajor === 1 ? { connection: 'close' } : {}) });
      r.end(body);
      stats.statuses[413] = (stats.statuses[413] ?? 0) + 1;
      return;
    }
    tracer.emit(proto, cid, '<', 'interim', () => `100 Continue ← ${req.method} ${req.url} (Content-Length ${req.headers['content-length'] ?? 'unknown'})`);
    (res as ServerResponse).writeContinue();
    onRequest(req, res);
  };

  /** The parser refused the request (or it took too long): answer with the protocol's status, then close. */
  const onClientError = (err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Duplex): void => {
    const cid = cids.get(socket) ?? 'http';
    const { status, limit } = clientErrorStatus(err.code);
    if (limit) limitHit(limit);
    else stats.parseErrors++;
    tracer.emit(proto, cid, '*', 'client-error', () => ({
      summary: `${err.code ?? 'error'}: ${err.message}${err.code === 'ECONNRESET' ? '' : ` → ${status}`}`,
      meta: { code: err.code, status, ...(err.rawPacket ? { raw: err.rawPacket.subarray(0, 200).toString('latin1') } : {}) },
    }));
    const busy = (socket as net.Socket & { _httpMessage?: unknown })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || busy) {
      socket.destroy();
      return;
    }
    stats.statuses[status] = (stats.statuses[status] ?? 0) + 1;
    const body = JSON.stringify({ status, error: STATUS_TEXT[status], detail: limit ? `${limit} exceeded` : err.message }) + '\n';
    socket.end(`HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  };

  const onSocket = (socket: net.Socket): void => {
    sockets.add(socket);
    stats.connections++;
    const cid = nextCid(proto);
    cids.set(socket, cid);
    const openedAt = performance.now();
    tracer.emit(proto, cid, '*', 'accept', () => ({
      summary: `accepted ${socket.remoteAddress}:${socket.remotePort} → ${socket.localAddress}:${socket.localPort}`,
      ...socketEnds(socket, 'server'),
    }));
    // The bytes on the wire (pcapng), credentials in headers masked.
    tapSocket(tracer, proto, cid, socket, 'server', lineMask({ sasl: false }));
    if (tracer.enabled) socket.once('close', () => tracer.emit(proto, cid, '*', 'close', () => `connection closed after ${Math.round(performance.now() - openedAt)} ms`));
  };

  const checkingInterval = Math.max(50, Math.min(1000, Math.floor(o.headersTimeoutMs / 4)));
  const http1Options = {
    maxHeaderSize: o.maxHeaderBytes,
    requestTimeout: o.requestTimeoutMs,
    headersTimeout: o.headersTimeoutMs,
    keepAliveTimeout: o.keepAliveTimeoutMs,
    connectionsCheckingInterval: checkingInterval,
    noDelay: true,
  };
  let server: net.Server;
  if (o.tls) {
    const tlsOptions = await tlsServerOptions({ ...o.tls, alpn: o.http2 ? ['h2', 'http/1.1'] : ['http/1.1'] });
    if (o.http2) {
      const h2 = http2.createSecureServer({
        ...tlsOptions,
        ...http1Options,
        allowHTTP1: true,
        settings: { maxHeaderListSize: o.maxHeaderBytes },
      } as http2.SecureServerOptions);
      // The frames' plaintext for the pcapng export (h2-wire.ts), only while a sink wants the bytes on the wire.
      const wired = tapHttp2(h2, () => tracer.wire === true, (s) => {
        const raw = (s as tls.TLSSocket & { _parent?: net.Socket })._parent;
        const cid = (raw && cids.get(raw)) ?? nextCid(proto);
        cids.set(s, cid);
        if (raw) cids.set(raw, cid);
        tapSocket(tracer, proto, cid, s, 'server', http2Mask());
      });
      h2.on('request', onRequest);
      h2.on('checkContinue', onCheckContinue);
      h2.on('session', (session: http2.ServerHttp2Session) => {
        // session.socket is a proxy of the TLS socket: key the connection by the TCP socket under it, as onSocketTls does.
        const socket = wired.pending() ?? (session.socket as tls.TLSSocket);
        const raw = (socket as tls.TLSSocket & { _parent?: net.Socket })?._parent;
        const cid = (raw && cids.get(raw)) ?? nextCid(proto);
        cids.set(session, cid);
        if (raw) cids.set(raw, cid);
        // 'session' comes before 'secureConnection': this is the connection's first event, with its ends.
        tracer.emit(proto, cid, '*', 'h2-session', () => ({ summary: `HTTP/2 session (ALPN ${socket?.alpnProtocol ?? '?'})`, ...(socket ? socketEnds(socket, 'server') : {}) }));
      });
      server = h2;
    } else {
      const s1 = https.createServer({ ...tlsOptions, ...http1Options }, onRequest);
      s1.on('checkContinue', onCheckContinue);
      server = s1;
    }
    attachKeylog(server, o.tls.keylogFile);
    server.on('secureConnection', (s: tls.TLSSocket) => {
      // The TLS socket carries the requests: give it the TCP connection's id, and trace the handshake.
      onSocketTls(s);
    });
    server.on('tlsClientError', (err: Error, s: tls.TLSSocket) => {
      tracer.emit('tls', 'tls', '*', 'error', () => `handshake failed: ${err.message}`);
      s.destroy();
    });
  } else {
    const s1 = http.createServer(http1Options, onRequest);
    s1.on('checkContinue', onCheckContinue);
    server = s1;
  }
  function onSocketTls(s: tls.TLSSocket): void {
    // One id per TCP connection: the TLS socket's, its TCP socket's (under _parent) and an HTTP/2 session's are one.
    const raw = (s as tls.TLSSocket & { _parent?: net.Socket })._parent;
    const cid = cids.get(s) ?? (raw && cids.get(raw)) ?? nextCid(proto);
    cids.set(s, cid);
    if (raw) cids.set(raw, cid);
    stats.connections++;
    const info = handshakeInfo(s, performance.now());
    tracer.emit('tls', cid, '*', 'handshake', () => ({
      summary: `server: ${info.version} ${info.cipher} alpn=${info.alpn || 'none'} ${info.resumed ? 'resumed' : 'full'}`,
      meta: { side: 'server', ...info },
      ...socketEnds(s, 'server'),
    }));
    // The plaintext HTTP/1.1 bytes (pcapng). HTTP/2 frames go from the session to the socket's handle, past any tap.
    if (info.alpn !== 'h2') tapSocket(tracer, proto, cid, s, 'server', lineMask({ sasl: false }));
  }
  server.on('connection', (socket: net.Socket) => {
    socket.once('close', () => {
      stats.bytesIn += socket.bytesRead;
      stats.bytesOut += socket.bytesWritten;
    });
    if (o.tls) sockets.add(socket);
    else onSocket(socket);
  });
  server.on('clientError', onClientError);
  server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    stats.requests++;
    handleConnect(req, socket, head, allowedTargets, tracer, cids.get(socket) ?? 'http');
  });

  const port = await listenTcp(server, o.port, o.host);
  const hostForUrl = o.host.includes(':') ? `[${o.host}]` : o.host;
  state.origin = `${scheme}://${hostForUrl}:${port}`;
  tracer.emit(proto, `${proto}-server`, '*', 'listen', () => `listening on ${state.origin}${o.tls && o.http2 ? ' (h2 and http/1.1 by ALPN)' : ''}`);
  return {
    proto: scheme,
    host: o.host,
    port,
    url: state.origin,
    stats,
    feed,
    router,
    get active() {
      return active;
    },
    close: async () => {
      await closeTcpServer(server, sockets);
      if (state.upstream) await (await state.upstream).close();
      tracer.emit(proto, `${proto}-server`, '*', 'closed', () => `stopped listening on ${state.origin}`);
    },
  };
}

/** An HTTP/2 header list's size as RFC 9113 counts it: name + value + 32 per field. */
function headerListSize(req: Req): number {
  let n = 0;
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) n += req.rawHeaders[i]!.length + req.rawHeaders[i + 1]!.length + 32;
  return n;
}

export { redactedHeaders };
