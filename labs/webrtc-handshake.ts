import { MediaStreamTrack, RtpHeader, RtpPacket } from 'werift';
import { connectPeerPair } from '../clients/webrtc-pair.ts';
import type { Step, WebRtcPeer } from '../clients/webrtc.ts';
import { defineLab } from '../core/lab/index.ts';
import { hasCoturn, startCoturn } from '../servers/webrtc/coturn.ts';
import { startSignalingServer } from '../servers/webrtc/index.ts';
import { r2 } from './_stats.ts';

const RTP_PACKETS = 50;
const CHAT_MESSAGES = 100;

const WHAT: Record<Step, string> = {
  start: 'RTCPeerConnection created',
  'offer-created': 'createOffer / createAnswer: SDP text made',
  'local-description': 'setLocalDescription: ICE gathering starts',
  'first-candidate': 'first local candidate (fired inside setLocalDescription)',
  'gathering-complete': 'gathering complete (null candidate)',
  'remote-description': "the other side's SDP applied",
  'ice-checking': 'ICE connectivity checks: STUN binding requests on each pair',
  'ice-connected': 'ICE connected: a pair answered',
  'dtls-start': 'DTLS transport starts',
  'dtls-connected': 'DTLS done, fingerprint matches the SDP',
  'sctp-connected': 'SCTP association up (over DTLS)',
  'channel-open': 'data channel open (DCEP OPEN / ACK)',
};

/** The SDP lines that matter for the handshake, by attribute. */
const SDP_KEYS = ['m=', 'a=setup:', 'a=fingerprint:', 'a=ice-ufrag:', 'a=ice-pwd:', 'a=candidate:', 'a=sctp-port:', 'a=max-message-size:', 'a=rtpmap:'];

function sdpLines(sdp: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of sdp.split('\r\n')) {
    const key = SDP_KEYS.find((k) => line.startsWith(k));
    if (!key || out.has(`${key}|${line}`)) continue;
    const short = key === 'a=fingerprint:' ? `${line.slice(0, 40)}…` : key === 'a=ice-pwd:' ? `${line.slice(0, 16)}… (secret)` : line;
    out.set(`${key}|${line}`, short);
  }
  return out;
}

const at = (p: WebRtcPeer, s: Step): number | undefined => (p.marks[s] === undefined ? undefined : p.marks[s]! - p.marks.start!);

export default defineLab({
  id: 'webrtc-handshake',
  title: 'WebRTC handshake: signaling, ICE, DTLS, SCTP, then a data channel (and a synthetic media track)',
  concept: "WebRTC's three parts — MediaStream, RTCPeerConnection, RTCDataChannel — need a signaling server only to swap offer, answer and candidates; after that the bytes flow peer to peer.",
  protocols: ['webrtc', 'ws'],
  timeoutMs: 60_000,
  async run(ctx) {
    const server = await ctx.start(startSignalingServer({ tracer: ctx.tracer }));
    const track = new MediaStreamTrack({ kind: 'audio' });
    let rtpReceived = 0;
    let trackKind = '';
    const pair = await connectPeerPair(
      server.signalUrl,
      'handshake',
      (a, b) => {
        a.createChannel('chat');
        a.pc.addTransceiver(track, { direction: 'sendonly' });
        b.pc.onTrack.subscribe((t) => {
          trackKind = t.kind;
          t.onReceiveRtp.subscribe(() => rtpReceived++);
        });
      },
      { tracer: ctx.tracer },
    );
    ctx.defer(() => pair.close());
    const { a, b } = pair;
    const [ca, cb] = await Promise.all([a.channel('chat'), b.channel('chat')]);

    // 1. Signaling: what the server relayed.
    const relayed = { ...server.signaling.stats.relayed };
    const offerSdp = a.pc.localDescription!.sdp;
    const answerSdp = b.pc.localDescription!.sdp;
    const offer = sdpLines(offerSdp);
    const answer = sdpLines(answerSdp);
    ctx.table(
      'SDP lines that matter (offer | answer)',
      ['offer', 'answer'],
      Array.from({ length: Math.max(offer.size, answer.size) }, (_, i) => [[...offer.values()][i] ?? '', [...answer.values()][i] ?? '']),
    );
    ctx.claim(
      'signaling carried one offer, one answer and the ICE candidates, each relayed by the server with a session id',
      relayed.offer === 1 && relayed.answer === 1 && (relayed.candidate ?? 0) >= 2,
      `relayed: ${JSON.stringify(relayed)}`,
    );
    ctx.claim(
      'the candidates fired inside setLocalDescription, before the offer could be sent: they were queued, then sent',
      a.candidatesBeforeSend >= 1,
      `${a.candidatesBeforeSend} candidate events (the last one null = end) queued on the offerer`,
    );
    const hosts = [...a.localCandidates, ...b.localCandidates];
    ctx.claim('only loopback host candidates were gathered (no STUN, no TURN, no other interface)', hosts.length > 0 && hosts.every((c) => / 127\.0\.0\.1 \d+ typ host/.test(c)), hosts[0]);
    const stun = [...a.stunServers(), ...b.stunServers()];
    ctx.claim("werift's fallback STUN server (stun.l.google.com) was cleared on every ICE connection", stun.every((s) => s === undefined), `${stun.length} ICE connections`);

    // 2. The steps, timed on each side.
    const steps = Object.keys(WHAT) as Step[];
    ctx.table(
      'Steps, ms since each RTCPeerConnection was created',
      ['step', 'offerer (a)', 'answerer (b)', 'what happens'],
      steps.map((s) => [s, at(a, s) === undefined ? '-' : r2(at(a, s)!), at(b, s) === undefined ? '-' : r2(at(b, s)!), WHAT[s]]),
    );
    const ordered = (p: WebRtcPeer): boolean => at(p, 'ice-connected')! <= at(p, 'dtls-connected')! && at(p, 'dtls-connected')! <= at(p, 'channel-open')!;
    ctx.claim('on both sides: ICE connected, then DTLS, then SCTP and the channel', ordered(a) && ordered(b), `a: ${r2(at(a, 'ice-connected')!)} → ${r2(at(a, 'dtls-connected')!)} → ${r2(at(a, 'channel-open')!)} ms`);
    const selected = a.selectedPair();
    const hostPort = (c: string): string => c.split(' ').slice(4, 6).join(':');
    if (selected) ctx.note(`ICE chose the pair ${hostPort(selected.local)} ↔ ${hostPort(selected.remote)} (UDP, host to host)`);

    // 3. DTLS: who is the client, and werift's 100 ms wait.
    const answerSetup = /a=setup:(\w+)/.exec(answerSdp)?.[1];
    const client = answerSetup === 'active' ? b : a;
    const dtlsMs = at(client, 'dtls-connected')! - at(client, 'dtls-start')!;
    ctx.claim(
      `the answer says a=setup:${answerSetup}: the answerer is the DTLS client, and its handshake took at least werift's 100 ms wait before the ClientHello`,
      answerSetup === 'active' && dtlsMs >= 100,
      `DTLS start → connected on the client: ${r2(dtlsMs)} ms`,
    );
    ctx.measure('DTLS client, start to connected (includes the 100 ms wait)', r2(dtlsMs), 'ms');
    ctx.measure('offerer: RTCPeerConnection to channel open', r2(at(a, 'channel-open')!), 'ms');
    ctx.note(
      "werift's DTLS client sleeps 100 ms (setTimeout(100) in its RTCDtlsTransport.start) before sending the ClientHello: most of the time between ICE connected and DTLS connected is that wait, not the handshake. A Chromium offerer opens its channel sooner (see test/interop/webrtc-chromium.test.ts).",
    );

    // 4. Data: bytes through the server before and after the channel opened.
    const before = server.signaling.stats.bytesIn + server.signaling.stats.bytesOut;
    for (let i = 0; i < CHAT_MESSAGES; i++) ca.send(`message ${i}`);
    let got = 0;
    while (got < CHAT_MESSAGES) {
      await cb.next();
      got++;
    }
    const afterBytes = server.signaling.stats.bytesIn + server.signaling.stats.bytesOut;
    ctx.claim(`${CHAT_MESSAGES} chat messages went peer to peer: the signaling server saw no new byte`, got === CHAT_MESSAGES && afterBytes === before, `${got} delivered; server bytes ${before} → ${afterBytes}`);

    // 5. The seed's three components: a MediaStreamTrack (synthetic: no camera here), the RTCPeerConnection, the channel.
    for (let i = 0; i < RTP_PACKETS; i++) {
      track.writeRtp(new RtpPacket(new RtpHeader({ payloadType: 96, sequenceNumber: i, timestamp: i * 960 }), Buffer.alloc(40, i)));
      await new Promise((r) => setTimeout(r, 2));
    }
    const deadline = performance.now() + 2000;
    while (rtpReceived < RTP_PACKETS && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    ctx.claim(
      `a synthetic audio MediaStreamTrack sent ${RTP_PACKETS} RTP packets over SRTP on the same connection, and the other side's track got them`,
      trackKind === 'audio' && rtpReceived >= RTP_PACKETS * 0.9,
      `ontrack kind=${trackKind || 'none'}, ${rtpReceived}/${RTP_PACKETS} packets`,
    );
    ctx.note('No camera or microphone here: getUserMedia is a browser API. The track is werift MediaStreamTrack fed 40-byte RTP payloads (not real Opus); the point is the path: RTP → SRTP → the same ICE pair (BUNDLE) → ontrack.');
  
    // 6. The relay variant: only TURN relay candidates, through Debian's coturn on 127.0.0.1, when it is installed.
    if (!hasCoturn()) {
      ctx.note('The TURN variant needs Debian\'s coturn (turnserver): not installed here, skipped. `npm run peers` installs it.');
      return;
    }
    const turn = await startCoturn();
    ctx.defer(() => turn.close());
    const relay = await connectPeerPair(server.signalUrl, 'relay', (x) => x.createChannel('chat'), {
      tracer: ctx.tracer,
      iceServers: [{ urls: turn.url, username: turn.username, credential: turn.password }],
      iceTransportPolicy: 'relay',
    });
    ctx.defer(() => relay.close());
    const [ra, rb] = await Promise.all([relay.a.channel('chat'), relay.b.channel('chat')]);
    ra.send('via TURN');
    const viaTurn = (await rb.next()).data;
    const rsel = relay.a.selectedPair();
    ctx.claim(
      `with iceTransportPolicy 'relay' and coturn (pid ${turn.pid}) on ${turn.url}, both ends of the chosen pair are TURN relay candidates and the channel works`,
      viaTurn === 'via TURN' && / typ relay /.test(rsel?.local ?? '') && / typ relay /.test(rsel?.remote ?? ''),
      rsel ? `${hostPort(rsel.local)} ↔ ${hostPort(rsel.remote)}` : 'no pair',
    );
    ctx.measure('offerer: RTCPeerConnection to channel open, relay only (TURN allocate + permissions first)', r2(at(relay.a, 'channel-open')!), 'ms');
  },
});
