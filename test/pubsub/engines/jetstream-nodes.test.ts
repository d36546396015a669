/**
 * Several wirelab broker nodes on one JetStream cluster (issue 13): two `wirelab up --nats-url` processes (node A and
 * node B) on one 3-node nats-server cluster serve one topic space. Fan-out and queue groups across nodes, a partitioned
 * group whose partitions each have one owner across processes, `wirelab pub` on B read by `wirelab sub` on A, and a
 * node SIGKILLed by PID while its consumers hold unacked messages (redelivered through the other node after ackWait;
 * its partitions move once its member lease has expired).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connectPubsub, type PubsubClient, type ReceivedMessage } from '../../../clients/pubsub.ts';
import { createJetStreamEngine, startNatsCluster, type NatsCluster } from '../../../pubsub/engines/jetstream/index.ts';
import { hasCommand } from '../../helpers/peers.ts';
import { runCli } from '../../helpers/cli.ts';
import { startUp, type UpProcess, killUp } from '../../helpers/up.ts';

const HAVE = hasCommand('nats-server');
if (!HAVE && process.env.CI === 'true') throw new Error('CI=true and needs nats-server (Debian package nats-server; npm run peers installs it)');
const SKIP = HAVE ? false : 'needs nats-server (Debian package nats-server; npm run peers installs it)';

/** The engine's default member lease (options.ts memberLeaseMs): `up` runs with the defaults. */
const LEASE_MS = 6000;

interface Node {
  up: UpProcess;
  url: string;
}

async function node(cluster: NatsCluster, extra: string[] = []): Promise<Node> {
  const up = await startUp(['--port-base', '0', '--only', 'pubsub-tcp', '--engine', 'jetstream', '--nats-url', cluster.urls.join(','), ...extra], 60_000);
  const e = up.endpoints.find((x) => x.name === 'pubsub-tcp')!;
  return { up, url: `tcp://127.0.0.1:${e.port}` };
}


async function client(url: string): Promise<PubsubClient> {
  const c = await connectPubsub({ url, reconnect: { retries: 0, baseMs: 100, maxMs: 100 } });
  c.closed.catch(() => undefined);
  return c;
}

async function until(what: () => boolean, ms: number, label: string): Promise<void> {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms: ${label}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('several wirelab nodes on one JetStream cluster', { skip: SKIP }, () => {
  let cluster: NatsCluster;
  let a: Node;
  let b: Node;
  const clients: PubsubClient[] = [];
  before(async () => {
    cluster = await startNatsCluster({ nodes: 3 });
    // Node B publishes with onUnavailable 'error' (the flag reaches its engine; nothing here takes the cluster away).
    [a, b] = await Promise.all([node(cluster), node(cluster, ['--on-unavailable', 'error'])]);
  });
  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    for (const n of [a, b]) if (n) await n.up.stop().catch(() => undefined);
    await cluster?.close();
  });
  const open = async (url: string): Promise<PubsubClient> => {
    const c = await client(url);
    clients.push(c);
    return c;
  };

  it('a subscriber on node A gets what a publisher on node B sent, once; a queue group across both nodes gets each message once in total', async () => {
    const ca = await open(a.url);
    const cb = await open(b.url);
    const fan: ReceivedMessage[] = [];
    await ca.subscribe('nodes.fan', { ack: 'none', onMessage: (m) => fan.push(m) });
    const qa: ReceivedMessage[] = [];
    const qb: ReceivedMessage[] = [];
    // One CI run waited out the 30 s ackWait for 2 of 200 (nats.js fetch() dropped messages sent into a request its
    // client timer had ended; the puller now keeps its own inbox). ackWait 10 s keeps such a case inside the window.
    const spec = { group: 'q', mode: 'queue' as const, ack: 'manual' as const, from: 'earliest' as const, ackWaitMs: 10_000 };
    await ca.subscribe('nodes.q', { ...spec, onMessage: (m) => (qa.push(m), m.ack()) });
    await cb.subscribe('nodes.q', { ...spec, onMessage: (m) => (qb.push(m), m.ack()) });
    // The fan-out subscriber is attached once the topic exists; a first publish creates it, then the counted ones.
    await cb.publish('nodes.fan', 'warm-up', { acks: 'all' });
    await until(() => fan.length >= 1, 15_000, 'the fan-out subscriber on A attached');
    const N = 200;
    for (let i = 0; i < N; i++) {
      await cb.publish('nodes.fan', `f${i}`, { acks: 'all' });
      await (i % 2 ? ca : cb).publish('nodes.q', `q${i}`, { acks: 'all' });
    }
    await until(() => fan.length >= N + 1 && qa.length + qb.length >= N, 35_000, `fan ${fan.length}/${N + 1}, queue ${qa.length + qb.length}/${N}`);
    await new Promise((r) => setTimeout(r, 500)); // a duplicate would come now
    assert.deepEqual(fan.slice(1).map((m) => m.text), Array.from({ length: N }, (_, i) => `f${i}`), 'A got B\'s messages once, in order');
    const all = [...qa, ...qb].map((m) => m.text);
    assert.equal(all.length, N, 'each queue message once in total');
    assert.equal(new Set(all).size, N);
    // Which member's pulls win is nats-server's scheduling (B once took all 200 in CI): that both are live members of
    // the one group is shown by ending B's member and seeing A's take what follows, still once.
    const before = qa.length;
    await cb.close();
    for (let i = 0; i < 10; i++) await ca.publish('nodes.q', `after${i}`, { acks: 'all' });
    await until(() => qa.length >= before + 10, 20_000, `A's member took over: ${qa.length - before}/10`);
    assert.deepEqual(qa.slice(before).map((m) => m.text).sort(), Array.from({ length: 10 }, (_, i) => `after${i}`).sort(), "A's member got the rest, once each");
  });

  it('up --on-unavailable takes wait or error (exit 2 otherwise, before starting anything)', async () => {
    const bad = await runCli(['up', '--port-base', '0', '--only', 'tcp-echo', '--engine', 'jetstream', '--on-unavailable', 'maybe'], { timeoutMs: 30_000 });
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /--on-unavailable must be wait or error, got maybe/);
  });

  it('wirelab pub on node B, wirelab sub on node A', async () => {
    const sub = runCli(['sub', '--url', a.url, 'nodes.cli', '--from', 'earliest', '--count', '2', '--json'], { timeoutMs: 30_000 });
    const p1 = await runCli(['pub', '--url', b.url, 'nodes.cli', 'hello from B', '--acks', 'all'], { timeoutMs: 30_000 });
    const p2 = await runCli(['pub', '--url', b.url, 'nodes.cli', 'again', '--acks', '1'], { timeoutMs: 30_000 });
    assert.equal(p1.code, 0, p1.stderr);
    assert.equal(p2.code, 0, p2.stderr);
    const r = await sub;
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { payload: string; offset: number });
    assert.deepEqual(lines.map((l) => [l.offset, l.payload]), [[0, 'hello from B'], [1, 'again']]);
  });

  it('a partitioned group with members on both nodes: each partition owned by one member across processes; a leaving member hands its partitions over', async () => {
    const e = await createJetStreamEngine({ servers: cluster.urls });
    try {
      await e.ensureTopic('nodes.parts', { partitions: 4 });
    } finally {
      await e.close();
    }
    const ca = await open(a.url);
    const cb = await open(b.url);
    const got = { a: [] as ReceivedMessage[], b: [] as ReceivedMessage[] };
    const spec = { group: 'pg', mode: 'partitioned' as const, ack: 'manual' as const, from: 'earliest' as const };
    const sa = await ca.subscribe('nodes.parts', { ...spec, onMessage: (m) => (got.a.push(m), m.ack()) });
    await cb.subscribe('nodes.parts', { ...spec, onMessage: (m) => (got.b.push(m), m.ack()) });
    // Both processes have seen both members once B's join was announced; then publish 4 partitions x 25.
    await new Promise((r) => setTimeout(r, 1000));
    const N = 100;
    for (let i = 0; i < N; i++) await cb.publish('nodes.parts', `p${i}`, { acks: 'all', partition: i % 4 });
    await until(() => got.a.length + got.b.length >= N, 20_000, `partitioned ${got.a.length + got.b.length}/${N}`);
    await new Promise((r) => setTimeout(r, 500));
    const owners = (side: ReceivedMessage[]): Set<number> => new Set(side.map((m) => m.partition));
    const pa = owners(got.a);
    const pb = owners(got.b);
    assert.equal(got.a.length + got.b.length, N, 'each message once in total');
    assert.deepEqual([...pa].filter((p) => pb.has(p)), [], `no partition pulled by both (A ${[...pa]}, B ${[...pb]})`);
    assert.equal(pa.size, 2, `A's member owns 2 of 4 partitions (${[...pa]})`);
    assert.equal(pb.size, 2, `B's member owns 2 of 4 partitions (${[...pb]})`);
    for (const side of [got.a, got.b]) {
      for (const p of owners(side)) {
        const offs = side.filter((m) => m.partition === p).map((m) => m.offset);
        assert.deepEqual(offs, [...offs].sort((x, y) => x - y), `partition ${p} in order`);
      }
    }
    // A's member leaves: B's member owns every partition at once (the leave is announced, no lease to wait for).
    await sa.close();
    got.b.length = 0;
    await new Promise((r) => setTimeout(r, 1500));
    for (let i = 0; i < 40; i++) await ca.publish('nodes.parts', `after${i}`, { acks: 'all', partition: i % 4 });
    await until(() => got.b.length >= 40, 20_000, `B took over: ${got.b.length}/40`);
    assert.deepEqual([...owners(got.b)].sort(), [0, 1, 2, 3]);
  });

  it('node A SIGKILLed while its members hold unacked messages: queue messages redelivered through node B after ackWait; its partitions move to B after its lease', async (t) => {
    const ACK_WAIT = 2000;
    const e = await createJetStreamEngine({ servers: cluster.urls });
    try {
      await e.ensureTopic('nodes.kill.p', { partitions: 2 });
      await e.ensureTopic('nodes.kill.q');
    } finally {
      await e.close();
    }
    const ca = await client(a.url); // dies with node A
    const cb = await open(b.url);
    const heldOnA = new Map<string, number>();
    const onB: { m: ReceivedMessage; at: number }[] = [];
    const q = { group: 'kq', mode: 'queue' as const, ack: 'manual' as const, from: 'earliest' as const, ackWaitMs: ACK_WAIT };
    const p = { group: 'kp', mode: 'partitioned' as const, ack: 'manual' as const, from: 'earliest' as const, ackWaitMs: ACK_WAIT };
    // A's members never ack: what they get stays pending until node A is gone and ackWait has passed.
    await ca.subscribe('nodes.kill.q', { ...q, onMessage: (m) => heldOnA.set(m.text, Date.now()) });
    await ca.subscribe('nodes.kill.p', { ...p, onMessage: (m) => heldOnA.set(m.text, Date.now()) });
    const take = (m: ReceivedMessage): void => {
      onB.push({ m, at: Date.now() });
      m.ack();
    };
    await cb.subscribe('nodes.kill.q', { ...q, onMessage: take });
    await cb.subscribe('nodes.kill.p', { ...p, onMessage: take });
    await new Promise((r) => setTimeout(r, 1000));
    const N = 60;
    for (let i = 0; i < N; i++) await cb.publish('nodes.kill.q', `q${i}`, { acks: 'all' });
    for (let i = 0; i < 20; i++) await cb.publish('nodes.kill.p', `p${i}`, { acks: 'all', partition: i % 2 });
    await until(() => [...heldOnA.keys()].some((k) => k.startsWith('q')) && [...heldOnA.keys()].some((k) => k.startsWith('p')), 15_000, 'A holds queue and partition messages');
    await new Promise((r) => setTimeout(r, 300));
    const held = new Map(heldOnA);
    const killedAt = Date.now();
    await killUp(a.up);
    await until(() => new Set(onB.map((x) => x.m.text)).size >= N + 20, 30_000, `B got ${new Set(onB.map((x) => x.m.text)).size}/${N + 20} after the kill`);
    const texts = onB.map((x) => x.m.text);
    assert.equal(new Set(texts).size, N + 20, 'every message reached node B');
    const redelivered = onB.filter((x) => held.has(x.m.text));
    assert.ok(redelivered.length > 0, 'some were held on A');
    for (const r of redelivered) {
      assert.ok(r.m.attempt >= 2, `${r.m.text} came as a redelivery (attempt ${r.m.attempt})`);
      assert.ok(r.at - held.get(r.m.text)! >= ACK_WAIT - 100, `${r.m.text} redelivered ${r.at - held.get(r.m.text)!} ms after A got it, not before ackWait`);
    }
    const partsOnB = onB.filter((x) => x.m.text.startsWith('p') && held.has(x.m.text));
    const lastPartAt = Math.max(...onB.filter((x) => x.m.topic === 'nodes.kill.p').map((x) => x.at));
    t.diagnostic(`A held ${held.size} (${[...held.keys()].filter((k) => k.startsWith('q')).length} queue, ${[...held.keys()].filter((k) => k.startsWith('p')).length} partitioned); ${redelivered.length} redelivered through B, ${partsOnB.length} of A's partitions' after its lease; last partition message ${lastPartAt - killedAt} ms after the kill`);
    if (partsOnB.length > 0) assert.ok(lastPartAt - killedAt >= LEASE_MS - 2000, 'A\'s partitions moved once its lease expired');
  });
});
