import type { RTCDataChannel } from 'werift';
import { ErrorCodes, WirelabError } from '../core/errors.ts';
import { preview, type Tracer } from '../core/trace/index.ts';

export interface ChannelOptions {
  /** Default true. */
  ordered?: boolean;
  /** Sends of a message before it is dropped: 0 sends once (unreliable). Default: unlimited (reliable). */
  maxRetransmits?: number;
  /** Milliseconds a message may be resent for (partial reliability by time). Default: unlimited. */
  maxPacketLifeTime?: number;
}

export interface ChannelMessage {
  data: Buffer | string;
  binary: boolean;
  at: number;
}

/** What a channel needs from its peer (clients/webrtc.ts, WebRtcPeer). */
export interface ChannelOwner {
  readonly tracer: Tracer;
  readonly cid: string;
  readonly maxMessageSize: number;
  readonly remoteMaxMessageSize: number;
  readonly maxQueuedMessages: number;
}

/** One data channel with a queue of what arrived: `next()` takes the oldest. */
export class PeerChannel {
  readonly label: string;
  readonly raw: RTCDataChannel;
  readonly opened: Promise<void>;
  received = 0;
  /** Messages dropped because more than maxQueuedMessages waited unread. */
  dropped = 0;
  readonly #queue: ChannelMessage[] = [];
  readonly #waiters: Array<{ resolve: (m: ChannelMessage) => void; reject: (e: Error) => void }> = [];
  #closed?: WirelabError;
  readonly #peer: ChannelOwner;
  /** Called for every message instead of queueing it (benches, echo). */
  onMessage?: (m: ChannelMessage) => void;

  constructor(peer: ChannelOwner, raw: RTCDataChannel) {
    this.#peer = peer;
    this.raw = raw;
    this.label = raw.label;
    this.opened = new Promise((resolve) => {
      if (raw.readyState === 'open') resolve();
      else raw.stateChanged.subscribe((s) => s === 'open' && resolve());
    });
    // A reader waiting on a channel that closes is told so at once, not at its timeout; later reads get what was
    // queued, then the same error.
    const onClosed = (): void => {
      this.#closed ??= new WirelabError(ErrorCodes.CLOSED, `channel ${this.label} closed`);
      for (const w of this.#waiters.splice(0)) w.reject(this.#closed);
    };
    if (raw.readyState === 'closed') onClosed();
    else raw.stateChanged.subscribe((s) => s === 'closed' && onClosed());
    raw.onMessage.subscribe((data: Buffer | string) => {
      this.received++;
      const m = { data, binary: typeof data !== 'string', at: performance.now() };
      peer.tracer.emit('webrtc', peer.cid, '<', 'dc-message', () => ({ summary: `${this.label} ${m.binary ? 'binary' : 'text'} ${preview(Buffer.from(data))}`, bytes: Buffer.byteLength(data) }));
      if (this.onMessage) return this.onMessage(m);
      const w = this.#waiters.shift();
      if (w) w.resolve(m);
      else {
        this.#queue.push(m);
        if (this.#queue.length > peer.maxQueuedMessages) {
          this.#queue.shift();
          this.dropped++;
        }
      }
    });
  }

  get ordered(): boolean {
    return this.raw.ordered;
  }

  /** Sends text or bytes; past maxMessageSize (ours, or the remote's from its SDP) throws WL_ERR_WEBRTC_MESSAGE_TOO_BIG. */
  send(data: string | Buffer): void {
    const size = Buffer.byteLength(data);
    const limit = Math.min(this.#peer.maxMessageSize, this.#peer.remoteMaxMessageSize);
    if (size > limit) throw new WirelabError(ErrorCodes.WEBRTC_MESSAGE_TOO_BIG, `${size} bytes > max-message-size ${limit}`);
    this.#peer.tracer.emit('webrtc', this.#peer.cid, '>', 'dc-message', () => ({ summary: `${this.label} ${typeof data === 'string' ? 'text' : 'binary'} ${preview(Buffer.from(data))}`, bytes: size }));
    this.raw.send(data);
  }

  /**
   * Sends like `send`, but first waits while more than `highWaterMark` bytes sit in werift's send buffer (bulk
   * transfers: without it werift queues everything in memory, and goes slower).
   */
  async write(data: string | Buffer, highWaterMark = 1024 * 1024): Promise<void> {
    if (this.raw.bufferedAmount > highWaterMark) {
      this.raw.bufferedAmountLowThreshold = highWaterMark / 4;
      await new Promise<void>((r) => this.raw.bufferedAmountLow.once(() => r()));
    }
    this.send(data);
  }

  next(timeoutMs = 5000): Promise<ChannelMessage> {
    const queued = this.#queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.#closed) return Promise.reject(this.#closed);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        reject(new WirelabError(ErrorCodes.TIMEOUT, `no message on ${this.label} within ${timeoutMs} ms`));
      }, timeoutMs);
      const w = {
        resolve: (m: ChannelMessage): void => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e: Error): void => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.#waiters.push(w);
    });
  }
}
