/**
 * The JetStream engine against a real 3-node nats-server cluster on 127.0.0.1 (one cluster for the whole file):
 * its own mapping checks (streams, subjects, R3, what `/jsz` shows), the fault test (the stream leader SIGKILLed by
 * PID mid-publish: 0 acknowledged messages lost), and the engine conformance suite.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ErrorCodes } from '../../../core/errors.ts';
import { createJetStreamEngine, startNatsCluster, type NatsCluster } from '../../../pubsub/engines/jetstream/index.ts';
import type { Delivery, Engine } from '../../../pubsub/engines/types.ts';
import { hasCommand } from '../../helpers/peers.ts';
import { engineConformance } from './conformance.ts';
import { runCli } from '../../helpers/cli.ts';
import { startUp } from '../../helpers/up.ts';

const HAVE = hasCommand('nats-server');
if (!HAVE && process.env.CI === 'true') throw new Error('CI=true and needs nats-server (Debian package nats-server; npm run peers installs it)');
const SKIP = HAVE ? false : 'needs nats-server (Debian package nats-server; npm run peers installs it)';

let cluster: NatsCluster;
let prefixN = 0;
/** Each test gets its own stream / subject prefix on the shared cluster. */
async function engine(extra: Record<string, unknown> = {}): Promise<Engine & { counters: Record<string, number> }> {
  const n = ++prefixN;
  return createJetStreamEngine({ servers: cluster.urls, streamPrefix: `T${n}`, subjectPrefix: `t${n}`, retryDelayMs: 50, ...extra });
}

function collector(): { got: Delivery[]; deliver: (d: Delivery) => void; wait: (n: number, ms?: number) => Promise<Delivery[]> } {
  const got: Delivery[] = [];
  let waiter: (() => void) | undefined;
  return {
    got,
    deliver: (d) => {
      got.push(d);
      waiter?.();
    },
    wait: (n, ms = 15_000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`waited for ${n} deliveries, got ${got.length}`)), ms);
        const check = (): void => {
          if (got.length >= n) {
            clearTimeout(timer);
            waiter = undefined;
            resolve(got);
          }
        };
        waiter = check;
        check();
      }),
  };
}

describe('jetstream engine', { skip: SKIP }, () => {
  before(async () => {
    cluster = await startNatsCluster({ nodes: 3 });
  });
  after(async () => {
    await cluster?.close();
  });

  it('maps a topic partition to an R3 stream whose sequence is the offset, visible on /jsz', async (t) => {
    const e = await engine();
    t.after(() => e.close());
    await e.ensureTopic('orders.eu', { partitions: 2 });
    const a = await e.append({ topic: 'orders.eu', payload: Buffer.from('one'), key: 'k1', headers: { 'x-a': '1' }, acks: 'all' });
    const b = await e.append({ topic: 'orders.eu', payload: Buffer.from('two'), key: 'k1', acks: 1 });
    assert.equal(b.partition, a.partition);
    assert.deepEqual([a.offset, b.offset], [0, 1]);
    const recs = await e.read('orders.eu', a.partition, 0, 10);
    assert.deepEqual(recs.map((r) => [r.offset, r.payload.toString(), r.key]), [[0, 'one', 'k1'], [1, 'two', 'k1']]);
    assert.equal(recs[0]!.headers['x-a'], '1');
    const jsz = await cluster.monitor<{ account_details?: { stream_detail?: { name: string; config?: { num_replicas: number; subjects: string[] }; cluster?: { replicas?: unknown[] } }[] }[] }>(0, '/jsz?streams=true&config=true');
    const streams = (jsz.account_details ?? []).flatMap((d) => d.stream_detail ?? []).filter((s) => s.name.startsWith(`T${prefixN}-`));
    assert.deepEqual(streams.map((s) => s.name).sort(), [`T${prefixN}-orders_eu-P0`, `T${prefixN}-orders_eu-P1`]);
    for (const s of streams) assert.equal(s.config?.num_replicas, 3);
    const info = await e.topic('orders.eu');
    assert.equal(info?.partitions, 2);
    assert.equal(info?.partitionInfo.find((p) => p.partition === a.partition)?.nextOffset, 2);
  });

  it('deduplicates by msgId (Nats-Msg-Id) and returns the first copy offset', async (t) => {
    const e = await engine();
    t.after(() => e.close());
    const a = await e.append({ topic: 'pay', payload: Buffer.from('x'), msgId: 'm-1', acks: 'all' });
    const b = await e.append({ topic: 'pay', payload: Buffer.from('x'), msgId: 'm-1', acks: 'all' });
    assert.equal(a.duplicate, false);
    assert.equal(b.duplicate, true);
    assert.equal(b.offset, a.offset);
    assert.equal((await e.topic('pay'))?.partitionInfo[0]?.records, 1);
  });

  it('queue group: each message to one member; nak redelivers; maxDeliver dead-letters with the wl-dlq headers', async (t) => {
    const e = await engine();
    t.after(() => e.close());
    await e.ensureTopic('jobs');
    const a = collector();
    const b = collector();
    const spec = { pattern: 'jobs', group: { name: 'workers', mode: 'queue' as const }, ack: 'manual' as const, ackWaitMs: 1000, maxDeliver: 2 };
    const ca = await e.consume(spec, a.deliver);
    const cb = await e.consume(spec, b.deliver);
    t.after(() => Promise.all([ca.close(), cb.close()]));
    for (let i = 0; i < 20; i++) await e.append({ topic: 'jobs', payload: Buffer.from(String(i)), acks: 'all' });
    const dlq = collector();
    const cd = await e.consume({ pattern: '$dlq.jobs', ack: 'none', start: { kind: 'earliest' } }, dlq.deliver);
    t.after(() => cd.close());
    // Ack everything except payload "7": nak'd on attempt 1, then left to time out: dead-lettered after 2 deliveries.
    const handle = (c: typeof ca) => (d: Delivery) => {
      if (d.record.payload.toString() === '7') {
        if (d.attempt === 1) c.nak(d.id);
      } else c.ack(d.id);
    };
    const seen = new Set<string>();
    const drain = async (): Promise<void> => {
      for (const [col, c] of [[a, ca], [b, cb]] as const) {
        for (const d of col.got.splice(0)) {
          seen.add(d.record.payload.toString());
          handle(c)(d);
        }
      }
    };
    const deadline = Date.now() + 20_000;
    while (dlq.got.length === 0 && Date.now() < deadline) {
      await drain();
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(seen.size, 20);
    const [dead] = await dlq.wait(1);
    assert.equal(dead!.record.payload.toString(), '7');
    assert.equal(dead!.record.headers['wl-dlq-reason'], 'maxDeliver');
    assert.equal(dead!.record.headers['wl-dlq-topic'], 'jobs');
    assert.equal(dead!.record.headers['wl-dlq-deliveries'], '2');
    const [g] = (await e.groups()).filter((x) => x.name === 'workers');
    assert.equal(g?.mode, 'queue');
    assert.equal(g?.deadLettered, 1);
  });

  it('term sends to the DLQ now; TTL expires at delivery, counted', async (t) => {
    const e = await engine();
    t.after(() => e.close());
    await e.ensureTopic('t');
    const c = collector();
    const sub = await e.consume({ pattern: 't', group: { name: 'g', mode: 'queue' }, ack: 'manual', start: { kind: 'earliest' } }, c.deliver);
    t.after(() => sub.close());
    await e.append({ topic: 't', payload: Buffer.from('old'), ttlMs: 1, acks: 'all' });
    await new Promise((r) => setTimeout(r, 20));
    await e.append({ topic: 't', payload: Buffer.from('bad'), acks: 'all' });
    const [d] = await c.wait(1);
    assert.equal(d!.record.payload.toString(), 'bad');
    assert.equal(e.counters.expired, 1);
    const dlq = collector();
    const cd = await e.consume({ pattern: '$dlq.t', ack: 'none', start: { kind: 'earliest' } }, dlq.deliver);
    t.after(() => cd.close());
    sub.term(d!.id, 'poison');
    const [dead] = await dlq.wait(1);
    assert.equal(dead!.record.headers['wl-dlq-reason'], 'poison');
  });

  it('the stream leader SIGKILLed by PID mid-publish: a new leader, 0 acknowledged messages lost, consumers go on', async (t) => {
    const e = await engine({ publishTimeoutMs: 1000 });
    t.after(() => e.close());
    await e.ensureTopic('ledger');
    const c = collector();
    const sub = await e.consume({ pattern: 'ledger', group: { name: 'audit', mode: 'queue' }, ack: 'manual', start: { kind: 'earliest' } }, (d) => {
      c.deliver(d);
      sub.ack(d.id);
    });
    t.after(() => sub.close());
    const stream = `T${prefixN}-ledger-P0`;
    const jsm = await (await import('nats')).connect({ servers: cluster.urls }).then(async (nc) => ({ nc, jsm: await nc.jetstreamManager() }));
    t.after(() => jsm.nc.close());
    const leaderOf = async (): Promise<string | undefined> => (await jsm.jsm.streams.info(stream)).cluster?.leader;
    const before = await leaderOf();
    assert.ok(before, 'the stream has a leader');
    const acked = new Set<string>();
    let failed = 0;
    let i = 0;
    const publishing = (async () => {
      while (i < 600) {
        const id = `m-${i++}`;
        try {
          await e.append({ topic: 'ledger', payload: Buffer.from(id), msgId: id, acks: 'all' });
          acked.add(id);
        } catch {
          failed++;
        }
      }
    })();
    while (acked.size < 150) await new Promise((r) => setTimeout(r, 5));
    const victim = cluster.nodes.findIndex((n) => n.name === before);
    const pid = cluster.nodes[victim]!.pid;
    const killedAt = Date.now();
    await cluster.kill(victim, 'SIGKILL');
    // Back for the tests after this one whatever happens here (a new R3 topic needs three servers).
    t.after(() => (cluster.nodes[victim]!.running ? undefined : cluster.restart(victim)));
    assert.equal(cluster.nodes[victim]!.running, false, `pid ${pid} is gone`);
    // Asked every 50 ms while the publishes go on: who leads the stream now.
    let after: string | undefined;
    let electedMs = -1;
    for (let k = 0; k < 300 && (!after || after === before); k++) {
      after = await leaderOf().catch(() => undefined);
      if (after && after !== before) electedMs = Date.now() - killedAt;
      else await new Promise((r) => setTimeout(r, 50));
    }
    await publishing;
    assert.ok(after && after !== before, `a new leader was elected (was ${before}, now ${after})`);
    t.diagnostic(`leader ${before} (pid ${pid}) SIGKILLed; ${after} seen leading ${electedMs} ms later; ${acked.size} acked, ${e.counters.retries} publish retries`);
    // Right after an election a stream request can time out under load (an error the engine passes on, never a short
    // read): asked again until the new leader answers.
    const settled = async <T>(ask: () => Promise<T>): Promise<T> => {
      for (const deadline = Date.now() + 30_000; ; await new Promise((r) => setTimeout(r, 250))) {
        try {
          return await ask();
        } catch (err) {
          if (Date.now() > deadline) throw err;
        }
      }
    };
    const stored = new Set((await settled(() => e.read('ledger', 0, 0, 1000))).map((r) => r.payload.toString()));
    const lost = [...acked].filter((id) => !stored.has(id));
    assert.equal(lost.length, 0, `acknowledged but lost: ${lost.slice(0, 5).join(', ')}`);
    assert.equal(stored.size, (await settled(() => e.topic('ledger')))!.partitionInfo[0]!.records, 'no duplicates stored (msgId retries deduplicated)');
    assert.equal(failed, 0, 'every publish succeeded within publishRetryForMs');
    // The consumer goes on: it gets every stored message (at least once).
    await c.wait(stored.size, 30_000);
    assert.deepEqual(new Set(c.got.map((d) => d.record.payload.toString())), stored);
  });

  engineConformance(
    'jetstream (3-node cluster, R3)',
    async () => {
      const n = ++prefixN;
      const open = (): Promise<Engine> => createJetStreamEngine({ servers: cluster.urls, streamPrefix: `C${n}`, subjectPrefix: `c${n}`, retryDelayMs: 50 });
      let e = await open();
      return {
        engine: e,
        async restart() {
          await e.close();
          e = await open();
          return e;
        },
        cleanup: () => e.close(),
      };
    },
    { restart: true },
  );

  it('wirelab up --engine jetstream starts a 3-node cluster by PID and stops it with up; --nats-url unreachable: one line, exit 1', async () => {
    const up = await startUp(['--port-base', '0', '--engine', 'jetstream', '--only', 'tcp-echo']);
    let stopped = false;
    try {
      const nats = up.endpoints.filter((e) => e.proto === 'nats');
      assert.deepEqual(nats.map((e) => e.name), ['nats-0', 'nats-1', 'nats-2']);
      const pids = nats.map((e) => e.pid as number);
      for (const pid of pids) process.kill(pid, 0); // alive
      // The cluster is usable from outside: an engine on its URLs creates an R3 topic.
      const e = await createJetStreamEngine({ servers: nats.map((x) => x.url!) });
      assert.equal((await e.append({ topic: 'up.check', payload: Buffer.from('x'), acks: 'all' })).offset, 0);
      await e.close();
      assert.equal((await up.stop()).code, 0);
      stopped = true;
      const alive = pids.filter((pid) => {
        try {
          process.kill(pid, 0);
          return true;
        } catch {
          return false;
        }
      });
      assert.deepEqual(alive, [], 'every nats-server stopped with up');
    } finally {
      if (!stopped) await up.stop();
    }
    const r = await runCli(['up', '--port-base', '0', '--only', 'tcp-echo', '--engine', 'jetstream', '--nats-url', 'nats://127.0.0.1:1'], { timeoutMs: 30_000 });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /nats:\/\/127\.0\.0\.1:1/);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    const bad = await runCli(['up', '--port-base', '0', '--only', 'tcp-echo', '--engine', 'kafka'], { timeoutMs: 30_000 });
    assert.equal(bad.code, 2);
  });

  it('the engine unreachable at start: WL_ERR_PUBSUB_UNAVAILABLE naming the URL', async () => {
    await assert.rejects(createJetStreamEngine({ servers: 'nats://127.0.0.1:1', connectTimeoutMs: 500 }), (err: Error & { code?: string }) => {
      assert.equal(err.code, ErrorCodes.PUBSUB_UNAVAILABLE);
      assert.match(err.message, /127\.0\.0\.1:1/);
      return true;
    });
  });
});
