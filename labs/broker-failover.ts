import { connectPubsub } from '../clients/pubsub.ts';
import { defineLab } from '../core/lab/index.ts';
import { createBroker } from '../pubsub/broker/index.ts';
import { startPubsubTcpServer } from '../pubsub/doors/native/index.ts';
import { createEngine } from '../pubsub/engines/index.ts';
import { startNatsCluster } from '../pubsub/engines/jetstream/index.ts';
import { lostOf, natsServerHere, publishNumbered, sleep, storedIds, streamLeader, waitFor } from './_pubsub.ts';

const TOPIC = 'ledger';
const STREAM = 'WL-ledger-P0';
/** The steady publisher: acks=all, at most this many per second, this many in flight. */
const RATE = 200;
const WINDOW = 16;
/** One publish attempt waits this long for the stream's ack; the engine retries (same msg id) for RETRY_FOR_MS, then the broker answers with an error and the lab's publisher retries. */
const PUBLISH_TIMEOUT_MS = 500;
const RETRY_FOR_MS = 1500;
/** How long the lab keeps only one of three nodes up. Below nats-server's 10 s lost-quorum interval, so the lone leader does not step down and the recovery needs no election. */
const NO_QUORUM_MS = 2500;
/** nats-server 2.9's Raft: a follower campaigns 4 to 9 s after it last heard the leader (server/raft.go, not configurable); a loaded machine adds to it. */
const ELECTION_DEADLINE_MS = 30_000;

export default defineLab({
  id: 'broker-failover',
  title: 'Broker failover: a Raft election on a 3-node JetStream cluster, and no writes without a quorum',
  concept:
    'A replicated log acknowledges a write only once a majority holds it, so a crashed leader loses no acknowledged message (a new leader is elected), and without a majority it refuses writes rather than accept ones it could lose: CP, not AP.',
  protocols: ['pubsub', 'nats'],
  // Idle ~10 s; a loaded machine has stretched the recovery after the restart to 13 s (another election).
  timeoutMs: 120_000,
  async run(ctx) {
    natsServerHere(ctx, 'a 3-node NATS JetStream cluster (leader election, quorum)', true);
    const cluster = await startNatsCluster({ nodes: 3, tracer: ctx.tracer });
    ctx.defer(() => cluster.close());
    const engine = await createEngine({ kind: 'jetstream', servers: cluster.urls, publishTimeoutMs: PUBLISH_TIMEOUT_MS, publishRetryForMs: RETRY_FOR_MS, retryDelayMs: 50, tracer: ctx.tracer });
    ctx.defer(() => engine.close());
    const broker = await createBroker({ engine, tracer: ctx.tracer });
    ctx.defer(() => broker.close());
    const door = await ctx.start(startPubsubTcpServer({ broker, tracer: ctx.tracer }));
    const client = await connectPubsub({ url: `tcp://127.0.0.1:${door.port}`, tracer: ctx.tracer });
    ctx.defer(() => client.close());
    client.closed.catch(() => undefined);
    await engine.ensureTopic(TOPIC);

    // Every acknowledgement and every failed attempt, with its time: the phases below are read from them.
    const ackTimes: number[] = [];
    const failTimes: number[] = [];
    let stopping = false;
    const t0 = performance.now();
    const at = (): number => performance.now() - t0;
    const acksBetween = (a: number, b: number): number => ackTimes.filter((t) => t >= a && t < b).length;
    const failsBetween = (a: number, b: number): number => failTimes.filter((t) => t >= a && t < b).length;
    const before = new Map<string, number>();
    const publishing = publishNumbered(client, TOPIC, {
      acks: 'all',
      prefix: 'm',
      window: WINDOW,
      ratePerSec: RATE,
      retry: true,
      stop: () => stopping,
      onFailure: () => failTimes.push(at()),
    });
    // Acks are observed through the broker's lineage: one 'persisted' per stored message (the publisher's own set is
    // read at the end).
    engine.onLineage((s) => {
      if (s.step === 'persisted') ackTimes.push(at());
    });

    // 1. Steady state.
    await waitFor(() => ackTimes.length >= 200, 20_000);
    const leader1 = await streamLeader(cluster, STREAM);
    if (!leader1) throw new Error(`no leader for ${STREAM} in /jsz`);
    const victim1 = cluster.nodes.find((n) => n.name === leader1)!;
    const pid1 = victim1.pid;
    for (const n of cluster.nodes) before.set(n.name, n.pid);

    // 2. SIGKILL the stream leader by PID; read the new leader from the survivors' /jsz every 25 ms.
    const kill1 = at();
    await cluster.kill(leader1, 'SIGKILL');
    let leader2: string | undefined;
    await waitFor(async () => (leader2 = await streamLeader(cluster, STREAM)) !== undefined, ELECTION_DEADLINE_MS, 25);
    const elected = at();
    // Publishing resumes once the new leader commits: wait for 100 more acks.
    const acksAtElection = ackTimes.length;
    await waitFor(() => ackTimes.length >= acksAtElection + 100, 20_000);
    // The outage: the longest stretch without an ack that ends after the kill (acks of commits made just before the
    // kill may still arrive in its first milliseconds, so the first ack after the kill does not end it).
    let outageFrom = kill1;
    let resumed = NaN;
    let prev = kill1;
    for (const t of ackTimes) {
      if (t <= kill1) continue;
      if (Number.isNaN(resumed) || t - prev > resumed - outageFrom) {
        outageFrom = prev;
        resumed = t;
      }
      prev = t;
    }
    const gap = resumed - outageFrom;
    const failedDuringElection = failsBetween(outageFrom, resumed);

    // 3. Kill a second node (2 of 3 down): the new leader is alone, no majority, so no write can commit.
    const follower = cluster.nodes.find((n) => n.running && n.name !== leader2)!;
    const pid2 = follower.pid;
    await cluster.kill(follower.name, 'SIGKILL');
    const kill2 = at();
    await sleep(NO_QUORUM_MS);
    const restartAt = at();
    // Acks that arrive in the first publish timeout (+ 500 ms of slack for a loaded machine) may be commits from before the kill.
    const settle = PUBLISH_TIMEOUT_MS + 500;
    const acceptedNoQuorum = acksBetween(kill2 + settle, restartAt);
    const refusedNoQuorum = failsBetween(kill2, restartAt);

    // 4. One node returns: a majority again, writes commit again.
    await cluster.restart(follower.name);
    await waitFor(() => acksBetween(restartAt, Infinity) >= 100, 45_000);
    const firstAckAfterRestart = ackTimes.find((t) => t > restartAt) ?? NaN;
    const acceptedAfter = acksBetween(restartAt, at());
    stopping = true;
    const run = await publishing;
    // The first leader comes back too (it catches up), so the stream is read with all three nodes up.
    await cluster.restart(leader1);
    const { ids: stored, records } = await storedIds(engine, TOPIC);
    const lost = lostOf(run.acked, stored);
    const retriedAcked = [...run.failedIds].filter((id) => run.acked.has(id)).length;
    const leaderEnd = await streamLeader(cluster, STREAM);

    const ms = (v: number): string => (Number.isFinite(v) ? `${Math.round(v)} ms` : 'never');
    ctx.table(
      `acks=all publishes at ${RATE}/s through wirelab's broker (native TCP door) to the R3 stream ${STREAM}`,
      ['t', 'event', 'stream leader (/jsz)', 'acked in phase', 'failed attempts (retried)'],
      [
        ['0', 'steady publishing', leader1, acksBetween(0, kill1), failsBetween(0, kill1)],
        [ms(kill1), `SIGKILL ${leader1} (pid ${pid1})`, '-', '-', '-'],
        [ms(elected), `survivors' /jsz name a new leader (${ms(elected - kill1)} after the kill)`, leader2 ?? 'none', acksBetween(kill1, elected), failsBetween(kill1, elected)],
        [ms(resumed), `acks resume (none for ${ms(gap)}, from ${ms(outageFrom)})`, leader2 ?? 'none', acksBetween(elected, kill2), failsBetween(elected, kill2)],
        [ms(kill2), `SIGKILL ${follower.name} (pid ${pid2}): 2 of 3 nodes down`, leader2 ?? 'none', acksBetween(kill2, restartAt), refusedNoQuorum],
        [ms(restartAt), `restart ${follower.name}: 2 of 3 up`, leader2 ?? 'none', acceptedAfter, failsBetween(restartAt, at())],
      ],
    );
    ctx.measure('stream leader elected after the SIGKILL', Math.round(elected - kill1), 'ms');
    ctx.measure('time without acks after the leader kill', Math.round(gap), 'ms');
    ctx.table('every acknowledged id against what the stream holds (all nodes back)', ['sent', 'acknowledged', 'stored', 'acknowledged and lost', 'failed attempts retried', 'stream leader now'], [
      [run.sent.length, run.acked.size, records, lost.length, failTimes.length, leaderEnd ?? 'none'],
    ]);

    ctx.claim('the stream leader SIGKILLed by PID: the survivors elected a new leader, a different node', !!leader2 && leader2 !== leader1, `${leader1} (pid ${pid1}) killed; ${leader2 ?? 'no one'} leads ${ms(elected - kill1)} later`);
    ctx.claim(
      'publishes during the election were not dropped: they waited or failed, were retried with the same msg id, and were acknowledged by the new leader',
      Number.isFinite(resumed) && gap > PUBLISH_TIMEOUT_MS && failedDuringElection > 0 && retriedAcked === run.failedIds.size,
      `${ms(gap)} without an ack; ${failedDuringElection} attempts failed then; ${retriedAcked} of the ${run.failedIds.size} ids that ever failed were acknowledged on a retry; the longest publish waited ${ms(Math.max(...run.latencies))} from its first attempt`,
    );
    ctx.claim('0 acknowledged messages lost: every acked id is in the stream, each once (msg-id dedup absorbed the retries)', lost.length === 0 && records === stored.size && stored.size >= run.acked.size, `${run.acked.size} acked, ${records} stored (${stored.size} distinct ids), ${lost.length} lost`);
    ctx.claim(
      `2 of 3 nodes down: the stream refused writes (no majority to commit), it did not accept them alone: CP, not AP`,
      refusedNoQuorum > 0 && acceptedNoQuorum === 0,
      `${refusedNoQuorum} publish attempts failed in ${NO_QUORUM_MS} ms, ${acceptedNoQuorum} acknowledged after the first ${settle} ms`,
    );
    ctx.claim('one node back: a majority again, and writes are accepted again', acceptedAfter > 0, `${acceptedAfter} acknowledged after ${follower.name} restarted, the first ${ms(firstAckAfterRestart - restartAt)} after the restart`);
    ctx.note(
      `Why the election takes seconds: nats-server 2.9's Raft has a follower wait 4 to 9 s (randomized) after the last heartbeat before it campaigns (server/raft.go minElectionTimeout/maxElectionTimeout, heartbeat 1 s, not configurable); a loaded machine adds to it. The client side adds at most one publish timeout (${PUBLISH_TIMEOUT_MS} ms) and the engine's retry delay (50 ms). A SIGTERM'd leader would step down at once; SIGKILL is the crash.`,
    );
    ctx.note(`The course's CAP section: with the network to a majority gone, a CP system waits (refuses) rather than answer with data it cannot confirm; JetStream's R3 streams are CP.`);
  },
});
