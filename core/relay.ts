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
  /**
   * Called with every chunk as it is forwarded: `>` client to server, `<` server to client, and how long the relay
   * actually held it (never less than delayMs).
   */
  onForward?: (dir: '>' | '<', chunk: Buffer, conn: number, heldMs: number) => void;
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
    // Chunks wait in arrival order; one timer serves the head. A timer may fire up to ~1 ms before the time it was
    // asked for (setTimeout rounds to whole milliseconds), so the head is released only once performance.now() says
    // its delay has passed: a chunk is never held less than delayMs.
    const queue: Array<{ chunk: Buffer; arrived: number; due: number }> = [];
    let queued = 0;
    let timer: NodeJS.Timeout | undefined;
    let ended = false;
    const forward = (chunk: Buffer, heldMs: number): void => {
      options.onForward?.(dir, chunk, conn, heldMs);
      if (!to.destroyed) to.write(chunk);
    };
    const release = (): void => {
      timer = undefined;
      const now = performance.now();
      while (queue.length > 0 && queue[0]!.due <= now) {
        const { chunk, arrived } = queue.shift()!;
        queued -= chunk.length;
        forward(chunk, now - arrived);
      }
      if (queue.length > 0) timer = setTimeout(release, Math.max(1, Math.ceil(queue[0]!.due - now)));
      else if (ended && !to.destroyed) to.end();
    };
    from.on('data', (chunk: Buffer) => {
      if (delayMs === 0) return forward(chunk, 0);
      queued += chunk.length;
      if (queued > maxQueued) {
        tracer.emit('relay', cid, '*', 'limit', () => `maxQueuedBytes=${maxQueued} exceeded: dropping the connection`);
        from.destroy();
        to.destroy();
        return;
      }
      const arrived = performance.now();
      // Same delay for every chunk, so arrival order is due order.
      queue.push({ chunk, arrived, due: arrived + delayMs });
      timer ??= setTimeout(release, Math.ceil(delayMs));
    });
    from.on('end', () => {
      ended = true;
      if (queue.length === 0 && timer === undefined && !to.destroyed) to.end();
    });
    to.on('close', () => {
      clearTimeout(timer);
      queue.length = 0;
    });
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
