import net from 'node:net';
import tls from 'node:tls';
import { WirelabError } from '../../core/errors.ts';
import { createDecoder, encodeFrame, FRAMINGS, FRAMING_DEFAULTS, type Framing } from '../../core/framing.ts';
import { checkInt, checkOneOf, checkPort, rejectRenamed, withDefaults } from '../../core/options.ts';
import { checkConnectionLimits, closeTcpServer, DEFAULT_HOST, listenTcp, SocketSet, type ConnectionLimitName, type RunningServer } from '../../core/server.ts';
import { attachKeylog, tlsServerOptions, traceTlsHandshake, type TlsSettings } from '../../core/tls/index.ts';
import { NOOP_TRACER, nextCid, preview, socketEnds, type Tracer } from '../../core/trace/index.ts';
import { describeEnd, type EndReason } from '../../protocols/tcp.ts';

export type TcpMode = 'echo' | 'discard' | 'chargen';
export const TCP_MODES: readonly TcpMode[] = ['echo', 'discard', 'chargen'];

export interface TcpServerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** echo (RFC 862), discard (RFC 863) or chargen (RFC 864: an endless stream of text lines). Default 'echo'. */
  mode?: TcpMode;
  /** How reads are cut into messages: raw, line or length (4-byte big-endian prefix). Default 'raw'. */
  framing?: Framing;
  /** Longest line in line framing; past it the client gets `ERR line too long` and is disconnected. Default 8192. */
  maxLineLength?: number;
  /** Largest frame in length framing; past it the client gets an error frame and is disconnected. Default 1 MiB. */
  maxFrameLength?: number;
  /** Connections open at once; more are refused (closed at once). Default 1024. */
  maxConnections?: number;
  /**
   * Connections open at once from one client address; more from it are refused (closed at once), so one address cannot
   * take every slot. Default 256.
   */
  maxConnectionsPerAddress?: number;
  /** A connection silent this long is closed by the server. Default 120,000 ms. */
  idleTimeoutMs?: number;
  /** Serve TLS with the local certificate (core/tls). Default off. */
  tls?: TlsSettings | boolean;
  tracer?: Tracer;
}

type ResolvedOptions = Required<Omit<TcpServerOptions, 'tls' | 'tracer'>>;

export const TCP_SERVER_DEFAULTS: ResolvedOptions = Object.freeze({
  host: DEFAULT_HOST,
  port: 0,
  mode: 'echo',
  framing: 'raw',
  maxLineLength: FRAMING_DEFAULTS.maxLineLength,
  maxFrameLength: FRAMING_DEFAULTS.maxFrameLength,
  maxConnections: 1024,
  maxConnectionsPerAddress: 256,
  idleTimeoutMs: 120_000,
});

export interface TcpServerStats {
  connections: number;
  refused: number;
  bytesIn: number;
  bytesOut: number;
}

export interface RunningTcpServer extends RunningServer {
  readonly stats: TcpServerStats;
}


/** RFC 864's rotating 72-character lines of the 95 printable ASCII characters. */
export function chargenLine(n: number): Buffer {
  const line = Buffer.alloc(74);
  for (let i = 0; i < 72; i++) line[i] = 0x20 + ((n + i) % 95);
  line[72] = 0x0d;
  line[73] = 0x0a;
  return line;
}

export async function startTcpServer(options: TcpServerOptions = {}): Promise<RunningTcpServer> {
  rejectRenamed(options);
  const o = withDefaults(TCP_SERVER_DEFAULTS, options);
  checkPort('port', o.port);
  checkOneOf('mode', o.mode, TCP_MODES);
  checkOneOf('framing', o.framing, FRAMINGS);
  checkInt('maxLineLength', o.maxLineLength, 1, 64 * 1024 * 1024);
  checkInt('maxFrameLength', o.maxFrameLength, 0, 256 * 1024 * 1024);
  checkConnectionLimits(o);
  checkInt('idleTimeoutMs', o.idleTimeoutMs, 0, 24 * 3600_000);
  const tracer = o.tracer ?? NOOP_TRACER;
  const proto = o.tls ? 'tls' : 'tcp';
  const stats: TcpServerStats = { connections: 0, refused: 0, bytesIn: 0, bytesOut: 0 };
  const sockets = new SocketSet();
  const release = (socket: net.Socket): void => sockets.release(socket);

  /** Refuses a connection past a limit: closed at once (echo has no way to say why), counted and traced. */
  const refuse = (socket: net.Socket, cid: string, limit: ConnectionLimitName): void => {
    stats.refused++;
    tracer.emit(proto, cid, '*', 'refused', () => ({
      summary: `${limit}=${o[limit]} reached for ${socket.remoteAddress}: closed at once`,
      meta: { limit, peer: socket.remoteAddress },
    }));
    socket.on('error', () => undefined);
    socket.destroy();
  };

  const onConnection = (socket: net.Socket): void => {
    const cid = nextCid(proto);
    const over = sockets.admit(socket, o);
    if (over) return refuse(socket, cid, over);
    stats.connections++;
    serveConnection(socket, cid, proto, o, tracer, stats, release);
  };

  let server: net.Server;
  if (o.tls) {
    const settings = o.tls === true ? {} : o.tls;
    const tlsServer = tls.createServer(await tlsServerOptions(settings));
    attachKeylog(tlsServer, settings.keylogFile);
    // Count and trace every TCP connection, then its TLS handshake.
    tlsServer.on('connection', (raw: net.Socket) => {
      const over = sockets.admit(raw, o);
      if (over) refuse(raw, nextCid(proto), over);
    });
    tlsServer.on('secureConnection', (s: tls.TLSSocket) => {
      stats.connections++;
      serveConnection(s, nextCid(proto), proto, o, tracer, stats, release);
    });
    tlsServer.on('tlsClientError', (err, s) => {
      tracer.emit(proto, 'tls', '*', 'error', () => `handshake failed: ${err.message}`);
      s.destroy();
    });
    server = tlsServer;
  } else {
    server = net.createServer({ allowHalfOpen: false }, onConnection);
  }
  const port = await listenTcp(server, o.port, o.host);
  tracer.emit(proto, `${proto}-server`, '*', 'listen', () => `listening on ${o.host}:${port} (${o.mode}, ${o.framing})`);
  return {
    proto,
    host: o.host,
    port,
    stats,
    close: async () => {
      await closeTcpServer(server, sockets);
      tracer.emit(proto, `${proto}-server`, '*', 'closed', () => `stopped listening on ${o.host}:${port}`);
    },
  };
}

function serveConnection(
  socket: net.Socket,
  cid: string,
  proto: string,
  o: ResolvedOptions,
  tracer: Tracer,
  stats: TcpServerStats,
  /** Gives the connection's slot back when this side decides to close it. */
  release: (socket: net.Socket) => void,
): void {
  const openedAt = performance.now();
  const peer = `${socket.remoteAddress}:${socket.remotePort}`;
  tracer.emit(proto, cid, '*', 'accept', () => ({
    summary: `accepted ${peer} → ${socket.localAddress}:${socket.localPort}`,
    meta: { peer, mode: o.mode, framing: o.framing },
    ...socketEnds(socket, 'server'),
  }));
  if (socket instanceof tls.TLSSocket) traceTlsHandshake(tracer, cid, socket, 'server');

  const decoder = createDecoder(o.framing, o);
  let bytesIn = 0;
  let bytesOut = 0;
  let reads = 0;
  let reason: EndReason | undefined;

  const send = (buf: Buffer, cb?: () => void): boolean => {
    bytesOut += buf.length;
    stats.bytesOut += buf.length;
    tracer.emit(proto, cid, '<', 'write', () => ({ summary: `write ${preview(buf)}`, bytes: buf.length, data: buf }));
    return socket.write(buf, cb);
  };

  socket.setTimeout(o.idleTimeoutMs);
  socket.on('timeout', () => {
    reason ??= 'timeout';
    tracer.emit(proto, cid, '*', 'timeout', () => `idle for idleTimeoutMs=${o.idleTimeoutMs}: closing`);
    socket.end();
    socket.destroySoon();
  });

  socket.on('data', (chunk: Buffer) => {
    if (rejected) return;
    reads++;
    bytesIn += chunk.length;
    stats.bytesIn += chunk.length;
    const pendingBefore = decoder.pending;
    let messages: Buffer[];
    try {
      messages = decoder.push(chunk);
    } catch (err) {
      reject(err as WirelabError);
      return;
    }
    tracer.emit(proto, cid, '>', 'read', () => ({
      summary: `read #${reads} ${preview(chunk)}${arrivalNote(o.framing, messages.length, pendingBefore, decoder.pending)}`,
      bytes: chunk.length,
      data: chunk,
      meta: { read: reads, messages: messages.length, pending: decoder.pending },
    }));
    if (o.mode !== 'echo') return;
    for (const m of messages) send(o.framing === 'raw' ? m : encodeFrame(o.framing, m));
  });

  let rejected = false;
  const reject = (err: WirelabError): void => {
    tracer.emit(proto, cid, '*', 'limit', () => ({ summary: err.message, meta: { code: err.code } }));
    // What follows is discarded, but still read: a paused socket never sees the client's FIN and would hold its
    // connection slot until the idle timeout. A client that never closes is cut off a second later.
    rejected = true;
    release(socket);
    setTimeout(() => socket.destroy(), 1000).unref();
    const reply = o.framing === 'line' ? `ERR ${err.message}\n` : encodeFrame('length', `ERR ${err.message}`);
    reason = 'local';
    send(Buffer.from(reply), () => socket.end());
  };

  if (o.mode === 'chargen') {
    let n = 0;
    const pump = (): void => {
      while (!socket.destroyed && socket.writable) {
        bytesOut += 74;
        stats.bytesOut += 74;
        if (!socket.write(chargenLine(n++))) {
          socket.once('drain', pump);
          return;
        }
      }
    };
    tracer.emit(proto, cid, '<', 'chargen', () => 'streaming 74-byte lines until the client closes');
    pump();
  }

  socket.on('end', () => {
    reason ??= 'fin';
  });
  socket.on('error', (err: NodeJS.ErrnoException) => {
    reason ??= err.code === 'ECONNRESET' ? 'rst' : 'error';
    if (reason === 'error') tracer.emit(proto, cid, '*', 'error', () => `${err.code ?? ''} ${err.message}`);
  });
  socket.on('close', () => {
    const how = reason ?? 'local';
    tracer.emit(proto, cid, '*', 'close', () => ({
      summary: `${describeEnd(how, 'client')} after ${Math.round(performance.now() - openedAt)} ms: ${bytesIn} B in (${reads} reads), ${bytesOut} B out`,
      meta: { how, bytesIn, bytesOut, reads },
    }));
  });
}

function arrivalNote(framing: Framing, messages: number, pendingBefore: number, pendingAfter: number): string {
  if (framing === 'raw') return '';
  const notes: string[] = [];
  if (messages > 1) notes.push(`${messages} messages in one read (coalesced)`);
  if (messages > 0 && pendingBefore > 0) notes.push('first message completed a split one');
  if (messages === 0) notes.push(`partial message, ${pendingAfter} B pending (split)`);
  return notes.length > 0 ? ` [${notes.join('; ')}]` : '';
}
