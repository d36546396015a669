/**
 * A Node DM peer over the chat server's signaling: wirelab's werift peer (clients/webrtc.ts) with the chat protocol's
 * `signal` messages in place of the WebRTC signaling server's. The chat-transports lab uses it for its WebRTC row; the
 * terminal client does not (its /dm goes through the relay). The chat client given must be made with
 * `declineDmOffers: false`, or it answers every offer with bye.
 */
import { EventEmitter } from 'node:events';
import { WebRtcPeer, type PeerChannel, type WebRtcPeerOptions } from '../../clients/webrtc.ts';
import type { SignalingClient } from '../../clients/signaling.ts';
import { ErrorCodes, WirelabError } from '../../core/errors.ts';
import type { RelayedMessage } from '../../protocols/signaling.ts';
import type { ChatClient } from './client.ts';

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
export async function openDmPeer(chat: ChatClient, remote: string, role: 'call' | 'answer', options: WebRtcPeerOptions = {}): Promise<DmPeer> {
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
      await peer.call(signal, remote);
    } else await peer.answer(signal, remote);
    const channel = await peer.channel('dm');
    return { peer, channel, close };
  } catch (err) {
    await close();
    throw err;
  }
}
