import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import { checkInt, InvalidOptionError, withDefaults } from '../../core/options.ts';
import { closeTcpServer, DEFAULT_HOST, listenTcp, SocketSet, type RunningServer } from '../../core/server.ts';
import { attachKeylog, tlsServerOptions, type TlsSettings } from '../../core/tls/index.ts';
import { lineMask, NOOP_TRACER, nextCid, preview, redactLine, socketEnds, tapSocket, type Tracer } from '../../core/trace/index.ts';
import type { EventFeed } from '../http/feed.ts';
import { Heartbeat } from './heartbeat.ts';
import { acceptFor, CLOSE_CODES, traceFrames } from '../../protocols/ws.ts';

export { acceptFor, FrameObserver, describeFrame, type FrameHeader } from '../../protocols/ws.ts';

export interface WsServerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** Serve wss:// with the local certificate (core/tls). Default off. */
  tls?: TlsSettings | boolean;
  /** Largest message accepted, in bytes; a bigger one closes the connection with 1009 (message too big). Default 1 MiB. */
  maxPayload?: number;
  /** Connections at once; one more is refused with 503 at the handshake. Default 1024. */
  maxConnections?: number;
  /** A ping every this long; a peer that has not answered the previous ping by then is dead and dropped. 0: off. Default 30,000 ms. */
  heartbeatMs?: number;
  /** Negotiate permessage-deflate when the client offers it. Default false. */
  perMessageDeflate?: boolean;
  /** The feed that /feed pushes (the realtime-push lab). Default none: /feed is refused with 404. */
  feed?: EventFeed;
  /**
   * Serve the built-in endpoints (/echo, /, /discard, /room/<name>, /feed). false: only `paths` (a server that is one
   * protocol's front door, such as the pub/sub broker's). Default true.
   */
  builtinRoutes?: boolean;
  /**
   * More endpoints, by exact path (e.g. { '/signal': { accept: signaling.accept, maxPayload: 65536 } } from
   * servers/webrtc, or just the function): each open connection on that path is handed to its function, after the
   * handshake, the limits, the frame tracing and an 'error' listener (so a peer breaking the protocol gets its close
   * 1002 / 1007 / 1009 and a trace event, and never ends the process). Default none.
   */
  paths?: Record<string, WsPathHandler | WsPath>;
  tracer?: Tracer;
}

/** Takes over one connection on a path of `paths`: its messages, its close. `cid` names it in the trace. */
export type WsPathHandler = (ws: WebSocket, cid: string, req: http.IncomingMessage) => void | Promise<void>;

/** A path with its own limit: a message over `maxPayload` bytes is refused by ws itself with close 1009. */
export interface WsPath {
  accept: WsPathHandler;
  /** Largest message on this path, in bytes. Default: the server's maxPayload. */
  maxPayload?: number;
}

/** The close code ws has already sent for the error it emits (1009 too big, 1007 bad UTF-8, 1002 anything else). */
export function closeCodeOf(err: Error & { code?: string }): number {
  // ws keeps the code it sent under a symbol of its own (status-code); the mapping below is the fallback.
  const sym = Object.getOwnPropertySymbols(err).find((k) => k.description === 'status-code');
  const sent = sym ? (err as unknown as Record<symbol, unknown>)[sym] : undefined;
  if (typeof sent === 'number') return sent;
  if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' || err.code === 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH') return 1009;
  if (err.code === 'WS_ERR_INVALID_UTF8') return 1007;
  return 1002;
}

export const WS_SERVER_DEFAULTS = {
  host: DEFAULT_HOST,
  port: 0,
  maxPayload: 1024 * 1024,
  maxConnections: 1024,
  heartbeatMs: 30_000,
  perMessageDeflate: false,
  builtinRoutes: true,
};

export interface WsServerStats {
  connections: number;
  refused: number;
  messagesIn: number;
  messagesOut: number;
  /** Close codes the server's side of each connection ended with (1000, 1002, 1009, 1006...). */
  closeCodes: Record<number, number>;
  /** Peers dropped by the heartbeat. */
  deadPeers: number;
  /** Bytes read and written on connections that have closed, handshake included. */
  bytesIn: number;
  bytesOut: number;
}

export interface RunningWsServer extends RunningServer {
  url: string;
  /** Every WebSocket endpoint: the server's own, then those of `paths`. */
  paths: string[];
  readonly stats: WsServerStats;
  /** Open connections now. */
  readonly clients: number;
}

/**
 * The paths: /echo (and /) echoes, /room/<name> broadcasts to the others in the room, /feed pushes the feed, /discard
 * counts what it gets and, sent the text "done", answers with the byte count (bulk transfers).
 */
function routeOf(path: string): { kind: 'echo' } | { kind: 'room'; room: string } | { kind: 'feed' } | { kind: 'discard' } | null {
  if (path === '/' || path === '/echo') return { kind: 'echo' };
  if (path === '/discard') return { kind: 'discard' };
  if (path === '/feed') return { kind: 'feed' };
  const m = /^\/room\/([A-Za-z0-9_-]{1,64})$/.exec(path);
  return m ? { kind: 'room', room: m[1]! } : null;
}

function refuse(socket: Duplex, status: number, reason: string, detail: string, extra = ''): void {
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(detail)}\r\nConnection: close\r\n${extra}\r\n${detail}`);
}

/**
 * A WebSocket server on ws: echo, broadcast rooms and a feed, a ping/pong heartbeat that drops dead peers, optional
 * permessage-deflate, maxPayload (close 1009) and ws's own checks of every frame (close 1002). The handshake and every
 * frame are traced.
 */
export async function startWsServer(options: WsServerOptions = {}): Promise<RunningWsServer> {
  const o = withDefaults(WS_SERVER_DEFAULTS, options);
  checkInt('port', o.port, 0, 65535);
  checkInt('maxPayload', o.maxPayload, 1, 1024 * 1024 * 1024);
  checkInt('maxConnections', o.maxConnections, 1, 1_000_000);
  checkInt('heartbeatMs', o.heartbeatMs, 0, 3600_000);
  if (typeof o.perMessageDeflate !== 'boolean') throw new InvalidOptionError('perMessageDeflate', 'a boolean', o.perMessageDeflate);
  if (typeof o.builtinRoutes !== 'boolean') throw new InvalidOptionError('builtinRoutes', 'a boolean', o.builtinRoutes);
  const tracer = o.tracer ?? NOOP_TRACER;
  const tlsSettings = options.tls === true ? {} : options.tls || undefined;
  const scheme = tlsSettings ? 'wss' : 'ws';
  const stats: WsServerStats = { connections: 0, refused: 0, messagesIn: 0, messagesOut: 0, closeCodes: {}, deadPeers: 0, bytesIn: 0, bytesOut: 0 };
  const sockets = new SocketSet();
  const rooms = new Map<string, Set<WebSocket>>();
  // One ws server per maxPayload in use, so a path's own limit is checked by ws frame by frame (close 1009) before a
  // message is buffered whole.
  const servers = new Map<number, WebSocketServer>();
  const wssFor = (maxPayload: number): WebSocketServer => {
    let w = servers.get(maxPayload);
    if (!w) {
      w = new WebSocketServer({ noServer: true, maxPayload, perMessageDeflate: o.perMessageDeflate, clientTracking: true });
      w.on('headers', onHeaders);
      // In noServer mode ws emits no 'error' of its own today; the listener keeps it so if that ever changes.
      w.on('error', (err: Error) => tracer.emit('ws', 'ws-server', '*', 'error', () => `ws server: ${err.message}`));
      servers.set(maxPayload, w);
    }
    return w;
  };
  const paths = new Map<string, { accept: WsPathHandler; maxPayload: number }>();
  for (const [path, p] of Object.entries(o.paths ?? {})) {
    const accept = typeof p === 'function' ? p : p?.accept;
    if (typeof accept !== 'function') throw new InvalidOptionError(`paths['${path}']`, 'a function or { accept, maxPayload? }', p);
    const maxPayload = typeof p === 'function' || p.maxPayload === undefined ? o.maxPayload : p.maxPayload;
    checkInt(`paths['${path}'].maxPayload`, maxPayload, 1, 1024 * 1024 * 1024);
    paths.set(path, { accept, maxPayload });
  }
  const allClients = (): WebSocket[] => [...servers.values()].flatMap((w) => [...w.clients]);
  const heartbeat = new Heartbeat(o.heartbeatMs, allClients, () => {
    stats.deadPeers++;
    tracer.emit('ws', 'ws-server', '*', 'dead-peer', () => `no pong within heartbeatMs=${o.heartbeatMs}: terminated`);
  });
  const openCount = (): number => [...servers.values()].reduce((n, w) => n + w.clients.size, 0);

  const onPlainRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const body = `This is wirelab's WebSocket server: connect with ${scheme}://HOST:PORT/echo, /room/<name> or /feed.\n`;
    res.writeHead(426, { upgrade: 'websocket', connection: 'Upgrade', 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  const server = tlsSettings
    ? https.createServer(await tlsServerOptions({ ...tlsSettings, alpn: ['http/1.1'] }), onPlainRequest)
    : http.createServer(onPlainRequest);
  if (tlsSettings) attachKeylog(server, tlsSettings.keylogFile);
  // The bytes on the wire for the pcapng export (wss: the plaintext), only when a sink wants them: the upgrade request
  // and response, then the frames. The connection's id is given here so the upgrade's events share it.
  const wireCids = new WeakMap<Duplex, string>();
  const tapWire = (s: net.Socket): void => {
    if (!tracer.wire) return;
    const cid = nextCid(scheme);
    wireCids.set(s, cid);
    const lines = lineMask({ sasl: false });
    // Header lines are masked (Authorization, Cookie) until the 101; frames after it are binary and pass as they are.
    tapSocket(tracer, 'ws', cid, s, 'server', (chunk, dir) => (upgraded.has(s) ? chunk : lines(chunk, dir)));
  };
  const upgraded = new WeakSet<Duplex>();
  if (tlsSettings) server.on('secureConnection', tapWire);
  server.on('connection', (s: net.Socket) => {
    if (!tlsSettings) tapWire(s);
    sockets.add(s);
    s.once('close', () => {
      stats.bytesIn += s.bytesRead;
      stats.bytesOut += s.bytesWritten;
    });
  });

  // The response headers ws is about to send: trace them, with the accept value recomputed from the key.
  const onHeaders = (headers: string[], req: http.IncomingMessage): void => {
    const cid = (req as http.IncomingMessage & { wlCid?: string }).wlCid ?? 'ws';
    tracer.emit('ws', cid, '<', 'handshake', () => {
      const key = String(req.headers['sec-websocket-key'] ?? '');
      const sent = headers.find((h) => h.toLowerCase().startsWith('sec-websocket-accept:'))?.split(':')[1]?.trim() ?? '';
      const expected = acceptFor(key);
      return {
        summary: `${headers[0]} accept=${sent} ${sent === expected ? '= base64(SHA-1(key + GUID)) ✓' : `≠ ${expected} ✗`}`,
        meta: { headers, acceptMatches: sent === expected, expected },
      };
    });
  };
  wssFor(o.maxPayload);

  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const cid = wireCids.get(socket) ?? nextCid(scheme);
    (req as http.IncomingMessage & { wlCid?: string }).wlCid = cid;
    socket.on('error', () => socket.destroy());
    tracer.emit('ws', cid, '>', 'handshake', () => {
      const lines: string[] = [];
      for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) lines.push(redactLine(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`));
      return {
        summary: `${req.method} ${req.url} HTTP/${req.httpVersion} key=${req.headers['sec-websocket-key'] ?? 'none'}`,
        meta: { headers: lines },
        ...(socket instanceof net.Socket ? socketEnds(socket, 'server') : {}),
      };
    });
    const pathname = new URL(req.url ?? '/', 'http://x').pathname;
    const extra = paths.get(pathname);
    const route = extra ? ({ kind: 'path' } as const) : o.builtinRoutes ? routeOf(pathname) : null;
    if (!route || (route.kind === 'feed' && !o.feed)) {
      stats.refused++;
      tracer.emit('ws', cid, '<', 'handshake', () => `404: no WebSocket endpoint at ${req.url}`);
      refuse(socket, 404, 'Not Found', `no WebSocket endpoint at ${req.url}\n`);
      return;
    }
    if (openCount() >= o.maxConnections) {
      stats.refused++;
      tracer.emit('ws', cid, '*', 'limit', () => `maxConnections=${o.maxConnections} reached: 503`);
      refuse(socket, 503, 'Service Unavailable', `maxConnections=${o.maxConnections} reached\n`, 'Retry-After: 1\r\n');
      return;
    }
    // ws answers a bad handshake (wrong version, missing key...) with 400 itself.
    upgraded.add(socket);
    wssFor(extra?.maxPayload ?? o.maxPayload).handleUpgrade(req, socket, head, (ws) => {
      traceFrames(tracer, cid, socket, 'server', undefined, false);
      stats.connections++;
      heartbeat.watch(ws);
      const openedAt = performance.now();
      // Before any handler runs: ws emits 'error' on a peer that broke the protocol, and an unhandled one would end the
      // process. ws has already sent close 1009 (message too big), 1007 (bad UTF-8) or 1002 (any other protocol
      // error) and then drops the socket, so 'close' says 1006: the code this side sent is kept here.
      let sentCode: number | undefined;
      ws.on('error', (err: Error & { code?: string }) => {
        sentCode = closeCodeOf(err);
        tracer.emit('ws', cid, '*', 'error', () => ({ summary: `${err.code ?? 'error'}: ${err.message}`, meta: { code: err.code, sent: sentCode } }));
      });
      ws.on('close', (code: number, reason: Buffer) => {
        const ended = sentCode ?? code;
        stats.closeCodes[ended] = (stats.closeCodes[ended] ?? 0) + 1;
        tracer.emit('ws', cid, '*', 'close', () => ({
          summary: `closed ${ended} (${CLOSE_CODES[ended] ?? 'application'})${sentCode ? ' sent by the server' : ''}${reason.length ? ` "${reason.toString()}"` : ''} after ${Math.round(performance.now() - openedAt)} ms`,
          meta: { code: ended, reason: reason.toString() },
        }));
      });
      if (extra) {
        // A path handler that throws (or, async, rejects) ends its own connection with 1011, never the server.
        const failed = (err: unknown): void => {
          tracer.emit('ws', cid, '*', 'error', () => `path handler threw: ${err instanceof Error ? err.message : String(err)}`);
          if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(1011, 'internal error');
        };
        try {
          const result: unknown = extra.accept(ws, cid, req);
          if (result instanceof Promise) result.catch(failed);
        } catch (err) {
          failed(err);
        }
      } else if (route.kind !== 'path') serve(ws, cid, route);
    });
  });

  const serve = (ws: WebSocket, cid: string, route: NonNullable<ReturnType<typeof routeOf>>): void => {
    tracer.emit('ws', cid, '*', 'open', () => `${route.kind}${route.kind === 'room' ? ` ${route.room}` : ''} open (extensions: ${ws.extensions || 'none'})`);
    let unsubscribe: (() => void) | undefined;
    if (route.kind === 'room') {
      let members = rooms.get(route.room);
      if (!members) rooms.set(route.room, (members = new Set()));
      members.add(ws);
    } else if (route.kind === 'feed' && o.feed) {
      unsubscribe = o.feed.subscribe((e) => {
        stats.messagesOut++;
        ws.send(JSON.stringify(e));
      });
    }
    let discarded = 0;
    ws.on('message', (data: RawData, isBinary: boolean) => {
      stats.messagesIn++;
      if (route.kind === 'discard') {
        const n = Array.isArray(data) ? data.reduce((a, b) => a + b.length, 0) : (data as Buffer).byteLength;
        if (!isBinary && n === 4 && data.toString() === 'done') {
          ws.send(String(discarded));
          discarded = 0;
        } else discarded += n;
        return;
      }
      // Checked first so that tracing off allocates no builder per message.
      if (tracer.enabled) tracer.emit('ws', cid, '>', 'message', () => {
        // A Buffer (ws's default binaryType) is read where it is: Buffer.from(buffer) would copy it.
        const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
        return { summary: `${isBinary ? 'binary' : 'text'} ${preview(buf)}`, bytes: buf.length };
      });
      if (route.kind === 'echo') {
        stats.messagesOut++;
        ws.send(data, { binary: isBinary });
      } else if (route.kind === 'room') {
        for (const peer of rooms.get(route.room) ?? []) {
          if (peer !== ws && peer.readyState === peer.OPEN) {
            stats.messagesOut++;
            peer.send(data, { binary: isBinary });
          }
        }
      }
    });
    ws.on('close', () => {
      unsubscribe?.();
      if (route.kind === 'room') {
        const members = rooms.get(route.room);
        members?.delete(ws);
        if (members?.size === 0) rooms.delete(route.room);
      }
    });
  };


  const port = await listenTcp(server, o.port, o.host);
  const hostForUrl = o.host.includes(':') ? `[${o.host}]` : o.host;
  const url = `${scheme}://${hostForUrl}:${port}`;
  tracer.emit('ws', 'ws-server', '*', 'listen', () => `listening on ${url} (/echo, /room/<name>${o.feed ? ', /feed' : ''})`);
  return {
    proto: scheme,
    host: o.host,
    port,
    url,
    paths: [...(o.builtinRoutes ? ['/echo', '/', '/discard', '/room/lobby', ...(o.feed ? ['/feed'] : [])] : []), ...paths.keys()],
    stats,
    get clients() {
      return openCount();
    },
    close: async () => {
      heartbeat.stop();
      for (const ws of allClients()) ws.terminate();
      await Promise.all([...servers.values()].map((w) => new Promise<void>((r) => w.close(() => r()))));
      await closeTcpServer(server, sockets);
      tracer.emit('ws', 'ws-server', '*', 'closed', () => `stopped listening on ${url}`);
    },
  };
}
