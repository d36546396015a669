import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { connectPubsub, type ReceivedMessage } from '../../../clients/pubsub.ts';
import { createTracer, MemorySink } from '../../../core/trace/index.ts';
import { createBroker, hashPassword, type Broker } from '../../../pubsub/broker/index.ts';
import { startPubsubTcpServer, startPubsubWsServer, type RunningPubsubTcpServer, type RunningPubsubWsServer } from '../../../pubsub/doors/native/index.ts';
import { createFrameDecoder, encodeBinary, encodeJson, parseServerMessage, type ServerMessage } from '../../../protocols/pubsub.ts';

let broker: Broker;
let tcp: RunningPubsubTcpServer;
let ws: RunningPubsubWsServer;
const sink = new MemorySink();
const tracer = createTracer([sink]);

before(async () => {
  broker = await createBroker({});
  tcp = await startPubsubTcpServer({ broker, tracer, limits: { maxFrameBytes: 4096 } });
  ws = await startPubsubWsServer({ broker, tracer, limits: { maxFrameBytes: 4096 } });
});
after(async () => {
  await tcp.close();
  await ws.close();
  await broker.close();
});

const urls = (): [string, string][] => [
  ['tcp', tcp.url],
  ['ws', ws.endpoint],
];

async function take(sub: AsyncIterable<ReceivedMessage>, n: number): Promise<ReceivedMessage[]> {
  const out: ReceivedMessage[] = [];
  if (n === 0) return out;
  for await (const m of sub) {
    out.push(m);
    if (out.length === n) break;
  }
  return out;
}

for (const name of ['tcp', 'ws'] as const) {
  test(`${name}: hello, subscribe, publish with each acks, receive, ack`, async () => {
    const target = urls().find(([n]) => n === name)![1];
    const pub = await connectPubsub({ url: target });
    const subc = await connectPubsub({ url: target });
    try {
      const topic = `e2e.${name}`;
      const sub = await subc.subscribe(topic, { ack: 'manual' });
      const a = await pub.publish(topic, 'one', { acks: 1, key: 'k1', headers: { h: 'v' } });
      assert.equal(a?.topic, topic);
      assert.equal(a?.offset, 0);
      const b = await pub.publish(topic, Buffer.from([0, 255, 1]), { acks: 'all' });
      assert.equal(b?.offset, 1);
      assert.equal(await pub.publish(topic, 'three', { acks: 0 }), undefined);
      const got = await take(sub, 3);
      assert.deepEqual(got.map((m) => m.offset), [0, 1, 2]);
      assert.equal(got[0]!.text, 'one');
      assert.equal(got[0]!.key, 'k1');
      assert.deepEqual(got[0]!.headers, { h: 'v' });
      assert.deepEqual(got[1]!.payload, Buffer.from([0, 255, 1]));
      for (const m of got) {
        assert.equal(m.attempt, 1);
        assert.equal(typeof m.deliveryId, 'string');
        m.ack();
      }
      assert.ok((await pub.ping()) >= 0);
    } finally {
      await pub.close();
      await subc.close();
    }
  });
}

test('a queue group over both doors: each message to exactly one member', async () => {
  const a = await connectPubsub({ url: tcp.url });
  const b = await connectPubsub({ url: ws.endpoint });
  const p = await connectPubsub({ url: tcp.url });
  try {
    const seen: number[] = [];
    const counts = { a: 0, b: 0 };
    const done = new Promise<void>((resolve) => {
      const on = (who: 'a' | 'b') => (m: ReceivedMessage) => {
        counts[who]++;
        seen.push(m.offset);
        m.ack();
        if (seen.length === 20) resolve();
      };
      void a.subscribe('jobs', { group: 'workers', onMessage: on('a') });
      void b.subscribe('jobs', { group: 'workers', onMessage: on('b') });
    });
    await a.ping();
    await b.ping();
    await new Promise((r) => setTimeout(r, 50));
    for (let i = 0; i < 20; i++) await p.publish('jobs', `job ${i}`);
    await done;
    assert.deepEqual([...seen].sort((x, y) => x - y), [...Array(20).keys()]);
  } finally {
    await Promise.all([a.close(), b.close(), p.close()]);
  }
});

test('broker refusals come back as errors with the code (and the limit), the connection stays', async () => {
  const c = await connectPubsub({ url: tcp.url });
  try {
    await assert.rejects(c.publish('bad..topic', 'x'), { code: 'WL_ERR_PUBSUB_INVALID' });
    await assert.rejects(c.subscribe('a.>.b'), { code: 'WL_ERR_PUBSUB_INVALID' });
    assert.equal((await c.publish('still.ok', 'x'))?.offset, 0);
  } finally {
    await c.close();
  }
});

test('bad credentials: WL_ERR_PUBSUB_AUTH, and no reconnect loop', async () => {
  const secured = await createBroker({ users: [{ name: 'ann', passwordHash: await hashPassword('secret') }], allowInsecureAuth: true });
  const door = await startPubsubTcpServer({ broker: secured });
  try {
    await assert.rejects(connectPubsub({ url: door.url, user: 'ann', password: 'wrong', reconnect: true }), { code: 'WL_ERR_PUBSUB_AUTH' });
    await assert.rejects(connectPubsub({ url: door.url }), { code: 'WL_ERR_PUBSUB_AUTH' });
    const ok = await connectPubsub({ url: door.url, user: 'ann', password: 'secret' });
    assert.ok(ok.session);
    await ok.close();
  } finally {
    await door.close();
    await secured.close();
  }
});

/** A raw TCP connection speaking the binary framing, to send what the client never would. */
async function rawTcp(): Promise<{ socket: net.Socket; messages: ServerMessage[]; closed: Promise<void> }> {
  const socket = net.connect(tcp.port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  const messages: ServerMessage[] = [];
  const decoder = createFrameDecoder(1 << 20);
  socket.on('data', (d) => {
    for (const f of decoder.push(d)) {
      const p = parseServerMessage(f);
      if (p.ok) messages.push(p.message);
    }
  });
  socket.on('error', () => undefined);
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  return { socket, messages, closed };
}

test('TCP bad frames: an error frame, then the connection closes; a trace event each; the door keeps serving', async () => {
  const before = tcp.stats.badFrames;
  const frames: Buffer[] = [
    encodeBinary({ type: 'ping' }), // before hello
    Buffer.from([0, 0, 0, 3, 0x7f, 0, 0]), // unknown type code
    Buffer.from([0, 0, 0, 4, 0x02, 0, 9, 0x7b]), // header past the frame
    Buffer.from([0xff, 0xff, 0xff, 0xff]), // longer than maxFrameBytes
    Buffer.concat([encodeBinary({ type: 'hello', version: 1 }), encodeBinary({ type: 'hello', version: 1 })]), // second hello
    encodeBinary({ type: 'hello', version: 99 }),
  ];
  for (const f of frames) {
    const r = await rawTcp();
    r.socket.write(f);
    await r.closed;
    const err = r.messages.find((m) => m.type === 'error');
    assert.ok(err, `an error frame for ${f.toString('hex').slice(0, 40)}`);
  }
  assert.equal(tcp.stats.badFrames - before, frames.length, 'each violation counted');
  assert.ok(sink.events.filter((e) => e.kind === 'bad-frame').length >= 3, 'a trace event for each malformed frame');
  const c = await connectPubsub({ url: tcp.url });
  assert.ok(await c.ping() >= 0);
  await c.close();
});

/** A raw WebSocket to the door. */
async function rawWs(): Promise<{ sock: WebSocket; messages: unknown[]; closed: Promise<number> }> {
  const sock = new WebSocket(ws.endpoint);
  sock.on('error', () => undefined);
  await new Promise((r) => sock.once('open', r));
  const messages: unknown[] = [];
  sock.on('message', (d) => messages.push(JSON.parse(String(d))));
  const closed = new Promise<number>((r) => sock.once('close', (code) => r(code)));
  return { sock, messages, closed };
}

test('WS bad frames: close 1002 (1009 too big) with an error first; the door keeps serving', async () => {
  const cases: [string | Buffer, number][] = [
    ['not json', 1002],
    [JSON.stringify({ type: 'pub', id: 1, topic: 't', payload: 'x' }), 1002], // before hello
    [JSON.stringify({ type: 'hello' }), 1002],
    ['x'.repeat(5000), 1009],
  ];
  for (const [frame, code] of cases) {
    const r = await rawWs();
    r.sock.send(frame);
    assert.equal(await r.closed, code, String(frame).slice(0, 40));
    if (code === 1002) assert.equal((r.messages[0] as { code?: string }).code, 'WL_ERR_PUBSUB_INVALID');
  }
  // A bad field after hello is a protocol violation too; a broker refusal (below) is not.
  const r = await rawWs();
  r.sock.send(encodeJson({ type: 'hello', version: 1 }));
  r.sock.send(encodeJson({ type: 'pub', id: 7, topic: 'x..y', payload: Buffer.from('p') }));
  r.sock.send(encodeJson({ type: 'ping', id: 1 }));
  await new Promise((res) => setTimeout(res, 100));
  // Sent together: the pub and the ping waited for the welcome; the broker's refusal is an error with the pub's id.
  const types = r.messages.map((m) => (m as { type: string }).type);
  assert.equal(types[0], 'welcome');
  assert.deepEqual(types.slice(1).sort(), ['error', 'pong']);
  const err = r.messages.find((m) => (m as { type: string }).type === 'error') as { id: number; code: string };
  assert.deepEqual([err.id, err.code], [7, 'WL_ERR_PUBSUB_INVALID']);
  assert.equal(r.sock.readyState, WebSocket.OPEN);
  r.sock.close();
  assert.ok((ws.stats.closeCodes[1002] ?? 0) >= 3);
});

/** A TCP proxy whose connections the test can cut (the door sees its socket reset). */
async function cuttableProxy(port: number): Promise<{ url: string; cut(): void; close(): Promise<void> }> {
  const pairs = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    for (const s of [client, upstream]) {
      s.on('error', () => undefined);
      pairs.add(s);
      s.once('close', () => pairs.delete(s));
    }
    client.pipe(upstream).pipe(client);
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `tcp://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    cut: () => {
      for (const s of pairs) s.destroy();
    },
    close: () =>
      new Promise((r) => {
        for (const s of pairs) s.destroy();
        server.close(() => r());
      }),
  };
}

test('reconnect: a fan-out subscriber cut twice resumes after the last offset it saw, no gap, no duplicate', async () => {
  const proxy = await cuttableProxy(tcp.port);
  const sub = await connectPubsub({ url: proxy.url, reconnect: { baseMs: 20, maxMs: 100, retries: 50 } });
  const pub = await connectPubsub({ url: tcp.url });
  try {
    const offsets: number[] = [];
    const N = 300;
    const done = new Promise<void>((resolve) => {
      void sub.subscribe('resume.t', {
        ack: 'none',
        onMessage: (m) => {
          offsets.push(m.offset);
          if (offsets.length === N) resolve();
        },
      });
    });
    await sub.ping();
    for (let i = 0; i < N; i++) {
      await pub.publish('resume.t', `m${i}`, { acks: 1 });
      if (i === 100 || i === 200) proxy.cut();
    }
    await done;
    assert.deepEqual(offsets, [...Array(N).keys()]);
    assert.ok(sub.reconnects >= 2, `${sub.reconnects} reconnects`);
  } finally {
    await sub.close();
    await pub.close();
    await proxy.close();
  }
});

test('a publisher whose publishes stay pending past maxPendingPublishes is not read from (backpressure), then resumes', async () => {
  const door = await startPubsubTcpServer({ broker, limits: { maxPendingPublishes: 4 } });
  const c = await connectPubsub({ url: door.url });
  try {
    const acks = await Promise.all(Array.from({ length: 200 }, (_, i) => c.publish('bp.t', `m${i}`, { acks: 'all' })));
    assert.equal(acks.length, 200);
    assert.deepEqual(acks.map((a) => a!.offset), [...Array(200).keys()]);
    assert.ok(door.stats.readPauses >= 1, `${door.stats.readPauses} pauses`);
  } finally {
    await c.close();
    await door.close();
  }
});
