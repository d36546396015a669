/**
 * The WebRTC row of the chat-transports lab: the same conversation as a DM between ana and ben over a data channel
 * whose offer, answer and ICE candidates went through the chat server (apps/chat/dm-peer.ts), each user's chat
 * connection through a TCP proxy of its own so the blip can reset ben's. Files starting with _ are not labs.
 */
import { connectChat } from '../apps/chat/client.ts';
import { openDmPeer, type DmPeer } from '../apps/chat/dm-peer.ts';
import type { RunningChatServer } from '../apps/chat/server/index.ts';
import { startTcpProxy } from '../core/impair/index.ts';
import type { LabContext } from '../core/lab/index.ts';
import { blip, until } from './_chat.ts';

export interface DataChannelRun {
  latencies: number[];
  /** UDP bytes (both ways, the candidate pair's counters: DTLS + SCTP + STUN consent) per message, first exchanges. */
  steadyBytes: number;
  /** UDP bytes of the whole conversation plus the signaling's TCP bytes, per message. */
  totalBytes: number;
  signalingBytes: number;
  setupMs: number;
  connections: number;
  heldSteady: number;
  resets: number;
  reconnects: number;
  recoveryMs: number;
  /** Every message arrived once. */
  complete: boolean;
  delivered: number;
  /** What the chat server counted during the run: signals, DM text relayed, chat message bytes. */
  server: { signals: number; signalBytes: number; relayedBytes: number; messageBytes: number };
}


/** Bytes both ways on the peer's selected ICE candidate pair (UDP payloads: STUN, DTLS records carrying SCTP). */
async function udpBytes(p: DmPeer): Promise<number> {
  const report = await p.peer.pc.getStats();
  let n = 0;
  for (const s of report.values() as Iterable<{ type: string; bytesSent?: number; bytesReceived?: number; nominated?: boolean }>) {
    if (s.type === 'candidate-pair') n += (s.bytesSent ?? 0) + (s.bytesReceived ?? 0);
  }
  return n;
}

export async function runDataChannel(ctx: LabContext, chat: RunningChatServer, shape: { before: number; blip: number; after: number }): Promise<DataChannelRun> {
  const pa = await ctx.start(startTcpProxy({ name: 'webrtc-ana', upstreamPort: chat.port, tracer: ctx.tracer }));
  const pb = await ctx.start(startTcpProxy({ name: 'webrtc-ben', upstreamPort: chat.port, tracer: ctx.tracer }));
  const tcpBytes = (): number => pa.stats.bytesUp + pa.stats.bytesDown + pb.stats.bytesUp + pb.stats.bytesDown;
  const ana = await connectChat({ url: `ws://127.0.0.1:${pa.port}/ws`, name: 'ana', reconnectMinMs: 50, declineDmOffers: false });
  ctx.defer(() => ana.close());
  const ben = await connectChat({ url: `ws://127.0.0.1:${pb.port}/ws`, name: 'ben', reconnectMinMs: 50, declineDmOffers: false });
  ctx.defer(() => ben.close());
  await ana.join('transports-webrtc');
  await ben.join('transports-webrtc');
  const s0 = chat.stats;
  const b0 = tcpBytes();
  const t0 = performance.now();
  // ben waits for the offer before ana makes it.
  const answering = openDmPeer(ben, 'ana', 'answer', { tracer: ctx.tracer });
  const [a, b] = await Promise.all([openDmPeer(ana, 'ben', 'call', { tracer: ctx.tracer }), answering]);
  ctx.defer(() => a.close());
  ctx.defer(() => b.close());
  const setupMs = performance.now() - t0;
  const signalingBytes = tcpBytes() - b0;

  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  const arrived = new Map<string, number>();
  const seen = (data: string): void => {
    const text = (JSON.parse(data) as { text: string }).text;
    arrived.set(text, (arrived.get(text) ?? 0) + 1);
    const t = sentAt.get(text);
    if (t !== undefined && !text.includes('blip')) latencies.push(performance.now() - t);
  };
  a.channel.onMessage = (m) => seen(m.data.toString());
  b.channel.onMessage = (m) => seen(m.data.toString());
  let id = 0;
  const say = async (p: DmPeer, text: string, wait = true): Promise<void> => {
    sentAt.set(text, performance.now());
    p.channel.send(JSON.stringify({ id: `m${++id}`, text }));
    if (wait) await until(() => arrived.has(text), `"${text}" over the data channel`);
  };

  const u0 = await udpBytes(a);
  for (let i = 1; i <= shape.before; i++) {
    await say(a, `ana ${i}`);
    await say(b, `ben ${i}`);
  }
  const steadyBytes = ((await udpBytes(a)) - u0) / (2 * shape.before);
  const heldSteady = pa.stats.active + pb.stats.active;

  // The blip: ben's chat connection is reset; the DMs sent meanwhile do not need it.
  const r0 = ben.reconnects;
  await blip(pb);
  const tBlip = performance.now();
  for (let i = 1; i <= shape.blip; i++) {
    void say(a, `ana blip ${i}`, false);
    void say(b, `ben blip ${i}`, false);
  }
  let recoveryMs = NaN;
  try {
    await until(() => [...Array(shape.blip).keys()].every((i) => arrived.has(`ana blip ${i + 1}`) && arrived.has(`ben blip ${i + 1}`)), 'the blip DMs');
    recoveryMs = performance.now() - tBlip;
    for (let i = shape.before + 1; i <= shape.before + shape.after; i++) {
      await say(a, `ana ${i}`);
      await say(b, `ben ${i}`);
    }
    await until(() => ben.reconnects > r0, "ben's chat reconnect", 5000);
  } catch (err) {
    ctx.note(`WebRTC data channel: ${(err as Error).message}`);
  }
  const total = 2 * (shape.before + shape.blip + shape.after);
  const s1 = chat.stats;
  return {
    latencies,
    steadyBytes,
    totalBytes: ((await udpBytes(a)) - u0 + signalingBytes) / total,
    signalingBytes,
    setupMs,
    connections: pa.stats.connections + pb.stats.connections,
    heldSteady,
    resets: pb.stats.toxics.blip ?? 0,
    reconnects: ben.reconnects - r0,
    recoveryMs,
    complete: arrived.size === total && [...arrived.values()].every((n) => n === 1),
    delivered: arrived.size,
    server: {
      signals: s1.dm.signals - s0.dm.signals,
      signalBytes: s1.dm.signalBytes - s0.dm.signalBytes,
      relayedBytes: s1.dm.relayedBytes - s0.dm.relayedBytes,
      messageBytes: s1.messageBytes - s0.messageBytes,
    },
  };
}
