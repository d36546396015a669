import dgram from 'node:dgram';
import net from 'node:net';
import { DEFAULT_HOST } from './server.ts';

/**
 * A port number nothing listens on, for TCP or UDP, on 127.0.0.1: bound, then released. (Another process could take it
 * in between; on a test machine that is rare, and a lab that relies on it checks what it saw.)
 */
export async function closedPort(kind: 'tcp' | 'udp', host = DEFAULT_HOST): Promise<number> {
  if (kind === 'tcp') {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, host, resolve));
    const port = (server.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    return port;
  }
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => socket.once('error', reject).bind(0, host, resolve));
  const port = socket.address().port;
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}
