import type { RTCDataChannel } from 'werift';
import { ErrorCodes, WirelabError } from '../core/errors.ts';
import { ReadQueue } from '../core/read-queue.ts';
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
  readonly #queue = new ReadQueue<ChannelMessage>();
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
    const onClosed = (): void => this.#queue.fail(new WirelabError(ErrorCodes.CLOSED, `channel ${this.label} closed`));
    if (raw.readyState === 'closed') onClosed();
    else raw.stateChanged.subscribe((s) => s === 'closed' && onClosed());
    raw.onMessage.subscribe((data: Buffer | string) => {
      this.received++;
      const m = { data, binary: typeof data !== 'string', at: performance.now() };
      peer.tracer.emit('webrtc', peer.cid, '<', 'dc-message', () => ({ summary: `${this.label} ${m.binary ? 'binary' : 'text'} ${preview(Buffer.from(data))}`, bytes: Buffer.byteLength(data) }));
      if (this.onMessage) return this.onMessage(m);
      if (!this.#queue.offer(m, peer.maxQueuedMessages)) {
        this.#queue.shift();
        this.#queue.offer(m);
        this.dropped++;
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
    return this.#queue.next(timeoutMs, `message on ${this.label}`);
  }
}
