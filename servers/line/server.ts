import net from 'node:net';
import tls from 'node:tls';
import { checkBoolean, checkInt, checkPort } from '../../core/options.ts';
import { checkConnectionLimits, listenTcp, refuseConnection, type SocketSet, type ConnectionLimitName, type ConnectionLimits } from '../../core/server.ts';
import { attachKeylog } from '../../core/tls/index.ts';
import type { Tracer } from '../../core/trace/index.ts';

/** The options the mail line servers (IMAP, POP3) share, under the names they have today. */
export interface LineServerLimits extends ConnectionLimits {
  port: number;
  maxLineLength: number;
  maxUnknownCommands: number;
  maxPipelinedCommands: number;
  idleTimeoutMs: number;
  authFailureDelayMs: number;
  maxAuthFailures: number;
  allowInsecureAuth: boolean;
}

/**
 * Checks the options IMAP and POP3 share (a TypeError naming a bad one). Only maxLineLength's range differs: a server
 * passes its own.
 */
export function checkLineServerOptions(o: LineServerLimits, maxLineLength: { min: number; max: number }): void {
  checkPort('port', o.port);
  checkInt('maxLineLength', o.maxLineLength, maxLineLength.min, maxLineLength.max);
  checkInt('maxUnknownCommands', o.maxUnknownCommands, 1, 10_000);
  checkInt('maxPipelinedCommands', o.maxPipelinedCommands, 1, 100_000);
  checkInt('idleTimeoutMs', o.idleTimeoutMs, 1, 24 * 3600_000);
  checkInt('authFailureDelayMs', o.authFailureDelayMs, 0, 60_000);
  checkInt('maxAuthFailures', o.maxAuthFailures, 1, 1000);
  checkConnectionLimits(o, 100_000);
  checkBoolean('allowInsecureAuth', o.allowInsecureAuth);
}

export interface LineListenerOptions {
  host: string;
  port: number;
  /** Implicit TLS from the first byte (these options), or plain text (undefined). */
  implicitTls?: { options: tls.TlsOptions; keylog?: boolean; keylogFile?: string };
  limits: ConnectionLimits;
  /** Where the connections are kept and their slots counted (the caller's, so sessions can release their slot). */
  sockets: SocketSet;
  tracer: Tracer;
  /** Trace proto and connection id of the listener's own events (listen, TLS handshake failures). */
  proto: string;
  serverCid: string;
  /** A connection past a limit: trace it and give the protocol's answer (e.g. with `refuseConnection`). */
  refuse(socket: net.Socket, limit: ConnectionLimitName): void;
  /** A connection within the limits (after the handshake with implicit TLS). */
  accept(socket: net.Socket): void;
}

export interface LineListener {
  server: net.Server;
  port: number;
}

/**
 * Listens for a line protocol: every connection takes a slot in a SocketSet when TCP connects, and is accepted or
 * refused by the limits. With implicit TLS the refusal is answered once the handshake is done, in TLS (an answer in
 * clear would be noise to a client in the middle of its handshake).
 */
export async function listenLineServer(o: LineListenerOptions): Promise<LineListener> {
  const { sockets } = o;
  let server: net.Server;
  if (o.implicitTls) {
    const ts = tls.createServer(o.implicitTls.options);
    if (o.implicitTls.keylog) attachKeylog(ts, o.implicitTls.keylogFile);
    ts.on('connection', (raw: net.Socket) => void sockets.admit(raw, o.limits));
    ts.on('secureConnection', (s: tls.TLSSocket) => {
      const over = sockets.refusal(s);
      if (over) o.refuse(s, over);
      else o.accept(s);
    });
    ts.on('tlsClientError', (err) => o.tracer.emit(o.proto, o.serverCid, '*', 'error', () => `TLS handshake failed: ${err.message}`));
    server = ts;
  } else {
    server = net.createServer((s) => {
      const over = sockets.admit(s, o.limits);
      if (over) o.refuse(s, over);
      else o.accept(s);
    });
  }
  const port = await listenTcp(server, o.port, o.host);
  return { server, port };
}

/** Traces a refused connection ('refused', with the limit and the peer in meta) and answers it. */
export function refuseTraced(tracer: Tracer, proto: string, cid: string, socket: net.Socket, limit: ConnectionLimitName, value: number, answer: string, shown: string): void {
  tracer.emit(proto, cid, '*', 'refused', () => ({ summary: `${limit}=${value} reached for ${socket.remoteAddress}: ${shown}`, meta: { limit, peer: socket.remoteAddress } }));
  refuseConnection(socket, answer);
}
