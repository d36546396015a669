import { EventEmitter } from 'node:events';
import { ErrorCodes, WirelabError } from '../core/errors.ts';
import { checkInt, withDefaults } from '../core/options.ts';
import type { Tracer } from '../core/trace/index.ts';
import { parseServerMessage, type PeerMessage, type ServerMessage, type SignalOf } from '../protocols/signaling.ts';
import { connectWs, type WsClient } from './ws.ts';

export type { PeerMessage, ServerMessage, SignalMessage, SignalOf } from '../protocols/signaling.ts';
type ServerType = ServerMessage['type'];

export interface SignalingClientOptions {
  /** ws://HOST:PORT/signal */
  url: string;
  /** The room to join. */
  room: string;
  /** Give up connecting and joining after this long. Default 5000 ms. */
  timeoutMs?: number;
  tracer?: Tracer;
}

export const SIGNALING_CLIENT_DEFAULTS = Object.freeze({ timeoutMs: 5000 });

// Typed events: each received message under its type (protocols/signaling.ts), and 'closed'. The interface only adds
// narrower overloads of the EventEmitter methods the class inherits, which is what the rule below guards against.
/* eslint-disable @typescript-eslint/no-unsafe-declaration-merging */
export interface SignalingClient {
  on<T extends ServerType>(type: T, listener: (m: SignalOf<T>) => void): this;
  on(type: 'closed', listener: () => void): this;
  once<T extends ServerType>(type: T, listener: (m: SignalOf<T>) => void): this;
  once(type: 'closed', listener: () => void): this;
  off<T extends ServerType>(type: T, listener: (m: SignalOf<T>) => void): this;
  off(type: 'closed', listener: () => void): this;
}

/**
 * A peer's side of the signaling server: connects (clients/ws.ts), joins a room, then sends and receives the JSON
 * messages. Every message received is emitted under its type ('offer', 'candidate', 'peer-joined', 'error'...).
 */
export class SignalingClient extends EventEmitter {
  /* eslint-enable @typescript-eslint/no-unsafe-declaration-merging */
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
    const { timeoutMs } = withDefaults(SIGNALING_CLIENT_DEFAULTS, options);
    checkInt('timeoutMs', timeoutMs, 1, 3600_000);
    const ws = await connectWs({ url: options.url, tracer: options.tracer, handshakeTimeoutMs: timeoutMs });
    const c = new SignalingClient(ws);
    void c.#pump();
    try {
      const welcome = await c.waitFor('welcome', () => true, timeoutMs);
      c.id = welcome.id;
      c.send({ type: 'join', room: options.room });
      const joined = await Promise.race([c.waitFor('joined', () => true, timeoutMs), c.waitFor('error', () => true, timeoutMs).then((e) => Promise.reject(new WirelabError(ErrorCodes.SIGNALING, `join refused: ${e.code} ${e.message}`, { status: e.code })))]);
      c.room = joined.room;
      c.peers = joined.peers;
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
      let raw: unknown;
      try {
        raw = JSON.parse(m.data.toString('utf8'));
      } catch {
        continue;
      }
      const parsed = parseServerMessage(raw);
      if (parsed.ok) this.emit(parsed.message.type, parsed.message);
    }
  }

  send(msg: PeerMessage): void {
    const text = JSON.stringify(msg);
    this.counts.sent++;
    this.counts.bytesSent += Buffer.byteLength(text);
    void this.ws.send(text).catch(() => undefined);
  }

  /** The next message of `type` for which `match` holds. */
  waitFor<T extends ServerType>(type: T, match: (m: SignalOf<T>) => boolean = () => true, timeoutMs = 5000): Promise<SignalOf<T>> {
    return new Promise((resolve, reject) => {
      const on = (m: SignalOf<T>): void => {
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
