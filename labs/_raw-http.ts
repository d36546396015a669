import net from 'node:net';

/**
 * Helpers for labs that need to see the bytes of an HTTP exchange (a 100 Continue, a CONNECT tunnel, a malformed
 * request): a plain TCP socket, no HTTP library in between. Files starting with _ are not labs.
 */
export interface RawExchange {
  /** Everything the server sent, as latin1 text. */
  text: string;
  /** Status codes of every status line seen, interim ones (100) included, in order. */
  statuses: number[];
  /** How long until the server closed, or until we stopped waiting. */
  ms: number;
  closedByServer: boolean;
}

/** Sends `parts` (each after `gapMs`), then reads until the server closes or `waitMs` passes. */
export function rawExchange(port: number, parts: Array<string | Buffer>, options: { host?: string; gapMs?: number; waitMs?: number; until?: (text: string) => boolean } = {}): Promise<RawExchange> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const socket = net.connect({ host: options.host ?? '127.0.0.1', port });
    let text = '';
    let done = false;
    const finish = (closedByServer: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const statuses = [...text.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => Number(m[1]));
      resolve({ text, statuses, ms: Math.round(performance.now() - started), closedByServer });
    };
    const timer = setTimeout(() => finish(false), options.waitMs ?? 3000);
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (options.until?.(text)) finish(false);
    });
    socket.on('close', () => finish(true));
    socket.on('error', (err) => (done ? undefined : text ? finish(true) : reject(err)));
    socket.once('connect', async () => {
      for (const [i, p] of parts.entries()) {
        if (i > 0 && options.gapMs) await new Promise((r) => setTimeout(r, options.gapMs));
        if (!socket.destroyed) socket.write(p);
      }
    });
  });
}

/** A header's value in a raw response (the last one with that name), or undefined. */
export function rawHeader(text: string, name: string): string | undefined {
  const re = new RegExp(`^${name}:\\s*(.*)$`, 'gim');
  let value: string | undefined;
  for (const m of text.matchAll(re)) value = m[1]!.trim();
  return value;
}
