import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkPattern, checkTopic, covers, matches, partitionForKey } from '../../pubsub/subjects.ts';

test('topics: wildcards and empty tokens refused with WL_ERR_PUBSUB_INVALID', () => {
  assert.equal(checkTopic('orders.eu'), 'orders.eu');
  for (const bad of ['', 'a..b', 'a.*', '>', 'a b', '.a', 'x'.repeat(256)]) {
    assert.throws(() => checkTopic(bad), { code: 'WL_ERR_PUBSUB_INVALID' }, bad);
  }
  assert.throws(() => checkPattern('a.>.b'), { code: 'WL_ERR_PUBSUB_INVALID' });
  assert.equal(checkPattern('a.*.>'), 'a.*.>');
});

test('patterns: * is one token, > the rest, $ topics only when spelled out', () => {
  const cases: [string, string, boolean][] = [
    ['orders.*', 'orders.eu', true],
    ['orders.*', 'orders.eu.x', false],
    ['orders.>', 'orders.eu.x', true],
    ['orders.>', 'orders', false],
    ['>', 'a', true],
    ['*.eu', 'orders.eu', true],
    ['orders', 'orders', true],
    ['orders', 'orders.eu', false],
    ['>', '$dlq.orders', false],
    ['$dlq.>', '$dlq.orders', true],
  ];
  for (const [p, t, want] of cases) assert.equal(matches(p, t), want, `${p} vs ${t}`);
  assert.equal(covers('orders.>', 'orders.*'), true);
  assert.equal(covers('orders.*', 'orders.>'), false);
  assert.equal(covers('*.eu', 'orders.eu'), true);
  assert.equal(covers('orders.eu', 'orders.*'), false);
});

test('partitionForKey is stable and spreads keys', () => {
  assert.equal(partitionForKey('user-1', 8), partitionForKey('user-1', 8));
  const seen = new Set(Array.from({ length: 200 }, (_, i) => partitionForKey(`k${i}`, 8)));
  assert.equal(seen.size, 8);
});
