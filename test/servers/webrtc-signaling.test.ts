import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connectSignaling, type SignalingClient } from '../../clients/signaling.ts';
import { connectWs, type WsClient } from '../../clients/ws.ts';
import { ErrorCodes } from '../../core/errors.ts';
import { createTracer, MemorySink } from '../../core/trace/index.ts';
import { createSignaling, startSignalingServer, type RunningSignalingServer } from '../../servers/webrtc/index.ts';
import { startWsServer } from '../../servers/ws/index.ts';

const sink = new MemorySink();
let server: RunningSignalingServer;

before(async () => {
  server = await startSignalingServer({ tracer: createTracer([sink]), signaling: { maxMessageBytes: 1024, maxPeersPerRoom: 2, maxRooms: 3, maxErrors: 6 } });
});
after(() => server.close());

/** A raw WebSocket on /signal: the welcome is read, so the next message is the answer to what the test sends. */
async function raw(): Promise<{ ws: WsClient; ask(text: string | Buffer): Promise<Record<string, unknown>> }> {
  const ws = await connectWs({ url: server.signalUrl });
  const welcome = JSON.parse((await ws.next()).data.toString());
  assert.equal(welcome.type, 'welcome');
  return {
    ws,
    ask: async (text) => {
      await ws.send(text);
      return JSON.parse((await ws.next()).data.toString()) as Record<string, unknown>;
    },
  };
}

test('join, peer-joined, offer / answer / candidate relayed with from, to and session; peer-left', async () => {
  const a = await connectSignaling({ url: server.signalUrl, room: 'relay' });
  const b = await connectSignaling({ url: server.signalUrl, room: 'relay' });
  assert.deepEqual(a.peers, []);
  assert.deepEqual(b.peers, [a.id]);
  assert.notEqual(a.id, b.id);
  const offer = b.waitFor('offer');
  a.send({ type: 'offer', to: b.id, session: 's1', sdp: 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n' });
  assert.deepEqual(await offer, { type: 'offer', from: a.id, to: b.id, session: 's1', sdp: 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n' });
  const cand = a.waitFor('candidate');
  b.send({ type: 'candidate', to: a.id, session: 's1', candidate: { candidate: 'candidate:1 1 udp 1 127.0.0.1 9 typ host', sdpMid: '0', sdpMLineIndex: 0 } });
  assert.equal(((await cand).candidate as { candidate: string }).candidate, 'candidate:1 1 udp 1 127.0.0.1 9 typ host');
  const end = a.waitFor('candidate');
  b.send({ type: 'candidate', to: a.id, session: 's1', candidate: null });
  assert.equal((await end).candidate, null);
  const left = a.waitFor('peer-left');
  await b.close();
  assert.equal((await left).peer, b.id);
  await a.close();
  assert.ok(sink.events.some((e) => e.proto === 'webrtc' && e.kind === 'signal' && e.summary.includes('offer')));
});

test('bad input gets an error message with a code, and the connection keeps serving', async () => {
  const c = await raw();
  assert.equal((await c.ask('{not json')).code, 'bad-json');
  assert.equal((await c.ask('[1,2]')).code, 'bad-message');
  assert.equal((await c.ask(Buffer.from('{"type":"join"}'))).code, 'bad-message', 'binary frame');
  assert.equal((await c.ask(JSON.stringify({ type: 'dance' }))).code, 'unknown-type');
  assert.equal((await c.ask(JSON.stringify({ type: 'offer', to: 'x', session: 's', sdp: 'v=0' }))).code, 'not-joined');
  // still serving: a valid join works after four errors
  const joined = await c.ask(JSON.stringify({ type: 'join', room: 'bad-input' }));
  assert.equal(joined.type, 'joined');
  await c.ws.close();
  assert.ok(sink.events.some((e) => e.kind === 'signal-error' && e.summary.includes('bad-json')));
});

test('malformed relays: bad room name, missing session, no SDP, unknown peer, already joined', async () => {
  const c = await raw();
  assert.equal((await c.ask(JSON.stringify({ type: 'join', room: '../etc' }))).code, 'bad-message');
  await c.ask(JSON.stringify({ type: 'join', room: 'malformed' }));
  assert.equal((await c.ask(JSON.stringify({ type: 'join', room: 'other' }))).code, 'already-joined');
  const r1 = await c.ask(JSON.stringify({ type: 'offer', to: 'nobody', sdp: 'v=0' }));
  assert.deepEqual([r1.code, r1.ref], ['bad-message', 'offer']);
  assert.equal((await c.ask(JSON.stringify({ type: 'answer', to: 'nobody', session: 's', sdp: 'hello' }))).code, 'bad-message');
  await c.ws.close();
  const d = await raw();
  await d.ask(JSON.stringify({ type: 'join', room: 'malformed2' }));
  assert.equal((await d.ask(JSON.stringify({ type: 'candidate', to: 'nobody', session: 's', candidate: null }))).code, 'unknown-peer');
  await d.ws.close();
});

test('oversized message: close 1009 from ws (maxMessageBytes is the path maxPayload); the server keeps serving', async () => {
  const c = await raw();
  await c.ws.send(JSON.stringify({ type: 'join', room: 'x'.repeat(10), pad: 'y'.repeat(2000) }));
  assert.equal((await c.ws.closed).code, 1009);
  const d = await raw();
  assert.equal((await d.ask(JSON.stringify({ type: 'join', room: 'after-big' }))).type, 'joined');
  await d.ws.close();
});

test('mounted on a ws server with a larger limit, the handler answers too-big itself', async () => {
  const signaling = createSignaling({ maxMessageBytes: 1024 });
  const ws = await startWsServer({ paths: { '/signal': signaling.accept } });
  try {
    const c = await connectWs({ url: `${ws.url}/signal` });
    await c.next();
    await c.send(JSON.stringify({ type: 'join', room: 'r', pad: 'y'.repeat(2000) }));
    assert.equal(JSON.parse((await c.next()).data.toString()).code, 'too-big');
    await c.close();
  } finally {
    await ws.close();
  }
});

test('limits: room-full (maxPeersPerRoom), too-many-rooms (maxRooms), close 1008 after maxErrors', async () => {
  const open: SignalingClient[] = [];
  open.push(await connectSignaling({ url: server.signalUrl, room: 'full' }), await connectSignaling({ url: server.signalUrl, room: 'full' }));
  await assert.rejects(connectSignaling({ url: server.signalUrl, room: 'full' }), (e: { code: string; status: string }) => e.code === ErrorCodes.SIGNALING && e.status === 'room-full');
  open.push(await connectSignaling({ url: server.signalUrl, room: 'second' }), await connectSignaling({ url: server.signalUrl, room: 'third' }));
  await assert.rejects(connectSignaling({ url: server.signalUrl, room: 'fourth' }), (e: { status: string }) => e.status === 'too-many-rooms');
  const c = await raw();
  for (let i = 0; i < 7; i++) assert.equal((await c.ask('nope')).code, 'bad-json');
  assert.equal(JSON.parse((await c.ws.next()).data.toString()).code, 'too-many-errors');
  assert.equal((await c.ws.closed).code, 1008);
  for (const s of open) await s.close();
  assert.ok(server.signaling.stats.errors['room-full']! >= 1);
});

test('unknown room when the room list is fixed; options checked when built', async () => {
  const fixed = await startSignalingServer({ signaling: { rooms: ['lobby'] } });
  try {
    await assert.rejects(connectSignaling({ url: fixed.signalUrl, room: 'elsewhere' }), (e: { status: string }) => e.status === 'unknown-room');
    const ok = await connectSignaling({ url: fixed.signalUrl, room: 'lobby' });
    await ok.close();
  } finally {
    await fixed.close();
  }
  assert.throws(() => createSignaling({ maxMessageBytes: 0 }), (e: { code: string }) => e.code === ErrorCodes.INVALID_OPTION);
  assert.throws(() => createSignaling({ rooms: ['no spaces'] }), (e: { code: string }) => e.code === ErrorCodes.INVALID_OPTION);
});

test('the ws server keeps its own paths next to /signal', async () => {
  const echo = await connectWs({ url: `${server.url}/echo` });
  await echo.send('still here');
  assert.equal((await echo.next()).data.toString(), 'still here');
  await echo.close();
});

test('a traced ws client still gets the welcome that arrives with the 101 (clients/ws.ts frame tracing)', async () => {
  const client = new MemorySink();
  const c = await connectSignaling({ url: server.signalUrl, room: 'traced', tracer: createTracer([client]) });
  assert.ok(c.id.length > 0);
  assert.ok(client.events.some((e) => e.kind === 'frame'), 'frames are still traced');
  await c.close();
});
