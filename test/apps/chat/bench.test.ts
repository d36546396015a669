// `npm run bench -- chat` at a small scale: both chat servers (wirelab's, the Socket.IO fixture) in their own
// processes, the load process speaking each one's protocol, every message delivered to every member of its room.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chatRound, type Kind } from '../../../bench/chat.ts';

const SMALL = { clients: 40, rooms: 4, throughputMs: 400, window: 4, latencyRate: 50, latencyMs: 400 };

for (const kind of ['wirelab', 'socketio'] as Kind[]) {
  test(`chat bench, ${kind}: 40 clients in 4 rooms, nothing lost, every figure measured`, { timeout: 60_000 }, async () => {
    const r = await chatRound(kind, SMALL);
    assert.equal(r.lost, 0);
    assert.ok(r.rate > 0, `rate ${r.rate}`);
    assert.ok(r.cpuPerDelivery > 0, `cpu ${r.cpuPerDelivery}`);
    assert.ok(r.p50 > 0 && r.p99 >= r.p50, `p50 ${r.p50} p99 ${r.p99}`);
    assert.ok(Number.isFinite(r.bytesPerConnection));
  });
}
