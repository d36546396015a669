import assert from 'node:assert/strict';
import { test } from 'node:test';
import { numbered, Tally } from '../../labs/mq/harness.ts';

// The mq labs' scoreboard is computed from the effects the consumers performed; these are its rules.
test('numbered: ids m0.., keys round-robin, seq per key', () => {
  const n = numbered(5, 2);
  assert.deepEqual(n.map((x) => [x.id, x.key, x.seq]), [['m0', 'k0', 0], ['m1', 'k1', 0], ['m2', 'k0', 1], ['m3', 'k1', 1], ['m4', 'k0', 2]]);
});

test('Tally.score: lost, duplicated, out of order (per key, first occurrences), late', () => {
  const t = new Tally();
  t.sent = 5;
  const [m0, m1, m2, m3] = numbered(5, 2).map((x) => ({ ...x, t: Date.now() }));
  t.effect(m2!); // k0 seq 1 before k0 seq 0
  t.effect(m0!); // out of order
  t.effect(m1!);
  t.effect(m0!); // a duplicate is not counted out of order again
  t.effect({ ...m3!, t: Date.now() - 10_000 }); // late
  const s = t.score(5_000);
  assert.deepEqual(s, { sent: 5, processed: 5, lost: 1, duplicated: 1, outOfOrder: 1, late: 1 });
  assert.equal(t.score().late, 0, 'no threshold: nothing is late');
});
