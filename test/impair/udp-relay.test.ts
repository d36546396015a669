import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { test } from 'node:test';
import { openUdp } from '../../clients/udp.ts';
import { startUdpServer } from '../../servers/udp/index.ts';
import { startUdpRelay, type UdpImpairments } from '../../core/impair/index.ts';
import { datagramSeq } from '../../protocols/datagram.ts';

/** Sends `n` numbered datagrams through a relay to the echo server; returns the relay and what came back. */
/**
 * Waits until nothing moves: `progress()` (datagrams received, relayed) unchanged for 300 ms, at most 15 s. A fixed
 * sleep lost echoes still in flight when the machine was loaded (CI runs on a busy 2-core machine).
 */
async function settle(progress: () => number): Promise<void> {
  const end = Date.now() + 15_000;
  let last = -1;
  let stillSince = Date.now();
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, 50));
    const now = progress();
    if (now !== last) {
      last = now;
      stillSince = Date.now();
    } else if (Date.now() - stillSince >= 300) return;
  }
}

async function run(n: number, upstream: UdpImpairments, seed = 1, downstream: UdpImpairments = {}) {
  const server = await startUdpServer();
  const relay = await startUdpRelay({ upstreamPort: server.port, upstream, downstream, seed, sequenceOf: datagramSeq });
  const client = await openUdp({ port: relay.port });
  const got: number[] = [];
  const payloads: Buffer[] = [];
  client.onMessage((m) => {
    payloads.push(m);
    if (m.length >= 16 && m.readUInt16BE(0) === 0x574c) got.push(m.readUInt32BE(4));
  });
  for (let i = 0; i < n; i++) {
    await client.send(`datagram ${i}`);
    if (i % 20 === 19) await new Promise((r) => setImmediate(r));
  }
  await settle(() => payloads.length + relay.stats('upstream').sent + relay.stats('downstream').sent);
  await client.close();
  await relay.close();
  await server.close();
  return { relay, client, got, payloads };
}

const fates = (r: Awaited<ReturnType<typeof run>>): string =>
  r.relay.records.filter((x) => x.stream === 'upstream').map((x) => `${x.fate[0]}${x.duplicated ? 'D' : ''}${x.reordered ? 'R' : ''}${x.corruptBit}`).join(',');

test('uniform loss (seeded): the lost datagrams are the ones recorded lost, and the same seed loses the same ones', async () => {
  const a = await run(400, { loss: 0.2 }, 11);
  const b = await run(400, { loss: 0.2 }, 11);
  const c = await run(400, { loss: 0.2 }, 12);
  const lost = a.relay.records.filter((r) => r.fate === 'lost').map((r) => r.seq);
  assert.ok(lost.length > 40 && lost.length < 120, `about 20% of 400 lost: ${lost.length}`);
  assert.equal(a.got.length, 400 - lost.length);
  for (const s of lost) assert.ok(!a.got.includes(s!));
  assert.equal(fates(a), fates(b));
  assert.notEqual(fates(a), fates(c));
});

test('Gilbert-Elliott loss comes in bursts: longer runs of losses than uniform loss at the same rate', async () => {
  const burst = await run(600, { gilbert: { p: 0.05, r: 0.25 } }, 3);
  const longest = (r: typeof burst): number => {
    let best = 0;
    let cur = 0;
    for (const x of r.relay.records) {
      cur = x.fate === 'lost' ? cur + 1 : 0;
      best = Math.max(best, cur);
    }
    return best;
  };
  const lost = burst.relay.stats('upstream').lost;
  const uniform = await run(600, { loss: lost / 600 }, 3);
  assert.ok(lost > 0);
  assert.ok(longest(burst) > longest(uniform), `bursts of ${longest(burst)} vs ${longest(uniform)}`);
});

test('duplication (seeded): duplicated datagrams arrive twice', async () => {
  const r = await run(200, { duplicate: 0.1 }, 5);
  const dups = r.relay.stats('upstream').duplicated;
  assert.ok(dups > 5);
  assert.equal(r.got.length, 200 + dups);
  assert.equal(r.client.duplicates, dups);
});

test('reordering (seeded): held datagrams arrive after later ones, none lost', async () => {
  const r = await run(200, { reorder: 0.1, reorderGap: 2 }, 5);
  assert.ok(r.relay.stats('upstream').reordered > 5);
  assert.equal(new Set(r.got).size, 200);
  assert.ok(r.client.outOfOrder > 0);
});

test('delay + jitter (seeded): delays drawn within the range, order kept', async () => {
  const r = await run(50, { delayMs: 20, jitterMs: 5 }, 9);
  const delays = r.relay.records.filter((x) => x.stream === 'upstream').map((x) => x.delayMs);
  for (const d of delays) assert.ok(d >= 15 && d <= 25, `drew ${d}`);
  assert.equal(r.got.length, 50);
  assert.equal(r.client.outOfOrder, 0);
});

test('corruption (seeded): exactly the recorded bit is flipped in exactly the recorded datagrams', async () => {
  const server = await startUdpServer();
  const relay = await startUdpRelay({ upstreamPort: server.port, upstream: { corrupt: 0.2 }, seed: 4 });
  const client = await openUdp({ port: relay.port });
  const flipped: number[] = [];
  let received = 0;
  client.onMessage((m) => {
    received++;
    // Every datagram sent is 32 zero bytes: a corrupted echo has exactly one bit set.
    for (let i = 0; i < m.length * 8; i++) if (m[i >> 3]! & (1 << (i & 7))) flipped.push(i);
  });
  try {
  for (let i = 0; i < 100; i++) await client.sendRaw(Buffer.alloc(32));
  await settle(() => received);
  const recorded = relay.records.filter((x) => x.stream === 'upstream' && x.corruptBit >= 0).map((x) => x.corruptBit);
  assert.ok(recorded.length > 5, `corrupted ${recorded.length}`);
  assert.equal(client.received, 100);
  assert.deepEqual([...flipped].sort((a, b) => a - b), [...recorded].sort((a, b) => a - b));
  } finally {
    await client.close();
    await relay.close();
    await server.close();
  }
});

test('maxSessions: clients past the limit are dropped and recorded, the others still relayed; maxRecords bounds the record', async () => {
  const server = await startUdpServer();
  const relay = await startUdpRelay({ upstreamPort: server.port, maxSessions: 1, maxRecords: 10 });
  const first = await openUdp({ port: relay.port });
  const second = await openUdp({ port: relay.port });
  await first.echo('one');
  await assert.rejects(second.echo('two', 200), { code: 'WL_ERR_TIMEOUT' });
  assert.equal(relay.records.at(-1)!.fate, 'no-session');
  for (let i = 0; i < 20; i++) await first.echo(`again ${i}`);
  assert.ok(relay.records.length <= 10);
  assert.ok(relay.recordsDropped > 0);
  await first.close();
  await second.close();
  await relay.close();
  await server.close();
});

test('rate limit with a bounded queue: past queueLimit datagrams are tail-dropped, never queued without bound', async () => {
  const r = await run(300, { rateKbit: 100, queueLimit: 20 }, 1);
  const s = r.relay.stats('upstream');
  assert.ok(s.queueFull > 0, `dropped ${s.queueFull}`);
  assert.ok(s.maxQueued <= 20, `queued at most ${s.maxQueued}`);
  assert.equal(r.relay.records.filter((x) => x.fate === 'queue-full').length, s.queueFull);
});

test('the relay survives any datagram: empty, maximal and garbage datagrams, then still relays', async () => {
  const server = await startUdpServer();
  const relay = await startUdpRelay({ upstreamPort: server.port, upstream: { corrupt: 1 } });
  const raw = dgram.createSocket('udp4');
  for (const b of [Buffer.alloc(0), Buffer.alloc(65_507, 0xff), Buffer.from([0x57, 0x4c])]) {
    await new Promise<void>((res, rej) => raw.send(b, relay.port, '127.0.0.1', (e) => (e ? rej(e) : res())));
  }
  raw.close();
  relay.set('upstream', {});
  const client = await openUdp({ port: relay.port });
  const reply = await client.echo('still here');
  assert.equal(reply.bytes, 16 + 10);
  await client.close();
  assert.equal(relay.stats('upstream').received, 4);
  await relay.close();
  await server.close();
});

test('bad impairments are refused with WL_ERR_IMPAIR_INVALID', async () => {
  await assert.rejects(startUdpRelay({ upstreamPort: 9, upstream: { loss: 2 } }), { code: 'WL_ERR_IMPAIR_INVALID' });
  await assert.rejects(startUdpRelay({ upstreamPort: 9, upstream: { warp: 1 } as never }), { code: 'WL_ERR_IMPAIR_INVALID' });
});
