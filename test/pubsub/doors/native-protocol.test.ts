import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CLIENT_TYPES,
  SERVER_TYPES,
  TYPE_CODES,
  createFrameDecoder,
  encodeBinary,
  encodeBinaryBody,
  encodeJson,
  parseClientMessage,
  parseServerMessage,
  type ClientMessage,
  type PubsubMessage,
  type ServerMessage,
} from '../../../protocols/pubsub.ts';

const binaryPayload = Buffer.from([0, 0xff, 0xfe, 0x80, 10, 13]);

const CLIENT: ClientMessage[] = [
  { type: 'hello', version: 1, clientId: 'c1', user: 'ann', password: 'pw' },
  { type: 'hello', version: 1, token: 'tok' },
  { type: 'pub', id: 1, topic: 'orders.eu', payload: Buffer.from('héllo') },
  { type: 'pub', id: 2, topic: 'orders.eu', payload: binaryPayload, key: 'k', partition: 2, headers: { a: 'b' }, msgId: 'm1', ttlMs: 5000, acks: 'all' },
  { type: 'pub', id: 3, topic: 't', payload: Buffer.alloc(0), acks: 0 },
  { type: 'sub', id: 's1', pattern: 'orders.>' },
  {
    type: 'sub',
    id: 's2',
    pattern: 'orders.*',
    group: 'g',
    mode: 'partitioned',
    ack: 'manual',
    from: { offset: 7, partition: 1 },
    replay: 'original',
    buffer: { size: 10, policy: 'dropOldest' },
    ackWaitMs: 100,
    maxDeliver: 3,
    maxAckPending: 5,
    backoffMs: [10, 20],
    deadLetterTopic: 'dead',
  },
  { type: 'sub', id: 's3', pattern: 'x', from: { time: 1_700_000_000_000 } },
  { type: 'sub', id: 's4', pattern: 'x', from: 'earliest', ack: 'none' },
  { type: 'unsub', id: 's1' },
  { type: 'ack', deliveryId: 'd1' },
  { type: 'nak', deliveryId: 'd1', delayMs: 50 },
  { type: 'progress', deliveryId: 'd1' },
  { type: 'term', deliveryId: 'd1', reason: 'poison' },
  { type: 'ping', id: 4 },
  { type: 'ping' },
];

const SERVER: ServerMessage[] = [
  { type: 'welcome', version: 1, session: 'S1', user: 'ann', maxFrameBytes: 1024 },
  { type: 'puback', id: 2, topic: 'orders.eu', partition: 0, offset: 12, ts: 1_700_000_000_000, duplicate: false },
  { type: 'subscribed', id: 's1' },
  { type: 'msg', sub: 's1', deliveryId: 'd9', topic: 'orders.eu', partition: 1, offset: 3, ts: 1, key: 'k', headers: { h: 'v' }, payload: binaryPayload, msgId: 'm', attempt: 2 },
  { type: 'msg', sub: 's1', topic: 'a', partition: 0, offset: 0, ts: 1, headers: {}, payload: Buffer.from('text'), attempt: 1 },
  { type: 'error', id: 2, code: 'WL_ERR_PUBSUB_LIMIT', message: 'too big', limit: 'maxPayloadBytes' },
  { type: 'error', code: 'WL_ERR_PUBSUB_AUTH', message: 'no' },
  { type: 'closed', reason: 'slow consumer' },
  { type: 'pong', id: 4 },
];

test('every client and server type round-trips through both encodings', () => {
  assert.deepEqual(new Set(CLIENT.map((m) => m.type)), new Set(CLIENT_TYPES));
  assert.deepEqual(new Set(SERVER.map((m) => m.type)), new Set(SERVER_TYPES));
  for (const m of CLIENT) {
    assert.deepEqual(parseClientMessage(encodeJson(m)), { ok: true, message: m }, `json ${m.type}`);
    assert.deepEqual(parseClientMessage(encodeBinaryBody(m)), { ok: true, message: m }, `binary ${m.type}`);
  }
  for (const m of SERVER) {
    assert.deepEqual(parseServerMessage(encodeJson(m)), { ok: true, message: m }, `json ${m.type}`);
    assert.deepEqual(parseServerMessage(encodeBinaryBody(m)), { ok: true, message: m }, `binary ${m.type}`);
  }
});

test('JSON: text payloads stay text, other bytes go as base64 with a flag; binary: payload bytes as they are', () => {
  const text = JSON.parse(encodeJson(CLIENT[2]!)) as Record<string, unknown>;
  assert.equal(text.payload, 'héllo');
  assert.equal(text.base64, undefined);
  const b64 = JSON.parse(encodeJson(CLIENT[3]!)) as Record<string, unknown>;
  assert.equal(b64.base64, true);
  assert.equal(b64.payload, binaryPayload.toString('base64'));
  const body = encodeBinaryBody(CLIENT[3]!);
  assert.equal(body[0], TYPE_CODES.pub);
  assert.deepEqual(body.subarray(body.length - binaryPayload.length), binaryPayload);
});

test('TCP framing: frames split at every byte boundary and several in one read decode the same', () => {
  const all: PubsubMessage[] = [...CLIENT];
  const stream = Buffer.concat(all.map((m) => encodeBinary(m)));
  for (const step of [1, 2, 3, 5, 7, 64, stream.length]) {
    const decoder = createFrameDecoder(1024 * 1024);
    const out: ClientMessage[] = [];
    for (let i = 0; i < stream.length; i += step) {
      for (const f of decoder.push(stream.subarray(i, i + step))) {
        const p = parseClientMessage(f);
        assert.ok(p.ok, p.ok ? '' : p.problem);
        out.push(p.message);
      }
    }
    assert.deepEqual(out, CLIENT, `step ${step}`);
    assert.equal(decoder.pending, 0);
  }
});

test('a frame longer than maxFrameBytes is refused from its length alone', () => {
  const decoder = createFrameDecoder(100);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(101);
  assert.throws(() => decoder.push(head), { code: 'WL_ERR_FRAME_TOO_LONG' });
});

test('every bad client frame is refused with a problem (and the id when there is one)', () => {
  const badJson: [string, string?][] = [
    ['not json'],
    ['[1,2]'],
    ['{"type":1}'],
    ['{"type":"nope"}'],
    ['{"type":"hello"}'],
    ['{"type":"hello","version":"1"}'],
    ['{"type":"pub","id":1,"topic":"t"}'],
    ['{"type":"pub","id":-1,"topic":"t","payload":"x"}'],
    ['{"type":"pub","id":1.5,"topic":"t","payload":"x"}'],
    ['{"type":"pub","id":1,"payload":"x"}', 'id'],
    ['{"type":"pub","id":1,"topic":"t","payload":5}'],
    ['{"type":"pub","id":1,"topic":"t","payload":"%%%","base64":true}'],
    ['{"type":"pub","id":1,"topic":"t","payload":"x","base64":"yes"}'],
    ['{"type":"pub","id":1,"topic":"t","payload":"x","acks":2}', 'id'],
    ['{"type":"pub","id":1,"topic":"t","payload":"x","headers":{"a":1}}', 'id'],
    ['{"type":"pub","id":1,"topic":"t","payload":"x","headers":[]}', 'id'],
    ['{"type":"pub","id":1,"topic":"t","payload":"x","ttlMs":0}', 'id'],
    ['{"type":"sub","id":"s","pattern":"p","mode":"queue"}', 'id'],
    ['{"type":"sub","id":"s","pattern":"p","from":"yesterday"}', 'id'],
    ['{"type":"sub","id":"s","pattern":"p","from":{"offset":-1}}', 'id'],
    ['{"type":"sub","id":"s","pattern":"p","buffer":{"policy":"explode"}}', 'id'],
    ['{"type":"sub","id":"s","pattern":"p","backoffMs":[1,"2"]}', 'id'],
    ['{"type":"sub","id":"s","pattern":"p","ack":"auto"}', 'id'],
    ['{"type":"sub","id":"","pattern":"p"}'],
    ['{"type":"ack"}'],
    ['{"type":"nak","deliveryId":"d","delayMs":-5}'],
    ['{"type":"welcome","version":1}'],
  ];
  for (const [text, withId] of badJson) {
    const p = parseClientMessage(text);
    assert.equal(p.ok, false, text);
    if (!p.ok) {
      assert.ok(p.problem.length > 0);
      if (withId) assert.notEqual(p.id, undefined, text);
    }
  }
  const badBinary: Buffer[] = [
    Buffer.alloc(0),
    Buffer.from([0x02, 0]),
    Buffer.from([0x7f, 0, 0]),
    Buffer.from([TYPE_CODES.pub, 0, 50, 0x7b]),
    Buffer.concat([Buffer.from([TYPE_CODES.pub, 0, 3]), Buffer.from('{x}')]),
    Buffer.concat([Buffer.from([TYPE_CODES.pub, 0, 2]), Buffer.from('[]')]),
    Buffer.concat([Buffer.from([TYPE_CODES.ack, 0, 2]), Buffer.from('{}')]),
    Buffer.concat([Buffer.from([TYPE_CODES.ping, 0, 2]), Buffer.from('{}'), Buffer.from('extra')]),
    Buffer.concat([Buffer.from([TYPE_CODES.welcome, 0, 2]), Buffer.from('{}')]),
  ];
  for (const b of badBinary) assert.equal(parseClientMessage(b).ok, false, b.toString('hex'));
});
