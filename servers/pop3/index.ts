import { createHash } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { createDecoder, type Decoder } from '../../core/framing.ts';
import { checkBoolean, checkInt, checkPort } from '../../core/options.ts';
import { checkConnectionLimits, closeTcpServer, DEFAULT_HOST, listenTcp, refuseConnection, SocketSet, type ConnectionLimitName, type RunningServer } from '../../core/server.ts';
import { tlsServerOptions, traceTlsHandshake, type TlsSettings } from '../../core/tls/index.ts';
import { NOOP_TRACER, nextCid, redactLine, type Tracer } from '../../core/trace/index.ts';
import { newStats, upgradeServerSocket, waitWritable, type MailServerStats, type ServerTls } from '../mail/conn.ts';
import { sleep } from '../../core/time.ts';
import { authFailureDelay, defaultMailStore } from '../mail/shared.ts';
import type { MailStore } from '../mail/store/index.ts';
import { Pop3Session } from './session.ts';

export interface Pop3ServerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** The maildrop is each user's INBOX in this store. Default: the shared store under the data dir. */
  store?: MailStore;
  /** Implicit TLS from the first byte (POP3S, port 995) instead of plain text with STLS. Default false. */
  secure?: boolean;
  tls?: TlsSettings;
  /** Longest command line; past it the client gets -ERR and is disconnected. Default 1024 (RFC 2449 allows 255). */
  maxLineLength?: number;
  /** Unknown or malformed commands tolerated per connection; past it -ERR and disconnect. Default 10. */
  maxUnknownCommands?: number;
  /** Commands read ahead of the one running (PIPELINING); past it the server stops reading until they are done. Default 100. */
  maxPipelinedCommands?: number;
  /** Inactivity autologout (RFC 1939 asks for at least 10 minutes). Default 600,000 ms. */
  idleTimeoutMs?: number;
  /** Pause after each wrong password, times the failures so far (capped at 8×). Default 250 ms. */
  authFailureDelayMs?: number;
  /** Wrong passwords per connection before the server hangs up. Default 5. */
  maxAuthFailures?: number;
  /** Connections open at once; more get `-ERR [SYS/TEMP]` and are closed. Default 100. */
  maxConnections?: number;
  /**
   * Accept USER / PASS and AUTH PLAIN on a connection that is not TLS (before STLS), so the password crosses the wire
   * in clear: only for the lab that shows it. Default false: CAPA offers neither before STLS, and USER and AUTH get
   * `-ERR [AUTH]` before any password is sent (APOP, which sends only a digest, stays allowed).
   */
  allowInsecureAuth?: boolean;
  /** Connections open at once from one client address; more from it get `-ERR [SYS/TEMP]` and are closed. Default 32. */
  maxConnectionsPerAddress?: number;
  tracer?: Tracer;
}

export interface RunningPop3Server extends RunningServer {
  readonly store: MailStore;
  readonly stats: MailServerStats;
}

const DEFAULTS = {
  host: DEFAULT_HOST,
  port: 0,
  secure: false,
  maxLineLength: 1024,
  maxUnknownCommands: 10,
  maxPipelinedCommands: 100,
  idleTimeoutMs: 600_000,
  authFailureDelayMs: 250,
  maxAuthFailures: 5,
  maxConnections: 100,
  allowInsecureAuth: false,
  maxConnectionsPerAddress: 32,
};
export type Pop3Resolved = typeof DEFAULTS & {
  store: MailStore;
  tracer: Tracer;
  tls: ServerTls;
  proto: string;
  /** Gives the connection's slot back (maxConnections, maxConnectionsPerAddress) once the server ends it. */
  release(socket: net.Socket): void;
};

/** A POP3 server (RFC 1939, CAPA RFC 2449, STLS RFC 2595, AUTH PLAIN RFC 5034) over the mail store. */
export async function startPop3Server(options: Pop3ServerOptions = {}): Promise<RunningPop3Server> {
  const merged = { ...DEFAULTS, ...options };
  checkPort('port', merged.port);
  checkInt('maxLineLength', merged.maxLineLength, 64, 1024 * 1024);
  checkInt('maxUnknownCommands', merged.maxUnknownCommands, 1, 10_000);
  checkInt('maxPipelinedCommands', merged.maxPipelinedCommands, 1, 100_000);
  checkInt('idleTimeoutMs', merged.idleTimeoutMs, 1, 24 * 3600_000);
  checkInt('authFailureDelayMs', merged.authFailureDelayMs, 0, 60_000);
  checkInt('maxAuthFailures', merged.maxAuthFailures, 1, 1000);
  checkConnectionLimits(merged, 100_000);
  checkBoolean('allowInsecureAuth', merged.allowInsecureAuth);
  const settings = options.tls ?? {};
  const tlsOptions = await tlsServerOptions(settings);
  const o: Pop3Resolved = {
    ...merged,
    store: options.store ?? (await defaultMailStore()),
    tracer: options.tracer ?? NOOP_TRACER,
    tls: { context: tls.createSecureContext(tlsOptions), options: tlsOptions, settings },
    proto: merged.secure ? 'pop3s' : 'pop3',
    release: () => undefined,
  };
  const stats = newStats();
  const sockets = new SocketSet();
  const sessions = new Set<Pop3Connection>();

  o.release = (socket) => sockets.release(socket);
  const refuse = (socket: net.Socket, limit: ConnectionLimitName): void => {
    const cid = nextCid(o.proto);
    o.tracer.emit(o.proto, cid, '*', 'refused', () => ({ summary: `${limit}=${o[limit]} reached for ${socket.remoteAddress}: -ERR`, meta: { limit, peer: socket.remoteAddress } }));
    // RFC 2449 / 3206: SYS/TEMP, a temporary condition of the server, worth trying again later.
    refuseConnection(socket, limit === 'maxConnections' ? '-ERR [SYS/TEMP] too many connections\r\n' : '-ERR [SYS/TEMP] too many connections from your address\r\n');
  };
  const accept = (socket: net.Socket, over: ConnectionLimitName | null): void => {
    if (over) return refuse(socket, over);
    const cid = nextCid(o.proto);
    stats.connections++;
    const c = new Pop3Connection(socket, cid, o, stats);
    sessions.add(c);
    socket.once('close', () => sessions.delete(c));
  };
  let server: net.Server;
  if (o.secure) {
    const ts = tls.createServer(o.tls.options);
    // The slot is taken when TCP connects; a refusal is answered in TLS once the handshake is done.
    ts.on('connection', (raw: net.Socket) => void sockets.admit(raw, o));
    ts.on('secureConnection', (s: tls.TLSSocket) => accept(s, sockets.refusal(s)));
    ts.on('tlsClientError', (err) => o.tracer.emit(o.proto, `${o.proto}-server`, '*', 'error', () => `TLS handshake failed: ${err.message}`));
    server = ts;
  } else {
    server = net.createServer((s) => accept(s, sockets.admit(s, o)));
  }
  const port = await listenTcp(server, o.port, o.host);
  o.tracer.emit(o.proto, `${o.proto}-server`, '*', 'listen', () => `listening on ${o.host}:${port}`);
  return {
    proto: o.proto,
    host: o.host,
    port,
    url: `${o.proto}://${o.host}:${port}`,
    store: o.store,
    stats,
    close: async () => {
      for (const s of sessions) s.release();
      await closeTcpServer(server, sockets);
    },
  };
}

/** One client connection: line reading, TLS upgrade, the state machine lives in Pop3Session. */
class Pop3Connection {
  #socket: net.Socket;
  #decoder: Decoder;
  readonly #queue: string[] = [];
  #busy = false;
  #closed = false;
  readonly #session: Pop3Session;
  readonly timestamp: string;

  constructor(
    socket: net.Socket,
    readonly cid: string,
    readonly o: Pop3Resolved,
    readonly stats: MailServerStats,
  ) {
    this.#socket = socket;
    this.#decoder = createDecoder('line', { maxLineLength: o.maxLineLength });
    this.timestamp = `<${process.pid}.${Date.now()}.${cid.replace(/\W/g, '')}@wirelab.test>`;
    this.#session = new Pop3Session(this);
    o.tracer.emit(o.proto, cid, '*', 'accept', () => `accepted ${socket.remoteAddress}:${socket.remotePort}`);
    if (socket instanceof tls.TLSSocket) traceTlsHandshake(o.tracer, cid, socket, 'server');
    this.#attach(socket);
    this.send(`+OK wirelab POP3 ready ${this.timestamp}`);
  }

  get secure(): boolean {
    return this.#socket instanceof tls.TLSSocket;
  }

  /** True while a password would cross the wire in clear and the server does not allow that. */
  get plaintextAuthDisabled(): boolean {
    return !this.secure && !this.o.allowInsecureAuth;
  }

  #attach(socket: net.Socket): void {
    socket.setNoDelay(true);
    socket.setTimeout(this.o.idleTimeoutMs);
    socket.on('timeout', () => {
      this.o.tracer.emit(this.o.proto, this.cid, '*', 'timeout', () => `idle for idleTimeoutMs=${this.o.idleTimeoutMs}: autologout`);
      this.end('-ERR [SYS/TEMP] autologout: idle too long');
    });
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (this.#socket !== socket) return;
      this.#closed = true;
      this.release();
      this.o.tracer.emit(this.o.proto, this.cid, '*', 'close', () => 'connection closed');
    });
  }

  #onData(chunk: Buffer): void {
    this.stats.bytesIn += chunk.length;
    if (this.#closed) return;
    let lines: Buffer[];
    try {
      lines = this.#decoder.push(chunk);
    } catch (err) {
      this.o.tracer.emit(this.o.proto, this.cid, '*', 'limit', () => (err as Error).message);
      this.end(`-ERR line too long (maxLineLength=${this.o.maxLineLength})`);
      return;
    }
    for (const l of lines) this.#queue.push(l.toString('latin1'));
    if (this.#queue.length >= this.o.maxPipelinedCommands) this.#socket.pause();
    void this.#drain();
  }

  async #drain(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        await waitWritable(this.#socket);
        const line = this.#queue.shift()!;
        this.stats.commands++;
        this.o.tracer.emit(this.o.proto, this.cid, '>', 'command', () => this.#session.redact(line));
        await this.#session.handle(line);
      }
    } finally {
      this.#busy = false;
      if (!this.#closed) this.#socket.resume();
    }
  }

  /** One reply line (CRLF added). */
  send(line: string): void {
    this.o.tracer.emit(this.o.proto, this.cid, '<', 'reply', () => line);
    this.#write(Buffer.from(`${line}\r\n`, 'latin1'));
  }

  /** A multi-line reply: the status line, the body byte-stuffed (RFC 1939 3), then the lone dot. */
  sendMulti(status: string, body: Buffer): void {
    const text = body.toString('latin1').replace(/\r?\n/g, '\r\n');
    const stuffed = text.replace(/^\./gm, '..');
    const tail = stuffed.length === 0 || stuffed.endsWith('\r\n') ? '' : '\r\n';
    const out = Buffer.from(`${status}\r\n${stuffed}${tail}.\r\n`, 'latin1');
    this.o.tracer.emit(this.o.proto, this.cid, '<', 'reply', () => ({ summary: `${status} [+${out.length} B multi-line]`, bytes: out.length }));
    this.#write(out);
  }

  #write(buf: Buffer): void {
    if (this.#closed || this.#socket.destroyed) return;
    this.stats.bytesOut += buf.length;
    this.#socket.write(buf);
  }

  /**
   * The last reply, then close. The slot is given back at once; the socket keeps reading (and dropping) so the client's
   * FIN closes it even when reading was paused for pipelining, and a client that never closes is cut off a second later.
   */
  end(last: string): void {
    if (this.#closed) return;
    this.send(last);
    this.#closed = true;
    const socket = this.#socket;
    this.o.release(socket);
    socket.end();
    socket.resume();
    setTimeout(() => socket.destroy(), 1000).unref();
  }

  /** STLS: answer +OK in clear, then continue in TLS with a fresh line buffer. */
  startTls(): void {
    const plain = this.#socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('timeout');
    this.#queue.length = 0;
    this.#decoder = createDecoder('line', { maxLineLength: this.o.maxLineLength });
    const secure = upgradeServerSocket(plain, this.o.tls, this.o.tracer, this.cid);
    this.#socket = secure;
    this.#attach(secure);
  }

  apopDigest(password: string): string {
    return createHash('md5').update(this.timestamp + password).digest('hex');
  }

  failureDelay(failures: number): Promise<void> {
    return sleep(authFailureDelay(this.o.authFailureDelayMs, failures));
  }

  release(): void {
    this.#session.release();
  }

  redact(line: string): string {
    return redactLine(line);
  }
}

export type { Pop3Connection };
