import type { Tracer } from '../core/trace/index.ts';
import { connectSignaling, type SignalingClient } from './signaling.ts';
import { createWebRtcPeer, type WebRtcPeer, type WebRtcPeerOptions } from './webrtc.ts';

export interface PeerPair {
  /** The offerer (it made the channels) and the answerer. */
  a: WebRtcPeer;
  b: WebRtcPeer;
  sa: SignalingClient;
  sb: SignalingClient;
  /** Closes both peers and both signaling connections. */
  close(): Promise<void>;
}

/**
 * Two werift peers that join `room` on the signaling server at `signalUrl`; `a` makes its channels (and tracks) in
 * `setup`, then calls `b`, which answers. Resolves when both sides have applied both descriptions (ICE, DTLS and SCTP
 * may still be on their way: await `peer.channel(label)`).
 */
export async function connectPeerPair(
  signalUrl: string,
  room: string,
  setup: (a: WebRtcPeer, b: WebRtcPeer) => void,
  options: WebRtcPeerOptions & { tracer?: Tracer } = {},
): Promise<PeerPair> {
  const sa = await connectSignaling({ url: signalUrl, room, tracer: options.tracer });
  const sb = await connectSignaling({ url: signalUrl, room, tracer: options.tracer });
  const a = createWebRtcPeer(options);
  const b = createWebRtcPeer(options);
  const close = async (): Promise<void> => {
    await a.close();
    await b.close();
    await sa.close();
    await sb.close();
  };
  try {
    setup(a, b);
    await Promise.all([a.call(sa, sb.id), b.answer(sb, sa.id)]);
  } catch (err) {
    await close();
    throw err;
  }
  return { a, b, sa, sb, close };
}
