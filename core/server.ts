import type { Server as NetServer, Socket } from 'node:net';
import type { Socket as DgramSocket } from 'node:dgram';
import { ErrorCodes, WirelabError } from './errors.ts';
import { checkInt } from './options.ts';

/** What every `startXServer` resolves to (DESIGN.md "Server" seam). */
export interface RunningServer {
  proto: string;
  host: string;
  port: number;
  url?: string;
  /** The request paths it serves, where it has several (a WebSocket server's endpoints), e.g. for the fuzz suite. */
  paths?: string[];
  /**
   * How this server's protocol masks secrets in traced bytes (one mask per connection), for a proxy or relay put in
   * front of it: a binary protocol's credentials (MQTT CONNECT, the native door's hello) are not text lines.
   * Unset: text lines are masked (AUTH, PASS, LOGIN, Authorization).
   */
  wireMask?: () => (chunk: Buffer, dir: '>' | '<' | '*') => Buffer;
  /** Ends every socket the server opened, then stops listening. */
  close(): Promise<void>;
}

export const DEFAULT_HOST = '127.0.0.1';

function portInUse(port: number, host: string, cause: unknown): WirelabError {
  return new WirelabError(ErrorCodes.PORT_IN_USE, `port ${port} on ${host} is already in use`, { cause, status: port });
}

/**
 * After listening, an error on the listener itself (EMFILE when accepting, a failed send on a UDP socket) must not
 * end the process: the listener stays up and the next connection or datagram is served. The server's own listener,
 * when it has one, still sees the error (and traces it).
 */
function keepServing(emitter: NetServer | DgramSocket): void {
  emitter.on('error', () => {});
}

/** Listens, turning EADDRINUSE into a WirelabError that names the port. Resolves to the bound port. */
export function listenTcp(server: NetServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(err.code === 'EADDRINUSE' ? portInUse(port, host, err) : err);
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      keepServing(server);
      const addr = server.address();
      resolve(typeof addr === 'object' && addr ? addr.port : port);
    });
  });
}

export function bindUdp(socket: DgramSocket, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(err.code === 'EADDRINUSE' ? portInUse(port, host, err) : err);
    };
    socket.once('error', onError);
    socket.bind(port, host, () => {
      socket.off('error', onError);
      keepServing(socket);
      resolve(socket.address().port);
    });
  });
}

/** The connection limits every line-protocol server shares (FTP, SMTP, POP3, IMAP, TCP echo). */
export interface ConnectionLimits {
  /** Connections counted at once. */
  maxConnections: number;
  /** Connections counted at once from one client address. */
  maxConnectionsPerAddress: number;
}

/** Which limit a connection was refused by, for the trace and the test. */
export type ConnectionLimitName = 'maxConnections' | 'maxConnectionsPerAddress';

/**
 * Keeps the open sockets of a server so close() can end them all (node's server.close() waits for them), and counts
 * the ones that hold a slot, in all and per client address. A socket holds its slot from `admit` until it closes or
 * the server lets it go with `release` (it has decided to close it: a client that never sends its FIN cannot keep a
 * slot); it is destroyed by close() either way.
 */
export class SocketSet {
  readonly #sockets = new Set<Socket>();
  /** Sockets holding a slot, by "address|port" (a TLS socket and the TCP socket under it share the key). */
  readonly #counted = new Map<string, string>();
  readonly #perAddress = new Map<string, number>();
  /** Connections `admit` refused, by the same key, until they close: an implicit-TLS server answers after the handshake. */
  readonly #refused = new Map<string, ConnectionLimitName>();

  /**
   * Tracks a socket without giving it a slot. Every accepted or dialled socket passes here, so this is where an
   * 'error' no protocol code handled stops: the socket is destroyed (it is already unusable) and 'close' runs the
   * usual clean-up. Protocol code adds its own listener for the trace and the answer.
   */
  add(socket: Socket): void {
    if (this.#sockets.has(socket)) return;
    socket.on('error', () => socket.destroy());
    this.#sockets.add(socket);
    const key = slotKey(socket);
    socket.once('close', () => {
      this.#sockets.delete(socket);
      this.release(socket);
      if (key !== undefined) this.#refused.delete(key);
    });
  }

  /**
   * Tracks a socket and gives it a slot unless that would pass a limit; returns the limit it would pass (the socket
   * then holds no slot and the caller refuses it with the protocol's answer) or null.
   */
  admit(socket: Socket, limits: ConnectionLimits): ConnectionLimitName | null {
    this.add(socket);
    const key = slotKey(socket);
    if (key === undefined || this.#counted.has(key)) return null;
    const address = socket.remoteAddress ?? '?';
    const over: ConnectionLimitName | null =
      this.#counted.size >= limits.maxConnections
        ? 'maxConnections'
        : (this.#perAddress.get(address) ?? 0) >= limits.maxConnectionsPerAddress
          ? 'maxConnectionsPerAddress'
          : null;
    if (over) {
      this.#refused.set(key, over);
      return over;
    }
    this.#counted.set(key, address);
    this.#perAddress.set(address, (this.#perAddress.get(address) ?? 0) + 1);
    return null;
  }

  /**
   * The limit `admit` refused this connection by, or null. Takes the TLS socket of an implicit-TLS server as well as
   * the TCP socket under it, so the refusal can be answered once the handshake is done.
   */
  refusal(socket: Socket): ConnectionLimitName | null {
    const key = slotKey(socket);
    return key === undefined ? null : (this.#refused.get(key) ?? null);
  }

  /** Gives the socket's slot back (idempotent). The socket (or the TLS socket over it) stays tracked until it closes. */
  release(socket: Socket): void {
    const key = slotKey(socket);
    const address = key === undefined ? undefined : this.#counted.get(key);
    if (address === undefined) return;
    this.#counted.delete(key!);
    const n = (this.#perAddress.get(address) ?? 1) - 1;
    if (n <= 0) this.#perAddress.delete(address);
    else this.#perAddress.set(address, n);
  }

  /** Sockets holding a slot. */
  get size(): number {
    return this.#counted.size;
  }

  /** Sockets holding a slot from one client address. */
  countFrom(address: string): number {
    return this.#perAddress.get(address) ?? 0;
  }

  destroyAll(): void {
    for (const s of this.#sockets) s.destroy();
  }
}

/** The key of a connection's slot: the client's address and port, which stay readable until the socket is closed. */
const keys = new WeakMap<Socket, string>();
function slotKey(socket: Socket): string | undefined {
  let key = keys.get(socket);
  if (key === undefined && socket.remoteAddress !== undefined) {
    key = `${socket.remoteAddress}|${socket.remotePort}`;
    keys.set(socket, key);
  }
  return key;
}

/**
 * Refuses a connection with the protocol's answer (FTP/SMTP 421, POP3 -ERR, IMAP * BYE): writes it, ends, keeps reading
 * (and discarding) so the client's FIN closes the socket at once, and destroys it a second later if the client stays.
 */
export function refuseConnection(socket: Socket, answer: string, lingerMs = 1000): void {
  socket.on('error', () => undefined);
  socket.on('data', () => undefined);
  socket.end(answer);
  setTimeout(() => socket.destroy(), lingerMs).unref();
}

/** Checks maxConnections and maxConnectionsPerAddress (a TypeError naming the option when bad). */
export function checkConnectionLimits(o: ConnectionLimits, max = 1_000_000): void {
  checkInt('maxConnections', o.maxConnections, 1, max);
  checkInt('maxConnectionsPerAddress', o.maxConnectionsPerAddress, 1, max);
}

/** Stops listening and destroys every open socket; resolves once the server has closed. */
export function closeTcpServer(server: NetServer, sockets: SocketSet): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    sockets.destroyAll();
  });
}
