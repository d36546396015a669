import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { connectSignaling } from '../../clients/signaling.ts';
import { createWebRtcPeer } from '../../clients/webrtc.ts';
import { startHttpServer, type RunningHttpServer } from '../../servers/http/index.ts';
import { registerWebRtcPage, startSignalingServer, type RunningSignalingServer } from '../../servers/webrtc/index.ts';
import { launchChromiumForWebRtc } from '../helpers/chromium.ts';
import { hasCommand, requirePeer } from '../helpers/peers.ts';

/** `window.wl` of the page (servers/webrtc/page.ts), as the evaluated functions see it. */
interface PageApi {
  wl: { id?: string; received: Array<{ label: string; binary: boolean; data: unknown }>; opened: string[]; send(label: string, data: unknown): void };
}

let http: RunningHttpServer;
let signal: RunningSignalingServer;
let chromium: Awaited<ReturnType<typeof launchChromiumForWebRtc>> | undefined;
let browser: BrowserContext | undefined;

before(async () => {
  http = await startHttpServer({ rateLimitBurst: 0, routes: [registerWebRtcPage] });
  signal = await startSignalingServer();
  if (!hasCommand('chromium')) return;
  chromium = await launchChromiumForWebRtc();
  browser = chromium.context;
});
after(async () => {
  await chromium?.close();
  await http.close();
  await signal.close();
});

/** The peer page, joined to `room`. */
async function openPage(room: string): Promise<Page> {
  const page = await browser!.newPage();
  await page.goto(`${http.url}/webrtc?signal=${encodeURIComponent(signal.signalUrl)}&room=${room}`);
  await page.waitForFunction(() => (globalThis as unknown as PageApi).wl.id !== undefined, undefined, { timeout: 10_000 });
  return page;
}

test('the peer page is served by the HTTP server', async () => {
  const res = await fetch(`${http.url}/webrtc`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/html/);
  assert.match(await res.text(), /new RTCPeerConnection/);
});

test('Chromium offers, werift answers: chat (reliable) and unreliable channels, text and binary both ways', async (t) => {
  if (!requirePeer(t, 'chromium', 'chromium') || !browser) return;
  const sig = await connectSignaling({ url: signal.signalUrl, room: 'chromium-offers' });
  const peer = createWebRtcPeer();
  try {
    const answered = peer.answer(sig);
    const page = await openPage('chromium-offers');
    await answered;
    const [chat, fast] = await Promise.all([peer.channel('chat'), peer.channel('unreliable')]);
    // Chromium's DCEP OPEN says unordered, maxRetransmits 0: werift reads it.
    assert.equal(fast.ordered, false);
    assert.equal(fast.raw.maxRetransmits, 0);
    await page.evaluate(() => (globalThis as unknown as PageApi).wl.send('chat', 'hello from chromium'));
    assert.equal((await chat.next()).data, 'hello from chromium');
    await page.evaluate(() => (globalThis as unknown as PageApi).wl.send('chat', [9, 8, 7]));
    const bin = await chat.next();
    assert.equal(bin.binary, true);
    assert.deepEqual([...(bin.data as Buffer)], [9, 8, 7]);
    chat.send('hello from werift');
    fast.send(Buffer.from([1, 2, 3]));
    await page.waitForFunction(() => (globalThis as unknown as PageApi).wl.received.length >= 2, undefined, { timeout: 5000 });
    const got = await page.evaluate(() => (globalThis as unknown as PageApi).wl.received);
    assert.deepEqual(
      new Set(got.map((m) => JSON.stringify(m))),
      new Set([JSON.stringify({ label: 'chat', binary: false, data: 'hello from werift' }), JSON.stringify({ label: 'unreliable', binary: true, data: [1, 2, 3] })]),
    );
    const tl = Object.fromEntries(peer.timeline().map((s) => [s.step, Math.round(s.ms)]));
    t.diagnostic(`werift answering Chromium: ICE ${tl['ice-connected']} ms, DTLS ${tl['dtls-connected']} ms, channel ${tl['channel-open']} ms`);
    await page.close();
  } finally {
    await peer.close();
    await sig.close();
  }
});

test('werift offers, Chromium answers: an echo channel both ways; the signaling format is what the page speaks', async (t) => {
  if (!requirePeer(t, 'chromium', 'chromium') || !browser) return;
  const page = await openPage('werift-offers');
  const sig = await connectSignaling({ url: signal.signalUrl, room: 'werift-offers' });
  const peer = createWebRtcPeer();
  try {
    const pageId = String(await page.evaluate(() => (globalThis as unknown as PageApi).wl.id));
    assert.deepEqual(sig.peers, [pageId]);
    const echo = peer.createChannel('echo');
    const fast = peer.createChannel('echo-fast', { ordered: false, maxPacketLifeTime: 100 });
    await peer.call(sig, pageId);
    await Promise.all([peer.channel('echo'), peer.channel('echo-fast')]);
    echo.send('ping from werift');
    assert.equal((await echo.next()).data, 'ping from werift');
    echo.send(Buffer.alloc(1000, 5));
    assert.deepEqual((await echo.next()).data, Buffer.alloc(1000, 5));
    fast.send('fast ping');
    assert.equal((await fast.next()).data, 'fast ping');
    const opened = await page.evaluate(() => (globalThis as unknown as PageApi).wl.opened);
    assert.deepEqual(new Set(opened), new Set(['echo', 'echo-fast']));
    const tl = Object.fromEntries(peer.timeline().map((s) => [s.step, Math.round(s.ms)]));
    t.diagnostic(`werift offering to Chromium: ICE ${tl['ice-connected']} ms, DTLS ${tl['dtls-connected']} ms, channel ${tl['channel-open']} ms`);
    await page.close();
  } finally {
    await peer.close();
    await sig.close();
  }
});
