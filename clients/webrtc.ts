import { randomBytes } from 'node:crypto';
import { RTCPeerConnection, type RTCDataChannel, type RTCIceCandidate } from 'werift';
import { ErrorCodes, WirelabError } from '../core/errors.ts';
import { checkInt, InvalidOptionError } from '../core/options.ts';
import { NOOP_TRACER, nextCid, type Role, type Tracer } from '../core/trace/index.ts';
import { tapDatagrams } from '../core/capture/taps.ts';
import dgram from 'node:dgram';
import type { SignalingClient, SignalOf } from './signaling.ts';
import { PeerChannel, type ChannelOptions } from './webrtc-channel.ts';

export { PeerChannel, type ChannelMessage, type ChannelOptions } from './webrtc-channel.ts';

export interface WebRtcPeerOptions {
  /**
   * Gather only a 127.0.0.1 host candidate: werift's iceAdditionalHostAddresses ['127.0.0.1'] with iceUseIpv4 and
   * iceUseIpv6 false (it skips loopback interfaces otherwise). Default true.
   */
  loopbackOnly?: boolean;
  /**
   * STUN / TURN servers. Default []: and then the ICE connection's stunServer is cleared too, because werift falls back
   * to stun.l.google.com:19302 when it has none (a DNS lookup, then a request to the internet).
   */
  iceServers?: Array<{ urls: string; username?: string; credential?: string }>;
  /** 'relay': only TURN relay candidates (a TURN server in iceServers is then needed). Default 'all'. */
  iceTransportPolicy?: 'all' | 'relay';
  /** Largest data-channel message sent or accepted, in bytes (SDP a=max-message-size). Default 65,536. */
  maxMessageSize?: number;
  /** Give up ICE + DTLS + SCTP + channel open after this long. Default 10,000 ms. */
  connectTimeoutMs?: number;
  /**
   * Messages a channel keeps for `next()` when nobody reads them (no `onMessage`); past it the oldest is dropped and
   * counted in `channel.dropped`. Default 10,000.
   */
  maxQueuedMessages?: number;
  /** Remote candidates kept until the remote description is set; more are dropped. Default 256. */
  maxPendingCandidates?: number;
  tracer?: Tracer;
}

export const WEBRTC_PEER_DEFAULTS = {
  loopbackOnly: true,
  maxMessageSize: 65_536,
  connectTimeoutMs: 10_000,
  iceTransportPolicy: 'all' as 'all' | 'relay',
  maxQueuedMessages: 10_000,
  maxPendingCandidates: 256,
};


/** The step names of `marks`, in the order they happen. */
export const STEPS = [
  'start',
  'offer-created',
  'local-description',
  'first-candidate',
  'gathering-complete',
  'remote-description',
  'ice-checking',
  'ice-connected',
  'dtls-start',
  'dtls-connected',
  'sctp-connected',
  'channel-open',
] as const;
export type Step = (typeof STEPS)[number];

/** werift's ICE connection (not exported by its types): what this peer touches. */
interface IceConnection {
  stunServer?: unknown;
  close?(): Promise<void>;
  /** werift's candidate sockets: each protocol's transport holds a dgram socket (STUN, DTLS, SRTP all go through it). */
  protocols?: Array<{ transport?: { socket?: unknown } }>;
}


/**
 * A WebRTC peer over werift, for loopback: data channels, text and binary, a queue of local ICE candidates that are
 * sent (tagged with the session id) only once the offer or answer has gone, and `marks`: when each step happened.
 */
export class WebRtcPeer {
  readonly pc: RTCPeerConnection;
  readonly cid = nextCid('webrtc');
  readonly tracer: Tracer;
  readonly maxMessageSize: number;
  readonly maxQueuedMessages: number;
  /** performance.now() of each step, as this peer saw it. */
  readonly marks: Partial<Record<Step, number>> = {};
  readonly channels = new Map<string, PeerChannel>();
  /** Local candidates as gathered (the SDP lines), and how many fired before the description could be sent. */
  readonly localCandidates: string[] = [];
  candidatesBeforeSend = 0;
  /** The session id of the current negotiation (chosen by the offerer). */
  session = '';
  remote = '';
  readonly #o: Required<Omit<WebRtcPeerOptions, 'tracer' | 'iceServers'>> & { iceServers: NonNullable<WebRtcPeerOptions['iceServers']> };
  #pendingLocal: Array<RTCIceCandidate | null> = [];
  #canSend = false;
  #pendingRemote: Array<SignalOf<'candidate'>['candidate']> = [];
  #signal?: SignalingClient;
  readonly #channelWaiters = new Map<string, (c: PeerChannel) => void>();
  /** Every ICE connection this peer had: BUNDLE drops the extra ones from pc without closing their UDP sockets. */
  readonly #seen = new Set<IceConnection>();

  constructor(options: WebRtcPeerOptions = {}) {
    const o = { ...WEBRTC_PEER_DEFAULTS, iceServers: [], ...options };
    checkInt('maxMessageSize', o.maxMessageSize, 1, 256 * 1024 * 1024);
    checkInt('connectTimeoutMs', o.connectTimeoutMs, 1, 600_000);
    checkInt('maxQueuedMessages', o.maxQueuedMessages, 1, 10_000_000);
    checkInt('maxPendingCandidates', o.maxPendingCandidates, 1, 100_000);
    if (typeof o.loopbackOnly !== 'boolean') throw new InvalidOptionError('loopbackOnly', 'a boolean', o.loopbackOnly);
    if (!Array.isArray(o.iceServers)) throw new InvalidOptionError('iceServers', 'an array', o.iceServers);
    if (o.iceTransportPolicy !== 'all' && o.iceTransportPolicy !== 'relay') throw new InvalidOptionError('iceTransportPolicy', "'all' or 'relay'", o.iceTransportPolicy);
    this.#o = o;
    this.tracer = options.tracer ?? NOOP_TRACER;
    this.maxMessageSize = o.maxMessageSize;
    this.maxQueuedMessages = o.maxQueuedMessages;
    this.marks.start = performance.now();
    this.pc = new RTCPeerConnection({
      iceServers: o.iceServers,
      iceTransportPolicy: o.iceTransportPolicy,
      maxMessageSize: o.maxMessageSize,
      ...(o.loopbackOnly ? { iceAdditionalHostAddresses: ['127.0.0.1'], iceUseIpv4: false, iceUseIpv6: false } : {}),
    });
    const mark = (step: Step, summary: string): void => {
      if (this.marks[step] !== undefined) return;
      this.marks[step] = performance.now();
      this.tracer.emit('webrtc', this.cid, '*', step, () => `${summary} (+${(this.marks[step]! - this.marks.start!).toFixed(1)} ms)`);
    };
    this.mark = mark;
    this.pc.onicecandidate = ({ candidate }) => {
      this.#tapWire();
      if (candidate) {
        mark('first-candidate', `candidate ${candidate.candidate}`);
        this.localCandidates.push(candidate.candidate);
      } else mark('gathering-complete', 'gathering complete');
      if (this.#canSend) this.#sendCandidate(candidate ?? null);
      else {
        this.candidatesBeforeSend++;
        this.#pendingLocal.push(candidate ?? null);
      }
    };
    this.pc.iceConnectionStateChange.subscribe((s) => {
      if (s === 'checking') this.#tapWire();
      if (s === 'checking') mark('ice-checking', 'ICE connectivity checks (STUN binding requests on the candidate pairs)');
      // werift reports 'completed' as soon as gathering ends, before any check: only 'connected' means a pair answered.
      if (s === 'connected') mark('ice-connected', 'ICE connected: a candidate pair answered its STUN binding request');
    });
    this.pc.connectionStateChange.subscribe((s) => {
      if (s === 'connected') mark('dtls-connected', 'DTLS handshake done, certificate fingerprint checked against the SDP');
    });
    this.pc.ondatachannel = ({ channel }) => this.#adopt(channel);
  }

  /** Records a step once (exposed for the signaling side of a lab). */
  readonly mark: (step: Step, summary: string) => void;

  /** The remote peer's a=max-message-size (werift's default until the remote description is set). */
  get remoteMaxMessageSize(): number {
    return (this.pc.sctpTransport as unknown as { remoteMaxMessageSize?: number } | undefined)?.remoteMaxMessageSize || Number.MAX_SAFE_INTEGER;
  }

  /** The candidate pair ICE chose (SDP candidate lines, without the "candidate:" prefix), or undefined before. */
  selectedPair(): { local: string; remote: string } | undefined {
    type Pair = { local: { candidate: string }; remote: { candidate: string } } | null;
    const t = (this.pc as unknown as { iceTransports?: Array<{ getSelectedCandidatePair(): Pair }> }).iceTransports?.[0];
    const pair = t?.getSelectedCandidatePair();
    return pair ? { local: pair.local.candidate, remote: pair.remote.candidate } : undefined;
  }

  /** The STUN server each ICE connection would ask, after this peer's fix: undefined when none was configured. */
  stunServers(): unknown[] {
    return this.#iceConnections().map((c) => c.stunServer);
  }

  #iceConnections(): IceConnection[] {
    const transports = (this.pc as unknown as { iceTransports?: Array<{ connection: IceConnection }> }).iceTransports ?? [];
    return transports.map((t) => t.connection);
  }

  /** The offerer is the client of the UDP conversations (as ICE's controlling side), so both peers' taps pair. */
  #role: Role = 'client';
  readonly #tapped = new WeakSet<object>();

  /**
   * The datagrams of every candidate socket werift made (STUN checks, DTLS, SCTP in DTLS, SRTP), for the pcapng export
   * when a sink wants the bytes: called as candidates are gathered, before any check is sent or received.
   */
  #tapWire(): void {
    if (!this.tracer.wire) return;
    for (const c of this.#iceConnections()) {
      for (const p of c.protocols ?? []) {
        const socket = p.transport?.socket;
        if (!(socket instanceof dgram.Socket) || this.#tapped.has(socket)) continue;
        this.#tapped.add(socket);
        tapDatagrams(this.tracer, 'webrtc', this.cid, socket, this.#role);
      }
    }
  }

  /** werift falls back to a public STUN server when none is configured: clear it before gathering starts. */
  #clearDefaultStun(): void {
    const dtls = (this.pc.sctpTransport as unknown as { dtlsTransport?: { onStateChange: { subscribe(f: (s: string) => void): unknown } } } | undefined)?.dtlsTransport;
    dtls?.onStateChange.subscribe((s) => {
      if (s === 'connecting') this.mark('dtls-start', 'DTLS starts (a werift client first waits 100 ms)');
    });
    for (const c of this.#iceConnections()) this.#seen.add(c);
    if (this.#o.iceServers.some((s) => String(s.urls).startsWith('stun'))) return;
    for (const c of this.#iceConnections()) c.stunServer = undefined;
  }

  #adopt(raw: RTCDataChannel): PeerChannel {
    const ch = new PeerChannel(this, raw);
    this.channels.set(ch.label, ch);
    void ch.opened.then(() => {
      this.mark('sctp-connected', 'SCTP association up over DTLS (INIT, INIT-ACK, COOKIE-ECHO, COOKIE-ACK)');
      this.mark('channel-open', `data channel "${ch.label}" open (DCEP OPEN / ACK)`);
    });
    this.#channelWaiters.get(ch.label)?.(ch);
    return ch;
  }

  /** A new data channel (the offerer makes them before the offer; the answerer gets them with `channel(label)`). */
  createChannel(label: string, options: ChannelOptions = {}): PeerChannel {
    if (options.maxRetransmits !== undefined && options.maxPacketLifeTime !== undefined) {
      throw new InvalidOptionError('maxRetransmits', 'not set together with maxPacketLifeTime', options.maxRetransmits);
    }
    return this.#adopt(this.pc.createDataChannel(label, { ordered: options.ordered ?? true, maxRetransmits: options.maxRetransmits, maxPacketLifeTime: options.maxPacketLifeTime }));
  }

  /** The channel with this label once it exists and is open (created here or announced by the remote). */
  async channel(label: string, timeoutMs = this.#o.connectTimeoutMs): Promise<PeerChannel> {
    const ch =
      this.channels.get(label) ??
      (await new Promise<PeerChannel>((resolve, reject) => {
        const timer = setTimeout(() => reject(new WirelabError(ErrorCodes.WEBRTC_FAILED, `no data channel "${label}" within ${timeoutMs} ms (ICE ${this.pc.iceConnectionState}, ${this.pc.connectionState})`)), timeoutMs);
        this.#channelWaiters.set(label, (c) => {
          clearTimeout(timer);
          resolve(c);
        });
      }));
    await withTimeout(ch.opened, timeoutMs, () => `data channel "${label}" did not open within ${timeoutMs} ms (ICE ${this.pc.iceConnectionState}, ${this.pc.connectionState})`);
    return ch;
  }

  #sendCandidate(c: RTCIceCandidate | null): void {
    this.#signal?.send({ type: 'candidate', to: this.remote, session: this.session, candidate: c ? c.toJSON() : null });
  }

  #flushLocal(): void {
    this.#canSend = true;
    for (const c of this.#pendingLocal.splice(0)) this.#sendCandidate(c);
  }

  async #flushRemote(): Promise<void> {
    for (const c of this.#pendingRemote.splice(0)) await this.#addRemote(c);
  }

  async #addRemote(c: SignalOf<'candidate'>['candidate']): Promise<void> {
    if (c) await this.pc.addIceCandidate(c);
  }

  /** Takes the remote's candidates for the current session (those of another session are dropped). */
  #listen(signal: SignalingClient): void {
    this.#signal = signal;
    const onCandidate = (m: SignalOf<'candidate'>): void => {
      if (m.from !== this.remote || m.session !== this.session) return;
      if (this.pc.remoteDescription) void this.#addRemote(m.candidate).catch(() => undefined);
      else if (this.#pendingRemote.length < this.#o.maxPendingCandidates) this.#pendingRemote.push(m.candidate);
    };
    signal.on('candidate', onCandidate);
    const onBye = (m: SignalOf<'bye'>): void => {
      if (m.from !== this.remote || m.session !== this.session) return;
      this.tracer.emit('webrtc', this.cid, '<', 'bye', () => `bye from ${this.remote}: closing`);
      this.hungUp = true;
      void this.close();
    };
    signal.on('bye', onBye);
  }

  /** True once the remote sent bye for the current session (and this peer closed). */
  hungUp = false;

  /** Sends bye for the current session to the remote, then closes. */
  async hangUp(): Promise<void> {
    this.#signal?.send({ type: 'bye', to: this.remote, session: this.session });
    await this.close();
  }

  /** Offerer: creates the offer (after the channels), sends it to `remote`, applies the answer. */
  async call(signal: SignalingClient, remote: string): Promise<void> {
    this.#role = 'client';
    this.remote = remote;
    this.session = randomBytes(6).toString('base64url');
    this.#listen(signal);
    const offer = await this.pc.createOffer();
    this.mark('offer-created', 'offer created');
    this.#clearDefaultStun();
    await this.pc.setLocalDescription(offer);
    this.#tapWire();
    this.mark('local-description', 'setLocalDescription(offer): gathering starts');
    const answer = signal.waitFor('answer', (m) => m.from === remote && m.session === this.session, this.#o.connectTimeoutMs);
    signal.send({ type: 'offer', to: remote, session: this.session, sdp: this.pc.localDescription!.sdp });
    this.#flushLocal();
    const a = await answer;
    await this.pc.setRemoteDescription({ type: 'answer', sdp: a.sdp });
    this.mark('remote-description', 'answer applied');
    await this.#flushRemote();
  }

  /** Answerer: waits for an offer (from `from`, or anyone in the room), answers it. */
  async answer(signal: SignalingClient, from?: string): Promise<void> {
    const offer = await signal.waitFor('offer', (m) => from === undefined || m.from === from, this.#o.connectTimeoutMs);
    this.#role = 'server';
    this.remote = String(offer.from);
    this.session = offer.session;
    this.#listen(signal);
    await this.pc.setRemoteDescription({ type: 'offer', sdp: offer.sdp });
    this.mark('remote-description', 'offer applied');
    this.#clearDefaultStun();
    const answer = await this.pc.createAnswer();
    this.mark('offer-created', 'answer created');
    await this.pc.setLocalDescription(answer);
    this.#tapWire();
    this.mark('local-description', 'setLocalDescription(answer): gathering starts');
    signal.send({ type: 'answer', to: this.remote, session: this.session, sdp: this.pc.localDescription!.sdp });
    this.#flushLocal();
    await this.#flushRemote();
  }

  /** Milliseconds from `start` to each step that happened. */
  timeline(): Array<{ step: Step; ms: number }> {
    return STEPS.filter((s) => this.marks[s] !== undefined).map((s) => ({ step: s, ms: this.marks[s]! - this.marks.start! }));
  }

  async close(): Promise<void> {
    await this.pc.close();
    for (const c of this.#seen) await c.close?.().catch(() => undefined);
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, message: () => string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new WirelabError(ErrorCodes.WEBRTC_FAILED, message())), ms))),
  ]);
}

export function createWebRtcPeer(options: WebRtcPeerOptions = {}): WebRtcPeer {
  return new WebRtcPeer(options);
}
