import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectPubsub, type PubsubClient } from '../clients/pubsub.ts';
import { defineLab, type LabContext } from '../core/lab/index.ts';
import { createBroker } from '../pubsub/broker/index.ts';
import { startPubsubTcpServer } from '../pubsub/doors/native/index.ts';
import { createEmbeddedEngine, createEngine } from '../pubsub/engines/index.ts';
import { startNatsCluster } from '../pubsub/engines/jetstream/index.ts';
import type { Acks, Engine } from '../pubsub/engines/types.ts';
import {
  lostOf, natsServerHere, publishNumbered, rates, simulatePowerLoss, startBrokerProcess, startPublishing, storedIds, streamLeader, waitFor,
  type PublishRun,
} from './_pubsub.ts';

/** Publishes per acks level in the clean (throughput and latency) runs. */
const COUNT = 1000;
const JS_COUNT = 500;
/** Acknowledged publishes of acks 1 and of acks all before a fault. */
const BEFORE_FAULT = 300;
/** acks=0 publishes written in one go right before the kill -9: the broker process dies with most of them unread. */
const BURST = 2000;
const ACKS: Acks[] = [0, 1, 'all'];
const COLUMNS = ['engine', 'acks', 'setting', 'fault', 'acked/s (acks=0: sent/s)', 'p50 ms', 'p99 ms', 'sent', 'acked', 'stored after', 'acked & lost', 'sent & not stored'];

type Row = Array<string | number>;

async function connect(ctx: LabContext, url: string): Promise<PubsubClient> {
  const c = await connectPubsub({ url, tracer: ctx.tracer });
  c.closed.catch(() => undefined);
  ctx.defer(() => c.close());
  return c;
}

/** A broker with its native TCP door in this process, on `engine`; closed by `stop()` or when the lab ends. */
async function brokerHere(ctx: LabContext, engine: Engine): Promise<{ url: string; stop: () => Promise<void> }> {
  const broker = await createBroker({ engine, tracer: ctx.tracer });
  const door = await startPubsubTcpServer({ broker, tracer: ctx.tracer, limits: { maxPendingPublishes: 100_000 } });
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await door.close();
    await broker.close();
  };
  ctx.defer(stop);
  return { url: `tcp://127.0.0.1:${door.port}`, stop };
}

/** What the engine on `dir` holds per topic once reopened (the power is back / the process restarted). */
async function storedAfter(dir: string, topics: string[]): Promise<Map<string, Set<string>>> {
  const engine = await createEmbeddedEngine({ dir, fsync: 'batch' });
  try {
    const out = new Map<string, Set<string>>();
    for (const t of topics) out.set(t, (await storedIds(engine, t)).ids);
    return out;
  } finally {
    await engine.close();
  }
}

/** One table row: the run's speed and what the fault did to it. */
function row(engine: string, setting: string, fault: string, r: PublishRun, stored: Set<string>, extraSent: string[] = [], speed = true): { row: Row; lost: number; notStored: number } {
  // A run that shared the broker with other publishers, or waited out a fault, says nothing about speed: '-'.
  const x = speed ? rates(r) : { perSec: '-', p50: '-', p99: '-' };
  const sent = [...r.sent, ...extraSent];
  const notStored = sent.filter((id) => !stored.has(id)).length;
  const lost = lostOf(r.acked, stored).length;
  const acked = r.acks === 0 ? 'no acks' : r.acked.size;
  return { row: [engine, `acks=${r.acks}`, setting, fault, x.perSec, x.p50, x.p99, sent.length, acked, stored.size, r.acks === 0 ? 'unknown' : lost, notStored], lost, notStored };
}

const codes = (r: PublishRun): string => [...r.failures].map(([c, n]) => `${n} ${c}`).join(', ') || 'none';

export default defineLab({
  id: 'acks-and-durability',
  title: 'Producer acks 0 / 1 / all and fsync, on the embedded engine and on JetStream: speed against what a crash loses',
  concept:
    "The producer's acks trade speed for knowledge and durability: acks=0 never learns what was lost, acks=1 survives a process crash but not a power loss unless the write was fsync'd, acks=all (fsync'd, or committed by a majority of replicas) loses no acknowledged message.",
  protocols: ['pubsub', 'nats'],
  timeoutMs: 120_000,
  async run(ctx) {
    const rows: Row[] = [];
    const dirs: string[] = [];
    ctx.defer(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));
    const tmp = async (): Promise<string> => {
      const d = await mkdtemp(join(tmpdir(), 'wirelab-acks-'));
      dirs.push(d);
      return d;
    };

    // The nats cluster starts while the embedded rows run (it is idle until section 3).
    const haveNats = natsServerHere(ctx, 'the JetStream rows (acks on a 3-node R3 cluster, a stream leader killed)');
    const clusterP = haveNats ? startNatsCluster({ nodes: 3, tracer: ctx.tracer }) : undefined;
    clusterP?.catch(() => undefined);
    ctx.defer(async () => (await clusterP?.catch(() => undefined))?.close());

    // ---- 1. The embedded engine in a broker process of its own (fsync batch): speed, then kill -9 mid-stream. ----
    const dirA = await tmp();
    const proc = await startBrokerProcess(ctx, dirA, 'batch');
    const clean: PublishRun[] = [];
    const c0 = await connect(ctx, proc.url);
    for (const acks of ACKS) clean.push(await publishNumbered(c0, `clean.a${acks}`, { acks, prefix: 'c', count: COUNT, window: 64 }));
    const pubs = await Promise.all(ACKS.map(() => connect(ctx, proc.url)));
    let stop = false;
    const live = ACKS.map((acks, i) => startPublishing(pubs[i]!, `kill.a${acks}`, { acks, prefix: 'k', window: 64, stop: () => stop, ...(acks === 0 ? { ratePerSec: 1000 } : {}) }));
    await waitFor(() => live[1]!.run.acked.size >= BEFORE_FAULT && live[2]!.run.acked.size >= BEFORE_FAULT, 30_000);
    // The burst: each publish resolves once written to the socket, which is all acks=0 ever tells the producer.
    const burst: string[] = [];
    const written: string[] = [];
    for (let i = 0; i < BURST; i++) {
      burst.push(`b${i}`);
      pubs[0]!.publish('kill.a0', `b${i}`, { acks: 0 }).then(() => written.push(`b${i}`), () => undefined);
    }
    await proc.kill9();
    stop = true;
    const killed = await Promise.all(live.map((l) => l.done));
    const afterKill = await storedAfter(dirA, [...ACKS.map((a) => `kill.a${a}`), ...ACKS.map((a) => `clean.a${a}`)]);
    const kill0 = row('embedded (own process)', 'fsync batch', `kill -9 (pid ${proc.pid})`, killed[0]!, afterKill.get('kill.a0')!, burst, false);
    const kill1 = row('embedded (own process)', 'fsync batch', 'kill -9', killed[1]!, afterKill.get('kill.a1')!, [], false);
    const killAll = row('embedded (own process)', 'fsync batch', 'kill -9', killed[2]!, afterKill.get('kill.aall')!, [], false);
    // Rows without a fault: every message sent must be stored (checked below with the JetStream ones).
    const cleanRows: { label: string; lost: number; notStored: number }[] = [];
    ACKS.forEach((a, i) => {
      const r = row('embedded (own process)', 'fsync batch', 'none', clean[i]!, afterKill.get(`clean.a${a}`)!);
      cleanRows.push({ label: `embedded acks=${a}`, ...r });
      rows.push(r.row);
    });
    rows.push(kill0.row, kill1.row, killAll.row);

    // ---- 2. The embedded engine in this process, SIMULATED power loss (each log cut to its last fsync'd length). ----
    const dirB = await tmp();
    const engineB = await createEmbeddedEngine({ dir: dirB, fsync: 'batch' });
    const hereB = await brokerHere(ctx, engineB);
    const [cb1, cbAll] = [await connect(ctx, hereB.url), await connect(ctx, hereB.url)];
    let stopB = false;
    const bOne = startPublishing(cb1, 'power.a1', { acks: 1, prefix: 'p', window: 64, stop: () => stopB });
    const bAll = await publishNumbered(cbAll, 'power.aall', { acks: 'all', prefix: 'p', count: COUNT, window: 64 });
    const cutB = await simulatePowerLoss(engineB);
    stopB = true;
    const bOneRun = await bOne.done;
    await hereB.stop();
    const afterB = await storedAfter(dirB, ['power.a1', 'power.aall']);
    const plAll = row('embedded (this process)', 'fsync batch', 'power loss (simulated)', bAll, afterB.get('power.aall')!);
    const plOne = row('embedded (this process)', 'fsync batch', 'power loss (simulated)', bOneRun, afterB.get('power.a1')!, [], false);
    rows.push(plOne.row, plAll.row);

    const dirC = await tmp();
    const engineC = await createEmbeddedEngine({ dir: dirC, fsync: 'never' });
    const hereC = await brokerHere(ctx, engineC);
    const cc = await connect(ctx, hereC.url);
    const cOne = await publishNumbered(cc, 'never.a1', { acks: 1, prefix: 'n', count: COUNT, window: 64 });
    const cAll = await publishNumbered(cc, 'never.aall', { acks: 'all', prefix: 'n', count: 1, window: 1 });
    const cutC = await simulatePowerLoss(engineC);
    await hereC.stop();
    const afterC = await storedAfter(dirC, ['never.a1', 'never.aall']);
    const neverOne = row('embedded (this process)', 'fsync never', 'power loss (simulated)', cOne, afterC.get('never.a1')!);
    rows.push(neverOne.row);
    rows.push(['embedded (this process)', 'acks=all', 'fsync never', 'none', '-', '-', '-', 1, `refused: ${codes(cAll)}`, afterC.get('never.aall')!.size, '-', '-']);

    // ---- 3. JetStream: a 3-node cluster, R3 streams; the stream leader SIGKILLed mid-stream. ----
    let js: { clean: PublishRun[]; kill: { r: ReturnType<typeof row>; acks: Acks; run: PublishRun }[]; leader: string; next: string | undefined; electionMs: number } | undefined;
    if (clusterP) {
      const cluster = await clusterP;
      const engine = await createEngine({ kind: 'jetstream', servers: cluster.urls, publishTimeoutMs: 1000, retryDelayMs: 50, publishRetryForMs: 30_000, tracer: ctx.tracer });
      ctx.defer(() => engine.close());
      const here = await brokerHere(ctx, engine);
      const cj = await connect(ctx, here.url);
      const jsClean: PublishRun[] = [];
      for (const acks of ACKS) {
        await engine.ensureTopic(`clean.a${acks}`);
        jsClean.push(await publishNumbered(cj, `clean.a${acks}`, { acks, prefix: 'c', count: JS_COUNT, window: 64 }));
      }
      // Read back now: the leader kill below may take a clean stream's leader too, and its reads would wait for an election.
      const cleanStored: Set<string>[] = [];
      for (const a of ACKS) cleanStored.push((await storedIds(engine, `clean.a${a}`)).ids);
      await engine.ensureTopic('kill');
      const jp = await Promise.all(ACKS.map(() => connect(ctx, here.url)));
      let stopJ = false;
      const prefix = { 0: 'z', 1: 'o', all: 'a' } as const;
      const jLive = ACKS.map((acks, i) =>
        startPublishing(jp[i]!, 'kill', { acks, prefix: prefix[String(acks) as '0' | '1' | 'all'], window: 16, ratePerSec: 500, retry: true, stop: () => stopJ }),
      );
      await waitFor(() => jLive[1]!.run.acked.size >= 100 && jLive[2]!.run.acked.size >= 100, 30_000);
      const leader = (await streamLeader(cluster, 'WL-kill-P0'))!;
      const killedAt = performance.now();
      await cluster.kill(leader, 'SIGKILL');
      let next: string | undefined;
      await waitFor(async () => (next = await streamLeader(cluster, 'WL-kill-P0')) !== undefined, 30_000, 25);
      const electionMs = performance.now() - killedAt;
      const n1 = jLive[1]!.run.acked.size;
      const nAll = jLive[2]!.run.acked.size;
      await waitFor(() => jLive[1]!.run.acked.size >= n1 + 100 && jLive[2]!.run.acked.size >= nAll + 100, 30_000);
      stopJ = true;
      const jRuns = await Promise.all(jLive.map((l) => l.done));
      const all = (await storedIds(engine, 'kill')).ids;
      const storedBy = (p: string): Set<string> => new Set([...all].filter((id) => id.startsWith(p)));
      ACKS.forEach((a, i) => {
        const r = row('jetstream (R3, 3 nodes)', 'Raft commit on 2 of 3', 'none', jsClean[i]!, cleanStored[i]!);
        cleanRows.push({ label: `jetstream acks=${a}`, ...r });
        rows.push(r.row);
      });
      const kill = jRuns.map((r, i) => ({ acks: ACKS[i]!, run: r, r: row('jetstream (R3, 3 nodes)', 'Raft commit on 2 of 3', `SIGKILL leader ${leader}`, r, storedBy(prefix[String(ACKS[i]) as '0' | '1' | 'all']), [], false) }));
      for (const k of kill) rows.push(k.r.row);
      js = { clean: jsClean, kill, leader, next, electionMs };
    }

    ctx.table('one table: speed and what each fault lost (ids sent, acknowledged, and found after the fault)', COLUMNS, rows);

    ctx.claim(
      'without a fault nothing is lost: every message of the fault-free rows is stored, at every acks level on both engines',
      cleanRows.every((r) => r.lost === 0 && r.notStored === 0),
      cleanRows.map((r) => `${r.label}: ${r.notStored} missing`).join(', '),
    );
    ctx.claim(
      'embedded, kill -9 of the broker process: acks=1 and acks=all lose no acknowledged message (the write reached the page cache before the ack; the kernel keeps it)',
      kill1.lost === 0 && killAll.lost === 0 && killed[1]!.acked.size >= BEFORE_FAULT && killed[2]!.acked.size >= BEFORE_FAULT,
      `acks=1: ${killed[1]!.acked.size} acked, ${kill1.lost} lost; acks=all: ${killed[2]!.acked.size} acked, ${killAll.lost} lost; in flight at the kill and rejected (fate unknown): ${codes(killed[1]!)}; ${codes(killed[2]!)}`,
    );
    const writtenLost = written.filter((id) => !afterKill.get('kill.a0')!.has(id)).length;
    ctx.claim(
      'embedded, kill -9: acks=0 publishes the client reported as sent (written, no error) vanished: only counting on the broker side shows it',
      writtenLost > 0,
      `of the ${BURST} written just before the kill, ${written.length} resolved without error and ${writtenLost} of those are not stored; over the whole run ${kill0.row[7]} sent, ${kill0.row[9]} stored`,
    );
    ctx.claim(
      "embedded, acks=all with fsync batch, SIMULATED power loss: 0 acknowledged messages lost (acked only after the fsync that covered them)",
      plAll.lost === 0 && bAll.acked.size === COUNT,
      `${bAll.acked.size} acked, ${plAll.lost} lost; the cut: ${cutB.lostRecords} records / ${cutB.lostBytes} bytes past the last fsync; acks=1 acknowledged and lost: ${plOne.lost}`,
    );
    ctx.claim(
      'embedded, acks=1 with fsync never, SIMULATED power loss: acknowledged messages are lost (they were only in the page cache)',
      neverOne.lost > 0,
      `${cOne.acked.size} acked, ${neverOne.lost} lost (the cut removed ${cutC.lostRecords} records, ${cutC.lostBytes} bytes)`,
    );
    ctx.claim("fsync never: the broker refuses acks=all rather than acknowledge a durability it does not have", cAll.acked.size === 0 && cAll.failures.size > 0, `acks=all publish answered: ${codes(cAll)}`);
    if (js) {
      const [k0, k1, kAll] = js.kill;
      ctx.claim(
        `jetstream, stream leader SIGKILLed: acks=1 and acks=all (both the stream's ack after the Raft commit) lose no acknowledged message`,
        !!js.next && js.next !== js.leader && k1!.r.lost === 0 && kAll!.r.lost === 0,
        `${js.leader} killed, ${js.next ?? 'no one'} leads ${Math.round(js.electionMs)} ms later; acks=1: ${k1!.r.row[8]} acked, ${k1!.r.lost} lost; acks=all: ${kAll!.r.row[8]} acked, ${kAll!.r.lost} lost`,
      );
      ctx.claim(
        'jetstream, stream leader SIGKILLed: acks=0 publishes sent while the stream had no leader were dropped, and the producer was told nothing',
        k0!.r.notStored > 0 && js.kill[0]!.run.failures.size === 0,
        `${k0!.r.row[7]} sent, ${k0!.r.row[9]} stored, ${k0!.r.notStored} gone; errors seen by the producer: ${codes(js.kill[0]!.run)}`,
      );
      ctx.note('On JetStream acks=1 and acks=all are the same request (the stream acknowledges after the Raft commit on a majority of R3); a Kafka leader-only ack has no JetStream equivalent. Speed there is a round trip to the stream leader plus a replication round.');
    }
    ctx.note(
      "Latency (p50 / p99) is printed, not claimed: on a shared 2-core machine the order acks 0 < 1 < all can flip within noise; the durability claims are decided by counting ids. acks=0 rows show the producer's own send rate: it never learns what was stored.",
    );
    ctx.note('The acks=1 row under the power loss with fsync batch is printed, not claimed: how many acks=1 messages were acknowledged between the last fsync and the cut is a matter of timing.');
    ctx.note("Power loss is SIMULATED (the LazyFS model): kill -9 keeps the page cache, so each partition log is cut to the length its last fsync covered, then reopened. Nothing here cuts real power.");
  },
});
