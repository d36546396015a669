import net from 'node:net';
import tls from 'node:tls';
import { Transform, type TransformCallback } from 'node:stream';
import { nextCid, socketEnds, tapSocket, type Tracer } from '../../core/trace/index.ts';
import { dataConnectionError } from './errors.ts';

/** Where the next data connection comes from: we listen (passive) or we connect to the client (active). */
export type DataMode =
  | { kind: 'passive'; server: net.Server; port: number; accepted: Promise<net.Socket> }
  | { kind: 'active'; host: string; port: number };

export interface DataSettings {
  tracer: Tracer;
  timeoutMs: number;
  /** A data connection with no traffic this long is destroyed (its transfer then answers 426). */
  idleTimeoutMs: number;
  pasvPortMin: number;
  pasvPortMax: number;
  /** Set when PROT P is on: the data connection is TLS, and we are the TLS server on it in both modes. */
  secureContext?: tls.SecureContext;
}

/** An open data connection and what is known about it for the trace. */
export interface DataConnection {
  socket: net.Socket;
  cid: string;
  mode: 'passive' | 'active';
  /** `client a:p → server b:q` as opened (who connected to whom). */
  route: string;
}

/** Strips `::ffff:` so IPv4-mapped and plain IPv4 compare equal. */
export function plainAddress(addr: string | undefined): string {
  return (addr ?? '').replace(/^::ffff:/i, '');
}

function timeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(dataConnectionError(425, `${what}: no data connection within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

async function listenInRange(host: string, min: number, max: number): Promise<{ server: net.Server; port: number }> {
  const tryPort = (port: number): Promise<net.Server | null> =>
    new Promise((resolve, reject) => {
      const server = net.createServer({ pauseOnConnect: true });
      server.once('error', (err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' ? resolve(null) : reject(err)));
      server.listen(port, host, () => resolve(server));
    });
  if (min === 0) {
    const server = (await tryPort(0))!;
    return { server, port: (server.address() as net.AddressInfo).port };
  }
  // Start at a random place in the range so two sessions do not race for the same first port.
  const span = max - min + 1;
  const start = Math.floor(Math.random() * span);
  for (let i = 0; i < span; i++) {
    const port = min + ((start + i) % span);
    const server = await tryPort(port);
    if (server) return { server, port };
  }
  throw dataConnectionError(425, `no free port in the passive range ${min}-${max}`);
}

/** The data side of one control connection: at most one pending or open data connection at a time. */
export class DataChannel {
  mode?: DataMode;
  current?: DataConnection;
  readonly #s: DataSettings;
  readonly #ownerCid: string;

  constructor(settings: DataSettings, ownerCid: string) {
    this.#s = settings;
    this.#ownerCid = ownerCid;
  }

  set secureContext(ctx: tls.SecureContext | undefined) {
    this.#s.secureContext = ctx;
  }

  /**
   * Listens for the client's data connection (PASV / EPSV) on `localAddress`. Only a connection from `peer` (the
   * control connection's client) is taken; any other is closed and traced, so nobody else can steal the transfer.
   */
  async listen(localAddress: string, peer: string): Promise<number> {
    this.reset();
    const { server, port } = await listenInRange(localAddress, this.#s.pasvPortMin, this.#s.pasvPortMax);
    const tracer = this.#s.tracer;
    server.on('error', (err) => tracer.emit('ftp-data', this.#ownerCid, '*', 'error', () => `passive port ${port}: ${err.message}`));
    const accepted = new Promise<net.Socket>((resolve) => {
      server.on('connection', (sock: net.Socket) => {
        sock.on('error', () => {}); // a reset before the transfer starts is the transfer's problem, not the process's
        if (plainAddress(sock.remoteAddress) !== peer) {
          tracer.emit('ftp-data', this.#ownerCid, '*', 'refused', () => ({
            summary: `passive port ${port}: connection from ${plainAddress(sock.remoteAddress)} refused (control client is ${peer})`,
            meta: { from: plainAddress(sock.remoteAddress), port },
          }));
          sock.destroy();
          return;
        }
        server.close();
        resolve(sock);
      });
    });
    accepted.catch(() => {});
    this.mode = { kind: 'passive', server, port, accepted };
    tracer.emit('ftp-data', this.#ownerCid, '*', 'listen', () => ({
      summary: `passive: server listens on ${localAddress}:${port} for the client's data connection`,
      meta: { port },
    }));
    return port;
  }

  /** Active mode (PORT / EPRT): the next transfer connects to the client. The caller has checked the address. */
  connectTo(host: string, port: number): void {
    this.reset();
    this.mode = { kind: 'active', host, port };
  }

  /** Opens the data connection for one transfer (TLS when PROT P); the mode is used up. */
  async open(): Promise<DataConnection> {
    const mode = this.mode;
    if (!mode) throw dataConnectionError(425, 'no PORT, EPRT, PASV or EPSV before the transfer');
    this.mode = undefined;
    let socket: net.Socket;
    let route: string;
    if (mode.kind === 'passive') {
      try {
        socket = await timeout(mode.accepted, this.#s.timeoutMs, 'passive');
      } finally {
        mode.server.close();
      }
      // Still paused (pauseOnConnect): the transfer's pipeline starts the reading, so no byte is lost before it.
      route = `client ${plainAddress(socket.remoteAddress)}:${socket.remotePort} → server ${plainAddress(socket.localAddress)}:${socket.localPort}`;
    } else {
      socket = await timeout(
        new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect({ host: mode.host, port: mode.port }, () => resolve(s));
          s.once('error', reject);
        }),
        this.#s.timeoutMs,
        'active',
      );
      route = `server ${plainAddress(socket.localAddress)}:${socket.localPort} → client ${mode.host}:${mode.port}`;
    }
    socket.on('error', () => {});
    if (this.#s.secureContext) socket = await this.#secure(socket);
    const cid = nextCid('ftp-data');
    const conn: DataConnection = { socket, cid, mode: mode.kind, route };
    socket.setTimeout(this.#s.idleTimeoutMs, () => {
      this.#s.tracer.emit('ftp-data', cid, '*', 'timeout', () => `no traffic for dataIdleTimeoutMs=${this.#s.idleTimeoutMs}: closing`);
      socket.destroy(dataConnectionError(426, 'data connection idle'));
    });
    this.current = conn;
    this.#s.tracer.emit('ftp-data', cid, '*', 'open', () => ({
      summary: `${mode.kind}: ${route}${this.#s.secureContext ? ' (TLS, PROT P)' : ''} for ${this.#ownerCid}`,
      meta: { mode: mode.kind, route, control: this.#ownerCid, tls: Boolean(this.#s.secureContext) },
      // Active mode: this server opened the TCP connection (its client end).
      ...socketEnds(socket, mode.kind === 'active' ? 'client' : 'server'),
    }));
    tapSocket(this.#s.tracer, 'ftp-data', cid, socket, mode.kind === 'active' ? 'client' : 'server');
    return conn;
  }

  async #secure(raw: net.Socket): Promise<net.Socket> {
    raw.resume(); // the TLS layer reads the handshake itself; application bytes wait in the TLS socket
    const s = new tls.TLSSocket(raw, { isServer: true, secureContext: this.#s.secureContext! });
    s.on('error', () => {});
    await timeout(
      new Promise<void>((resolve, reject) => {
        s.once('secure', () => resolve());
        s.once('error', reject);
        s.once('close', () => reject(dataConnectionError(425, 'data connection closed during the TLS handshake')));
      }),
      this.#s.timeoutMs,
      'TLS',
    );
    return s;
  }

  /** Forgets a pending PASV listener (a new PASV / PORT replaces it). */
  reset(): void {
    if (this.mode?.kind === 'passive') {
      this.mode.server.close();
      // A client that already connected to the unused port is let go too.
      void this.mode.accepted.then((sock) => sock.destroy());
    }
    this.mode = undefined;
  }

  /** Ends everything: the session is closing or ABOR was sent. */
  destroy(): void {
    this.reset();
    this.current?.socket.destroy();
    this.current = undefined;
  }
}

/** TYPE A on the way out: a bare LF becomes CRLF (RFC 959 NVT-ASCII); a CRLF already there is kept. */
export class LfToCrlf extends Transform {
  #lastWasCr = false;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const out: number[] = [];
    for (const b of chunk) {
      if (b === 0x0a && !this.#lastWasCr) out.push(0x0d);
      out.push(b);
      this.#lastWasCr = b === 0x0d;
    }
    cb(null, Buffer.from(out));
  }
}

/** TYPE A on the way in: CRLF becomes the local LF; a lone CR is kept. */
export class CrlfToLf extends Transform {
  #heldCr = false;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const out: number[] = [];
    for (const b of chunk) {
      if (this.#heldCr && b !== 0x0a) out.push(0x0d);
      this.#heldCr = b === 0x0d;
      if (!this.#heldCr) out.push(b);
    }
    cb(null, Buffer.from(out));
  }
  override _flush(cb: TransformCallback): void {
    cb(null, this.#heldCr ? Buffer.from([0x0d]) : undefined);
  }
}
