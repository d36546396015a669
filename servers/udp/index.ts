import dgram from 'node:dgram';
import { decodeHeader } from '../../protocols/datagram.ts';
import { checkInt, checkPort } from '../../core/options.ts';
import { bindUdp, DEFAULT_HOST, type RunningServer } from '../../core/server.ts';
import { addressOf, endsOf, NOOP_TRACER, preview, type Ends, type Tracer } from '../../core/trace/index.ts';

export interface UdpServerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** Datagrams echoed per second at most; the rest are dropped and counted. Default 100,000. */
  maxEchoPerSecond?: number;
  tracer?: Tracer;
}

export interface UdpServerStats {
  received: number;
  echoed: number;
  /** Dropped over maxEchoPerSecond. */
  dropped: number;
  bytesIn: number;
}

export interface RunningUdpServer extends RunningServer {
  readonly stats: UdpServerStats;
}

/**
 * UDP echo (RFC 862): every datagram goes back to its sender unchanged. Datagrams with wirelab's header are traced
 * with their sequence number and one-way delay; any other bytes are echoed too.
 */
export async function startUdpServer(options: UdpServerOptions = {}): Promise<RunningUdpServer> {
  const host = options.host ?? DEFAULT_HOST;
  const port = checkPort('port', options.port ?? 0);
  const maxPerSecond = checkInt('maxEchoPerSecond', options.maxEchoPerSecond ?? 100_000, 1, 10_000_000);
  const tracer = options.tracer ?? NOOP_TRACER;
  const stats: UdpServerStats = { received: 0, echoed: 0, dropped: 0, bytesIn: 0 };
  const socket = dgram.createSocket({ type: host.includes(':') ? 'udp6' : 'udp4' });
  const cid = 'udp-server';
  let windowStart = 0;
  let inWindow = 0;

  /** The socket and a datagram's sender as trace ends: a server socket talks to many, so each datagram carries its own. */
  const ends = (rinfo: dgram.RemoteInfo): Partial<Ends> => {
    const a = socket.address();
    const local = addressOf(a.address, a.port);
    const remote = addressOf(rinfo.address, rinfo.port);
    return local && remote ? endsOf('udp', 'server', local, remote) : {};
  };

  socket.on('message', (msg, rinfo) => {
    stats.received++;
    stats.bytesIn += msg.length;
    const from = `${rinfo.address}:${rinfo.port}`;
    tracer.emit('udp', cid, '>', 'datagram', () => {
      const h = decodeHeader(msg);
      const what = h ? `seq=${h.seq} one-way=${(performance.timeOrigin + performance.now() - h.sentAt).toFixed(3)} ms` : preview(msg);
      return { summary: `from ${from} ${what}`, bytes: msg.length, data: msg, meta: { from, ...(h ?? {}) }, ...ends(rinfo) };
    });
    const now = performance.now();
    if (now - windowStart >= 1000) {
      windowStart = now;
      inWindow = 0;
    }
    if (++inWindow > maxPerSecond) {
      stats.dropped++;
      tracer.emit('udp', cid, '*', 'drop', () => `maxEchoPerSecond=${maxPerSecond} reached: not echoed`);
      return;
    }
    socket.send(msg, rinfo.port, rinfo.address, (err) => {
      if (err) {
        tracer.emit('udp', cid, '*', 'error', () => `echo to ${from} failed: ${err.message}`);
        return;
      }
      stats.echoed++;
      tracer.emit('udp', cid, '<', 'datagram', () => ({ summary: `echo to ${from}`, bytes: msg.length, data: msg, ...ends(rinfo) }));
    });
  });
  // A datagram socket's errors (ICMP errors surfacing on send, say) never stop the server.
  socket.on('error', (err) => tracer.emit('udp', cid, '*', 'error', () => err.message));

  const bound = await bindUdp(socket, port, host);
  tracer.emit('udp', cid, '*', 'listen', () => `echo on ${host}:${bound}`);
  return {
    proto: 'udp',
    host,
    port: bound,
    stats,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
