import { EventEmitter } from 'node:events';
import { ErrorCodes, WirelabError } from '../core/errors.ts';
import type { Tracer } from '../core/trace/index.ts';
import { connectWs, type WsClient } from './ws.ts';

/** A message of the signaling format (README, "WebRTC"): always a JSON object with a string `type`. */
export interface SignalMessage {
  type: string;
  [key: string]: unknown;
}

export interface SignalingClientOptions {
  /** ws://HOST:PORT/signal */
  url: string;
  /** The room to join. */
  room: string;
  /** Give up connecting and joining after this long. Default 5000 ms. */
  timeoutMs?: number;
  tracer?: Tracer;
}

/**
 * A peer's side of the signaling server: connects (clients/ws.ts), joins a room, then sends and receives the JSON
 * messages. Every message received is emitted under its type ('offer', 'candidate', 'peer-joined', 'error'...).
 */
export class SignalingClient extends EventEmitter {
  /** This peer's id, given by the server. */
  id = '';
  room = '';
  /** The peers already in the room when this one joined. */
  peers: string[] = [];
  /** Signaling messages sent and received, and their payload bytes. */
  readonly counts = { sent: 0, received: 0, bytesSent: 0, bytesReceived: 0 };
  readonly ws: WsClient;

  private constructor(ws: WsClient) {
    super();
    this.ws = ws;
  }

  static async connect(options: SignalingClientOptions): Promise<SignalingClient> {
    const timeoutMs = options.timeoutMs ?? 5000;
    const ws = await connectWs({ url: options.url, tracer: options.tracer, handshakeTimeoutMs: timeoutMs });
    const c = new SignalingClient(ws);
    void c.#pump();
    try {
      const welcome = await c.waitFor('welcome', () => true, timeoutMs);
      c.id = String(welcome.id);
      c.send({ type: 'join', room: options.room });
      const joined = await Promise.race([c.waitFor('joined', () => true, timeoutMs), c.waitFor('error', () => true, timeoutMs).then((e) => Promise.reject(new WirelabError(ErrorCodes.SIGNALING, `join refused: ${String(e.code)} ${String(e.message)}`, { status: String(e.code) })))]);
      c.room = String(joined.room);
      c.peers = (joined.peers as string[]) ?? [];
      return c;
    } catch (err) {
      await ws.terminate();
      throw err;
    }
  }

  async #pump(): Promise<void> {
    for (;;) {
      let m;
      try {
        m = await this.ws.next(60_000);
      } catch (err) {
        if ((err as WirelabError).code === ErrorCodes.TIMEOUT) continue;
        this.emit('closed');
        return;
      }
      this.counts.received++;
      this.counts.bytesReceived += m.data.length;
      let msg: SignalMessage;
      try {
        msg = JSON.parse(m.data.toString('utf8')) as SignalMessage;
      } catch {
        continue;
      }
      if (msg && typeof msg.type === 'string') this.emit(msg.type, msg);
    }
  }

  send(msg: SignalMessage): void {
    const text = JSON.stringify(msg);
    this.counts.sent++;
    this.counts.bytesSent += Buffer.byteLength(text);
    void this.ws.send(text).catch(() => undefined);
  }

  /** The next message of `type` for which `match` holds. */
  waitFor(type: string, match: (m: SignalMessage) => boolean = () => true, timeoutMs = 5000): Promise<SignalMessage> {
    return new Promise((resolve, reject) => {
      const on = (m: SignalMessage): void => {
        if (!match(m)) return;
        cleanup();
        resolve(m);
      };
      const onClosed = (): void => {
        cleanup();
        reject(new WirelabError(ErrorCodes.CLOSED, `signaling closed while waiting for ${type}`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new WirelabError(ErrorCodes.TIMEOUT, `no signaling "${type}" within ${timeoutMs} ms`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.off(type, on);
        this.off('closed', onClosed);
      };
      this.on(type, on);
      this.once('closed', onClosed);
    });
  }

  async close(): Promise<void> {
    await this.ws.close();
  }
}

export function connectSignaling(options: SignalingClientOptions): Promise<SignalingClient> {
  return SignalingClient.connect(options);
}
