import { connectPeerPair, type PeerPair } from '../clients/webrtc-pair.ts';
import { connectWs, type WsClient } from '../clients/ws.ts';
import { defineLab } from '../core/lab/index.ts';
import { startSignalingServer } from '../servers/webrtc/index.ts';
import { startWsServer } from '../servers/ws/index.ts';
import { r2 } from './_stats.ts';

// Set from ctx.params when run() starts (labs run one at a time); the values here are the defaults.
let SIZES = [2, 4];
let MESSAGES = 20;
let BYTES = 200;

interface Outcome {
  n: number;
  serverMessagesIn: number;
  serverMessagesOut: number;
  /** Bytes on the server's sockets, handshakes included. */
  serverBytes: number;
  delivered: number;
  /** Open connections each node held once the chat was over, as counted from the connections themselves. */
  connectionsPerNode: number[];
  setupMs: number;
}

/** N clients in one room of the WebSocket server: each sends MESSAGES, the server fans each out to the N-1 others. */
async function clientServer(n: number): Promise<Outcome> {
  const server = await startWsServer({ heartbeatMs: 0 });
  try {
    const t = performance.now();
    const clients: WsClient[] = [];
    for (let i = 0; i < n; i++) clients.push(await connectWs({ url: `${server.url}/room/chat` }));
    const setupMs = performance.now() - t;
    const want = MESSAGES * (n - 1);
    const receiving = clients.map(async (c) => {
      for (let i = 0; i < want; i++) await c.next();
      return want;
    });
    const msg = Buffer.alloc(BYTES, 0x61);
    for (let m = 0; m < MESSAGES; m++) for (const c of clients) await c.send(msg);
    const delivered = (await Promise.all(receiving)).reduce((a, b) => a + b, 0);
    const { messagesIn, messagesOut } = server.stats;
    // Each client is one WebSocket; the server counts the ones open: one per node if it holds n.
    const open = server.clients;
    const connectionsPerNode = clients.map(() => open / n);
    for (const c of clients) await c.close();
    await new Promise((r) => setTimeout(r, 30));
    return { n, serverMessagesIn: messagesIn, serverMessagesOut: messagesOut, serverBytes: server.stats.bytesIn + server.stats.bytesOut, delivered, connectionsPerNode, setupMs };
  } finally {
    await server.close();
  }
}

/** N werift peers in a full mesh (a data channel per pair, signaled through the server): each sends MESSAGES to every other. */
async function mesh(n: number): Promise<Outcome> {
  const server = await startSignalingServer({ heartbeatMs: 0 });
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
    const before = { in: sig.messagesIn, out: sig.messagesOut, bytes: sig.bytesIn + sig.bytesOut };
    const msg = Buffer.alloc(BYTES, 0x61);
    // Every node sends MESSAGES to each of its n-1 neighbours: both ends of every pair send.
    for (let m = 0; m < MESSAGES; m++) {
      for (const [a, b] of channels) {
        a.send(msg);
        b.send(msg);
      }
    }
    let delivered = 0;
    for (const [a, b] of channels) {
      for (let i = 0; i < MESSAGES; i++) {
        await a.next();
        await b.next();
        delivered += 2;
      }
    }
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
    return {
      n,
      serverMessagesIn: sig.messagesIn - before.in,
      serverMessagesOut: sig.messagesOut - before.out,
      serverBytes: sig.bytesIn + sig.bytesOut,
      delivered,
      connectionsPerNode,
      setupMs,
    };
  } finally {
    for (const p of pairs) await p.close();
    await server.close();
  }
}

export default defineLab({
  id: 'p2p-vs-client-server',
  title: 'Client-server against peer-to-peer: who carries the messages as the group grows',
  concept: 'In client-server every message goes through the one server, whose load grows with the clients; in peer-to-peer every node serves and consumes, and the server only introduces them.',
  protocols: ['ws', 'webrtc'],
  timeoutMs: 60_000, // a 4-node werift mesh took 2.7 s here, and over 15 s once with both cores loaded
  params: {
    peers: { kind: 'int', default: 4, min: 3, max: 6, help: 'nodes in the larger group (the smaller one has 2); a mesh of n needs n(n-1)/2 DTLS connections' },
    messages: { kind: 'count', default: 20, min: 1, max: 500, help: 'messages each node sends to every other node' },
    bytes: { kind: 'size', default: 200, min: 1, max: 16 * 1024, help: 'bytes per message' },
  },
  async run(ctx) {
    SIZES = [2, ctx.params.peers];
    ({ messages: MESSAGES, bytes: BYTES } = ctx.params);
    const big = ctx.params.peers;
    const cs: Outcome[] = [];
    const p2p: Outcome[] = [];
    for (const n of SIZES) {
      cs.push(await clientServer(n));
      p2p.push(await mesh(n));
    }
    const rows: Array<Array<string | number>> = [];
    for (let i = 0; i < SIZES.length; i++) {
      for (const [model, o] of [['client-server (ws room)', cs[i]!], ['peer-to-peer (werift mesh)', p2p[i]!]] as const) {
        rows.push([model, o.n, o.connectionsPerNode.join(' '), o.delivered, `${o.serverMessagesIn} in / ${o.serverMessagesOut} out`, o.serverBytes, r2(o.setupMs)]);
      }
    }
    ctx.table(`Each node sends ${MESSAGES} messages of ${BYTES} B to every other node`, ['model', 'nodes', 'connections per node', 'messages delivered', 'chat messages the server handled', 'server bytes (incl. setup)', 'setup, ms'], rows);

    const [cs2, cs4] = [cs[0]!, cs[1]!];
    const [p2, p4] = [p2p[0]!, p2p[1]!];
    const expected = (n: number): number => n * (n - 1) * MESSAGES;
    ctx.claim('both models delivered every message to every other node', cs.every((o) => o.delivered === expected(o.n)) && p2p.every((o) => o.delivered === expected(o.n)), `${cs4.delivered} and ${p4.delivered} of ${expected(big)} with ${big} nodes`);
    ctx.claim(
      'client-server (centralized): every message went through the server, which sent each one out to the n-1 others',
      cs.every((o) => o.serverMessagesIn === o.n * MESSAGES && o.serverMessagesOut === expected(o.n)),
      `${big} nodes: ${cs4.serverMessagesIn} in, ${cs4.serverMessagesOut} out`,
    );
    ctx.claim(
      `client-server: the server's load grows faster than the group (${big / 2} times the nodes, ${expected(big) / expected(2)} times the messages out)`,
      cs4.serverMessagesOut / cs2.serverMessagesOut === expected(big) / expected(2),
      `${cs2.serverMessagesOut} → ${cs4.serverMessagesOut} messages out`,
    );
    ctx.claim(
      'peer-to-peer (decentralized): every node served and consumed; the server handled no chat message at all',
      p2p.every((o) => o.serverMessagesIn === 0 && o.serverMessagesOut === 0),
      `server messages during the chat: ${p2.serverMessagesIn + p4.serverMessagesIn}`,
    );
    ctx.claim(
      'peer-to-peer: each node holds n-1 open connections (a full mesh), against one in client-server',
      p2p.every((o) => o.connectionsPerNode.every((c) => c === o.n - 1)) && cs.every((o) => o.connectionsPerNode.every((c) => c === 1)),
      `connected peer connections per node: ${p2p.map((o) => `${o.n} nodes [${o.connectionsPerNode.join(' ')}]`).join(', ')}; WebSockets open per client-server node: ${cs.map((o) => `${o.n} nodes [${o.connectionsPerNode.join(' ')}]`).join(', ')}`,
    );
    ctx.note(
      "Not shown here: the seed's \"security is harder in peer-to-peer\" row (a lab cannot observe a policy), and scale beyond a few peers: a full mesh needs n(n-1)/2 DTLS connections, which is why large calls use a server again (an SFU).",
    );
  },
});
