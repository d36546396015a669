import type { Server as NetServer, Socket } from 'node:net';
import type { Socket as DgramSocket } from 'node:dgram';
import { ErrorCodes, WirelabError } from './errors.ts';

/** What every `startXServer` resolves to (DESIGN.md "Server" seam). */
export interface RunningServer {
  proto: string;
  host: string;
  port: number;
  url?: string;
  /** The request paths it serves, where it has several (a WebSocket server's endpoints), e.g. for the fuzz suite. */
  paths?: string[];
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

/** Keeps the open sockets of a server so close() can end them all (node's server.close() waits for them). */
export class SocketSet {
  readonly #sockets = new Set<Socket>();

  /**
   * Every accepted or dialled socket passes here, so this is where an 'error' no protocol code handled stops: the
   * socket is destroyed (it is already unusable) and 'close' runs the usual clean-up. Protocol code adds its own
   * listener for the trace and the answer.
   */
  add(socket: Socket): void {
    socket.on('error', () => socket.destroy());
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
  }

  get size(): number {
    return this.#sockets.size;
  }

  destroyAll(): void {
    for (const s of this.#sockets) s.destroy();
  }
}

/** Stops listening and destroys every open socket; resolves once the server has closed. */
export function closeTcpServer(server: NetServer, sockets: SocketSet): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    sockets.destroyAll();
  });
}
