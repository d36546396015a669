import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connectPeerPair, type PeerPair } from '../../clients/webrtc-pair.ts';
import { createWebRtcPeer, type WebRtcPeer } from '../../clients/webrtc.ts';
import { RTCPeerConnection } from 'werift';
import { ErrorCodes } from '../../core/errors.ts';
import { startSignalingServer, type RunningSignalingServer } from '../../servers/webrtc/index.ts';

let server: RunningSignalingServer;
before(async () => {
  server = await startSignalingServer();
});
after(() => server.close());

function pair(room: string, setup: (a: WebRtcPeer) => void, options = {}): Promise<PeerPair> {
  return connectPeerPair(server.signalUrl, room, setup, options);
}

test('werift to werift: reliable ordered and unreliable unordered channels, text and binary, both ways', async () => {
  const p = await pair('both-ways', (a) => {
    a.createChannel('chat');
    a.createChannel('fast', { ordered: false, maxRetransmits: 0 });
    a.createChannel('timed', { ordered: false, maxPacketLifeTime: 50 });
  });
  try {
    for (const label of ['chat', 'fast', 'timed']) {
      const [ac, bc] = await Promise.all([p.a.channel(label), p.b.channel(label)]);
      ac.send(`hello ${label}`);
      assert.deepEqual((await bc.next()).data, `hello ${label}`);
      bc.send(Buffer.from([0, 1, 2, 255]));
      const back = await ac.next();
      assert.equal(back.binary, true);
      assert.deepEqual([...(back.data as Buffer)], [0, 1, 2, 255]);
    }
    const fast = await p.a.channel('fast');
    assert.equal(fast.ordered, false);
    assert.equal(fast.raw.maxRetransmits, 0);
    assert.equal((await p.a.channel('timed')).raw.maxPacketLifeTime, 50);
    // 200 messages in order on the reliable channel
    const chat = await p.a.channel('chat');
    const bchat = await p.b.channel('chat');
    for (let i = 0; i < 200; i++) chat.send(String(i));
    const got: string[] = [];
    for (let i = 0; i < 200; i++) got.push(String((await bchat.next()).data));
    assert.deepEqual(got, Array.from({ length: 200 }, (_, i) => String(i)));
  } finally {
    await p.close();
  }
});

test('loopback only: one 127.0.0.1 host candidate, no STUN server left, candidates queued until the offer went', async () => {
  const p = await pair('loopback', (a) => a.createChannel('chat'));
  try {
    await Promise.all([p.a.channel('chat'), p.b.channel('chat')]);
    for (const peer of [p.a, p.b]) {
      assert.ok(peer.localCandidates.length >= 1);
      for (const c of peer.localCandidates) assert.match(c, / 127\.0\.0\.1 \d+ typ host/);
      assert.deepEqual(peer.stunServers(), [undefined], 'werift falls back to stun.l.google.com unless cleared');
    }
    // werift fires the candidates inside setLocalDescription, before the offer could be sent: they were queued
    assert.ok(p.a.candidatesBeforeSend >= 1, `queued ${p.a.candidatesBeforeSend}`);
    const t = Object.fromEntries(p.a.timeline().map((s) => [s.step, s.ms]));
    for (const step of ['local-description', 'ice-connected', 'dtls-connected', 'channel-open']) assert.ok(t[step] !== undefined, step);
    assert.ok(t['ice-connected']! <= t['dtls-connected']! && t['dtls-connected']! <= t['channel-open']!, JSON.stringify(t));
  } finally {
    await p.close();
  }
});

test('maxMessageSize: a bigger message is refused with WL_ERR_WEBRTC_MESSAGE_TOO_BIG, the channel keeps working', async () => {
  const p = await pair('max-size', (a) => a.createChannel('chat'), { maxMessageSize: 1000 });
  try {
    const chat = await p.a.channel('chat');
    const bchat = await p.b.channel('chat');
    assert.throws(() => chat.send(Buffer.alloc(1001)), (e: { code: string }) => e.code === ErrorCodes.WEBRTC_MESSAGE_TOO_BIG);
    chat.send(Buffer.alloc(1000, 7));
    assert.equal(((await bchat.next()).data as Buffer).length, 1000);
    assert.throws(() => createWebRtcPeer({ maxMessageSize: 0 }), (e: { code: string }) => e.code === ErrorCodes.INVALID_OPTION);
  } finally {
    await p.close();
  }
});

test('the trap the peer works around: werift with iceServers [] still has a STUN server (stun.l.google.com)', async () => {
  const pc = new RTCPeerConnection({ iceServers: [], iceAdditionalHostAddresses: ['127.0.0.1'], iceUseIpv4: false, iceUseIpv6: false });
  try {
    pc.createDataChannel('x');
    // Read it before setLocalDescription: gathering would look the name up (traffic off loopback).
    await pc.createOffer();
    const stun = (pc as unknown as { iceTransports: Array<{ connection: { stunServer?: [string, number] } }> }).iceTransports.map((t) => t.connection.stunServer);
    assert.deepEqual(stun, [['stun.l.google.com', 19302]]);
  } finally {
    await pc.close();
  }
});

test('write() waits on werift send buffer: 4 MiB in 60,000-byte messages arrive whole and in order', async () => {
  const p = await pair('bulk', (a) => a.createChannel('bulk'));
  try {
    const [from, to] = await Promise.all([p.a.channel('bulk'), p.b.channel('bulk')]);
    let got = 0;
    let inOrder = true;
    let expect = 0;
    const total = 70;
    const done = new Promise<void>((resolve) => {
      to.onMessage = (m) => {
        const buf = m.data as Buffer;
        if (buf[0] !== expect % 256 || buf.length !== 60_000) inOrder = false;
        expect++;
        got += buf.length;
        if (expect === total) resolve();
      };
    });
    for (let i = 0; i < total; i++) await from.write(Buffer.alloc(60_000, i % 256), 256 * 1024);
    await done;
    assert.equal(got, total * 60_000);
    assert.ok(inOrder);
  } finally {
    await p.close();
  }
});

test('maxQueuedMessages: unread messages past the limit drop the oldest and are counted', async () => {
  const p = await pair('queue', (a) => a.createChannel('chat'), { maxQueuedMessages: 5 });
  try {
    const [from, to] = await Promise.all([p.a.channel('chat'), p.b.channel('chat')]);
    for (let i = 0; i < 8; i++) from.send(String(i));
    from.send('last');
    // wait until everything arrived (received counts every message, queued or dropped)
    for (let i = 0; i < 100 && to.received < 9; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(to.received, 9);
    assert.equal(to.dropped, 4);
    const kept: string[] = [];
    for (let i = 0; i < 5; i++) kept.push(String((await to.next()).data));
    assert.deepEqual(kept, ['4', '5', '6', '7', 'last']);
    assert.throws(() => createWebRtcPeer({ maxQueuedMessages: 0 }), (e: { code: string }) => e.code === ErrorCodes.INVALID_OPTION);
  } finally {
    await p.close();
  }
});

test('a reader waiting on a channel is rejected with WL_ERR_CLOSED when the channel closes, not at its timeout', async () => {
  const p = await pair('reader-closed', (a) => a.createChannel('chat'));
  try {
    const [from, to] = await Promise.all([p.a.channel('chat'), p.b.channel('chat')]);
    from.send('one');
    assert.equal((await to.next()).data, 'one');
    const started = performance.now();
    const waiting = to.next(30_000);
    from.raw.close();
    await assert.rejects(waiting, (e: { code: string }) => e.code === ErrorCodes.CLOSED);
    // Counted against the 30 s the read would otherwise have waited: closing is told well before.
    assert.ok(performance.now() - started < 15_000, `rejected after ${Math.round(performance.now() - started)} ms`);
    await assert.rejects(to.next(30_000), (e: { code: string }) => e.code === ErrorCodes.CLOSED);
  } finally {
    await p.close();
  }
});

test('hang up: bye relayed with the session id closes the other peer', async () => {
  const p = await pair('bye', (a) => a.createChannel('chat'));
  try {
    await Promise.all([p.a.channel('chat'), p.b.channel('chat')]);
    await p.a.hangUp();
    for (let i = 0; i < 100 && !p.b.hungUp; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(p.b.hungUp, true);
  } finally {
    await p.close();
  }
});
