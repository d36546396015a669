/**
 * Multi-node chat (issue 15 item 4): two chat server processes on one nats-server (JetStream) started by PID. Node A is
 * multinode-node.ts (a chat server on a JetStream broker of its own, presenceLeaseMs 1500); node B is
 * `wirelab up --only chat --engine jetstream --nats-url ...` (the documented way, default lease). Users on A and B chat
 * both ways, see each other's presence, typing and receipts; the room owner on A mutes and kicks a user on B; a user
 * moves from A to B with `since` and gets every missed event once; A is SIGKILLed by PID and its users leave B's
 * presence within A's lease.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connect as natsConnect } from 'nats';
import WebSocket from 'ws';
import { connectChat, type ChatClient } from '../../../apps/chat/client.ts';
import { startChatServer } from '../../../apps/chat/server/index.ts';
import { closedPort } from '../../../core/ports.ts';
import { createBroker } from '../../../pubsub/broker/index.ts';
import { ChatCodes, type ServerMessage } from '../../../apps/chat/protocol.ts';
import { createJetStreamEngine, startNatsCluster, type NatsCluster } from '../../../pubsub/engines/jetstream/index.ts';
import { hasCommand } from '../../helpers/peers.ts';
import { startUp, type UpProcess } from '../../helpers/up.ts';

const HAVE = hasCommand('nats-server');
if (!HAVE && process.env.CI === 'true') throw new Error('CI=true and needs nats-server (Debian package nats-server; npm run peers installs it)');
const SKIP = HAVE ? false : 'needs nats-server (Debian package nats-server; npm run peers installs it)';

const LEASE_MS = 1500;
const NODE_SCRIPT = fileURLToPath(new URL('./multinode-node.ts', import.meta.url));

/** Node A: resolves with its WebSocket endpoint once it listens. */
function startNode(natsUrl: string): Promise<{ child: ChildProcess; endpoint: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=wirelab-source', '--import', 'tsx', NODE_SCRIPT, natsUrl, String(LEASE_MS)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.once('exit', (code) => reject(new Error(`node A exited (${code}) before listening:\n${err}`)));
    child.stdout.on('data', (d) => {
      out += d;
      if (!out.includes('\n')) return;
      child.removeAllListeners('exit');
      resolve({ child, endpoint: (JSON.parse(out.slice(0, out.indexOf('\n'))) as { endpoint: string }).endpoint });
    });
  });
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
  let a: { child: ChildProcess; endpoint: string };
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
    const upB = startUp(['--port-base', '0', '--only', 'chat', '--engine', 'jetstream', '--nats-url', nats.urls[0]!], 60_000);
    [a, b] = await Promise.all([startNode(nats.urls[0]!), upB]);
    urlA = a.endpoint;
    const row = b.endpoints.find((e) => e.name === 'chat')!;
    urlB = `ws://127.0.0.1:${row.port}/ws`;
    assert.match(String(row.node), /multi-node/, 'the chat row of `up --engine jetstream` says it is a node');
  });
  after(async () => {
    for (const c of clients) c.close();
    if (b) await b.stop().catch(() => undefined);
    if (a && a.child.exitCode === null && a.child.signalCode === null) {
      const gone = new Promise((r) => a.child.once('exit', r));
      a.child.kill('SIGTERM');
      await gone;
    }
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

  it("node A is SIGKILLed: its users leave B's presence within presenceLeaseMs", async (t) => {
    const gus = await client(urlA, 'gus');
    await gus.join('kill');
    const hal = await client(urlB, 'hal');
    await hal.join('kill');
    if (!hal.rooms.get('kill')!.online.includes('gus')) await hal.waitFor(presence('gus', 'join'));
    const gone = hal.waitFor(presence('gus', 'leave'), 10_000);
    const t0 = performance.now();
    const killed = new Promise((r) => a.child.once('exit', r));
    process.kill(a.child.pid!, 'SIGKILL');
    await killed;
    const left = (await gone) as Extract<ServerMessage, { type: 'presence' }>;
    const ms = performance.now() - t0;
    assert.deepEqual(left.online, ['hal']);
    t.diagnostic(`gus left B's presence ${Math.round(ms)} ms after the SIGKILL (A's presenceLeaseMs ${LEASE_MS})`);
    // The lease runs from the last message heard (a beat at most lease / 3 before the kill); B checks every 250 ms.
    assert.ok(ms < LEASE_MS + 1500, `gus left after ${Math.round(ms)} ms (presenceLeaseMs ${LEASE_MS})`);
    assert.ok(ms >= LEASE_MS / 3, `not before the lease could run out (${Math.round(ms)} ms)`);
  });
});

describe('multi-node chat when NATS goes away and comes back', { skip: SKIP }, () => {
  it("each node drops the other's users after the lease, and has them back once NATS returns; chat goes on", async () => {
    const nats = await startNatsCluster({ nodes: 1 });
    await clientPortOpen(nats.urls[0]!);
    const nodes: { chat: Awaited<ReturnType<typeof startChatServer>>; close(): Promise<void> }[] = [];
    const users: ChatClient[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const engine = await createJetStreamEngine({ servers: nats.urls });
        const broker = await createBroker({ engine });
        const chat = await startChatServer({ broker, cluster: { servers: nats.urls }, presenceLeaseMs: 600, heartbeatMs: 0 });
        nodes.push({ chat, close: async () => (await chat.close(), await broker.close(), await engine.close()) });
      }
      const ana = await connectChat({ url: nodes[0]!.chat.endpoint, name: 'ana', reconnect: false });
      users.push(ana);
      await ana.join('lobby');
      const benJoined = ana.waitFor(presence('ben', 'join'));
      const ben = await connectChat({ url: nodes[1]!.chat.endpoint, name: 'ben', reconnect: false });
      users.push(ben);
      await ben.join('lobby');
      await benJoined;
      const benLeft = ana.waitFor(presence('ben', 'leave'));
      await nats.kill(0, 'SIGKILL');
      await benLeft; // A has not heard B for B's lease: B's users are gone from A's presence
      const benBack = ana.waitFor(presence('ben', 'join'), 15_000);
      const t0 = performance.now();
      await nats.restart(0);
      await benBack; // B's beats reach A again; A asks B for a snapshot
      const ms = performance.now() - t0;
      assert.equal(nodes[0]!.chat.cluster?.nodes, 1);
      const after = ana.waitFor((m) => m.type === 'event' && m.text === 'after the outage');
      await ben.send('lobby', 'after the outage');
      await after;
      assert.ok(ms < 10_000, `ben back in A's presence ${Math.round(ms)} ms after nats-server restarted`);
    } finally {
      for (const u of users) u.close();
      for (const n of nodes) await n.close();
      await nats.close();
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
