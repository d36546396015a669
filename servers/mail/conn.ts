import net from 'node:net';
import tls from 'node:tls';
import { attachKeylog, traceTlsHandshake, type TlsSettings } from '../../core/tls/index.ts';
import type { Tracer } from '../../core/trace/index.ts';

/** What the IMAP and POP3 servers need to serve TLS: a context for STARTTLS / STLS and options for implicit TLS. */
export interface ServerTls {
  context: tls.SecureContext;
  options: tls.TlsOptions;
  settings: TlsSettings;
}

/**
 * Turns a plain connection into TLS in place (STARTTLS, STLS). The caller has already stopped reading the plain
 * socket and dropped anything it had buffered, so no plaintext sent after the command is ever taken as a command.
 */
export function upgradeServerSocket(socket: net.Socket, t: ServerTls, tracer: Tracer, cid: string): tls.TLSSocket {
  const secure = new tls.TLSSocket(socket, { isServer: true, secureContext: t.context });
  // A failed handshake (garbage after STARTTLS) is an 'error' on this new socket, before any session code listens.
  secure.on('error', (err) => tracer.emit('tls', cid, '*', 'error', () => `handshake failed: ${err.message}`));
  attachKeylog(secure, t.settings.keylogFile);
  traceTlsHandshake(tracer, cid, secure, 'server');
  return secure;
}

/** Counters every mail server keeps, so a lab can compare what reading mail costs over POP3 and over IMAP. */
export interface MailServerStats {
  connections: number;
  commands: number;
  bytesIn: number;
  bytesOut: number;
}

export function newStats(): MailServerStats {
  return { connections: 0, commands: 0, bytesIn: 0, bytesOut: 0 };
}

/**
 * Waits while the client is not reading what was already sent (the socket's buffer is over its high-water mark), so a
 * client that pipelines FETCH after FETCH without reading cannot make the server buffer without limit.
 */
export function waitWritable(socket: net.Socket): Promise<void> {
  if (!socket.writableNeedDrain || socket.destroyed) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = (): void => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}
