/**
 * Multi-node chat (issue 15 item 4): two chat nodes on one nats-server (JetStream), one nats-server for the whole file.
 * Node A runs in this process (a chat server on a JetStream broker of its own, presenceLeaseMs 1500); node B is
 * `wirelab up --only chat --engine jetstream --nats-url ... --set chat.presenceLeaseMs=1500` (the documented way), a
 * process started and SIGKILLed by PID. Users on A and B chat both ways, see each other's presence, typing and
 * receipts, and DM each other (signaling and the relay cross the cluster bus, and a real WebRTC DM between two
 * DmAgents goes peer to peer, counted by neither node's relay); the room owner on A mutes and kicks a
 * user on B; a user moves from A to B with `since` and gets every missed event once; B is SIGKILLed and its users leave
 * A's presence within B's lease; last, nats-server itself is killed and restarted, and the nodes find each other again.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { connect as natsConnect } from 'nats';
import WebSocket from 'ws';
import { connectChat, type ChatClient } from '../../../apps/chat/client.ts';
import { DmAgent } from '../../../apps/chat/dm-peer.ts';
import { startChatServer, type RunningChatServer } from '../../../apps/chat/server/index.ts';
import { closedPort } from '../../../core/ports.ts';
import { createBroker } from '../../../pubsub/broker/index.ts';
import { ChatCodes, type ServerMessage } from '../../../apps/chat/protocol.ts';
import { createJetStreamEngine, startNatsCluster, type NatsCluster } from '../../../pubsub/engines/jetstream/index.ts';
import { hasCommand } from '../../helpers/peers.ts';
import { killUp, startUp, type UpProcess } from '../../helpers/up.ts';

const HAVE = hasCommand('nats-server');
if (!HAVE && process.env.CI === 'true') throw new Error('CI=true and needs nats-server (Debian package nats-server; npm run peers installs it)');
const SKIP = HAVE ? false : 'needs nats-server (Debian package nats-server; npm run peers installs it)';

const LEASE_MS = 1500;

/** A chat node in this process: a chat server on a JetStream broker of its own, in the chat cluster on `servers`. */
async function startNode(servers: string[], presenceLeaseMs: number): Promise<{ chat: RunningChatServer; close(): Promise<void> }> {
  const engine = await createJetStreamEngine({ servers });
  const broker = await createBroker({ engine });
  const chat = await startChatServer({ broker, cluster: { servers }, presenceLeaseMs, heartbeatMs: 0, ratePerSecond: 50, rateBurst: 50 });
  let closing: Promise<void> | undefined;
  return { chat, close: () => (closing ??= (async () => (await chat.close(), await broker.close(), await engine.close()))()) };
}

/** The raw protocol, for joining with an explicit `since`. */
async function rawChat(url: string, name: string): Promise<{ ws: WebSocket; got: ServerMessage[]; until(match: (m: ServerMessage) => boolean, ms?: number): Promise<ServerMessage> }> {
  const ws = new WebSocket(url);
  const got: ServerMessage[] = [];
  ws.on('error', () => {});
  ws.on('message', (d) => got.push(JSON.parse(d.toString()) as ServerMessage));
  await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
  ws.send(JSON.stringify({ type: 'hello', name }));
  const until = async (match: (m: ServerMessage) => boolean, ms = 10_000): Promise<ServerMessage> => {
    const end = Date.now() + ms;
    for (;;) {
      const m = got.find(match);
      if (m) return m;
      if (Date.now() > end) throw new Error(`timed out: ${JSON.stringify(got.slice(-5))}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  return { ws, got, until };
}

/**
 * A single nats-server answers its monitor's /jsz (what startNatsCluster waits for) a moment before it accepts clients;
 * a test that connects at once waits for the client port.
 */
async function clientPortOpen(url: string): Promise<void> {
  const { hostname, port } = new URL(url);
  const end = Date.now() + 10_000;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const s = net.connect(Number(port), hostname, () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > end) throw new Error(`nats-server at ${url} accepts no connection`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const presence = (user: string, state: 'join' | 'leave') => (m: ServerMessage): boolean => m.type === 'presence' && m.user === user && m.state === state;

describe('multi-node chat on one JetStream (two chat server processes)', { skip: SKIP }, () => {
  let nats: NatsCluster;
  let a: Awaited<ReturnType<typeof startNode>>;
  let b: UpProcess;
  let urlA: string;
  let urlB: string;
  const clients: ChatClient[] = [];
  const client = async (url: string, name: string): Promise<ChatClient> => {
    const c = await connectChat({ url, name, reconnect: false });
    clients.push(c);
    return c;
  };

  before(async () => {
    nats = await startNatsCluster({ nodes: 1 });
    await clientPortOpen(nats.urls[0]!);
    // B's lease through `up --set` (the chat row's options), so B's SIGKILL shows within 1.5 s rather than 6.
    const upB = startUp(['--port-base', '0', '--only', 'chat', '--engine', 'jetstream', '--nats-url', nats.urls[0]!, '--set', `chat.presenceLeaseMs=${LEASE_MS}`], 60_000);
    [a, b] = await Promise.all([startNode(nats.urls, LEASE_MS), upB]);
    urlA = a.chat.endpoint;
    const row = b.endpoints.find((e) => e.name === 'chat')!;
    urlB = `ws://127.0.0.1:${row.port}/ws`;
    assert.match(String(row.node), /multi-node/, 'the chat row of `up --engine jetstream` says it is a node');
  });
  after(async () => {
    for (const c of clients) c.close();
    if (b) await killUp(b).catch(() => undefined);
    await a?.close();
    await nats?.close();
  });

  it('users on A and B chat both ways and see each other online, typing and receipts', async () => {
    const ana = await client(urlA, 'ana');
    await ana.join('lobby');
    const ben = await client(urlB, 'ben');
    const benSeen = ana.waitFor(presence('ben', 'join'));
    await ben.join('lobby');
    assert.deepEqual((await benSeen as Extract<ServerMessage, { type: 'presence' }>).online, ['ana', 'ben'], "A's member sees B's user join");
    assert.equal(ben.rooms.get('lobby')!.owner, 'ana', 'the owner is read from the shared stream');
    const who = ben.waitFor((m) => m.type === 'who');
    ben.raw({ type: 'who', room: 'lobby' });
    assert.deepEqual((await who as Extract<ServerMessage, { type: 'who' }>).online, ['ana', 'ben'], "B's /who lists A's user");

    const atB = ben.waitFor((m) => m.type === 'event' && m.text === 'hi from A');
    const offset = await ana.send('lobby', 'hi from A');
    assert.equal((await atB as Extract<ServerMessage, { type: 'event' }>).offset, offset, 'one offset on both nodes');
    const atA = ana.waitFor((m) => m.type === 'event' && m.text === 'hi from B');
    await ben.send('lobby', 'hi from B');
    await atA;

    const typing = ana.waitFor((m) => m.type === 'typing' && m.user === 'ben' && m.on);
    ben.raw({ type: 'typing', room: 'lobby', on: true });
    await typing;
    const seen = ana.waitFor((m) => m.type === 'receipt' && m.user === 'ben' && m.state === 'seen');
    ben.raw({ type: 'receipt', room: 'lobby', offset, state: 'seen' });
    assert.equal((await seen as Extract<ServerMessage, { type: 'receipt' }>).offset, offset, "B's receipt reaches A");
    // A user joining on A later gets the receipt B's user gave (kept by A from the bus).
    const cy = await client(urlA, 'cy');
    const cyReceipt = cy.waitFor((m) => m.type === 'receipt' && m.user === 'ben' && m.state === 'seen');
    await cy.join('lobby');
    await cyReceipt;
    // From outside both nodes: the room's stream holds the two messages and nothing of the typing or receipts.
    const reader = await createJetStreamEngine({ servers: nats.urls });
    try {
      const kinds = (await reader.read('chat.room.lobby', 0, 0, 100)).map((r) => (JSON.parse(r.payload.toString()) as { kind: string }).kind);
      assert.deepEqual(kinds, ['created', 'msg', 'msg']);
    } finally {
      await reader.close();
    }
  });

  it('users on A and B DM each other: WebRTC signaling and the relay cross the cluster bus', async () => {
    const dee = await connectChat({ url: urlA, name: 'dee', reconnect: false, declineDmOffers: false });
    const eli = await connectChat({ url: urlB, name: 'eli', reconnect: false, declineDmOffers: false });
    clients.push(dee, eli);
    await dee.join('dms');
    const eliSeen = dee.waitFor(presence('eli', 'join'));
    await eli.join('dms');
    await eliSeen;
    const before = a.chat.stats.dm;
    const stored = a.chat.stats.messages;
    // The relay: each DM is answered by the receiver's dm-ack, which comes back across the bus too.
    const atEli = eli.waitFor((m) => m.type === 'dm' && m.from === 'dee');
    assert.ok((await dee.dm('eli', 'psst, on the other node')) >= 0);
    assert.equal(((await atEli) as Extract<ServerMessage, { type: 'dm' }>).text, 'psst, on the other node');
    const atDee = dee.waitFor((m) => m.type === 'dm' && m.from === 'eli');
    await eli.dm('dee', 'and back');
    await atDee;
    // Signaling: an offer from A, the answer and a candidate from B, a candidate from A, bye: each reaches the other end.
    const sdp = 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n';
    const signal = (c: ChatClient, kind: string) => c.waitFor((m) => m.type === 'signal' && m.session === 'x1' && m.kind === kind);
    const offer = signal(eli, 'offer');
    dee.raw({ type: 'signal', to: 'eli', session: 'x1', kind: 'offer', sdp });
    assert.equal(((await offer) as Extract<ServerMessage, { type: 'signal' }>).sdp, sdp);
    const answer = signal(dee, 'answer');
    const cand = signal(dee, 'candidate');
    eli.raw({ type: 'signal', to: 'dee', session: 'x1', kind: 'answer', sdp });
    eli.raw({ type: 'signal', to: 'dee', session: 'x1', kind: 'candidate', candidate: { candidate: 'candidate:1 1 udp 1 127.0.0.1 5000 typ host', sdpMid: '0' } });
    assert.equal(((await answer) as Extract<ServerMessage, { type: 'signal' }>).from, 'eli');
    assert.match(String(((await cand) as Extract<ServerMessage, { type: 'signal' }>).candidate?.candidate), /127\.0\.0\.1 5000/);
    const bye = signal(eli, 'bye');
    dee.raw({ type: 'signal', to: 'eli', session: 'x1', kind: 'bye' });
    await bye;
    // A signal for a session that is over is refused by the sender's node (the session went with bye).
    const refused = dee.waitFor((m) => m.type === 'error' && m.cid === 'x1');
    dee.raw({ type: 'signal', to: 'eli', session: 'x1', kind: 'candidate', candidate: null });
    assert.equal(((await refused) as Extract<ServerMessage, { type: 'error' }>).code, ChatCodes.STATE);
    // Nobody of that name in a shared room on any node: PEER at once.
    await assert.rejects(dee.dm('nobody', 'hello?'), (e: Error & { code?: string }) => e.code === ChatCodes.PEER);
    const after = a.chat.stats.dm;
    assert.ok(after.toNodes - before.toNodes >= 4, `A sent DM messages to B over the bus (${after.toNodes - before.toNodes})`);
    assert.ok(after.fromNodes - before.fromNodes >= 4, `A got DM messages from B over the bus (${after.fromNodes - before.fromNodes})`);
    assert.equal(after.fromNodesDropped, before.fromNodesDropped);
    assert.equal(a.chat.stats.messages, stored, 'no DM was stored');

    // A real WebRTC DM across the nodes: a DmAgent (werift) on each; the signaling crosses the bus, the text does not
    // pass through either server (no relay counted on A, no relayed `dm` reaching eli from B).
    const eliGot: string[] = [];
    const agentDee = new DmAgent(dee, { iceTimeoutMs: 20_000, onDm: () => {} });
    const agentEli = new DmAgent(eli, { iceTimeoutMs: 20_000, onDm: (from, text) => eliGot.push(`${from}: ${text}`) });
    const relayedToEli: ServerMessage[] = [];
    const off = eli.on((m) => void (m.type === 'dm' && relayedToEli.push(m)));
    try {
      const p2p0 = a.chat.stats.dm;
      const sent = await agentDee.send('eli', 'peer to peer across nodes');
      assert.equal(sent.via, 'webrtc (p2p)', `the DM went ${sent.via}${sent.why ? `: ${sent.why}` : ''}`);
      assert.deepEqual(eliGot, ['dee: peer to peer across nodes']);
      const p2p1 = a.chat.stats.dm;
      assert.ok(p2p1.toNodes - p2p0.toNodes >= 1 && p2p1.fromNodes - p2p0.fromNodes >= 1, 'the offer and the answer crossed the bus');
      assert.equal(p2p1.relayed, p2p0.relayed, "A's relay counted no DM");
      assert.equal(p2p1.relayedBytes, p2p0.relayedBytes);
      assert.deepEqual(relayedToEli, [], 'B relayed nothing to eli');
    } finally {
      off();
      await Promise.all([agentDee.close(), agentEli.close()]);
    }
  });

  it("the owner on A mutes and kicks a user on B: it holds on B's node", async () => {
    const ana = clients.find((c) => c.name === 'ana')!;
    const ben = clients.find((c) => c.name === 'ben')!;
    const muteEvent = ben.waitFor((m) => m.type === 'event' && m.kind === 'mute' && m.target === 'ben');
    ana.raw({ type: 'mute', room: 'lobby', user: 'ben', ms: 60_000 });
    await muteEvent;
    await assert.rejects(ben.send('lobby', 'am I muted?'), (e: Error & { code?: string }) => e.code === ChatCodes.MUTED);
    const left = ben.waitFor((m) => m.type === 'left' && m.room === 'lobby');
    const benLeft = ana.waitFor(presence('ben', 'leave'));
    ana.raw({ type: 'kick', room: 'lobby', user: 'ben' });
    assert.match((await left as Extract<ServerMessage, { type: 'left' }>).reason, /kicked by ana/);
    await benLeft;
    const refused = ben.waitFor((m) => m.type === 'error' && m.code === ChatCodes.KICKED);
    ben.raw({ type: 'join', room: 'lobby' });
    await refused;
  });

  it("a node started later learns who is online and the receipts from the others' snapshots; closed, its users leave at once", async () => {
    // Node C in this process: a third node on the same NATS (its own broker on the engine, its own bus connection).
    const engine = await createJetStreamEngine({ servers: nats.urls });
    const broker = await createBroker({ engine });
    const c = await startChatServer({ broker, cluster: { servers: nats.urls }, heartbeatMs: 0 });
    try {
      const ivy = await client(c.endpoint, 'ivy');
      const receipt = ivy.waitFor((m) => m.type === 'receipt' && m.user === 'ben' && m.state === 'seen');
      await ivy.join('lobby');
      // ana and cy joined on A before C existed: C knows them only from A's snapshot (in `joined`, or as presence
      // events when the snapshot came after ivy's join).
      const end = Date.now() + 5000;
      while (ivy.rooms.get('lobby')!.online.join() !== 'ana,cy,ivy' && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(ivy.rooms.get('lobby')!.online, ['ana', 'cy', 'ivy']);
      await receipt;
      assert.equal(c.cluster?.nodes, 2, 'C hears A and B');
      // C closes with ivy still connected: A's members see her leave without waiting out C's lease (6,000 ms).
      const ana = clients.find((x) => x.name === 'ana')!;
      const gone = ana.waitFor(presence('ivy', 'leave'));
      const t0 = performance.now();
      await c.close();
      await gone;
      assert.ok(performance.now() - t0 < 3000, `ivy left ${Math.round(performance.now() - t0)} ms after C closed`);
    } finally {
      await c.close();
      await broker.close();
      await engine.close();
    }
  });

  it('a user moves from A to B with `since`: every missed event once, no gap, no duplicate', async () => {
    const eve = await rawChat(urlA, 'eve');
    eve.ws.send(JSON.stringify({ type: 'join', room: 'move' }));
    await eve.until((m) => m.type === 'synced' && m.room === 'move');
    const fay = await client(urlB, 'fay');
    await fay.join('move');
    for (const t of ['m1', 'm2']) await fay.send('move', t);
    await eve.until((m) => m.type === 'event' && m.text === 'm2');
    const last = Math.max(...eve.got.flatMap((m) => (m.type === 'event' ? [m.offset] : [])));
    eve.ws.terminate();
    await fay.waitFor(presence('eve', 'leave'));
    const missed = [];
    for (const t of ['m3', 'm4', 'm5']) missed.push(await fay.send('move', t));
    const moved = await rawChat(urlB, 'eve');
    moved.ws.send(JSON.stringify({ type: 'join', room: 'move', since: last }));
    const joined = (await moved.until((m) => m.type === 'joined')) as Extract<ServerMessage, { type: 'joined' }>;
    await moved.until((m) => m.type === 'synced');
    assert.equal(joined.recovered, true, 'the offset A gave is an offset on B');
    const got = moved.got.flatMap((m) => (m.type === 'event' ? [m.offset] : []));
    assert.deepEqual(got, missed, 'exactly the missed events, in order, once');
    moved.ws.close();
  });

  it('the bus: bad input is skipped, a gap is not applied, a silent node expires after its own lease', async () => {
    const nc = await natsConnect({ servers: nats.urls });
    const subject = '_WL.chat.chat.bus';
    const say = (m: object): void => nc.publish(subject, Buffer.from(JSON.stringify({ n: 'fake-1', l: 400, ...m })));
    try {
      const cy = clients.find((x) => x.name === 'cy')!;
      const seen: string[] = [];
      cy.on((m) => void (m.type === 'presence' && seen.push(`${m.user} ${m.state}`)));
      const joined = cy.waitFor(presence('mallory', 'join'));
      nc.publish(subject, Buffer.from('not json'));
      nc.publish(subject, Buffer.from('{"n": 5}'));
      say({ s: 0, op: 'snap', p: 0, last: true, rooms: [{ room: 'lobby', users: ['mallory'], receipts: [] }] });
      await joined;
      const left = cy.waitFor(presence('mallory', 'leave'));
      const t0 = performance.now();
      say({ s: 7, op: 'on', r: 'lobby', u: 'trent' }); // sequence 7 after 0: lost messages, so not applied
      await left;
      const ms = performance.now() - t0;
      assert.ok(ms >= 300 && ms < 3000, `mallory left ${Math.round(ms)} ms after fake-1's last message (its lease 400 ms)`);
      assert.deepEqual(seen, ['mallory join', 'mallory leave'], 'trent never appeared');
      const back = cy.waitFor((m) => m.type === 'event' && m.text === 'still serving');
      await clients.find((x) => x.name === 'ana')!.send('lobby', 'still serving');
      await back;
    } finally {
      await nc.close();
    }
  });

  it("node B (the `wirelab up` process) is SIGKILLed: its users leave A's presence within presenceLeaseMs", async (t) => {
    const gus = await client(urlB, 'gus');
    await gus.join('kill');
    const hal = await client(urlA, 'hal');
    await hal.join('kill');
    if (!hal.rooms.get('kill')!.online.includes('gus')) await hal.waitFor(presence('gus', 'join'));
    const gone = hal.waitFor(presence('gus', 'leave'), 10_000);
    const t0 = performance.now();
    await killUp(b);
    const left = (await gone) as Extract<ServerMessage, { type: 'presence' }>;
    const ms = performance.now() - t0;
    assert.deepEqual(left.online, ['hal']);
    t.diagnostic(`gus left A's presence ${Math.round(ms)} ms after the SIGKILL (B's presenceLeaseMs ${LEASE_MS})`);
    // The lease runs from the last message heard (a beat at most lease / 3 before the kill); A checks every 250 ms.
    assert.ok(ms < LEASE_MS + 1500, `gus left after ${Math.round(ms)} ms (presenceLeaseMs ${LEASE_MS})`);
    assert.ok(ms >= LEASE_MS / 3, `not before the lease could run out (${Math.round(ms)} ms)`);
  });

  // Last: it kills the file's nats-server (and restarts it).
  it("NATS goes away and comes back: each node drops the other's users after the lease, has them back after; chat goes on", async () => {
    // Node D in this process, with a short lease of its own; A (lease 1500) is the other node.
    const d = await startNode(nats.urls, 600);
    try {
      const ana = await client(urlA, 'ana2');
      await ana.join('outage');
      const benJoined = ana.waitFor(presence('ben2', 'join'));
      const ben = await client(d.chat.endpoint, 'ben2');
      await ben.join('outage');
      await benJoined;
      const benLeft = ana.waitFor(presence('ben2', 'leave'));
      await nats.kill(0, 'SIGKILL');
      await benLeft; // A has not heard D for D's lease: D's users are gone from A's presence
      const benBack = ana.waitFor(presence('ben2', 'join'), 15_000);
      const t0 = performance.now();
      await nats.restart(0);
      await benBack; // D's beats reach A again; A asks D for a snapshot
      const ms = performance.now() - t0;
      assert.equal(a.chat.cluster?.nodes, 1, 'A hears D (B was killed, C closed)');
      const after = ana.waitFor((m) => m.type === 'event' && m.text === 'after the outage', 15_000);
      await ben.send('outage', 'after the outage');
      await after;
      assert.ok(ms < 10_000, `ben2 back in A's presence ${Math.round(ms)} ms after nats-server restarted`);
    } finally {
      await d.close();
    }
  });
});

describe('multi-node options', () => {
  it('a bad cluster option or lease is refused by name; an unreachable NATS is one error naming the URL', async () => {
    await assert.rejects(startChatServer({ cluster: { servers: [] } }), (e: Error & { option?: string }) => e.option === 'cluster.servers');
    await assert.rejects(startChatServer({ cluster: { servers: 'nats://127.0.0.1:1', namespace: 'a.b' } }), (e: Error & { option?: string }) => e.option === 'cluster.namespace');
    await assert.rejects(startChatServer({ presenceLeaseMs: 10 }), (e: Error & { option?: string }) => e.option === 'presenceLeaseMs');
    const port = await closedPort('tcp');
    await assert.rejects(startChatServer({ cluster: { servers: `nats://127.0.0.1:${port}` } }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'WL_ERR_PUBSUB_UNAVAILABLE');
      assert.match(e.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
      return true;
    });
  });
});
