/**
 * The MQTT door: MQTT 3.1.1 and 5 over TCP, TLS and WebSocket onto the broker (pubsub/broker/types.ts), with the
 * `mqtt-packet` codec. `startMqttServer` starts one listener; several on the same broker (mqtt, mqtts, ws) share
 * sessions and retained messages. README "### MQTT" has the mapping table and what each ack means.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { createWebSocketStream, WebSocketServer, type WebSocket } from 'ws';
import { InvalidOptionError, checkPort } from '../../../core/options.ts';
import { closeTcpServer, DEFAULT_HOST, listenTcp, SocketSet, type RunningServer } from '../../../core/server.ts';
import { attachKeylog, tlsServerOptions } from '../../../core/tls/index.ts';
import { NOOP_TRACER, nextCid, socketEnds, tapSocket, type Tracer } from '../../../core/trace/index.ts';
import { mqttConnectMask } from './wire-mask.ts';
import { MqttConnection } from './connection.ts';
import { doorFor, releaseDoor, type MqttDoor } from './door.ts';
import { checkWsPath, MQTT_WS_DEFAULT_PATH, resolveLimits, type MqttServerOptions } from './options.ts';

export { MQTT_LIMITS_DEFAULTS, MQTT_WS_DEFAULT_PATH, type MqttLimits, type MqttServerOptions } from './options.ts';
export { filterToPatterns, subjectToTopic, topicToSubject } from './topics.ts';
export { RC as MQTT_REASON_CODES } from './reasons.ts';

export interface RunningMqttServer extends RunningServer {
  /** The door's counters (shared by every listener on the broker). */
  readonly stats: MqttDoor['stats'];
  /** The door itself, for tests: live connections by client id, stored sessions, retained messages. */
  readonly door: MqttDoor;
}

export async function startMqttServer(options: MqttServerOptions): Promise<RunningMqttServer> {
  if (!options || typeof options.broker !== 'object' || options.broker === null) throw new InvalidOptionError('broker', 'a Broker', options?.broker);
  const host = options.host ?? DEFAULT_HOST;
  const port = checkPort('port', options.port ?? 0);
  const limits = resolveLimits(options.limits);
  const wsPath = options.ws ? checkWsPath(options.ws.path ?? MQTT_WS_DEFAULT_PATH) : undefined;
  const tracer: Tracer = options.tracer ?? NOOP_TRACER;
  const tlsSettings = options.tls === true ? {} : options.tls || undefined;
  const proto = wsPath ? (tlsSettings ? 'mqtt-websockets' : 'mqtt-websocket') : tlsSettings ? 'mqtts' : 'mqtt';
  const door = await doorFor(options.broker, limits);
  const sockets = new SocketSet();
  const connections = new Set<MqttConnection>();

  const serve = (stream: Duplex, raw: net.Socket, secure: boolean): void => {
    const cid = nextCid('mqtt');
    // A broker's small packets must not wait for Nagle's algorithm (up to 40 ms with delayed ACKs): writes of one
    // turn of the event loop are batched already.
    raw.setNoDelay(true);
    // The bytes on the wire (pcapng; TLS: the plaintext), the CONNECT password masked. Not over WebSocket: the
    // upgrade request was read before this point, so the exported stream would start in the middle.
    if (stream instanceof net.Socket) tapSocket(tracer, 'mqtt', cid, stream, 'server', mqttConnectMask());
    const conn = new MqttConnection(door, stream, {
      cid,
      peer: `${raw.remoteAddress ?? '?'}:${raw.remotePort ?? 0}`,
      tls: secure,
      tracer,
      ends: () => socketEnds(raw, 'server'),
      onClose: () => {
        connections.delete(conn);
        sockets.release(raw);
      },
    });
    connections.add(conn);
  };

  /** Past maxConnections: closed at once (MQTT has no answer before CONNECT), counted and traced. */
  const admitted = (raw: net.Socket): boolean => {
    const over = sockets.admit(raw, limits);
    if (!over) return true;
    door.stats.refused++;
    tracer.emit('mqtt', nextCid('mqtt'), '*', 'refused', () => ({ summary: `${over}=${limits[over]} reached: closed at once`, meta: { limit: over } }));
    raw.destroy();
    return false;
  };

  let server: net.Server;
  if (wsPath) {
    const wss = new WebSocketServer({
      noServer: true,
      maxPayload: limits.maxPacketBytes,
      perMessageDeflate: false,
      handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : protocols.has('mqttv3.1') ? 'mqttv3.1' : false),
    });
    wss.on('error', (err: Error) => tracer.emit('mqtt', `${proto}-server`, '*', 'error', () => `ws: ${err.message}`));
    const onRequest = (_req: http.IncomingMessage, res: http.ServerResponse): void => {
      res.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket' }).end(`MQTT over WebSocket: connect to ${wsPath} with subprotocol mqtt\n`);
    };
    const httpServer = tlsSettings ? https.createServer(await tlsServerOptions(tlsSettings), onRequest) : http.createServer(onRequest);
    // A request the HTTP parser refuses gets HTTP's own answer (400, or 431 for oversized headers) and a trace event.
    httpServer.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
      tracer.emit('mqtt', `${proto}-server`, '*', 'bad-request', () => ({ summary: `HTTP ${status}: ${err.code ?? err.message}`, meta: { code: err.code } }));
      if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      else socket.destroy();
    });
    httpServer.on('connection', (raw: net.Socket) => sockets.add(raw));
    httpServer.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      socket.on('error', () => socket.destroy());
      if (new URL(req.url ?? '/', 'http://x').pathname !== wsPath) {
        socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
        return;
      }
      if (!admitted(socket)) return;
      wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
        ws.on('error', (err: Error) => tracer.emit('mqtt', 'ws', '*', 'error', () => `ws: ${err.message}`));
        const stream = createWebSocketStream(ws);
        stream.on('error', () => stream.destroy());
        serve(stream, socket, Boolean(tlsSettings));
      });
    });
    if (tlsSettings) attachKeylog(httpServer, tlsSettings.keylogFile);
    server = httpServer;
  } else if (tlsSettings) {
    const tlsServer = tls.createServer(await tlsServerOptions(tlsSettings));
    attachKeylog(tlsServer, tlsSettings.keylogFile);
    tlsServer.on('connection', (raw: net.Socket) => void admitted(raw));
    tlsServer.on('secureConnection', (s: tls.TLSSocket) => serve(s, s, true));
    tlsServer.on('tlsClientError', (err, s) => {
      tracer.emit('mqtt', 'tls', '*', 'error', () => `handshake failed: ${err.message}`);
      s.destroy();
    });
    server = tlsServer;
  } else {
    server = net.createServer((raw) => {
      if (admitted(raw)) serve(raw, raw, false);
    });
  }
  let bound: number;
  try {
    bound = await listenTcp(server, port, host);
  } catch (err) {
    await releaseDoor(door);
    throw err;
  }
  tracer.emit('mqtt', `${proto}-server`, '*', 'listen', () => `listening on ${host}:${bound}${wsPath ? ` path ${wsPath}` : ''}`);
  const scheme = wsPath ? (tlsSettings ? 'wss' : 'ws') : tlsSettings ? 'mqtts' : 'mqtt';
  return {
    proto,
    host,
    port: bound,
    url: `${scheme}://${host}:${bound}${wsPath ?? ''}`,
    ...(wsPath ? { paths: [wsPath] } : {}),
    stats: door.stats,
    door,
    wireMask: mqttConnectMask,
    close: async () => {
      await Promise.all([...connections].map((c) => c.end('server closing', true)));
      await closeTcpServer(server, sockets);
      await releaseDoor(door);
      tracer.emit('mqtt', `${proto}-server`, '*', 'closed', () => `stopped listening on ${host}:${bound}`);
    },
  };
}
