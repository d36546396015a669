/**
 * The native protocol over TCP (or TLS): length-prefixed binary frames, the fast path (payload bytes as they are).
 * A malformed or too-long frame gets an `error` frame, then the connection is closed; a trace event each.
 */
import net from 'node:net';
import tls from 'node:tls';
import { ErrorCodes, PubsubError, WirelabError } from '../../../core/errors.ts';
import { checkPort } from '../../../core/options.ts';
import { closeTcpServer, DEFAULT_HOST, listenTcp, SocketSet, type ConnectionLimitName, type RunningServer } from '../../../core/server.ts';
import { attachKeylog, tlsServerOptions, traceTlsHandshake } from '../../../core/tls/index.ts';
import { NOOP_TRACER, nextCid, socketEnds, tapSocket } from '../../../core/trace/index.ts';
import { COMPACT_VERSION, createFrameDecoder, encodeBinary, encodeCompactPuback, MsgEncoder, parseClientBinary, type ServerMessage } from '../../../protocols/pubsub.ts';
import { errorMessage, newNativeStats, openNativeConnection, type NativeStats } from './connection.ts';
import { checkBroker, checkNativeLimits, type NativeDoorOptions } from './options.ts';
import { helloMask } from './wire-mask.ts';
import { TickWriter } from '../../../core/tick-writer.ts';

export interface RunningPubsubTcpServer extends RunningServer {
  url: string;
  readonly stats: NativeStats & { refused: number };
}

export async function startPubsubTcpServer(options: NativeDoorOptions): Promise<RunningPubsubTcpServer> {
  const broker = checkBroker(options.broker);
  const limits = checkNativeLimits(options.limits);
  const tracer = options.tracer ?? NOOP_TRACER;
  const host = options.host ?? DEFAULT_HOST;
  const port = checkPort('port', options.port ?? 0);
  const scheme = options.tls ? 'tls' : 'tcp';
  const proto = `pubsub-${scheme}`;
  const stats = { ...newNativeStats(), refused: 0 };
  const sockets = new SocketSet();
  // One encoder for the door: a record delivered to many subscribers (fan-out) has its msg body encoded once.
  const msgEncoder = new MsgEncoder();
  /** Version 2 connections get `msg` and `puback` as compact frames (protocols/pubsub/compact.ts). */
  const encodeFor = (compact: boolean, m: ServerMessage): Buffer => {
    if (compact) {
      if (m.type === 'msg') return msgEncoder.encode(m);
      if (m.type === 'puback') return encodeCompactPuback(m);
    }
    return encodeBinary(m);
  };

  const refuse = (socket: net.Socket, limit: ConnectionLimitName): void => {
    stats.refused++;
    tracer.emit('pubsub', nextCid(proto), '*', 'refused', () => ({ summary: `${limit}=${limits[limit]} reached for ${socket.remoteAddress}`, meta: { limit } }));
    socket.on('error', () => undefined);
    // An error frame says why, then the connection ends (the client reads WL_ERR_PUBSUB_LIMIT naming the limit).
    socket.end(encodeBinary(errorMessage(new PubsubError(ErrorCodes.PUBSUB_LIMIT, `${limit}=${limits[limit]} reached`, { limit }))));
    setTimeout(() => socket.destroy(), 1000).unref();
  };

  const serve = (socket: net.Socket): void => {
    const cid = nextCid(proto);
    if (socket instanceof tls.TLSSocket) traceTlsHandshake(tracer, cid, socket, 'server');
    tracer.emit('pubsub', cid, '*', 'accept', () => ({ summary: `accepted ${socket.remoteAddress}:${socket.remotePort}`, ...socketEnds(socket, 'server') }));
    // The frames on the wire for the pcapng export (TLS: the plaintext), the hello's password and token masked.
    tapSocket(tracer, 'pubsub', cid, socket, 'server', helloMask());
    socket.setNoDelay(true);
    const decoder = createFrameDecoder(limits.maxFrameBytes);
    let ended = false;
    let compact = false;
    /** Whether a send said "congested" (a drain is owed). */
    let owesDrain = false;
    const writer = new TickWriter(socket, (ok) => {
      // Congestion was reported but the socket took it all: no 'drain' will come, so the subscribers resume now.
      if (ok && owesDrain) {
        owesDrain = false;
        process.nextTick(() => conn.drained());
      }
    });
    const conn = openNativeConnection(
      {
        broker,
        door: 'tcp',
        peer: `${socket.remoteAddress}:${socket.remotePort}`,
        tls: socket instanceof tls.TLSSocket,
        cid,
        tracer,
        limits,
        transport: {
          send: (m) => {
            if (!socket.writable) return true;
            if (m.type === 'welcome') compact = m.version >= COMPACT_VERSION;
            // Frames sent in one turn of the event loop (a fan-out burst, the pubacks of a group commit) leave in one
            // write() at the next tick: one stream write and one syscall for all of them.
            if (writer.push(encodeFor(compact, m))) return true;
            owesDrain = true;
            return false;
          },
          end() {
            ended = true;
            writer.flush();
            sockets.release(socket);
            socket.end();
            setTimeout(() => socket.destroy(), 1000).unref();
          },
          pauseReading: () => socket.pause(),
          resumeReading: () => socket.resume(),
        },
      },
      stats,
    );
    socket.on('drain', () => {
      owesDrain = false;
      conn.drained();
    });
    socket.on('error', (err: Error) => tracer.emit('pubsub', cid, '*', 'error', () => `socket: ${err.message}`));
    socket.on('close', () => conn.closed());
    socket.on('data', (chunk: Buffer) => {
      if (ended) return;
      let frames: Buffer[];
      try {
        frames = decoder.push(chunk);
      } catch (err) {
        // The decoder's only refusal: a length past maxFrameBytes (WL_ERR_FRAME_TOO_LONG). The connection answers and closes.
        const message = err instanceof Error ? err.message : String(err);
        tracer.emit('pubsub', cid, '>', 'frame-too-long', () => ({ summary: message, meta: { door: 'tcp', code: err instanceof WirelabError ? err.code : undefined } }));
        conn.frame({ ok: false, problem: `${message} (limit maxFrameBytes=${limits.maxFrameBytes})` });
        return;
      }
      for (const f of frames) {
        if (ended) return;
        conn.frame(parseClientBinary(f));
      }
    });
  };

  let server: net.Server;
  if (options.tls) {
    const settings = options.tls === true ? {} : options.tls;
    const tlsServer = tls.createServer(await tlsServerOptions(settings));
    attachKeylog(tlsServer, settings.keylogFile);
    tlsServer.on('connection', (raw: net.Socket) => {
      const over = sockets.admit(raw, limits);
      if (over) refuse(raw, over);
    });
    tlsServer.on('secureConnection', (s: tls.TLSSocket) => serve(s));
    tlsServer.on('tlsClientError', (err, s) => {
      tracer.emit('pubsub', `${proto}-server`, '*', 'error', () => `TLS handshake failed: ${err.message}`);
      s.destroy();
    });
    server = tlsServer;
  } else {
    server = net.createServer((socket) => {
      const over = sockets.admit(socket, limits);
      if (over) return refuse(socket, over);
      serve(socket);
    });
  }
  const bound = await listenTcp(server, port, host);
  const hostForUrl = host.includes(':') ? `[${host}]` : host;
  const url = `${scheme}://${hostForUrl}:${bound}`;
  tracer.emit('pubsub', `${proto}-server`, '*', 'listen', () => `native pub/sub listening on ${url}`);
  return {
    proto,
    host,
    port: bound,
    url,
    stats,
    wireMask: helloMask,
    close: async () => {
      await closeTcpServer(server, sockets);
      tracer.emit('pubsub', `${proto}-server`, '*', 'closed', () => `stopped listening on ${url}`);
    },
  };
}
