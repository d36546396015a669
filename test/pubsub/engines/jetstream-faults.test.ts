/**
 * The JetStream engine losing its whole cluster at run time (issue 13 "Faults"): every nats-server process SIGKILLed by
 * PID while publishing, then started again. With onUnavailable 'wait' (the default) the publishes in flight wait and
 * succeed once the cluster is back (retried with their msg id: stored once); with 'error' they are rejected with
 * WL_ERR_PUBSUB_UNAVAILABLE. Nothing acknowledged is missing afterwards, and the consumers (a queue group member and a
 * fan-out subscriber, made before the loss) resume without being made again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ErrorCodes } from '../../../core/errors.ts';
import { createJetStreamEngine, startNatsCluster, type NatsCluster } from '../../../pubsub/engines/jetstream/index.ts';
import type { Delivery } from '../../../pubsub/engines/types.ts';
import { hasCommand } from '../../helpers/peers.ts';

const HAVE = hasCommand('nats-server');
if (!HAVE && process.env.CI === 'true') throw new Error('CI=true and needs nats-server (Debian package nats-server; npm run peers installs it)');
const SKIP = HAVE ? false : 'needs nats-server (Debian package nats-server; npm run peers installs it)';

async function until(what: () => boolean, ms: number, label: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms: ${label()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A management call (stream info / list) right after the cluster's return may time out while its meta layer catches up. */
async function eventually<T>(what: string, f: () => Promise<T>, ms = 30_000): Promise<{ value: T; tries: number }> {
  const end = Date.now() + ms;
  for (let tries = 1; ; tries++) {
    try {
      return { value: await f(), tries };
    } catch (err) {
      if (Date.now() > end) throw new Error(`${what}: ${(err as Error).message}`, { cause: err });
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

describe('jetstream engine: the cluster lost at run time', { skip: SKIP }, () => {
  let cluster: NatsCluster;
  before(async () => {
    cluster = await startNatsCluster({ nodes: 3 });
  });
  after(async () => {
    await cluster?.close();
  });

  it("every nats-server SIGKILLed mid-publish: 'wait' publishes succeed after the restart, 'error' ones are rejected; 0 acked lost, consumers resume", async (t) => {
    const waiting = await createJetStreamEngine({ servers: cluster.urls, publishTimeoutMs: 1000, retryDelayMs: 100, publishRetryForMs: 60_000 });
    const failing = await createJetStreamEngine({ servers: cluster.urls, publishTimeoutMs: 1000, onUnavailable: 'error' });
    t.after(() => Promise.all([waiting.close(), failing.close()]));
    await waiting.ensureTopic('lost');
    const group: Delivery[] = [];
    const fan: Delivery[] = [];
    const member = await waiting.consume({ pattern: 'lost', group: { name: 'g', mode: 'queue' }, ack: 'manual', start: { kind: 'earliest' }, ackWaitMs: 5000 }, (d) => {
      group.push(d);
      member.ack(d.id);
    });
    // The 'error' engine has published to the topic before (it knows it: a publish is then one attempt).
    await failing.append({ topic: 'lost', payload: Buffer.from('e-before'), acks: 'all' });
    const subscriber = await failing.consume({ pattern: 'lost', ack: 'none' }, (d) => fan.push(d));
    t.after(() => Promise.all([member.close(), subscriber.close()]));

    const acked = new Set<string>();
    let failed = 0;
    let stop = false;
    let maxWaitMs = 0;
    const publishing = (async () => {
      for (let i = 0; !stop; i++) {
        const id = `w${i}`;
        const t0 = Date.now();
        try {
          await waiting.append({ topic: 'lost', payload: Buffer.from(id), msgId: id, acks: 'all' });
          acked.add(id);
          maxWaitMs = Math.max(maxWaitMs, Date.now() - t0);
        } catch {
          failed++;
          await new Promise((r) => setTimeout(r, 10));
        }
      }
    })();
    await until(() => acked.size >= 100, 20_000, () => `${acked.size} acked before the loss`);
    for (let i = 0; i < cluster.nodes.length; i++) await cluster.kill(i, 'SIGKILL');
    const lostAt = Date.now();
    assert.ok(cluster.nodes.every((n) => !n.running), 'every nats-server is gone');
    const ackedAtLoss = acked.size;
    // 'error': rejected, with the stable code, without waiting for the cluster.
    const t0 = Date.now();
    const rejected = await failing.append({ topic: 'lost', payload: Buffer.from('e0'), msgId: 'e0', acks: 'all' }).then(
      () => undefined,
      (err: Error & { code?: string }) => err,
    );
    const rejectedMs = Date.now() - t0;
    assert.equal(rejected?.code, ErrorCodes.PUBSUB_UNAVAILABLE, `the 'error' publish was rejected (${rejected?.message})`);
    assert.ok(rejectedMs < 5000, `rejected after ${rejectedMs} ms (one attempt of publishTimeoutMs 1000 ms, no retries)`);
    await new Promise((r) => setTimeout(r, Math.max(0, 2500 - (Date.now() - lostAt))));
    const ackedWhileDown = acked.size - ackedAtLoss;
    assert.equal(ackedWhileDown, 0, 'nothing was acknowledged while no nats-server ran');
    for (let i = 0; i < cluster.nodes.length; i++) await cluster.restart(i);
    await until(() => acked.size >= ackedAtLoss + 100, 60_000, () => `${acked.size - ackedAtLoss} acked after the restart`);
    stop = true;
    await publishing;
    assert.equal(failed, 0, "no 'wait' publish failed (each waited for the cluster within publishRetryForMs)");
    assert.ok(maxWaitMs >= 2000, `the publish in flight at the loss waited for the cluster (${maxWaitMs} ms)`);
    // 'error' publishes work again once the cluster is back.
    const again = (await eventually("'error' publish after the return", () => failing.append({ topic: 'lost', payload: Buffer.from('e1'), msgId: 'e1', acks: 'all' }))).value;
    assert.equal(again.duplicate, false);

    const topic = await eventually('topic info', () => waiting.topic('lost'));
    const info = topic.value!.partitionInfo[0]!;
    const read = await eventually('read', () => waiting.read('lost', 0, 0, 10_000));
    const stored = read.value.map((r) => r.payload.toString());
    const lost = [...acked].filter((id) => !stored.includes(id));
    assert.equal(lost.length, 0, `acknowledged but not stored: ${lost.slice(0, 5).join(', ')}`);
    assert.equal(new Set(stored).size, stored.length, 'stored once each (retries deduplicated by msg id)');
    assert.equal(info.records, stored.length);
    // The consumers made before the loss resume: the group member gets every stored message, the fan-out subscriber
    // those published after the restart too.
    await until(() => new Set(group.map((d) => d.record.payload.toString())).size >= stored.length, 30_000, () => `group got ${group.length}/${stored.length}`);
    await until(() => fan.some((d) => d.record.payload.toString() === 'e1'), 30_000, () => `fan-out got ${fan.length}, not e1`);
    t.diagnostic(
      `${ackedAtLoss} acked before the loss, ${acked.size - ackedAtLoss} after; 0 failed; the longest 'wait' publish took ${maxWaitMs} ms; ` +
        `'error' rejected in ${rejectedMs} ms; ${stored.length} stored, 0 acked lost; group member ${group.length} deliveries, fan-out ${fan.length}; retries ${waiting.counters.retries}; management calls after the return took ${topic.tries} / ${read.tries} tries`,
    );
  });
});
