import { connectPeerPair } from '../clients/webrtc-pair.ts';
import { connectWs } from '../clients/ws.ts';
import { defineLab } from '../core/lab/index.ts';
import { startSignalingServer } from '../servers/webrtc/index.ts';
import { r2, summarize } from './_stats.ts';

const CHAT = 300;
const CHAT_BYTES = 100;
const BULK_BYTES = 4 * 1024 * 1024;
/** Under werift's default max-message-size (65,536): bigger messages are faster, it is SCTP's per-message cost. */
const CHUNK = 60_000;
const BURST = 500;

/** One round trip each, one at a time: a sends, the other side echoes, a waits. Returns the round trips in ms. */
async function pingPong(send: (m: Buffer) => void, next: () => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  const msg = Buffer.alloc(CHAT_BYTES, 0x61);
  for (let i = 0; i < CHAT; i++) {
    const t = performance.now();
    send(msg);
    await next();
    out.push(performance.now() - t);
  }
  return out;
}

export default defineLab({
  id: 'webrtc-vs-websocket',
  title: 'The same chat peer to peer over a data channel, and relayed by a WebSocket server',
  concept: 'WebRTC needs the server only to introduce the peers; a WebSocket chat sends every message through the server.',
  protocols: ['webrtc', 'ws'],
  timeoutMs: 15_000,
  async run(ctx) {
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

    const t1 = performance.now();
    const ws1 = await connectWs({ url: `${server.url}/room/chat`, tracer: ctx.tracer });
    const ws2 = await connectWs({ url: `${server.url}/room/chat`, tracer: ctx.tracer });
    const wsSetupMs = performance.now() - t1;
    const closeWs = async (): Promise<void> => {
      for (const w of [ws1, ws2]) await w.close().catch(() => undefined);
    };
    ctx.defer(closeWs);

    // Chat: CHAT round trips of CHAT_BYTES each way.
    chatB!.onMessage = (m) => chatB!.send(m.data);
    const rtcRtt = await pingPong((m) => chatA!.send(m), () => chatA!.next());
    const sigDuringChat = sig.bytesIn + sig.bytesOut - signalingBytes;
    const wsEcho = (async (): Promise<void> => {
      for (let i = 0; i < CHAT; i++) await ws2.send((await ws2.next()).data);
    })();
    const wsRtt = await pingPong((m) => void ws1.send(m), () => ws1.next());
    await wsEcho;

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

    // A burst on the unreliable, unordered channel (no loss here: there is no impairment relay on this branch yet).
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
      'WebRTC setup costs more messages through the server than the whole WebSocket session did to start',
      signalingMessages >= 6,
      `${signalingMessages} signaling messages (welcome, join/joined, offer, answer, candidates) against one HTTP upgrade per WebSocket client`,
    );
    ctx.claim(
      'the reliable, ordered channel delivered every chat message, in order',
      chatA!.received === CHAT,
      `${chatA!.received}/${CHAT} echoes`,
    );
    ctx.table('Unreliable, unordered channel (maxRetransmits 0): a burst with no loss on the path', ['sent', 'delivered', 'arrived in send order'], [[BURST, fastGot, fastInOrder ? 'yes' : 'no']]);
    ctx.note(
      `No impairment relay exists on this branch yet, so the reliable vs unreliable comparison ran without loss (the burst above: ${fastGot}/${BURST} delivered). With UDP loss, maxRetransmits 0 would drop a message instead of resending it, and unordered delivery would not wait for a lost one: not observed here.`,
    );
    ctx.note(
      `Setup: the WebRTC peers need ${signalingMessages} signaling messages, ICE checks, a DTLS handshake (werift's DTLS client waits 100 ms before its ClientHello), an SCTP association and a DCEP exchange; each WebSocket client needs one TCP connect and one HTTP upgrade.`,
    );
  },
});
