import type { Server as NetServer, Socket } from 'node:net';
import type { Socket as DgramSocket } from 'node:dgram';
import { ErrorCodes, WirelabError } from './errors.ts';

/** What every `startXServer` resolves to (DESIGN.md "Server" seam). */
export interface RunningServer {
  proto: string;
  host: string;
  port: number;
  url?: string;
  /** Ends every socket the server opened, then stops listening. */
  close(): Promise<void>;
}

export const DEFAULT_HOST = '127.0.0.1';

function portInUse(port: number, host: string, cause: unknown): WirelabError {
  return new WirelabError(ErrorCodes.PORT_IN_USE, `port ${port} on ${host} is already in use`, { cause, status: port });
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
      resolve(socket.address().port);
    });
  });
}

/** Keeps the open sockets of a server so close() can end them all (node's server.close() waits for them). */
export class SocketSet {
  readonly #sockets = new Set<Socket>();

  add(socket: Socket): void {
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
