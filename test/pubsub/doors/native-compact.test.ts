import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { connectPubsub } from '../../../clients/pubsub.ts';
import { createTracer, MemorySink } from '../../../core/trace/index.ts';
import { createBroker, type Broker } from '../../../pubsub/broker/index.ts';
import { startPubsubTcpServer, type RunningPubsubTcpServer } from '../../../pubsub/doors/native/index.ts';
import {
  COMPACT_CODES,
  MsgEncoder,
  TYPE_CODES,
  createFrameDecoder,
  encodeBinary,
  encodeCompactPub,
  encodeCompactPuback,
  parseClientMessage,
  parseServerMessage,
  type MsgMessage,
  type PubackMessage,
  type PubMessage,
} from '../../../protocols/pubsub.ts';

const PUBS: PubMessage[] = [
  { type: 'pub', id: 1, topic: 'orders.eu', payload: Buffer.from('héllo') },
  { type: 'pub', id: 0xffffffff, topic: 'orders.ü', payload: Buffer.from([0, 0xff, 0x80]), key: 'k', partition: 65535, headers: { a: 'b', 'x-é': 'ü' }, msgId: 'm1', ttlMs: 5000, acks: 'all' },
  { type: 'pub', id: 3, topic: 't', payload: Buffer.alloc(0), acks: 0 },
  { type: 'pub', id: 4, topic: 't', payload: Buffer.from('x'), acks: 1, headers: {} },
];
const MSGS: MsgMessage[] = [
  { type: 'msg', sub: 's1', topic: 'orders.eu', partition: 0, offset: 0, ts: 1_700_000_000_000, headers: {}, payload: Buffer.from('a'), attempt: 1 },
  {
    type: 'msg',
    sub: 'sub-ü',
    deliveryId: 'sub-ü/g/orders.eu/3/9007199254740991/2',
    topic: 'orders.eu',
    partition: 3,
    offset: Number.MAX_SAFE_INTEGER,
    ts: 1_700_000_000_123,
    key: 'customer-7',
    msgId: 'id-1',
    headers: { h: 'v', empty: '' },
    payload: Buffer.from([0, 1, 2, 0xff]),
    attempt: 7,
  },
];
const PUBACKS: PubackMessage[] = [
  { type: 'puback', id: 9, topic: 'orders.eu', partition: 2, offset: 2 ** 40 + 5, ts: 1_700_000_000_000, duplicate: false },
  { type: 'puback', id: 0, topic: 'ü', partition: 0, offset: 0, ts: 0, duplicate: true },
];

const body = (frame: Buffer): Buffer => frame.subarray(4);

test('compact frames round trip: pub (client side), msg and puback (server side), with and without the TCP length', () => {
  for (const m of PUBS) {
    const f = encodeCompactPub(m);
    assert.equal(f.readUInt32BE(0), f.length - 4);
    assert.equal(f[4], COMPACT_CODES.pub);
    assert.deepEqual(parseClientMessage(body(f)), { ok: true, message: m });
    assert.deepEqual(parseClientMessage(encodeCompactPub(m, 0)), { ok: true, message: m });
  }
  const enc = new MsgEncoder();
  for (const m of MSGS) {
    assert.deepEqual(parseServerMessage(body(enc.encode(m))), { ok: true, message: m });
    assert.deepEqual(parseServerMessage(enc.encode(m, 0)), { ok: true, message: m });
  }
  for (const m of PUBACKS) assert.deepEqual(parseServerMessage(body(encodeCompactPuback(m))), { ok: true, message: m });
});

test('MsgEncoder: a record encoded once for every subscriber; the same offset with other content is encoded again', () => {
  const enc = new MsgEncoder({ maxEntries: 2 });
  const base = MSGS[1]!;
  const subs = ['a', 'b', 'c'].map((sub) => enc.encode({ ...base, sub, deliveryId: `${sub}/1` }));
  assert.equal(enc.misses, 1);
  assert.equal(enc.hits, 2);
  subs.forEach((f, i) => {
    const p = parseServerMessage(body(f));
    assert.ok(p.ok && p.message.type === 'msg');
    assert.equal(p.message.sub, ['a', 'b', 'c'][i]);
    assert.deepEqual(p.message.payload, base.payload);
  });
  // A topic deleted and made again reuses offsets: another payload, key or header at the same offset is not the cached one.
  for (const other of [{ payload: Buffer.from('other') }, { key: 'k2' }, { headers: { h: 'w', empty: '' } }, { ts: base.ts + 1 }]) {
    const m = { ...base, ...other };
    assert.deepEqual(parseServerMessage(body(enc.encode(m))), { ok: true, message: m });
  }
  // A copy of the payload (each subscriber's group may read its own) still hits.
  enc.encode(base);
  const hits = enc.hits;
  enc.encode({ ...base, payload: Buffer.from(base.payload) });
  assert.equal(enc.hits, hits + 1);
});

test('truncated compact frames and bad fields are problems, never throws; a pub problem names its id', () => {
  const frames = [body(encodeCompactPub(PUBS[1]!)), body(new MsgEncoder().encode(MSGS[1]!)), body(encodeCompactPuback(PUBACKS[0]!))];
  const parse = [parseClientMessage, parseServerMessage, parseServerMessage];
  frames.forEach((f, i) => {
    // A pub's payload is the rest of the frame, so only cuts inside its fields are short; msg likewise.
    const fieldsEnd = i === 2 ? f.length : f.length - (i === 0 ? PUBS[1]!.payload.length : MSGS[1]!.payload.length);
    for (let n = 1; n < fieldsEnd; n++) {
      const p = parse[i]!(f.subarray(0, n));
      assert.equal(p.ok, false, `frame ${i} cut at ${n}`);
      if (!p.ok) assert.match(p.problem, /compact (pub|msg|puback): /);
    }
  });
  const pub = body(encodeCompactPub(PUBS[0]!));
  const badAcks = Buffer.from(pub);
  badAcks[5] = 3;
  assert.deepEqual(parseClientMessage(badAcks), { ok: false, problem: 'compact pub: "acks" code must be 0, 1, 2 ("all") or 255 (default)', id: 1 });
  const badFlags = Buffer.from(pub);
  badFlags[6] = 0x80;
  assert.equal(parseClientMessage(badFlags).ok, false);
  const emptyTopic = Buffer.from([COMPACT_CODES.pub, 0, 0, 0, 5, 255, 0, 0, 0]);
  assert.deepEqual(parseClientMessage(emptyTopic), { ok: false, problem: 'compact pub: "topic" must be a string of 1-255 characters', id: 5 });
  const longLen = Buffer.from([COMPACT_CODES.pub, 0, 0, 0, 6, 255, 0, 0xff, 0xff, 0x61]);
  assert.equal(parseClientMessage(longLen).ok, false);
  const puback = body(encodeCompactPuback(PUBACKS[0]!));
  assert.equal(parseServerMessage(Buffer.concat([puback, Buffer.from([0])])).ok, false, 'bytes past a puback');
  const far = Buffer.from(puback);
  far.writeUInt32BE(0x200000, 10); // offset's high word: past 2^53
  assert.deepEqual(parseServerMessage(far), { ok: false, problem: 'compact puback: "offset" is past 2^53' });
});

let broker: Broker;
let tcp: RunningPubsubTcpServer;
const sink = new MemorySink();

before(async () => {
  broker = await createBroker({});
  tcp = await startPubsubTcpServer({ broker, tracer: createTracer([sink]), limits: { maxFrameBytes: 4096 } });
});
after(async () => {
  await tcp.close();
  await broker.close();
});

/** A raw TCP connection: the frames' type codes as they came, and the parsed messages. */
async function raw(): Promise<{ socket: net.Socket; codes: number[]; messages: ReturnType<typeof parseServerMessage>[]; closed: Promise<void> }> {
  const socket = net.connect(tcp.port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  socket.on('error', () => undefined);
  const codes: number[] = [];
  const messages: ReturnType<typeof parseServerMessage>[] = [];
  const decoder = createFrameDecoder(1 << 20);
  socket.on('data', (d) => {
    for (const f of decoder.push(d)) {
      codes.push(f[0]!);
      messages.push(parseServerMessage(f));
    }
  });
  return { socket, codes, messages, closed: new Promise((r) => socket.once('close', () => r())) };
}

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond());
}

test('the door: a version 2 hello gets compact msg and puback; version 1 keeps JSON headers; both publish either way', async () => {
  for (const version of [1, 2]) {
    const r = await raw();
    const topic = `compact.v${version}`;
    r.socket.write(encodeBinary({ type: 'hello', version }));
    r.socket.write(encodeBinary({ type: 'sub', id: 's', pattern: topic, ack: 'none' }));
    await until(() => r.codes.includes(TYPE_CODES.subscribed));
    r.socket.write(encodeCompactPub({ type: 'pub', id: 7, topic, payload: Buffer.from('one'), acks: 1 }));
    r.socket.write(encodeBinary({ type: 'pub', id: 8, topic, payload: Buffer.from('two'), acks: 1 }));
    await until(() => r.messages.filter((m) => m.ok && (m.message.type === 'msg' || m.message.type === 'puback')).length === 4);
    const welcome = r.messages[0]!;
    assert.ok(welcome.ok && welcome.message.type === 'welcome' && welcome.message.version === version);
    const msgCode = version === 2 ? COMPACT_CODES.msg : TYPE_CODES.msg;
    const pubackCode = version === 2 ? COMPACT_CODES.puback : TYPE_CODES.puback;
    assert.equal(r.codes.filter((c) => c === msgCode).length, 2, `v${version} msg frames`);
    assert.equal(r.codes.filter((c) => c === pubackCode).length, 2, `v${version} puback frames`);
    const texts = r.messages.flatMap((m) => (m.ok && m.message.type === 'msg' ? [m.message.payload.toString()] : []));
    assert.deepEqual(texts, ['one', 'two']);
    r.socket.destroy();
  }
});

test('the door: a malformed compact pub gets an error naming its id, the connection closes, the door keeps serving', async () => {
  const before = tcp.stats.badFrames;
  const r = await raw();
  r.socket.write(encodeBinary({ type: 'hello', version: 2 }));
  const cut = encodeCompactPub({ type: 'pub', id: 42, topic: 'a.b', payload: Buffer.alloc(0), key: 'k' }).subarray(0, 12);
  cut.writeUInt32BE(cut.length - 4, 0);
  r.socket.write(cut);
  await r.closed;
  const err = r.messages.find((m) => m.ok && m.message.type === 'error');
  assert.ok(err && err.ok && err.message.type === 'error');
  assert.equal(err.message.id, 42);
  assert.equal(err.message.code, 'WL_ERR_PUBSUB_INVALID');
  assert.equal(tcp.stats.badFrames - before, 1);
  assert.ok(sink.events.some((e) => e.kind === 'bad-frame' && /compact pub/.test(e.summary)));
  const c = await connectPubsub({ url: tcp.url });
  assert.equal(c.version, 2);
  const sub = await c.subscribe('after.*', { ack: 'none' });
  const ack = await c.publish('after.x', 'ok', { acks: 1, headers: { h: '1' } });
  assert.equal(ack?.topic, 'after.x');
  const m = await sub.next();
  assert.equal(m.text, 'ok');
  assert.deepEqual(m.headers, { h: '1' });
  await c.close();
});
