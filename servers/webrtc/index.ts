import { startWsServer, type RunningWsServer, type WsServerOptions } from '../ws/index.ts';
import { createSignaling, type Signaling, type SignalingOptions } from './signaling.ts';

export { createSignaling, SIGNALING_DEFAULTS, type Signaling, type SignalingOptions, type SignalingStats } from './signaling.ts';
// The message format, for users of this path (inside the repo, import protocols/signaling.ts).
export { ROOM_RE, RELAYED, type SignalingErrorCode } from '../../protocols/signaling.ts';
export { registerWebRtcPage } from './page.ts';

export interface SignalingServerOptions extends Omit<WsServerOptions, 'paths'> {
  /** The signaling limits (maxMessageBytes, maxRooms, maxPeersPerRoom, maxErrors, rooms). */
  signaling?: Omit<SignalingOptions, 'tracer'>;
}

export interface RunningSignalingServer extends RunningWsServer {
  /** ws://HOST:PORT/signal */
  signalUrl: string;
  signaling: Signaling;
}

/** A WebSocket server with the signaling endpoint at /signal (and the ws server's own paths: /echo, /room/<name>...). */
export async function startSignalingServer(options: SignalingServerOptions = {}): Promise<RunningSignalingServer> {
  const signaling = createSignaling({ ...options.signaling, tracer: options.tracer });
  // The message limit is ws's maxPayload on /signal: a bigger message is refused frame by frame with close 1009.
  const server = await startWsServer({ ...options, paths: { '/signal': { accept: signaling.accept, maxPayload: signaling.maxMessageBytes } } });
  return Object.assign(server, { signalUrl: `${server.url}/signal`, signaling });
}
