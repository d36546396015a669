import net from 'node:net';
import { checkInt, checkPort } from './options.ts';
import { closeTcpServer, DEFAULT_HOST, listenTcp, SocketSet, type RunningServer } from './server.ts';
import { NOOP_TRACER, nextCid, type Tracer } from './trace/index.ts';

export interface TcpRelayOptions {
  /** Where connections are relayed to. */
  target: { host?: string; port: number };
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0. */
  port?: number;
  /** Added to every chunk, each way: a fixed one-way delay. Default 0. */
  delayMs?: number;
  /** Bytes held back (delayed, not yet written) per direction before the connection is dropped. Default 16 MiB. */
  maxQueuedBytes?: number;
  /** Called with every chunk as it is forwarded: `>` client to server, `<` server to client. */
  onForward?: (dir: '>' | '<', chunk: Buffer, conn: number) => void;
  tracer?: Tracer;
}

/**
 * A TCP relay: accepts, connects to the target, and copies bytes both ways, optionally after a fixed delay, letting a
 * lab see every chunk. Small on purpose: it is how the handshakes lab counts round trips. (The impairment proxy in
 * core/impair/ is the full tool.)
 */
export async function startTcpRelay(options: TcpRelayOptions): Promise<RunningServer> {
  const host = options.host ?? DEFAULT_HOST;
  const delayMs = checkInt('delayMs', options.delayMs ?? 0, 0, 60_000);
  const maxQueued = checkInt('maxQueuedBytes', options.maxQueuedBytes ?? 16 * 1024 * 1024, 1, 1 << 30);
  const targetPort = checkPort('target.port', options.target.port);
  const tracer = options.tracer ?? NOOP_TRACER;
  const sockets = new SocketSet();
  let conns = 0;

  const pipe = (from: net.Socket, to: net.Socket, dir: '>' | '<', conn: number, cid: string): void => {
    let queued = 0;
    let lastDue = 0;
    from.on('data', (chunk: Buffer) => {
      const send = (): void => {
        queued -= chunk.length;
        options.onForward?.(dir, chunk, conn);
        if (!to.destroyed) to.write(chunk);
      };
      if (delayMs === 0) return send();
      queued += chunk.length;
      if (queued > maxQueued) {
        tracer.emit('relay', cid, '*', 'limit', () => `maxQueuedBytes=${maxQueued} exceeded: dropping the connection`);
        from.destroy();
        to.destroy();
        return;
      }
      // Chunks keep their order: each is due no earlier than the one before it.
      const due = Math.max(performance.now() + delayMs, lastDue);
      lastDue = due;
      setTimeout(send, due - performance.now());
    });
    from.on('end', () => setTimeout(() => to.end(), Math.max(0, lastDue - performance.now())));
  };

  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const conn = ++conns;
    const cid = nextCid('relay');
    sockets.add(client);
    const upstream = net.connect({ host: options.target.host ?? DEFAULT_HOST, port: targetPort, allowHalfOpen: true });
    sockets.add(upstream);
    tracer.emit('relay', cid, '*', 'relay', () => `${client.remotePort} ⇄ ${targetPort} (+${delayMs} ms each way)`);
    pipe(client, upstream, '>', conn, cid);
    pipe(upstream, client, '<', conn, cid);
    const kill = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', kill);
    upstream.on('error', kill);
    client.on('close', () => setTimeout(() => upstream.destroy(), delayMs + 50).unref());
    upstream.on('close', () => setTimeout(() => client.destroy(), delayMs + 50).unref());
  });
  const port = await listenTcp(server, options.port ?? 0, host);
  return { proto: 'tcp', host, port, close: () => closeTcpServer(server, sockets) };
}
