import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { connectWs } from '../../clients/ws.ts';
import { createTracer, MemorySink } from '../../core/trace/index.ts';
import { acceptFor, FrameObserver, startWsServer, type FrameHeader, type RunningWsServer } from '../../servers/ws/index.ts';

const sink = new MemorySink();
let server: RunningWsServer;

before(async () => {
  server = await startWsServer({ tracer: createTracer([sink]), maxPayload: 1000, heartbeatMs: 200 });
});
after(() => server.close());

test("Sec-WebSocket-Accept is RFC 6455's example value, and the client checks the server's", async () => {
  assert.equal(acceptFor('dGhlIHNhbXBsZSBub25jZQ=='), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  const c = await connectWs({ url: `${server.url}/echo`, tracer: createTracer([sink]) });
  assert.ok(c.handshake.acceptMatches);
  await c.send('hi');
  assert.equal((await c.next()).data.toString(), 'hi');
  await c.close();
  assert.ok(sink.events.some((e) => e.kind === 'handshake' && e.meta?.acceptMatches === true));
  assert.ok(sink.events.some((e) => e.kind === 'frame' && e.meta?.opcode === 1 && e.meta?.masked === true));
});

test('a room broadcasts to the others, not back to the sender', async () => {
  const [a, b, c] = await Promise.all([1, 2, 3].map(() => connectWs({ url: `${server.url}/room/lobby` })));
  await a!.send('from a');
  assert.equal((await b!.next()).data.toString(), 'from a');
  assert.equal((await c!.next()).data.toString(), 'from a');
  await assert.rejects(a!.next(150));
  await Promise.all([a!, b!, c!].map((x) => x.close()));
});

test('a message over maxPayload closes with 1009', async () => {
  const c = await connectWs({ url: `${server.url}/echo` });
  await c.send(Buffer.alloc(2000));
  assert.equal((await c.closed).code, 1009);
});

async function rawUpgrade(port: number, path = '/echo'): Promise<net.Socket> {
  const s = net.connect(port, '127.0.0.1');
  await new Promise((r) => s.once('connect', r));
  s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  await new Promise<void>((resolve) => {
    let t = '';
    const on = (d: Buffer): void => {
      t += d.toString('latin1');
      if (t.includes('\r\n\r\n')) {
        s.off('data', on);
        resolve();
      }
    };
    s.on('data', on);
  });
  return s;
}

async function closeCodeAfter(bytes: Buffer, port = server.port, path = '/echo'): Promise<number | undefined> {
  const s = await rawUpgrade(port, path);
  const frames: FrameHeader[] = [];
  const obs = new FrameObserver((f) => frames.push(f));
  s.on('data', (d: Buffer) => obs.push(d));
  s.write(bytes);
  await new Promise((r) => s.once('close', r));
  return frames.find((f) => f.opcode === 8)?.closeCode;
}

test('invalid frames close with 1002: an unmasked client frame, a reserved opcode, RSV bits without an extension', async () => {
  assert.equal(await closeCodeAfter(Buffer.from([0x81, 0x02, 0x68, 0x69])), 1002);
  assert.equal(await closeCodeAfter(Buffer.from([0x83, 0x80, 0, 0, 0, 0])), 1002);
  assert.equal(await closeCodeAfter(Buffer.from([0xc1, 0x80, 0, 0, 0, 0])), 1002);
  // and the server keeps serving
  const c = await connectWs({ url: `${server.url}/echo` });
  await c.send('still here');
  assert.equal((await c.next()).data.toString(), 'still here');
  await c.close();
  assert.ok((server.stats.closeCodes[1002] ?? 0) >= 3);
});

test('a bad handshake is refused with an HTTP status, and a plain request gets 426', async () => {
  const s = net.connect(server.port, '127.0.0.1');
  s.write('GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n');
  const text = await new Promise<string>((r) => s.once('data', (d: Buffer) => r(d.toString())));
  s.destroy();
  assert.match(text, /^HTTP\/1\.1 400/);
  const res = await fetch(`http://127.0.0.1:${server.port}/`);
  assert.equal(res.status, 426);
  await assert.rejects(connectWs({ url: `${server.url}/nowhere` }));
});

test('the heartbeat drops a peer that stops answering pings', async () => {
  const s = await rawUpgrade(server.port);
  const before = server.stats.deadPeers;
  s.on('data', () => {}); // reads the pings, never answers them
  await new Promise((r) => s.once('close', r));
  assert.equal(server.stats.deadPeers, before + 1);
});

test('permessage-deflate is negotiated when both sides want it; frames carry RSV1', async () => {
  const z = await startWsServer({ perMessageDeflate: true });
  try {
    const c = await connectWs({ url: `${z.url}/echo`, perMessageDeflate: true, tracer: createTracer([new MemorySink()]) });
    assert.match(c.handshake.extensions, /permessage-deflate/);
    await c.send('a'.repeat(500));
    assert.equal((await c.next()).data.toString(), 'a'.repeat(500));
    assert.ok(c.frames.some((f) => f.rsv1 && f.length < 100));
    await c.close();
  } finally {
    await z.close();
  }
});

test('the client reconnects with backoff after an unexpected close', async () => {
  const c = await connectWs({ url: `${server.url}/echo`, reconnect: { retries: 3, baseMs: 20 } });
  c.ws.terminate();
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(c.reconnects, 1);
  await c.send('again');
  assert.equal((await c.next()).data.toString(), 'again');
  await c.close();
});

test('the frame observer reads headers split at every byte boundary', () => {
  const frame = Buffer.concat([Buffer.from([0x82, 0x7e, 0x01, 0x00]), Buffer.alloc(256), Buffer.from([0x88, 0x05, 0x03, 0xe8, 0x62, 0x79, 0x65])]);
  for (let cut = 1; cut < frame.length; cut++) {
    const seen: FrameHeader[] = [];
    const o = new FrameObserver((f) => seen.push(f));
    o.push(frame.subarray(0, cut));
    o.push(frame.subarray(cut));
    assert.deepEqual(seen.map((f) => [f.opcode, f.length, f.closeCode]), [[2, 256, undefined], [8, 5, 1000]], `cut at ${cut}`);
    assert.equal(seen[1]!.closeReason, 'bye');
  }
});

test('a path added through the public API (function or { accept, maxPayload }) survives protocol violations; the per-path maxPayload is checked by ws (1009)', async () => {
  const userSink = new MemorySink();
  // The user's handler attaches no 'error' listener: a bad frame must not end the process.
  const echo = (ws: import('ws').WebSocket): void => {
    ws.on('message', (d, bin) => ws.send(d, { binary: bin }));
  };
  const throwing = (): void => {
    throw new Error('handler bug');
  };
  const rejecting = async (): Promise<void> => {
    await new Promise((r) => setTimeout(r, 10));
    throw new Error('async handler bug');
  };
  const u = await startWsServer({ tracer: createTracer([userSink]), paths: { '/mine': echo, '/small': { accept: echo, maxPayload: 100 }, '/bug': throwing, '/async-bug': rejecting } });
  try {
    assert.equal(await closeCodeAfter(Buffer.from([0x81, 0x02, 0x68, 0x69]), u.port, '/mine'), 1002);
    assert.equal(await closeCodeAfter(Buffer.from([0x81, 0x82, 0, 0, 0, 0, 0xff, 0xfe]), u.port, '/mine'), 1007);
    // a 2^63 length on a path with a 100-byte limit
    assert.equal(await closeCodeAfter(Buffer.from([0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]), u.port, '/small'), 1009);
    const small = await connectWs({ url: `${u.url}/small` });
    await small.send(Buffer.alloc(101));
    assert.equal((await small.closed).code, 1009);
    const bug = await connectWs({ url: `${u.url}/bug` });
    assert.equal((await bug.closed).code, 1011);
    const asyncBug = await connectWs({ url: `${u.url}/async-bug` });
    assert.equal((await asyncBug.closed).code, 1011);
    const c = await connectWs({ url: `${u.url}/mine` });
    await c.send(Buffer.alloc(5000, 1));
    assert.equal((await c.next()).data.length, 5000);
    await c.close();
    assert.ok(userSink.events.some((e) => e.kind === 'error' && e.meta?.code === 'WS_ERR_EXPECTED_MASK'));
    assert.equal(u.stats.closeCodes[1009], 2);
  } finally {
    await u.close();
  }
});

test('a bad paths option throws a TypeError naming it', async () => {
  await assert.rejects(startWsServer({ paths: { '/x': { accept: 'no' } as never } }), (e: Error & { code?: string; option?: string }) => e instanceof TypeError && e.code === 'WL_ERR_INVALID_OPTION' && e.option === "paths['/x']");
});

test('client maxQueued: one unread message past the limit closes with 1008 and reads end in WL_ERR_QUEUE_FULL', async () => {
  await assert.rejects(connectWs({ url: `${server.url}/echo`, maxQueued: 0 }), { code: 'WL_ERR_INVALID_OPTION' });
  const c = await connectWs({ url: `${server.url}/echo`, maxQueued: 3, reconnect: true });
  for (let i = 0; i < 5; i++) await c.send(`m${i}`);
  const info = await c.closed;
  assert.equal(info.code, 1008);
  assert.equal(c.reconnects, 0);
  const got: string[] = [];
  for (let i = 0; i < 3; i++) got.push((await c.next()).data.toString());
  assert.deepEqual(got, ['m0', 'm1', 'm2']);
  await assert.rejects(c.next(), { code: 'WL_ERR_QUEUE_FULL' });
});
