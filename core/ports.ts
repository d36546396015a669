import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { DEFAULT_HOST } from './server.ts';

/**
 * A port number nothing listens on, for TCP or UDP, on 127.0.0.1: bound, then released, for a program that binds it
 * itself (nats-server, postgres, dnsmasq) or for a lab that needs a closed port. Another process could take it in
 * between; to make that rarer the port is picked below the kernel's ephemeral range (where outgoing connections take
 * their local ports) when that range leaves room, else by the kernel. A caller that starts a program on it checks
 * what the program said.
 */
export async function closedPort(kind: 'tcp' | 'udp', host = DEFAULT_HOST): Promise<number> {
  const low = ephemeralLow();
  for (let i = 0; i < 20 && low > BELOW_EPHEMERAL_FROM + 1000; i++) {
    const port = BELOW_EPHEMERAL_FROM + Math.floor(Math.random() * (low - BELOW_EPHEMERAL_FROM));
    if (await bindAndRelease(kind, host, port).catch(() => 0)) return port;
  }
  return bindAndRelease(kind, host, 0);
}

/** Lowest port closedPort() picks outside the ephemeral range (above the registered services most machines run). */
const BELOW_EPHEMERAL_FROM = 20_000;
let ephemeralLowCache: number | undefined;

function ephemeralLow(): number {
  if (ephemeralLowCache === undefined) {
    try {
      ephemeralLowCache = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 0;
    } catch {
      ephemeralLowCache = 0; // not Linux: let the kernel pick
    }
  }
  return ephemeralLowCache;
}

async function bindAndRelease(kind: 'tcp' | 'udp', host: string, want: number): Promise<number> {
  if (kind === 'tcp') {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(want, host, resolve));
    const port = (server.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    return port;
  }
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', (err) => {
      socket.close();
      reject(err);
    });
    socket.bind(want, host, resolve);
  });
  const port = socket.address().port;
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}
