import { connectPeerPair } from '../clients/webrtc-pair.ts';
import { connectWs } from '../clients/ws.ts';
import { defineLab } from '../core/lab/index.ts';
import { startSignalingServer } from '../servers/webrtc/index.ts';
import { r2, summarize } from './_stats.ts';

// Set from ctx.params when run() starts (labs run one at a time); the values here are the defaults.
let CHAT = 300;
let CHAT_BYTES = 100;
let BULK_BYTES = 4 * 1024 * 1024;
/** Under werift's default max-message-size (65,536): bigger messages are faster, it is SCTP's per-message cost. */
const CHUNK = 60_000;
let BURST = 500;

/**
 * One round trip each, one at a time: a sends a numbered message, the other side echoes it, a waits. Returns the
 * round trips in ms and how many echoes came back carrying the number that was sent.
 */
async function pingPong(send: (m: Buffer) => void, next: () => Promise<{ data: Buffer | string }>): Promise<{ rtt: number[]; matched: number }> {
  const rtt: number[] = [];
  let matched = 0;
  for (let i = 0; i < CHAT; i++) {
    const msg = Buffer.from(String(i).padStart(CHAT_BYTES, '0'));
    const t = performance.now();
    send(msg);
    const echo = await next();
    rtt.push(performance.now() - t);
    if (Buffer.from(echo.data).equals(msg)) matched++;
  }
  return { rtt, matched };
}

/** Numbered messages sent back to back; `inOrder` counts those that arrived as the next number expected. */
function sequenceCheck(): { onMessage: (m: { data: Buffer | string }) => void; got: () => number; inOrder: () => number } {
  let got = 0;
  let inOrder = 0;
  return {
    onMessage: (m) => {
      if (Number(m.data.toString()) === got) inOrder++;
      got++;
    },
    got: () => got,
    inOrder: () => inOrder,
  };
}

export default defineLab({
  id: 'webrtc-vs-websocket',
  title: 'The same chat peer to peer over a data channel, and relayed by a WebSocket server',
  concept: 'WebRTC needs the server only to introduce the peers; a WebSocket chat sends every message through the server.',
  protocols: ['webrtc', 'ws'],
  timeoutMs: 90_000, // 13 s under load here; over 30 s once with both cores loaded
  params: {
    chat: { kind: 'count', default: 300, min: 20, max: 5_000, help: 'chat round trips over each' },
    'chat-bytes': { kind: 'size', default: 100, min: 8, max: 16 * 1024, help: 'bytes per chat message' },
    bulk: { kind: 'size', default: '4MiB', min: 256 * 1024, max: 64 * 1024 * 1024, help: 'bytes sent one way over each' },
    burst: { kind: 'count', default: 500, min: 50, max: 5_000, help: 'numbered messages sent at once on the ordered and the unordered channel' },
  },
  async run(ctx) {
    ({ chat: CHAT, 'chat-bytes': CHAT_BYTES, bulk: BULK_BYTES, burst: BURST } = ctx.params);
    const server = await ctx.start(startSignalingServer({ tracer: ctx.tracer, maxPayload: 1024 * 1024 }));
    const sig = server.signaling.stats;

    // Setup: WebRTC (signaling + ICE + DTLS + SCTP + DCEP) against two WebSocket upgrades.
    const t0 = performance.now();
    const pair = await connectPeerPair(
      server.signalUrl,
      'chat',
      (a) => {
        a.createChannel('chat');
        a.createChannel('fast', { ordered: false, maxRetransmits: 0 });
        a.createChannel('bulk');
      },
      { tracer: ctx.tracer },
    );
    ctx.defer(() => pair.close());
    const [chatA, chatB, fastA, fastB, bulkA, bulkB] = await Promise.all(['chat', 'fast', 'bulk'].flatMap((l) => [pair.a.channel(l), pair.b.channel(l)]));
    const rtcSetupMs = performance.now() - t0;
    const signalingMessages = sig.messagesIn + sig.messagesOut;
    const signalingBytes = sig.bytesIn + sig.bytesOut;

    const wsBefore = { messages: server.stats.messagesIn + server.stats.messagesOut, signaling: sig.messagesIn + sig.messagesOut };
    const t1 = performance.now();
    const ws1 = await connectWs({ url: `${server.url}/room/chat`, tracer: ctx.tracer });
    const ws2 = await connectWs({ url: `${server.url}/room/chat`, tracer: ctx.tracer });
    const wsSetupMs = performance.now() - t1;
    // Messages the server handled to start the two WebSocket clients (anything beyond their upgrades), signaling aside.
    const wsSetupMessages = server.stats.messagesIn + server.stats.messagesOut - wsBefore.messages - (sig.messagesIn + sig.messagesOut - wsBefore.signaling);
    const relayed = { ...sig.relayed };
    const closeWs = async (): Promise<void> => {
      for (const w of [ws1, ws2]) await w.close().catch(() => undefined);
    };
    ctx.defer(closeWs);

    // Chat: CHAT round trips of CHAT_BYTES each way.
    chatB!.onMessage = (m) => chatB!.send(m.data);
    const rtcChat = await pingPong((m) => chatA!.send(m), () => chatA!.next());
    const rtcRtt = rtcChat.rtt;
    const sigDuringChat = sig.bytesIn + sig.bytesOut - signalingBytes;
    const wsEcho = (async (): Promise<void> => {
      for (let i = 0; i < CHAT; i++) await ws2.send((await ws2.next()).data);
    })();
    const wsChat = await pingPong((m) => void ws1.send(m), () => ws1.next());
    const wsRtt = wsChat.rtt;
    await wsEcho;

    // Order: a burst of numbered messages on the reliable, ordered channel, sent without waiting for any answer.
    const ordered = sequenceCheck();
    chatB!.onMessage = ordered.onMessage;
    for (let i = 0; i < BURST; i++) chatA!.send(String(i));
    const orderedDeadline = performance.now() + 10_000;
    while (ordered.got() < BURST && performance.now() < orderedDeadline) await new Promise((r) => setTimeout(r, 10));

    // Bulk: BULK_BYTES one way.
    let bulkGot = 0;
    const bulkDone = new Promise<void>((resolve) => {
      bulkB!.onMessage = (m) => {
        bulkGot += (m.data as Buffer).length;
        if (bulkGot >= BULK_BYTES) resolve();
      };
    });
    const tb = performance.now();
    const bulkChunk = Buffer.alloc(CHUNK, 0x62);
    for (let sent = 0; sent < BULK_BYTES; sent += CHUNK) await bulkA!.write(bulkChunk);
    await bulkDone;
    const rtcMBps = BULK_BYTES / 1e6 / ((performance.now() - tb) / 1000);
    let wsGot = 0;
    const wsBulkDone = (async (): Promise<void> => {
      while (wsGot < BULK_BYTES) wsGot += (await ws2.next(10_000)).data.length;
    })();
    const tw = performance.now();
    const chunk = Buffer.alloc(CHUNK, 0x62);
    for (let sent = 0; sent < BULK_BYTES; sent += CHUNK) await ws1.send(chunk);
    await wsBulkDone;
    const wsMBps = BULK_BYTES / 1e6 / ((performance.now() - tw) / 1000);

    // The same burst on the unreliable, unordered channel (no loss on this path: see the note below).
    let fastGot = 0;
    let fastInOrder = true;
    let last = -1;
    fastB!.onMessage = (m) => {
      const n = Number(m.data);
      if (n < last) fastInOrder = false;
      last = n;
      fastGot++;
    };
    for (let i = 0; i < BURST; i++) fastA!.send(String(i));
    const deadline = performance.now() + 2000;
    while (fastGot < BURST && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));

    // The server's own byte counts: the WebSocket ones are added when a connection closes.
    const before = server.stats.bytesIn + server.stats.bytesOut;
    await closeWs();
    await new Promise((r) => setTimeout(r, 50));
    const wsServerBytes = server.stats.bytesIn + server.stats.bytesOut - before;
    const wsPayload = 2 * (CHAT * CHAT_BYTES * 2 + BULK_BYTES);

    const rs = summarize(rtcRtt);
    const ws = summarize(wsRtt);
    ctx.table(
      'Same host, same run (no added loss or delay)',
      ['', 'WebRTC data channel (werift ↔ werift)', 'WebSocket relayed by the server (ws)'],
      [
        ['setup, ms', r2(rtcSetupMs), r2(wsSetupMs)],
        ['setup messages through the server', signalingMessages, '2 upgrades'],
        [`chat RTT p50, ms (${CHAT} × ${CHAT_BYTES} B)`, r2(rs.p50), r2(ws.p50)],
        ['chat RTT p99, ms', r2(rs.p99), r2(ws.p99)],
        [`throughput, MB/s (${BULK_BYTES / 1024 / 1024} MiB one way)`, r2(rtcMBps), r2(wsMBps)],
        ['bytes through the server, whole session', signalingBytes + sigDuringChat, wsServerBytes],
      ],
    );
    ctx.measure('WebRTC chat RTT p50', r2(rs.p50), 'ms');
    ctx.measure('WebSocket (relayed) chat RTT p50', r2(ws.p50), 'ms');
    ctx.measure('WebRTC setup', r2(rtcSetupMs), 'ms');
    ctx.measure('WebSocket setup (two clients)', r2(wsSetupMs), 'ms');

    ctx.claim(
      `WebRTC: the ${CHAT} chat round trips and the ${BULK_BYTES / 1024 / 1024} MiB bulk went peer to peer, the server saw 0 bytes of them`,
      sigDuringChat === 0 && chatA!.received >= CHAT && bulkGot >= BULK_BYTES && sig.bytesIn + sig.bytesOut === signalingBytes,
      `${signalingBytes} signaling bytes before, ${sig.bytesIn + sig.bytesOut - signalingBytes} after the channels opened`,
    );
    ctx.claim(
      'WebSocket: every chat and bulk byte went through the server, in and out again',
      wsServerBytes >= wsPayload,
      `${wsServerBytes} bytes on the server's sockets ≥ ${wsPayload} payload bytes × (in + out)`,
    );
    ctx.claim(
      'WebRTC setup costs more messages through the server than the WebSocket clients needed to start: an offer, an answer and ICE candidates were relayed',
      (relayed.offer ?? 0) > 0 && (relayed.answer ?? 0) > 0 && (relayed.candidate ?? 0) > 0 && signalingMessages > wsSetupMessages,
      `${signalingMessages} signaling messages (relayed: ${Object.entries(relayed).map(([k, v]) => `${v} ${k}`).join(', ')}) against ${wsSetupMessages} beyond the two WebSocket upgrades`,
    );
    ctx.claim(
      'the reliable, ordered channel delivered every chat message, in order',
      rtcChat.matched === CHAT && ordered.got() === BURST && ordered.inOrder() === BURST,
      `${rtcChat.matched}/${CHAT} echoes carried the number sent; a burst of ${BURST} numbered messages: ${ordered.got()} arrived, ${ordered.inOrder()} as the next number expected`,
    );
    ctx.claim(
      'the WebSocket chat through the server delivered every message, in order',
      wsChat.matched === CHAT,
      `${wsChat.matched}/${CHAT} echoes carried the number sent`,
    );
    ctx.table('Unreliable, unordered channel (maxRetransmits 0): a burst with no loss on the path', ['sent', 'delivered', 'arrived in send order'], [[BURST, fastGot, fastInOrder ? 'yes' : 'no']]);
    ctx.note(
      `Not observed here: the reliable vs unreliable difference under loss. werift's ICE picks a direct loopback pair, so wirelab's UDP impairment relay (core/impair) is not on this path and nothing was lost (the burst above: ${fastGot}/${BURST} delivered). With UDP loss, maxRetransmits 0 would drop a message instead of resending it, and unordered delivery would not wait for a lost one.`,
    );
    ctx.note(
      `Setup: the WebRTC peers need ${signalingMessages} signaling messages, ICE checks, a DTLS handshake (werift's DTLS client waits 100 ms before its ClientHello), an SCTP association and a DCEP exchange; each WebSocket client needs one TCP connect and one HTTP upgrade.`,
    );
  },
});
