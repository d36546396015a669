/**
 * A Node DM peer over the chat server's signaling: wirelab's werift peer (clients/webrtc.ts) with the chat protocol's
 * `signal` messages in place of the WebRTC signaling server's. `openDmPeer` is one channel (the chat-transports lab's
 * WebRTC row); `DmAgent` is what the terminal client uses: it answers offers (from a page or another terminal), opens a
 * channel for `/dm`, speaks the page's DM format on it ({ id, text } answered by { id, ack: true }), and falls back to
 * the relay when the channel does not open within iceTimeoutMs. The chat client given must be made with
 * `declineDmOffers: false`, or it answers every offer with bye.
 */
import { sleep } from '../../core/time.ts';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { WebRtcPeer, type PeerChannel, type WebRtcPeerOptions } from '../../clients/webrtc.ts';
import type { SignalingClient } from '../../clients/signaling.ts';
import { ErrorCodes, WirelabError } from '../../core/errors.ts';
import type { RelayedMessage } from '../../protocols/signaling.ts';
import type { ChatClient } from './client.ts';
import type { ServerMessage } from './protocol.ts';

/** The part of SignalingClient a WebRtcPeer uses (send, on, off, waitFor), over a chat connection. */
class ChatSignaling extends EventEmitter {
  readonly #off: () => void;

  constructor(readonly chat: ChatClient) {
    super();
    this.#off = chat.on((m) => {
      if (m.type !== 'signal') return;
      const base = { type: m.kind, from: m.from, to: chat.name, session: m.session };
      const relayed = m.kind === 'candidate' ? { ...base, candidate: m.candidate ?? null } : m.kind === 'bye' ? base : { ...base, sdp: m.sdp ?? '' };
      this.emit(m.kind, relayed);
    });
  }

  send(msg: RelayedMessage): void {
    const base = { type: 'signal', to: msg.to, session: msg.session, kind: msg.type } as const;
    if (msg.type === 'candidate') this.chat.raw({ ...base, candidate: msg.candidate });
    else if (msg.type === 'bye') this.chat.raw(base);
    else this.chat.raw({ ...base, sdp: msg.sdp });
  }

  waitFor(type: string, match: (m: RelayedMessage) => boolean = () => true, timeoutMs = 5000): Promise<RelayedMessage> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off(type, on);
        reject(new WirelabError(ErrorCodes.WEBRTC_FAILED, `no ${type} signal within ${timeoutMs} ms`));
      }, timeoutMs);
      const on = (m: RelayedMessage): void => {
        if (!match(m)) return;
        clearTimeout(timer);
        this.off(type, on);
        resolve(m);
      };
      this.on(type, on);
    });
  }

  close(): void {
    this.#off();
  }
}

export interface DmPeer {
  readonly peer: WebRtcPeer;
  readonly channel: PeerChannel;
  close(): Promise<void>;
}

/** Opens a "dm" data channel to `remote` (the offerer calls, the other side answers), signaled through the chat server. */
export async function openDmPeer(chat: ChatClient, remote: string, role: 'call' | 'answer', options: WebRtcPeerOptions = {}, offer?: RelayedMessage): Promise<DmPeer> {
  const signaling = new ChatSignaling(chat);
  const peer = new WebRtcPeer(options);
  const close = async (): Promise<void> => {
    signaling.close();
    await peer.close();
  };
  try {
    const signal = signaling as unknown as SignalingClient;
    if (role === 'call') {
      peer.createChannel('dm');
      // The other side may decline (a client without WebRTC answers bye): give up at once, not at the timeout.
      let onBye!: (m: RelayedMessage) => void;
      const declined = new Promise<never>((_, reject) => {
        onBye = (m) => {
          if (m.from === remote && m.session === peer.session) reject(new WirelabError(ErrorCodes.WEBRTC_FAILED, `${remote} declined the DM channel (bye)`));
        };
        signaling.on('bye', onBye);
      });
      declined.catch(() => undefined);
      try {
        await Promise.race([peer.call(signal, remote), declined]);
      } finally {
        signaling.off('bye', onBye);
      }
    } else {
      const answering = peer.answer(signal, remote);
      // An offer that already arrived (the agent saw it first) is handed in now that answer() waits for it.
      if (offer) signaling.emit('offer', offer);
      await answering;
    }
    const channel = await peer.channel('dm');
    return { peer, channel, close };
  } catch (err) {
    await close();
    throw err;
  }
}

export type DmVia = 'webrtc (p2p)' | 'relay';

export interface DmAgentOptions {
  /** How long a channel may take to open before DMs to that user go through the relay. */
  iceTimeoutMs: number;
  /** A DM arrived (over the channel; relayed ones come as `dm` messages of the chat client). */
  onDm(from: string, text: string): void;
  peer?: WebRtcPeerOptions;
}

/** DMs peer to peer from Node, with the relay as the fallback (per user: once a channel failed, that user is relayed). */
export class DmAgent {
  readonly #peers = new Map<string, Promise<DmPeer | undefined>>();
  /** Users whose channel already got its second try. */
  readonly #retried = new Set<string>();
  /** Why the last channel to a user did not open (shown next to a relayed DM). */
  readonly #why = new Map<string, string>();
  readonly #acks = new Map<string, () => void>();
  readonly #off: () => void;

  constructor(
    readonly chat: ChatClient,
    readonly o: DmAgentOptions,
  ) {
    this.#off = chat.on((m: ServerMessage) => {
      if (m.type !== 'signal' || m.kind !== 'offer') return;
      const offer: RelayedMessage = { type: 'offer', from: m.from, to: chat.name, session: m.session, sdp: m.sdp ?? '' };
      // A new offer replaces the channel to that user (the page reopens after a reload).
      void this.#peers.get(m.from)?.then((p) => p?.close());
      this.#peers.set(m.from, this.#adopt(m.from, openDmPeer(chat, m.from, 'answer', this.#peerOptions(), offer)));
    });
  }

  /**
   * Sends a DM: over the data channel when one opens (or is open), else through the relay. Resolves with the path, the
   * round trip and, for a relayed DM, why the channel did not open.
   */
  async send(to: string, text: string): Promise<{ via: DmVia; ms: number; why?: string }> {
    let p = this.#peers.get(to);
    if (!p) this.#peers.set(to, (p = this.#adopt(to, openDmPeer(this.chat, to, 'call', this.#peerOptions()))));
    let peer = await p;
    if (!peer && !this.#retried.has(to)) {
      // One more try per user, as the page does after a fallback: a first offer can reach the other side before its
      // DM agent listens, and be declined.
      this.#retried.add(to);
      await sleep(500);
      this.#peers.set(to, (p = this.#adopt(to, openDmPeer(this.chat, to, 'call', this.#peerOptions()))));
      peer = await p;
    }
    if (!peer || peer.channel.raw.readyState !== 'open') {
      const why = peer ? `the data channel is ${peer.channel.raw.readyState}` : (this.#why.get(to) ?? 'no data channel');
      return { via: 'relay', ms: await this.chat.dm(to, text), why };
    }
    const id = randomBytes(9).toString('base64url');
    const t0 = performance.now();
    const acked = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#acks.delete(id);
        reject(new WirelabError(ErrorCodes.WEBRTC_FAILED, `no receipt from ${to} over the data channel within ${this.o.iceTimeoutMs} ms`));
      }, this.o.iceTimeoutMs);
      this.#acks.set(id, () => {
        clearTimeout(timer);
        resolve();
      });
    });
    peer.channel.send(JSON.stringify({ id, text }));
    await acked;
    return { via: 'webrtc (p2p)', ms: performance.now() - t0 };
  }

  async close(): Promise<void> {
    this.#off();
    for (const p of this.#peers.values()) await (await p)?.close();
  }

  #peerOptions(): WebRtcPeerOptions {
    return { ...this.o.peer, connectTimeoutMs: this.o.iceTimeoutMs };
  }

  /** A channel being opened: its messages handled once open; undefined when it failed (that user is relayed). */
  #adopt(remote: string, opening: Promise<DmPeer>): Promise<DmPeer | undefined> {
    return opening.then(
      (p) => {
        p.channel.onMessage = (msg) => {
          let m: { id?: unknown; text?: unknown; ack?: unknown };
          try {
            m = JSON.parse(msg.data.toString()) as typeof m;
          } catch {
            return;
          }
          if (typeof m.id !== 'string') return;
          if (m.ack === true) return this.#acks.get(m.id)?.();
          if (typeof m.text !== 'string') return;
          p.channel.send(JSON.stringify({ id: m.id, ack: true }));
          this.o.onDm(remote, m.text);
        };
        this.#why.delete(remote);
        return p;
      },
      (err: Error) => {
        this.#why.set(remote, err.message);
        return undefined;
      },
    );
  }
}
