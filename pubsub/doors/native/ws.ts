/**
 * The native protocol over WebSocket: JSON text frames (what the browser and the chat app use), or binary frames in
 * the TCP encoding without its length prefix. Built on servers/ws (handshake, limits, frame tracing, heartbeat, close
 * 1002 / 1009 for frames ws refuses): this file only adds the pub/sub endpoints, /pubsub and /.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { RawData, WebSocket } from 'ws';
import { checkPort } from '../../../core/options.ts';
import type { RunningServer } from '../../../core/server.ts';
import { NOOP_TRACER } from '../../../core/trace/index.ts';
import { encodeBinaryBody, encodeJson, parseClientBinary, parseClientJson } from '../../../protocols/pubsub.ts';
import { startWsServer, type RunningWsServer } from '../../../servers/ws/index.ts';
import { newNativeStats, openNativeConnection, type NativeStats } from './connection.ts';
import { checkBroker, checkNativeLimits, type NativeDoorOptions } from './options.ts';

export const PUBSUB_WS_PATH = '/pubsub';

export interface RunningPubsubWsServer extends RunningServer {
  url: string;
  /** The URL clients connect to: `ws://host:port/pubsub`. */
  endpoint: string;
  readonly stats: NativeStats & { closeCodes: Record<number, number> };
  readonly ws: RunningWsServer;
}

function bytesOf(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
}

export async function startPubsubWsServer(options: NativeDoorOptions): Promise<RunningPubsubWsServer> {
  const broker = checkBroker(options.broker);
  const limits = checkNativeLimits(options.limits);
  const tracer = options.tracer ?? NOOP_TRACER;
  const port = checkPort('port', options.port ?? 0);
  const stats = newNativeStats();
  const tlsOn = Boolean(options.tls);

  const accept = (ws: WebSocket, cid: string, req: IncomingMessage): void => {
    const socket = req.socket as Socket;
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    // Answers go in the encoding the client speaks: binary once it sends a binary frame, JSON text otherwise.
    let binary = false;
    const conn = openNativeConnection(
      {
        broker,
        door: 'ws',
        peer,
        tls: tlsOn,
        cid,
        tracer,
        limits,
        transport: {
          send(m) {
            if (ws.readyState !== ws.OPEN) return true;
            ws.send(binary ? encodeBinaryBody(m) : encodeJson(m));
            return ws.bufferedAmount < socket.writableHighWaterMark;
          },
          end(violation, reason) {
            if (ws.readyState === ws.OPEN) ws.close(violation ? 1002 : 1000, Buffer.from(reason).subarray(0, 120).toString());
          },
          pauseReading: () => ws.pause(),
          resumeReading: () => ws.resume(),
        },
      },
      stats,
    );
    socket.on('drain', () => conn.drained());
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const bytes = bytesOf(data);
      if (isBinary) binary = true;
      conn.frame(isBinary ? parseClientBinary(bytes) : parseClientJson(bytes.toString('utf8')));
    });
    ws.on('close', () => conn.closed());
  };

  const ws = await startWsServer({
    ...(options.host !== undefined ? { host: options.host } : {}),
    port,
    ...(options.tls !== undefined ? { tls: options.tls } : {}),
    maxPayload: limits.maxFrameBytes,
    maxConnections: limits.maxConnections,
    builtinRoutes: false,
    paths: { [PUBSUB_WS_PATH]: accept, '/': accept },
    tracer,
  });
  return {
    proto: tlsOn ? 'pubsub-websocket-tls' : 'pubsub-websocket',
    host: ws.host,
    port: ws.port,
    url: ws.url,
    endpoint: `${ws.url}${PUBSUB_WS_PATH}`,
    paths: [PUBSUB_WS_PATH, '/'],
    ws,
    get stats() {
      return { ...stats, closeCodes: ws.stats.closeCodes };
    },
    close: () => ws.close(),
  };
}
