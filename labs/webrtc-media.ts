import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startUdpRelay } from '../core/impair/index.ts';
import { defineLab } from '../core/lab/index.ts';
import { send, startHttpServer } from '../servers/http/index.ts';
import { r2 } from './_stats.ts';

/**
 * A real browser media pipeline: two Chromium pages, getUserMedia on Chromium's fake capture device (a test pattern and
 * a beep), RTP over DTLS-SRTP from one page to the other, and a data channel beside it on the same ICE transport. Every
 * datagram between the pages crosses wirelab's UDP relay (the answer the offerer sees names only the relay, and the
 * offer the answerer sees names no candidate at all, so it learns the offerer as the relay's address): the relay then
 * drops a share of them, and getStats() on each page says what that did to the media and to the channel.
 */

/** Debian's chromium (never a downloaded browser); WIRELAB_CHROMIUM points elsewhere (a test points it nowhere to see the skip). */
const chromiumPath = (): string => process.env.WIRELAB_CHROMIUM || '/usr/bin/chromium';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--allow-loopback-in-peer-connection',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  // The fake camera and microphone, and no permission prompt for them.
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
];

/** The first byte of a datagram on a WebRTC 5-tuple says what it is (RFC 7983): STUN, DTLS (the channel's SCTP rides in it), RTP/RTCP. */
function kindOf(first: number | undefined): 'stun' | 'dtls' | 'rtp' | 'other' {
  if (first === undefined) return 'other';
  if (first <= 3) return 'stun';
  if (first >= 20 && first <= 63) return 'dtls';
  if (first >= 128 && first <= 191) return 'rtp';
  return 'other';
}

/** What the pages run (plain script text: it executes in Chromium, not here). */
const OFFERER = `(async () => {
  const gathered = (pc) => new Promise((r) => { if (pc.iceGatheringState === 'complete') r(); pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r(); });
  const pc = new RTCPeerConnection();
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 320, height: 240, frameRate: 15 } });
  for (const t of stream.getTracks()) pc.addTrack(t, stream);
  const dc = pc.createDataChannel('chat');
  window.wl = { pc, dc };
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  return { sdp: pc.localDescription.sdp, tracks: stream.getTracks().map((t) => ({ kind: t.kind, label: t.label })) };
})()`;

const ANSWERER = (offer: string): string => `(async () => {
  const gathered = (pc) => new Promise((r) => { if (pc.iceGatheringState === 'complete') r(); pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r(); });
  const pc = new RTCPeerConnection();
  const wl = { pc, tracks: [], got: [] };
  window.wl = wl;
  pc.ontrack = (e) => wl.tracks.push(e.track.kind);
  pc.ondatachannel = (e) => { wl.channel = { label: e.channel.label, ordered: e.channel.ordered, maxRetransmits: e.channel.maxRetransmits }; e.channel.onmessage = (m) => wl.got.push(Number(m.data)); };
  await pc.setRemoteDescription({ type: 'offer', sdp: ${JSON.stringify(offer)} });
  await pc.setLocalDescription(await pc.createAnswer());
  await gathered(pc);
  return pc.localDescription.sdp;
})()`;

/** getStats() as plain objects, by type (inbound-rtp by kind). */
const STATS = `(async () => {
  const out = [];
  (await window.wl.pc.getStats()).forEach((s) => out.push(s));
  return out;
})()`;

type Stat = Record<string, unknown> & { type: string; id: string };

interface MediaStats {
  audio?: Stat;
  video?: Stat;
  codecs: Record<string, string>;
  transport?: Stat;
  channel?: Stat;
}

function media(stats: Stat[], dir: 'inbound-rtp' | 'outbound-rtp'): MediaStats {
  const byId = new Map(stats.map((s) => [s.id, s]));
  const out: MediaStats = { codecs: {} };
  for (const s of stats) {
    if (s.type === dir && (s.kind === 'audio' || s.kind === 'video')) {
      out[s.kind] = s;
      const codec = byId.get(String(s.codecId));
      if (codec) out.codecs[s.kind] = String(codec.mimeType);
    }
    if (s.type === 'transport') out.transport = s;
    if (s.type === 'data-channel') out.channel = s;
  }
  return out;
}

const num = (s: Stat | undefined, k: string): number => Number(s?.[k] ?? 0);

function hasChromium(): boolean {
  return spawnSync('sh', ['-c', 'command -v "$0"', chromiumPath()], { stdio: 'ignore' }).status === 0;
}

export default defineLab({
  id: 'webrtc-media',
  title: "WebRTC MediaStream in a real browser: getUserMedia → RTP between two Chromium pages, and A/V vs data under loss",
  concept: 'MediaStream captures, RTCPeerConnection carries it as SRTP over UDP, RTCDataChannel carries data beside it: lost media packets stay lost (the picture and sound go on), lost channel data is sent again (every message, in order).',
  protocols: ['webrtc', 'udp'],
  timeoutMs: 120_000, // Chromium's start, two pages and ICE take 5-15 s here with both cores loaded
  params: {
    loss: { kind: 'percent', default: '10%', min: 0.05, max: 0.3, help: 'datagrams the relay drops, each way, once the call is up (from 5 %: a few seconds of audio must lose a packet)' },
    messages: { kind: 'count', default: 200, min: 20, max: 5000, help: 'numbered data-channel messages sent while the loss is on' },
  },
  async run(ctx) {
    if (!hasChromium()) ctx.skip('needs chromium (Debian package chromium; npm run peers installs it)');
    const pw = await import('playwright-core').catch(() => undefined);
    if (!pw) ctx.skip('needs playwright-core (npm install: it drives Debian\'s chromium)');
    const { loss, messages } = ctx.params;

    // A page from a server on 127.0.0.1: a secure context, where getUserMedia exists.
    const http = await ctx.start(
      startHttpServer({
        rateLimitBurst: 0,
        tracer: ctx.tracer,
        playground: false,
        routes: [(r) => r.add('GET', '/media', (c) => send(c, 200, '<!doctype html><title>wirelab webrtc-media</title>', { 'content-type': 'text/html; charset=utf-8' }))],
      }),
    );
    const profile = await mkdtemp(join(tmpdir(), 'wirelab-media-'));
    const browser = await pw!.chromium.launchPersistentContext(profile, { executablePath: chromiumPath(), args: FLAGS, timeout: 60_000 });
    ctx.defer(async () => {
      await browser.close();
      await rm(profile, { recursive: true, force: true });
    });
    const [a, b] = [await browser.newPage(), await browser.newPage()];
    await a.goto(`${http.url}/media`);
    await b.goto(`${http.url}/media`);

    const offer = (await a.evaluate(OFFERER)) as { sdp: string; tracks: Array<{ kind: string; label: string }> };
    // The answerer gets the offer without candidates: it will know the offerer only as the address its checks come from.
    const answer = (await b.evaluate(ANSWERER(offer.sdp.replace(/^a=candidate:.*\r\n/gm, '')))) as string;
    const host = /^a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 (\d+) typ host/m.exec(answer);
    if (!host) throw new Error(`the answer has no UDP host candidate on 127.0.0.1:\n${answer}`);
    // The relay reads each datagram's first byte as its "sequence number": a tag of what it carried (kindOf).
    const relay = await ctx.start(startUdpRelay({ name: 'media', upstreamPort: Number(host[1]), seed: 7, sequenceOf: (d) => d[0], tracer: ctx.tracer }));
    const viaRelay = answer.replace(/^a=candidate:.*\r\n/gm, '').replace(/^(m=.*\r\n)/m, `$1a=candidate:1 1 udp 2122260223 127.0.0.1 ${relay.port} typ host\r\n`);
    await a.evaluate(`window.wl.pc.setRemoteDescription({ type: 'answer', sdp: ${JSON.stringify(viaRelay)} })`);
    const connected = `new Promise((r, j) => { const pc = window.wl.pc; const t = setTimeout(() => j(new Error('ICE/DTLS: ' + pc.connectionState)), 45000); const ok = () => pc.connectionState === 'connected' && (clearTimeout(t), r(true)); ok(); pc.addEventListener('connectionstatechange', ok); })`;
    await Promise.all([a.evaluate(connected), b.evaluate(connected)]);
    await a.evaluate(`new Promise((r) => window.wl.dc.readyState === 'open' ? r() : (window.wl.dc.onopen = () => r()))`);

    // Clean first: 2 s of media with no loss.
    const frames = `new Promise((r) => { const poll = async () => { let f = 0; (await window.wl.pc.getStats()).forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video') f = s.framesDecoded || 0; }); f > 15 ? r(f) : setTimeout(poll, 200); }; poll(); })`;
    await b.evaluate(frames);
    const clean = media((await b.evaluate(STATS)) as Stat[], 'inbound-rtp');
    const cleanRelay = { up: relay.stats('upstream'), down: relay.stats('downstream') };

    // Then the loss, both ways, on every datagram (media, the channel's DTLS records, STUN consent checks alike).
    relay.set('upstream', { loss });
    relay.set('downstream', { loss });
    const lossAt = relay.records.length;
    const sent = (await a.evaluate(`(async () => { const dc = window.wl.dc; for (let i = 0; i < ${messages}; i++) { dc.send(String(i)); if (i % 20 === 19) await new Promise((r) => setTimeout(r, 50)); } return ${messages}; })()`)) as number;
    await b.waitForFunction(`window.wl.got.length >= ${messages}`, undefined, { timeout: 60_000 });
    // Media keeps flowing through the loss until the receiver has counted an audio packet lost (at most 8 s: then the
    // claim below fails): about 50 audio packets a second, so at 5 % this takes well under a second.
    let lossy = media((await b.evaluate(STATS)) as Stat[], 'inbound-rtp');
    for (const until = performance.now() + 8000; num(lossy.audio, 'packetsLost') <= num(clean.audio, 'packetsLost') && performance.now() < until; ) {
      await new Promise((r) => setTimeout(r, 250));
      lossy = media((await b.evaluate(STATS)) as Stat[], 'inbound-rtp');
    }
    const senderStats = media((await a.evaluate(STATS)) as Stat[], 'outbound-rtp');
    relay.clear();
    const got = (await b.evaluate('window.wl.got')) as number[];
    const channel = (await b.evaluate('window.wl.channel')) as { label: string; ordered: boolean; maxRetransmits: number | null };
    const tracks = (await b.evaluate('window.wl.tracks')) as string[];

    const dropped = { rtp: 0, dtls: 0, stun: 0, other: 0 };
    const crossed = { rtp: 0, dtls: 0, stun: 0, other: 0 };
    for (const rec of relay.records.slice(lossAt)) {
      const k = kindOf(rec.seq);
      crossed[k]++;
      if (rec.fate === 'lost') dropped[k]++;
    }

    ctx.table('What getUserMedia gave the sending page', ['kind', 'label'], offer.tracks.map((t) => [t.kind, t.label]));
    const row = (name: string, s: MediaStats, prev: MediaStats, kind: 'audio' | 'video'): Array<string | number> => [
      `${kind} (${name})`,
      s.codecs[kind] ?? '?',
      num(s[kind], 'packetsReceived') - num(prev[kind], 'packetsReceived'),
      num(s[kind], 'packetsLost') - num(prev[kind], 'packetsLost'),
      r2(num(s[kind], 'jitter') * 1000),
      kind === 'video' ? num(s[kind], 'framesDecoded') - num(prev[kind], 'framesDecoded') : '-',
      num(s[kind], 'nackCount') - num(prev[kind], 'nackCount'),
    ];
    const zero: MediaStats = { codecs: {} };
    ctx.table(
      "The receiving page's getStats() (inbound-rtp), before and during the loss",
      ['stream', 'codec', 'packets received', 'packets lost', 'jitter, ms', 'frames decoded', 'NACKs sent'],
      [row('no loss', clean, zero, 'audio'), row('no loss', clean, zero, 'video'), row(`${r2(loss * 100)} % loss`, lossy, clean, 'audio'), row(`${r2(loss * 100)} % loss`, lossy, clean, 'video')],
    );
    const inOrder = got.every((v, i) => v === i);
    ctx.table(
      `The relay during the loss (${r2(loss * 100)} % each way), datagrams by kind (first byte, RFC 7983)`,
      ['kind', 'crossed the relay', 'dropped'],
      (['rtp', 'dtls', 'stun'] as const).map((k) => [k === 'rtp' ? 'RTP / RTCP (SRTP media)' : k === 'dtls' ? 'DTLS (SCTP: the data channel)' : 'STUN (ICE consent)', crossed[k], dropped[k]]),
    );

    ctx.claim(
      "MediaStream: getUserMedia captured an audio and a video track from Chromium's fake devices, and both arrived as tracks on the other page",
      offer.tracks.some((t) => t.kind === 'audio') && offer.tracks.some((t) => t.kind === 'video') && tracks.includes('audio') && tracks.includes('video'),
      `sent ${offer.tracks.map((t) => `${t.kind} "${t.label}"`).join(', ')}; received tracks: ${tracks.join(', ')}`,
    );
    ctx.claim(
      'RTP from one page to the other, decoded: inbound audio and video packets, video frames decoded, codecs negotiated',
      num(clean.audio, 'packetsReceived') > 0 && num(clean.video, 'packetsReceived') > 0 && num(clean.video, 'framesDecoded') > 0 && Boolean(clean.codecs.audio && clean.codecs.video),
      `no loss: audio ${num(clean.audio, 'packetsReceived')} packets (${clean.codecs.audio}), video ${num(clean.video, 'packetsReceived')} packets, ${num(clean.video, 'framesDecoded')} frames (${clean.codecs.video}); the sender counted ${num(senderStats.video, 'packetsSent')} video packets sent`,
    );
    ctx.claim(
      'the media is SRTP keyed by DTLS (the transport reports its DTLS state and SRTP cipher), and it crossed the relay as RTP-range datagrams',
      clean.transport?.dtlsState === 'connected' && typeof clean.transport?.srtpCipher === 'string' && cleanRelay.up.delivered + cleanRelay.down.delivered > 0 && crossed.rtp > 0,
      `transport: DTLS ${String(clean.transport?.dtlsState)}, ${String(clean.transport?.dtlsCipher)}, SRTP ${String(clean.transport?.srtpCipher)}; ${crossed.rtp} RTP datagrams through the relay during the loss`,
    );
    ctx.claim(
      'A/V is unreliable: audio packets the relay dropped stayed lost (the receiver counts them in packetsLost and plays on)',
      dropped.rtp > 0 && num(lossy.audio, 'packetsLost') > num(clean.audio, 'packetsLost'),
      `relay dropped ${dropped.rtp} RTP/RTCP datagrams; audio packetsLost ${num(clean.audio, 'packetsLost')} → ${num(lossy.audio, 'packetsLost')}, video ${num(clean.video, 'packetsLost')} → ${num(lossy.video, 'packetsLost')}`,
    );
    ctx.claim(
      'data is reliable: the channel (ordered, no retransmit limit) delivered every message in order although DTLS records carrying it were dropped',
      dropped.dtls > 0 && got.length === sent && inOrder && channel.ordered && channel.maxRetransmits === null,
      `${dropped.dtls} of ${crossed.dtls} DTLS datagrams dropped; ${got.length} of ${sent} messages received, ${inOrder ? 'in order' : 'OUT OF ORDER'}; channel "${channel.label}" ordered=${channel.ordered} maxRetransmits=${channel.maxRetransmits}`,
    );
    ctx.note(
      `Video is partly repaired: Chromium asked for lost video packets again (${num(lossy.video, 'nackCount') - num(clean.video, 'nackCount')} NACKs here) and decodes on without those that come too late; audio (Opus) is never re-sent, the decoder conceals the gap. Headless Chromium plays no sound, so its concealment counters stay at 0.`,
    );
  },
});
