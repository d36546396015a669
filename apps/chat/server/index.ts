/**
 * The chat server (issue 15): an HTTP server that serves the web page at / (page.html, chat.js) and the chat protocol
 * over WebSocket at /ws (and SSE + POST, long polling: fallbacks.ts), on the pub/sub broker (its own in-memory broker
 * unless given one: `wirelab up` passes the shared one). With `tls` it is https:// and wss:// (the local certificate,
 * core/tls), so a password or token needs no allowInsecureAuth. `addDoor` opens one more listener (http or https) on
 * the same chat: same rooms, same presence (`wirelab up`'s chat-tls row). The state lives in core.ts and the modules
 * beside it; this file is the transport.
 */
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import type tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { closeTcpServer, listenTcp, SocketSet, type RunningServer } from '../../../core/server.ts';
import { attachKeylog, tlsServerOptions, traceTlsHandshake, type TlsSettings } from '../../../core/tls/index.ts';
import { NOOP_TRACER, nextCid } from '../../../core/trace/index.ts';
import { createBroker } from '../../../pubsub/broker/index.ts';
import type { Broker } from '../../../pubsub/broker/types.ts';
import type { ServerMessage } from '../protocol.ts';
import { CHAT_JS, CHAT_PAGE } from '../web/page.ts';
import { DM_JS } from '../web/dm.ts';
import type { DmStats } from './dm.ts';
import { ChatCore, type ChatStats } from './core.ts';
import { createFallbacks } from './fallbacks.ts';
import { wireBytes } from './state.ts';
import { checkTls, resolveChatOptions, type ChatServerOptions } from './options.ts';
import { Heartbeat } from '../../../servers/ws/heartbeat.ts';

export { CHAT_DEFAULTS, type ChatServerOptions } from './options.ts';
export type { ChatStats } from './core.ts';

export const CHAT_WS_PATH = '/ws';

export interface RunningChatServer extends RunningServer {
  /** http://host:port/ (https:// with tls): the web page. */
  url: string;
  /** ws://host:port/ws (wss:// with tls): the chat protocol. */
  endpoint: string;
  /**
   * One more listener on this chat (same rooms, presence, limits): plain http, or https with `tls`. Closed with the
   * server (or alone by its close()).
   */
  addDoor(options: { host?: string; port?: number; tls?: TlsSettings | boolean }): Promise<ChatDoor>;
  readonly broker: Broker;
  readonly stats: ChatStats & { bytesIn: number; bytesOut: number; closeCodes: Record<number, number>; dm: DmStats };
  /** Open connections now (WebSocket, SSE and long polling). */
  readonly clients: number;
  /** Multi-node: this node's id and the other nodes it hears (undefined on a single node). */
  readonly cluster: { node: string; nodes: number } | undefined;
}

/** A listener of a chat server (its first one, or one from addDoor). */
export interface ChatDoor extends RunningServer {
  url: string;
  endpoint: string;
}

const SECURITY_HEADERS = {
  // The page loads only itself: no inline script, no other origin (a stored XSS could not run even if text were HTML).
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

export async function startChatServer(options: ChatServerOptions = {}): Promise<RunningChatServer> {
  const o = resolveChatOptions(options);
  const tracer = options.tracer ?? NOOP_TRACER;
  const ownBroker = options.broker === undefined;
  const broker = options.broker ?? (await createBroker({ dataDir: options.dataDir ?? null, fsync: 'batch', tracer }));
  const session = await broker.connect({ door: 'internal', peer: 'chat-server', tls: false, clientId: 'chat-server' });
  // Multi-node (server/cluster.ts): loaded only then, so a single node never loads the nats client.
  const cluster = options.cluster && (await (await import('./cluster.ts')).connectChatCluster(options.cluster, o.presenceLeaseMs, tracer).catch(async (err: unknown) => {
    await session.close();
    if (ownBroker) await broker.close();
    throw err;
  }));
  const core = new ChatCore(broker, session, o, tracer, cluster);
  await core.start();

  const wss = new WebSocketServer({ noServer: true, maxPayload: o.maxFrameBytes, perMessageDeflate: false, clientTracking: true });
  wss.on('error', () => {});
  const heartbeat = new Heartbeat(o.heartbeatMs, () => wss.clients);
  const counters = { bytesIn: 0, bytesOut: 0, closeCodes: {} as Record<number, number> };

  // What the page's login form needs before it sends a secret (accounts? guests? may a secret go over plain HTTP?).
  const authInfo = JSON.stringify(core.auth.info());
  const fallbacks = createFallbacks(core, o, tracer, () => wss.clients.size + fallbacks.open);
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (fallbacks.serve(req, res, path, SECURITY_HEADERS)) return;
    const body = path === '/' || path === '/index.html' ? CHAT_PAGE : path === '/chat.js' ? CHAT_JS : path === '/dm.js' ? DM_JS : path === '/auth.json' ? authInfo : undefined;
    if (body === undefined || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(body === undefined ? 404 : 405, { 'content-type': 'text/plain', ...SECURITY_HEADERS });
      res.end(body === undefined ? 'not found\n' : 'GET only\n');
      return;
    }
    const type = path.endsWith('.js') ? 'text/javascript; charset=utf-8' : path.endsWith('.json') ? 'application/json' : 'text/html; charset=utf-8';
    res.writeHead(200, { 'content-type': type, 'content-length': Buffer.byteLength(body), ...SECURITY_HEADERS });
    res.end(req.method === 'HEAD' ? undefined : body);
  };

  const onUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => socket.destroy());
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path !== CHAT_WS_PATH) {
      socket.end(`HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nno WebSocket endpoint at ${path}: use ${CHAT_WS_PATH}\n`);
      return;
    }
    if (wss.clients.size + fallbacks.open >= o.maxConnections) {
      socket.end(`HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nmaxConnections=${o.maxConnections} reached\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => accept(ws, socket as net.Socket));
  };

  const accept = (ws: WebSocket, socket: net.Socket): void => {
    const cid = nextCid('chat');
    heartbeat.watch(ws);
    let sentCode: number | undefined;
    ws.on('error', (err: Error & { code?: string }) => {
      // ws has already sent 1009 (too big) / 1007 (bad UTF-8) / 1002 and drops the socket.
      sentCode = err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 1009 : err.code === 'WS_ERR_INVALID_UTF8' ? 1007 : 1002;
      tracer.emit('chat', cid, '*', 'error', () => `${err.code ?? 'error'}: ${err.message}`);
    });
    const secure = 'encrypted' in socket && socket.encrypted === true;
    tracer.emit('chat', cid, '*', 'open', () => `${secure ? 'wss' : 'WebSocket'} from ${socket.remoteAddress}:${socket.remotePort}`);
    const handle = core.open({
      cid,
      transport: 'ws',
      secure,
      peer: `${socket.remoteAddress}:${socket.remotePort}`,
      send(m: ServerMessage) {
        if (ws.readyState !== ws.OPEN) return;
        if (ws.bufferedAmount > o.maxBufferedBytes) {
          // Too slow to keep up: dropped; it reconnects and recovers from the log.
          tracer.emit('chat', cid, '*', 'slow', () => `bufferedAmount ${ws.bufferedAmount} > maxBufferedBytes: closed 1013`);
          ws.close(1013, 'too slow (maxBufferedBytes)');
          return;
        }
        ws.send(wireBytes(m), { binary: false });
      },
      close(code, reason) {
        if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(code, reason.slice(0, 120));
      },
    });
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      handle.frame(isBinary ? '\u0000binary' : buf.toString('utf8'));
    });
    ws.on('close', (code: number) => {
      const ended = sentCode ?? code;
      counters.closeCodes[ended] = (counters.closeCodes[ended] ?? 0) + 1;
      handle.closed();
    });
  };

  /** A listener (http, or https with `tlsSettings`) serving the page, /ws and the fallbacks of this one chat. */
  const doors = new Set<ChatDoor>();
  const openDoor = async (host: string, wantPort: number, tlsSettings: TlsSettings | false): Promise<ChatDoor> => {
    const sockets = new SocketSet();
    let server: http.Server;
    if (tlsSettings) {
      const s = https.createServer(await tlsServerOptions({ ...tlsSettings, alpn: ['http/1.1'] }), onRequest);
      attachKeylog(s, tlsSettings.keylogFile);
      s.on('secureConnection', (t: tls.TLSSocket) => traceTlsHandshake(tracer, nextCid('chat-tls'), t, 'server'));
      s.on('tlsClientError', (err: Error, t: tls.TLSSocket) => {
        // A client that does not trust the certificate, or speaks plain HTTP to this port: traced, the server goes on.
        tracer.emit('tls', 'chat-server', '*', 'error', () => `handshake failed: ${err.message}`);
        t.destroy();
      });
      server = s;
    } else server = http.createServer(onRequest);
    server.on('clientError', (_err, socket: Duplex) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    });
    server.on('connection', (s: net.Socket) => {
      sockets.add(s);
      s.once('close', () => {
        counters.bytesIn += s.bytesRead;
        counters.bytesOut += s.bytesWritten;
      });
    });
    server.on('upgrade', onUpgrade);
    const port = await listenTcp(server, wantPort, host);
    const hostForUrl = host.includes(':') ? `[${host}]` : host;
    const scheme = tlsSettings ? 'https' : 'http';
    const url = `${scheme}://${hostForUrl}:${port}/`;
    const endpoint = `${tlsSettings ? 'wss' : 'ws'}://${hostForUrl}:${port}${CHAT_WS_PATH}`;
    tracer.emit('chat', 'chat-server', '*', 'listen', () => `chat on ${url} (WebSocket ${endpoint})`);
    let closing: Promise<void> | undefined;
    const door: ChatDoor = {
      proto: tlsSettings ? 'chat-tls' : 'chat',
      host,
      port,
      url,
      endpoint,
      paths: [CHAT_WS_PATH],
      close() {
        doors.delete(door);
        closing ??= closeTcpServer(server, sockets);
        return closing;
      },
    };
    doors.add(door);
    return door;
  };

  let first: ChatDoor;
  try {
    first = await openDoor(o.host, o.port, o.tls);
  } catch (err) {
    await core.close();
    await session.close();
    if (ownBroker) await broker.close();
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    proto: first.proto,
    host: o.host,
    port: first.port,
    url: first.url,
    endpoint: first.endpoint,
    paths: [CHAT_WS_PATH],
    broker,
    addDoor(d) {
      if (closing) return Promise.reject(new Error('the chat server is closing'));
      return openDoor(d.host ?? o.host, d.port ?? 0, checkTls(d.tls));
    },
    get clients() {
      return wss.clients.size + fallbacks.open;
    },
    get cluster() {
      return cluster ? { node: cluster.node, nodes: cluster.nodes } : undefined;
    },
    get stats() {
      return { ...core.stats, errors: { ...core.stats.errors }, ...counters, closeCodes: { ...counters.closeCodes }, dm: { ...core.dm.stats } };
    },
    close() {
      closing ??= (async () => {
        heartbeat.stop();
        await core.close();
        fallbacks.close();
        for (const ws of wss.clients) ws.terminate();
        await Promise.all([...doors].map((d) => d.close()));
        await session.close();
        if (ownBroker) await broker.close();
      })();
      return closing;
    },
  };
}
