import type { Socket } from 'node:net';
import { connectPeerPair, type PeerPair } from '../clients/webrtc-pair.ts';
import type { WebRtcPeer } from '../clients/webrtc.ts';
import { connectWs, type WsClient } from '../clients/ws.ts';
import { defineLab } from '../core/lab/index.ts';
import { startSignalingServer } from '../servers/webrtc/index.ts';
import { startWsServer } from '../servers/ws/index.ts';
import { r2 } from './_stats.ts';

// Set from ctx.params when run() starts (labs run one at a time); the values here are the defaults.
let MESSAGES = 20;
let BYTES = 200;

interface Outcome {
  n: number;
  serverMessagesIn: number;
  serverMessagesOut: number;
  /** Bytes on the server's sockets, handshakes included. */
  serverBytesIn: number;
  serverBytesOut: number;
  delivered: number;
  /** Open connections each node held once the chat was over, as counted from the connections themselves. */
  connectionsPerNode: number[];
  /** Bytes each node wrote to the network during the chat (its TCP socket; its nominated ICE pairs' UDP payloads). */
  uploadPerNode: number[];
  /** The addresses (host:port) each node exchanged chat bytes with, read from its own sockets / selected ICE pairs. */
  talkedTo: string[][];
  /** Each node's own address as the others could reach it: its TCP socket's local port, its ICE host candidates. */
  own: string[][];
  /** After the chat: the server (the WebSocket server, or the signaling server) stopped, then each node sends again. */
  afterServerStop: { sent: number; delivered: number };
  /** The server's own address (host:port), where every client-server node connects. */
  serverAddress: string;
  /** Signaling messages that carried a candidate (offer / answer SDP or a trickled candidate), for the mesh. */
  candidateSignals: number;
  /** Mesh: pair ends whose selected ICE pair's remote address is the other end's own host candidate. */
  exposedEnds: number;
  setupMs: number;
}

/** The TCP socket under a WebSocket client (ws keeps it as `_socket`): its ends are the addresses on the wire. */
const socketOf = (c: WsClient): Socket => (c.ws as unknown as { _socket: Socket })._socket;

/** Reads up to `want` messages; stops at the first that does not come within `ms`. */
async function drain(c: WsClient, want: number, ms: number): Promise<number> {
  let n = 0;
  try {
    while (n < want) {
      await c.next(ms);
      n++;
    }
  } catch {
    // closed, or nothing more came
  }
  return n;
}

/** N clients in one room of the WebSocket server: each sends MESSAGES, the server fans each out to the N-1 others. */
async function clientServer(n: number, killServer: boolean): Promise<Outcome> {
  const server = await startWsServer({ heartbeatMs: 0 });
  let stopped = false;
  try {
    const t = performance.now();
    const clients: WsClient[] = [];
    for (let i = 0; i < n; i++) clients.push(await connectWs({ url: `${server.url}/room/chat` }));
    const setupMs = performance.now() - t;
    const written0 = clients.map((c) => socketOf(c).bytesWritten);
    const want = MESSAGES * (n - 1);
    const receiving = clients.map(async (c) => {
      for (let i = 0; i < want; i++) await c.next();
      return want;
    });
    const msg = Buffer.alloc(BYTES, 0x61);
    for (let m = 0; m < MESSAGES; m++) for (const c of clients) await c.send(msg);
    const delivered = (await Promise.all(receiving)).reduce((a, b) => a + b, 0);
    const { messagesIn, messagesOut } = server.stats;
    const uploadPerNode = clients.map((c, i) => socketOf(c).bytesWritten - written0[i]!);
    const talkedTo = clients.map((c) => [`${socketOf(c).remoteAddress}:${socketOf(c).remotePort}`]);
    const own = clients.map((c) => [`${socketOf(c).localAddress}:${socketOf(c).localPort}`]);
    // Each client is one WebSocket; the server counts the ones open: one per node if it holds n.
    const open = server.clients;
    const connectionsPerNode = clients.map(() => open / n);
    let afterServerStop = { sent: 0, delivered: 0 };
    if (killServer) {
      // The server goes away; every client tries to send once more and listens for the others'.
      await server.close();
      stopped = true;
      let sent = 0;
      for (const c of clients) {
        try {
          await c.send(msg);
          sent++;
        } catch {
          // the connection is gone
        }
      }
      const got = await Promise.all(clients.map((c) => drain(c, n - 1, 500)));
      afterServerStop = { sent, delivered: got.reduce((a, b) => a + b, 0) };
    }
    for (const c of clients) await c.close().catch(() => undefined);
    await new Promise((r) => setTimeout(r, 30));
    return {
      n,
      serverMessagesIn: messagesIn,
      serverMessagesOut: messagesOut,
      serverBytesIn: server.stats.bytesIn,
      serverBytesOut: server.stats.bytesOut,
      delivered,
      connectionsPerNode,
      uploadPerNode,
      talkedTo,
      own,
      afterServerStop,
      serverAddress: `${server.host}:${server.port}`,
      candidateSignals: 0,
      exposedEnds: 0,
      setupMs,
    };
  } finally {
    if (!stopped) await server.close();
  }
}

/** A werift peer's selected ICE pair: UDP payload bytes it sent, and the remote address it talks to. */
async function selectedPair(p: WebRtcPeer): Promise<{ sent: number; remote: string }> {
  const report = [...(await p.pc.getStats()).values()] as unknown as Array<Record<string, unknown>>;
  const pair = report.find((s) => s.type === 'candidate-pair' && s.nominated === true);
  const remote = report.find((s) => s.type === 'remote-candidate' && s.id === pair?.remoteCandidateId);
  return { sent: Number(pair?.bytesSent ?? 0), remote: remote ? `${String(remote.address)}:${String(remote.port)}` : '?' };
}

/** `host:port` of each host candidate line a peer gathered (`candidate:... 1 udp PRIO 127.0.0.1 PORT typ host`). */
const hostsOf = (p: WebRtcPeer): string[] => p.localCandidates.flatMap((c) => /udp \d+ (\S+) (\d+) typ host/.exec(c)?.slice(1, 3).join(':') ?? []);

/** N werift peers in a full mesh (a data channel per pair, signaled through the server): each sends MESSAGES to every other. */
async function mesh(n: number, killServer: boolean): Promise<Outcome> {
  const server = await startSignalingServer({ heartbeatMs: 0 });
  let stopped = false;
  const pairs: PeerPair[] = [];
  try {
    const t = performance.now();
    const jobs: Array<Promise<PeerPair>> = [];
    /** Node i is the `a` end of its pairs with later nodes and the `b` end of its pairs with earlier ones. */
    const ends: Array<Array<{ pair: number; side: 'a' | 'b' }>> = Array.from({ length: n }, () => []);
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        ends[i]!.push({ pair: jobs.length, side: 'a' });
        ends[j]!.push({ pair: jobs.length, side: 'b' });
        jobs.push(connectPeerPair(server.signalUrl, `p${i}-${j}`, (a) => a.createChannel('chat')));
      }
    }
    pairs.push(...(await Promise.all(jobs)));
    const channels = await Promise.all(pairs.map(async (p) => [await p.a.channel('chat'), await p.b.channel('chat')] as const));
    const setupMs = performance.now() - t;
    const sig = server.signaling.stats;
    const candidateSignals = (sig.relayed.offer ?? 0) + (sig.relayed.answer ?? 0) + (sig.relayed.candidate ?? 0);
    const before = { in: sig.messagesIn, out: sig.messagesOut };
    const peerOf = (e: { pair: number; side: 'a' | 'b' }): WebRtcPeer => pairs[e.pair]![e.side];
    const sent0 = await Promise.all(ends.map(async (mine) => Promise.all(mine.map(async (e) => (await selectedPair(peerOf(e))).sent))));
    const msg = Buffer.alloc(BYTES, 0x61);
    const exchange = async (count: number): Promise<number> => {
      // Every node sends `count` to each of its n-1 neighbours: both ends of every pair send.
      for (let m = 0; m < count; m++) {
        for (const [a, b] of channels) {
          a.send(msg);
          b.send(msg);
        }
      }
      let got = 0;
      for (const [a, b] of channels) {
        for (let i = 0; i < count; i++) {
          await a.next();
          await b.next();
          got += 2;
        }
      }
      return got;
    };
    const delivered = await exchange(MESSAGES);
    const after = await Promise.all(ends.map(async (mine) => Promise.all(mine.map((e) => selectedPair(peerOf(e))))));
    const uploadPerNode = after.map((mine, i) => mine.reduce((sum, p, k) => sum + p.sent - sent0[i]![k]!, 0));
    const talkedTo = after.map((mine) => mine.map((p) => p.remote));
    const own = ends.map((mine) => mine.flatMap((e) => hostsOf(peerOf(e))));
    // Which ends talk to the other end's own host candidate (the address its socket is bound to, sent through signaling).
    const exposedEnds = (
      await Promise.all(pairs.map(async (p) => [hostsOf(p.b).includes((await selectedPair(p.a)).remote), hostsOf(p.a).includes((await selectedPair(p.b)).remote)]))
    ).flat().filter(Boolean).length;
    const serverMessagesIn = sig.messagesIn - before.in;
    const serverMessagesOut = sig.messagesOut - before.out;
    // Per node: its peer connections that are connected with the chat channel open, read from each connection's state.
    // werift reports 'connected' on each end on its own schedule (an end may still say 'connecting' for a moment after
    // data has flowed both ways on a loaded machine): give every end up to 10 s to report it before counting.
    const deadline = performance.now() + 10_000;
    while (pairs.some((p) => p.a.pc.connectionState !== 'connected' || p.b.pc.connectionState !== 'connected') && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const connectionsPerNode = ends.map((mine) =>
      mine.filter(({ pair, side }) => {
        const peer = pairs[pair]![side];
        return peer.pc.connectionState === 'connected' && peer.pc.iceConnectionState !== 'closed' && channels[pair]![side === 'a' ? 0 : 1].raw.readyState === 'open';
      }).length,
    );
    let afterServerStop = { sent: 0, delivered: 0 };
    if (killServer) {
      // The signaling server goes away (its WebSockets with it); the established mesh chats on.
      await server.close();
      stopped = true;
      afterServerStop = { sent: channels.length * 2 * MESSAGES, delivered: await exchange(MESSAGES) };
    }
    return {
      n,
      serverMessagesIn,
      serverMessagesOut,
      serverBytesIn: sig.bytesIn,
      serverBytesOut: sig.bytesOut,
      delivered,
      connectionsPerNode,
      uploadPerNode,
      talkedTo,
      own,
      afterServerStop,
      serverAddress: `${server.host}:${server.port}`,
      candidateSignals,
      exposedEnds,
      setupMs,
    };
  } finally {
    for (const p of pairs) await p.close();
    if (!stopped) await server.close();
  }
}

/** Client-server sizes: a WebSocket client is cheap, so always 2 to 6 (or to `peers` when larger). */
const CS_MAX = 6;

export default defineLab({
  id: 'p2p-vs-client-server',
  title: 'Client-server against peer-to-peer: who carries the messages, who pays, who sees whose address, who survives the server',
  concept: 'In client-server every message goes through the one server, whose load grows with the clients and without which nothing flows; in peer-to-peer every node serves and consumes, pays its own upload, learns the others\' addresses, and the server only introduces them.',
  protocols: ['ws', 'webrtc'],
  timeoutMs: 120_000, // a 4-node werift mesh took 2.7 s here, and over 15 s once with both cores loaded
  params: {
    peers: { kind: 'int', default: 4, min: 3, max: 6, help: 'nodes in the larger mesh (the smaller one has 2); a mesh of n needs n(n-1)/2 DTLS connections. Client-server runs 2 to 6 nodes' },
    messages: { kind: 'count', default: 20, min: 1, max: 500, help: 'messages each node sends to every other node' },
    bytes: { kind: 'size', default: 200, min: 1, max: 16 * 1024, help: 'bytes per message' },
  },
  async run(ctx) {
    ({ messages: MESSAGES, bytes: BYTES } = ctx.params);
    const big = ctx.params.peers;
    const csSizes = Array.from({ length: Math.max(CS_MAX, big) - 1 }, (_, i) => i + 2);
    const cs: Outcome[] = [];
    for (const n of csSizes) cs.push(await clientServer(n, n === big));
    const p2p: Outcome[] = [await mesh(2, false), await mesh(big, true)];
    const csAt = (n: number): Outcome => cs.find((o) => o.n === n)!;
    const [cs2, csBig, csTop] = [csAt(2), csAt(big), cs.at(-1)!];
    const [p2, pBig] = [p2p[0]!, p2p[1]!];
    const max = (xs: number[]): number => Math.max(...xs);
    const min = (xs: number[]): number => Math.min(...xs);

    const rows: Array<Array<string | number>> = [];
    for (const o of cs) rows.push(['client-server (ws room)', o.n, o.connectionsPerNode.join(' '), o.delivered, `${o.serverMessagesIn} in / ${o.serverMessagesOut} out`, o.serverBytesOut, `${min(o.uploadPerNode)}–${max(o.uploadPerNode)}`, r2(o.setupMs)]);
    for (const o of p2p) rows.push(['peer-to-peer (werift mesh)', o.n, o.connectionsPerNode.join(' '), o.delivered, `${o.serverMessagesIn} in / ${o.serverMessagesOut} out`, o.serverBytesOut, `${min(o.uploadPerNode)}–${max(o.uploadPerNode)}`, r2(o.setupMs)]);
    ctx.table(
      `Each node sends ${MESSAGES} messages of ${BYTES} B to every other node`,
      ['model', 'nodes', 'connections per node', 'messages delivered', 'chat messages the server handled', 'server bytes out (incl. setup)', 'upload per node during the chat, B', 'setup, ms'],
      rows,
    );
    ctx.table(
      `Who each node talked to (${big} nodes), from its own sockets / selected ICE pairs`,
      ['model', 'node', 'its own address', 'the addresses it exchanged chat bytes with'],
      [
        ...csBig.talkedTo.map((t, i) => ['client-server', i, csBig.own[i]!.join(' '), t.join(' ')]),
        ...pBig.talkedTo.map((t, i) => ['peer-to-peer', i, pBig.own[i]!.join(' '), t.join(' ')]),
      ],
    );
    ctx.table(
      `The server stopped after the chat (${big} nodes), then every node sends again`,
      ['model', 'server stopped', 'sends the clients accepted', 'messages delivered afterwards'],
      [
        ['client-server', 'the WebSocket server (the chat itself)', csBig.afterServerStop.sent, csBig.afterServerStop.delivered],
        ['peer-to-peer', 'the signaling server (the introductions)', pBig.afterServerStop.sent, pBig.afterServerStop.delivered],
      ],
    );

    const expected = (n: number): number => n * (n - 1) * MESSAGES;
    ctx.claim('both models delivered every message to every other node', cs.every((o) => o.delivered === expected(o.n)) && p2p.every((o) => o.delivered === expected(o.n)), `${csBig.delivered} and ${pBig.delivered} of ${expected(big)} with ${big} nodes`);
    ctx.claim(
      'client-server (centralized): every message went through the server, which sent each one out to the n-1 others',
      cs.every((o) => o.serverMessagesIn === o.n * MESSAGES && o.serverMessagesOut === expected(o.n)),
      cs.map((o) => `${o.n} nodes: ${o.serverMessagesIn} in, ${o.serverMessagesOut} out`).join('; '),
    );
    ctx.claim(
      `client-server: the server's load grows faster than the group (2 → ${csTop.n} nodes: ${expected(csTop.n) / expected(2)} times the messages out, and at least 0.8 of that in bytes out)`,
      csTop.serverMessagesOut / cs2.serverMessagesOut === expected(csTop.n) / expected(2) && csTop.serverBytesOut / cs2.serverBytesOut >= 0.8 * (expected(csTop.n) / expected(2)),
      `messages out ${cs2.serverMessagesOut} → ${csTop.serverMessagesOut}; bytes out ${cs2.serverBytesOut} → ${csTop.serverBytesOut} (×${r2(csTop.serverBytesOut / cs2.serverBytesOut)})`,
    );
    ctx.claim(
      'peer-to-peer (decentralized): every node served and consumed; the server handled no chat message at all',
      p2p.every((o) => o.serverMessagesIn === 0 && o.serverMessagesOut === 0),
      `server messages during the chat: ${p2.serverMessagesIn + pBig.serverMessagesIn}`,
    );
    ctx.claim(
      'peer-to-peer: each node holds n-1 open connections (a full mesh), against one in client-server',
      p2p.every((o) => o.connectionsPerNode.every((c) => c === o.n - 1)) && cs.every((o) => o.connectionsPerNode.every((c) => c === 1)),
      `connected peer connections per node: ${p2p.map((o) => `${o.n} nodes [${o.connectionsPerNode.join(' ')}]`).join(', ')}; WebSockets open per client-server node: ${cs.map((o) => `${o.n} [${o.connectionsPerNode.join(' ')}]`).join(', ')}`,
    );
    const payload = MESSAGES * BYTES;
    ctx.claim(
      `cost: client-server puts the fan-out on the server (${big} nodes: ${csBig.serverBytesOut} B out of it) while each client uploads its messages once; the mesh has no server to pay for, each peer uploads to all n-1 others itself`,
      csBig.serverBytesOut >= expected(big) * BYTES && max(csBig.uploadPerNode) < 2 * payload && min(pBig.uploadPerNode) >= (big - 1) * payload,
      `client upload ${min(csBig.uploadPerNode)}–${max(csBig.uploadPerNode)} B (${MESSAGES} × ${BYTES} B = ${payload}); peer upload ${min(pBig.uploadPerNode)}–${max(pBig.uploadPerNode)} B (≥ ${big - 1} × ${payload})`,
    );
    const serverGrowth = csBig.serverBytesOut / cs2.serverBytesOut;
    // The mean, not the busiest: a peer's upload also carries its SCTP acknowledgements for what the others sent it.
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    const peerGrowth = mean(pBig.uploadPerNode) / mean(p2.uploadPerNode);
    ctx.claim(
      `scalability: from 2 to ${big} nodes the server's bytes out grew about n(n-1)/2 = ×${expected(big) / expected(2)} (at least 0.8 of it), a peer's upload about n-1 = ×${big - 1} (at most 1.75 times that)`,
      serverGrowth >= 0.8 * (expected(big) / expected(2)) && peerGrowth <= 1.75 * (big - 1),
      `server ×${r2(serverGrowth)}, mean peer upload ×${r2(peerGrowth)} (${r2(mean(p2.uploadPerNode))} → ${r2(mean(pBig.uploadPerNode))} B)`,
    );
    const csHidden = cs.every((o) => o.talkedTo.every((t, i) => t.length === 1 && o.own.every((mine, j) => j === i || !mine.some((a) => t.includes(a)))));
    ctx.claim(
      "security: in client-server a client only ever talks to the server's address (the server hides the clients from each other); in the mesh every peer talks to the other peers' own host addresses, which reached it through signaling",
      csHidden && cs.every((o) => o.talkedTo.every((t) => t[0] === o.serverAddress)) && pBig.exposedEnds === pBig.n * (pBig.n - 1) && pBig.candidateSignals > 0,
      `client-server: every client's one peer is ${csBig.talkedTo[0]![0]}; mesh: ${pBig.exposedEnds} of ${pBig.n * (pBig.n - 1)} pair ends talk to the other end's host candidate, ${pBig.candidateSignals} offers / answers / candidates relayed by signaling`,
    );
    ctx.claim(
      'reliability: with the server stopped, client-server chat stops (nothing delivered); the established mesh keeps talking without its signaling server',
      csBig.afterServerStop.delivered === 0 && pBig.afterServerStop.delivered === expected(big) && pBig.afterServerStop.sent > 0,
      `client-server: ${csBig.afterServerStop.sent} of ${big} sends accepted, ${csBig.afterServerStop.delivered} delivered; mesh: ${pBig.afterServerStop.delivered} of ${expected(big)} delivered`,
    );
    ctx.note(
      'Example row: the two chats above are the examples here (a WebSocket room: the shape of a web service; a WebRTC data-channel mesh: the shape of a call between peers). Security beyond addresses (a peer that lies, floods or serves bad data) is not observed here; a full mesh needs n(n-1)/2 DTLS connections, which is why large calls use a server again (an SFU).',
    );
  },
});
