import type { WebSocket } from 'ws';

/**
 * The ping/pong heartbeat of a WebSocket server: every `intervalMs` each watched peer that has not answered the last
 * ping with a pong is terminated (`onDead` first), the others are pinged. 0 turns it off. Used by servers/ws and by
 * the chat server (apps/chat), which serves its page on the same port and so is not a servers/ws server.
 */
export class Heartbeat {
  readonly #alive = new WeakMap<WebSocket, boolean>();
  readonly #timer: NodeJS.Timeout | undefined;

  constructor(intervalMs: number, clients: () => Iterable<WebSocket>, onDead: (ws: WebSocket) => void = () => {}) {
    if (intervalMs <= 0) return;
    this.#timer = setInterval(() => {
      for (const ws of clients()) {
        if (!this.#alive.get(ws)) {
          onDead(ws);
          ws.terminate();
          continue;
        }
        this.#alive.set(ws, false);
        ws.ping();
      }
    }, intervalMs);
    this.#timer.unref();
  }

  /** Counts `ws` alive now and on every pong. */
  watch(ws: WebSocket): void {
    this.#alive.set(ws, true);
    ws.on('pong', () => this.#alive.set(ws, true));
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
