import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCodes } from '../../../core/errors.ts';
import { checkPattern, checkTopic, matches } from '../../../pubsub/subjects.ts';
import { filterToPatterns, groupToken, parseShared, subjectToTopic, topicToSubject } from '../../../pubsub/doors/mqtt/topics.ts';

test('MQTT topics map onto subjects and back, reversibly, for dots, empty levels, a leading slash and odd bytes', () => {
  const cases: [string, string][] = [
    ['sensors/temp', 'sensors.temp'],
    ['a.b/c', 'a~2eb.c'],
    ['/a', '~.a'],
    ['a//b/', 'a.~.b.~'],
    ['$SYS/broker', '$SYS.broker'],
    ['x y/*/>/~', 'x~20y.~2a.~3e.~7e'],
    ['héllo/wörld', 'héllo.wörld'],
  ];
  for (const [topic, subject] of cases) {
    assert.equal(topicToSubject(topic), subject, topic);
    assert.equal(checkTopic(subject), subject, 'a valid subject');
    assert.equal(subjectToTopic(subject), topic, 'back again');
  }
  // A subject from another door with a `~` not followed by hex comes out as it is.
  assert.equal(subjectToTopic('a~zz.b'), 'a~zz/b');
});

test('MQTT filters: + is *, # is >, x/# also matches x, $share/g/f is parsed', () => {
  assert.deepEqual(filterToPatterns('a/+/c'), ['a.*.c']);
  assert.deepEqual(filterToPatterns('#'), ['>']);
  assert.deepEqual(filterToPatterns('a/#'), ['a', 'a.>']);
  assert.deepEqual(filterToPatterns('/+'), ['~.*']);
  for (const f of ['a/+/c', 'a/#', '+/#']) for (const p of filterToPatterns(f)) checkPattern(p);
  const pats = filterToPatterns('sport/#');
  assert.ok(pats.some((p) => matches(p, 'sport')));
  assert.ok(pats.some((p) => matches(p, 'sport.tennis.x')));
  assert.ok(!filterToPatterns('#').some((p) => matches(p, '$SYS.x')), '# does not match $ topics');
  assert.deepEqual(parseShared('$share/g1/a/#'), { group: 'g1', filter: 'a/#' });
  assert.equal(parseShared('a/b'), undefined);
});

test('bad MQTT names are refused with WL_ERR_PUBSUB_INVALID', () => {
  for (const f of ['a/#/b', 'a#', 'a/b+', '', 'x\u0000']) {
    assert.throws(() => filterToPatterns(f), (e: { code?: string }) => e.code === ErrorCodes.PUBSUB_INVALID, f);
  }
  for (const t of ['a/+', 'a/#', '', 'x'.repeat(300)]) {
    assert.throws(() => topicToSubject(t), (e: { code?: string }) => e.code === ErrorCodes.PUBSUB_INVALID, t);
  }
  assert.throws(() => parseShared('$share/g'), (e: { code?: string }) => e.code === ErrorCodes.PUBSUB_INVALID);
});

test('group tokens fit the broker rule [\\w.-]{1,128} and differ for different names', () => {
  const names = ['client-1', 'a.b', 'x'.repeat(200), 'ü', '', 'a/b'];
  const tokens = names.map(groupToken);
  for (const t of tokens) assert.match(`mqtt.${t}.1.0`, /^[\w.-]{1,128}$/);
  assert.equal(new Set(tokens).size, names.length);
});
