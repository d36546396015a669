import { startChatServer } from '../apps/chat/server/index.ts';
import { startTcpProxy, type TcpImpairmentProxy } from '../core/impair/index.ts';
import { defineLab } from '../core/lab/index.ts';
import { blip, openPeer, until, type ChatPeer, type Transport } from './_chat.ts';
import { runDataChannel } from './_chat-dm.ts';
import { r2, summarize } from './_stats.ts';

/** Exchanges before and after the blip; plus BLIP messages each way sent while ben's connection is down. */
const BEFORE = 20;
const BLIP = 5;
const AFTER = 15;
const EACH_WAY = BEFORE + BLIP + AFTER;
const TRANSPORTS: Array<{ id: Transport; label: string }> = [
  { id: 'ws', label: 'WebSocket' },
  { id: 'sse', label: 'SSE + POST' },
  { id: 'poll', label: 'long polling' },
];

const texts = (p: ChatPeer): string[] => p.events.filter((e) => e.kind === 'msg').map((e) => e.text ?? '');

interface Run {
  label: string;
  latencies: number[];
  steadyBytes: number;
  totalBytes: number;
  connections: number;
  heldSteady: number;
  requests: number;
  resets: number;
  reconnects: number;
  recoveryMs: number;
  complete: boolean;
  gapFree: boolean;
  duplicates: number;
  evidence: string;
}

export default defineLab({
  id: 'chat-transports',
  title: 'One chat conversation over WebSocket, SSE + POST, long polling and a WebRTC data channel, with a network blip',
  concept: 'The chat app speaks one protocol over three transports. A WebSocket holds one connection both ways; the fallbacks pay an HTTP request per message sent (and per answer, for long polling). Offsets in the durable log let each recover a reset with no gap and no duplicate. A DM over a WebRTC data channel needs the server only for signaling: the text goes peer to peer, and a blip on the chat connection does not touch it.',
  protocols: ['ws', 'http', 'sse', 'chat', 'webrtc'],
  timeoutMs: 60_000,
  async run(ctx) {
    // Rate limits raised: the lab sends faster than a person types (the defaults are 5/s per user).
    const chat = await ctx.start(startChatServer({ tracer: ctx.tracer, ratePerSecond: 10_000, rateBurst: 10_000, maxFramesPerSecond: 10_000, heartbeatMs: 0, pollWaitMs: 5000, pollIdleMs: 10_000 }));
    const runs: Run[] = [];
    for (const t of TRANSPORTS) {
      // One proxy per user, so the blip resets ben's connections only and ana keeps talking.
      const pa: TcpImpairmentProxy = await ctx.start(startTcpProxy({ name: `${t.id}-ana`, upstreamPort: chat.port, tracer: ctx.tracer }));
      const pb: TcpImpairmentProxy = await ctx.start(startTcpProxy({ name: `${t.id}-ben`, upstreamPort: chat.port, tracer: ctx.tracer }));
      const room = `transports-${t.id}`;
      const ana = await openPeer(t.id, pa.port, 'ana', room);
      const ben = await openPeer(t.id, pb.port, 'ben', room);
      ctx.defer(() => ana.close());
      ctx.defer(() => ben.close());
      const sentAt = new Map<string, number>();
      const latencies: number[] = [];
      const arrived = new Set<string>();
      const seen = (e: { text?: string }): void => {
        const text = e.text ?? '';
        arrived.add(text);
        const t0 = sentAt.get(text);
        if (t0 !== undefined && !text.includes('blip')) latencies.push(performance.now() - t0);
      };
      ana.onEvent(seen);
      ben.onEvent(seen);
      const say = async (p: ChatPeer, text: string, wait = true): Promise<void> => {
        sentAt.set(text, performance.now());
        // A refusal would show as a message that never arrives (the claims below count them).
        p.send(text).catch((err: Error) => ctx.note(`${t.label}: "${text}" refused: ${err.message}`));
        if (wait) await until(() => arrived.has(text), `"${text}" over ${t.label}`);
      };
      const bytes = (): number => pa.stats.bytesUp + pa.stats.bytesDown + pb.stats.bytesUp + pb.stats.bytesDown;
      const requests = (): number => ana.requests + ben.requests;

      const b0 = bytes();
      for (let i = 1; i <= BEFORE; i++) {
        await say(ana, `ana ${i}`);
        await say(ben, `ben ${i}`);
      }
      const steadyBytes = (bytes() - b0) / (2 * BEFORE);
      const heldSteady = pa.stats.active + pb.stats.active;

      // The blip: every connection through ben's proxy is reset (RST both ways), once.
      const r0 = ben.reconnects;
      await blip(pb);
      const tBlip = performance.now();
      const blipSends: Array<Promise<void>> = [];
      for (let i = 1; i <= BLIP; i++) {
        blipSends.push(say(ana, `ana blip ${i}`, false), say(ben, `ben blip ${i}`, false));
      }
      let recoveryMs = NaN;
      try {
        await until(() => [...Array(BLIP).keys()].every((i) => ben.events.some((e) => e.text === `ana blip ${i + 1}`) && ana.events.some((e) => e.text === `ben blip ${i + 1}`)), 'recovery');
        recoveryMs = performance.now() - tBlip;
        await Promise.all(blipSends);
        for (let i = BEFORE + 1; i <= BEFORE + AFTER; i++) {
          await say(ana, `ana ${i}`);
          await say(ben, `ben ${i}`);
        }
      } catch (err) {
        ctx.note(`${t.label}: ${(err as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 50));
      const want = [...Array(EACH_WAY).keys()].flatMap((i) => (i < BEFORE + AFTER ? [`ana ${i + 1}`, `ben ${i + 1}`] : []));
      const blipTexts = [...Array(BLIP).keys()].flatMap((i) => [`ana blip ${i + 1}`, `ben blip ${i + 1}`]);
      const all = [...want, ...blipTexts];
      const per = [ana, ben].map((p) => {
        const got = texts(p);
        const offsets = p.events.map((e) => e.offset);
        return {
          complete: all.every((x) => got.filter((g) => g === x).length === 1) && got.length === all.length,
          gapFree: offsets.every((o, i) => i === 0 || o === offsets[i - 1]! + 1),
          got: got.length,
        };
      });
      runs.push({
        label: t.label,
        latencies,
        steadyBytes,
        totalBytes: bytes() / (2 * EACH_WAY),
        connections: pa.stats.connections + pb.stats.connections,
        heldSteady,
        requests: requests(),
        resets: pb.stats.toxics.blip ?? 0,
        reconnects: ben.reconnects - r0,
        recoveryMs,
        complete: per.every((p) => p.complete),
        gapFree: per.every((p) => p.gapFree),
        duplicates: ana.duplicates + ben.duplicates,
        evidence: `ana holds ${per[0]!.got}, ben ${per[1]!.got} of ${all.length}; ${ben.reconnects - r0} reconnect(s) after ${pb.stats.toxics.blip ?? 0} reset(s); ${ana.duplicates + ben.duplicates} duplicate(s)`,
      });
      await ana.close();
      await ben.close();
    }

    const dc = await runDataChannel(ctx, chat, { before: BEFORE, blip: BLIP, after: AFTER });
    const msgs = 2 * EACH_WAY;
    const dcRow = [
      'WebRTC data channel (DM)',
      `${dc.complete ? msgs : `${dc.delivered} (missing)`}`,
      r2(summarize(dc.latencies).p50),
      r2(summarize(dc.latencies).p99),
      r2(dc.steadyBytes),
      r2(dc.totalBytes),
      `${dc.heldSteady} + 1 UDP`,
      dc.connections,
      0,
      r2(dc.recoveryMs),
    ];
    ctx.table(`2 users, ${EACH_WAY} messages each way (${BLIP} each way sent during the blip), each transport through TCP proxies that count bytes`,
      ['transport', 'delivered', 'latency p50 ms', 'p99 ms', 'B/message steady', 'B/message all', 'TCP conns held', 'TCP conns opened', 'HTTP requests / message', 'blip → all recovered ms'],
      runs.map((r) => {
        const s = summarize(r.latencies);
        return [r.label, `${r.complete ? msgs : 'missing'}`, r2(s.p50), r2(s.p99), r2(r.steadyBytes), r2(r.totalBytes), r.heldSteady, r.connections, r2(r.requests / msgs), r2(r.recoveryMs)];
      }).concat([dcRow]));
    ctx.note('Latency: from send() to the event at the other user, both in this process; the blip messages are left out (their time is the recovery column). Bytes are what crossed the proxies both ways, headers and receipts included: "steady" is the first 20 exchanges, "all" includes joins, the blip and its recovery.');
    ctx.note(`WebRTC row: a DM between the same two users over a data channel (werift in this process), opened in ${r2(dc.setupMs)} ms with ${dc.server.signals} signals (${dc.signalingBytes} TCP bytes) through the chat server. Its bytes are the UDP candidate pair's counters (STUN consent, DTLS records carrying SCTP data and SACKs); "all" adds the signaling. The TCP connections held are the two chat connections that carried the signaling; the blip resets ben's.`);

    for (const r of runs) {
      ctx.claim(`${r.label}: the proxy reset ben's connection mid-conversation, he reconnected, and both users hold all ${msgs} messages, with no gap in the offsets and none twice`,
        r.resets >= 1 && r.reconnects >= 1 && r.complete && r.gapFree && r.duplicates === 0, r.evidence);
    }
    ctx.claim('WebRTC data channel: every DM arrived once, and the chat server carried only the signaling (no DM text relayed, no chat message stored)',
      dc.complete && dc.server.signals >= 3 && dc.server.relayedBytes === 0 && dc.server.messageBytes === 0,
      `${dc.delivered} of ${msgs} arrived; server: ${dc.server.signals} signals (${dc.server.signalBytes} bytes of SDP and candidates), ${dc.server.relayedBytes} DM bytes relayed, ${dc.server.messageBytes} chat message bytes`);
    ctx.claim(`WebRTC data channel: the blip reset ben's chat connection (he reconnected), and the ${2 * BLIP} DMs sent during it arrived anyway, peer to peer`,
      dc.resets >= 1 && dc.reconnects >= 1 && Number.isFinite(dc.recoveryMs) && dc.server.relayedBytes === 0,
      `${dc.resets} reset(s), ${dc.reconnects} reconnect(s); the blip DMs all arrived ${r2(dc.recoveryMs)} ms after the reset`);
    const [ws, sse, poll] = runs as [Run, Run, Run];
    ctx.claim('WebSocket held one TCP connection per user and opened a new one only for the reconnect', ws.heldSteady === 2 && ws.connections === 2 + ws.reconnects,
      `${ws.heldSteady} held, ${ws.connections} opened`);
    ctx.claim('long polling made more HTTP requests than SSE + POST: a GET per answer on top of the POST per message sent',
      poll.requests > sse.requests && sse.requests >= msgs, `SSE + POST ${sse.requests} requests, long polling ${poll.requests}, for ${msgs} messages`);
    ctx.claim('with every header counted, a WebSocket message costs fewer bytes than over SSE + POST, and under half of long polling\'s',
      ws.steadyBytes < sse.steadyBytes && ws.steadyBytes * 2 < poll.steadyBytes,
      `steady B/message: WebSocket ${r2(ws.steadyBytes)}, SSE + POST ${r2(sse.steadyBytes)}, long polling ${r2(poll.steadyBytes)}`);
  },
});
