import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { connectChat } from '../../../apps/chat/client.ts';
import { DmAgent } from '../../../apps/chat/dm-peer.ts';
import { startChatServer, type RunningChatServer } from '../../../apps/chat/server/index.ts';
import { CHROMIUM_WEBRTC_FLAGS } from '../../helpers/chromium.ts';
import { hasCommand, requirePeer } from '../../helpers/peers.ts';

let browser: Browser | undefined;
let server: RunningChatServer;

before(async () => {
  // One server and one browser for every test, started together. A long ICE timeout: on a loaded machine, P2P (and
  // werift, slower than Chromium) must not lose a race with the relay; the relay test's page shortens its own
  // (?ice-timeout). Retries after a fallback: 400 ms, then 800 ms, at most 2.
  // Loopback WebRTC needs --allow-loopback-in-peer-connection and real IPs in host candidates (no mDNS names).
  [server, browser] = await Promise.all([
    startChatServer({ heartbeatMs: 0, dmIceTimeoutMs: 20_000, dmRetryMs: 400, dmRetries: 2 }),
    hasCommand('chromium') ? chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_WEBRTC_FLAGS, timeout: 30_000 }) : undefined,
  ]);
});
after(async () => {
  await browser?.close();
  await server.close();
});

/** The page's globals, typed here (the tests compile without the DOM library). */
interface Win {
  document: { querySelectorAll(selector: string): Iterable<{ textContent: string | null; querySelector(s: string): { textContent: string | null } | null }> };
  chat: { state: string };
  dm: { peers: Map<string, { mode: string; reason: string; retry?: boolean }>; retries: Map<string, { n: number }>; log: string[]; relayOnly: boolean; path(name: string): string };
}

async function open(name: string, query = '', on = server): Promise<Page> {
  const page = await (await browser!.newContext()).newPage();
  page.on('pageerror', (e) => assert.fail(`${name}'s page: ${e.message}`));
  await page.goto(`${on.url}?name=${name}&room=dms${query}`);
  await page.waitForFunction(() => (globalThis as unknown as Win).chat.state === 'online');
  return page;
}
/** The DM list entry with this text: its "via" label, once it matches `via`. */
async function dmVia(page: Page, text: string, via: string): Promise<string> {
  const h = await page.waitForFunction(
    ([t, v]) => [...(globalThis as unknown as Win).document.querySelectorAll('#dmlog li')].map((li) => (li.querySelector('.dmtext')?.textContent === t ? li.querySelector('.wire')?.textContent ?? '' : '')).find((w) => new RegExp(v!).test(w)),
    [text, via] as const,
    { timeout: 15_000 },
  );
  return String(await h.jsonValue());
}

test('a DM goes peer to peer over a WebRTC data channel: the server relays only signaling, no chat bytes', { timeout: 60_000 }, async (t) => {
  if (!requirePeer(t, 'chromium', 'chromium')) return;
  const [ana, ben] = await Promise.all([open('ana'), open('ben')]);
  await ana.waitForFunction(() => [...(globalThis as unknown as Win).document.querySelectorAll('#online li')].some((li) => li.textContent === 'ben'));
  // Open the DM by clicking ben's presence entry, then wait for the channel.
  await ana.click('#online li.dm');
  await ana.waitForFunction(() => (globalThis as unknown as Win).dm.peers.get('ben')?.mode === 'p2p', undefined, { timeout: 25_000 }).catch(async (err: Error) => {
    throw new Error(`${err.message}; ana's DM log: ${JSON.stringify(await ana.evaluate(() => (globalThis as unknown as Win).dm.log))}`);
  });
  const before = server.stats;
  await ana.fill('#dmtext', 'psst ben');
  await ana.click('#dmsend');
  assert.equal(await dmVia(ben, 'psst ben', '^webrtc \\(p2p\\)$'), 'webrtc (p2p)');
  assert.match(await dmVia(ana, 'psst ben', 'round trip'), /^webrtc \(p2p\) · \d+ ms round trip$/);
  // ben answers with /dm in the main input: the same channel.
  await ben.fill('#text', '/dm ana hi ana');
  await ben.click('#sendbtn');
  assert.match(await dmVia(ben, 'hi ana', 'round trip'), /^webrtc \(p2p\) · \d+ ms round trip$/);
  await dmVia(ana, 'hi ana', '^webrtc');
  const after = server.stats;
  assert.ok(before.dm.signals >= 3, `signaling went through the server (${before.dm.signals} signals)`);
  assert.equal(after.messageBytes, before.messageBytes, 'no chat message bytes');
  assert.equal(after.dm.relayedBytes, before.dm.relayedBytes, 'no DM relayed');
  assert.equal(after.dm.relayed, 0);
  await Promise.all([ana.context().close(), ben.context().close()]);
});

test('ICE that fails for real falls back to the relay, and the page says so; it retries peer to peer (backoff, limited) and says which path is in use', { timeout: 60_000 }, async (t) => {
  if (!requirePeer(t, 'chromium', 'chromium')) return;
  // cat's page: iceTransportPolicy relay with no TURN server (no candidate at all), and a short ICE timer of its own.
  const [cat, dan] = await Promise.all([open('cat', '&ice=relay-only&ice-timeout=1500'), open('dan')]);
  await cat.waitForFunction(() => [...(globalThis as unknown as Win).document.querySelectorAll('#online li')].some((li) => li.textContent === 'dan'));
  const before = server.stats;
  await cat.fill('#text', '/dm dan over the relay');
  await cat.click('#sendbtn');
  assert.match(await dmVia(cat, 'over the relay', 'round trip'), /^relay \(ICE failed\) · \d+ ms round trip$/);
  assert.equal(await dmVia(dan, 'over the relay', '^relay'), 'relay (ICE failed)');
  // On the relay now (or already on its first retry, 400 ms later, which still relays).
  assert.match(await cat.evaluate(() => (globalThis as unknown as Win).dm.path('dan')), /^relay \(ICE failed\)/);
  const after = server.stats;
  assert.equal(after.dm.relayed - before.dm.relayed, 1);
  assert.equal(after.dm.relayedBytes - before.dm.relayedBytes, Buffer.byteLength('over the relay'));
  // Nothing was stored: the room's log holds no DM.
  assert.equal(after.messages - before.messages, 0);

  // The first retry (after 400 ms) fails the same way (still relay-only); the page says so and keeps relaying.
  await cat.waitForFunction(() => /^relay \(ICE failed\) · 1 p2p retry · p2p retry in \d s$/.test((globalThis as unknown as Win).dm.path('dan')), undefined, { timeout: 15_000 }).catch(async (err: Error) => {
    throw new Error(`${err.message}; cat's path: ${await cat.evaluate(() => (globalThis as unknown as Win).dm.path('dan'))}; log: ${JSON.stringify(await cat.evaluate(() => (globalThis as unknown as Win).dm.log))}`);
  });
  assert.match(await cat.evaluate(() => (globalThis as unknown as Win).dm.path('dan')), /^relay \(ICE failed\) · 1 p2p retry · p2p retry in \d s$/);
  // The path comes back (the page may use host candidates again): the second retry (800 ms later) goes peer to peer.
  await cat.evaluate(() => void ((globalThis as unknown as Win).dm.relayOnly = false));
  await cat.waitForFunction(() => (globalThis as unknown as Win).dm.peers.get('dan')?.mode === 'p2p', undefined, { timeout: 25_000 });
  assert.equal(await cat.evaluate(() => (globalThis as unknown as Win).dm.path('dan')), 'webrtc (p2p) · 2 p2p retries');
  assert.match(await cat.textContent('#dmwith') ?? '', /^DM with dan · webrtc \(p2p\) · 2 p2p retries$/);
  const relayed = server.stats.dm.relayed;
  await cat.fill('#text', '/dm dan peer to peer now');
  await cat.click('#sendbtn');
  assert.match(await dmVia(cat, 'peer to peer now', 'round trip'), /^webrtc \(p2p\) · \d+ ms round trip$/);
  assert.equal(await dmVia(dan, 'peer to peer now', '^webrtc'), 'webrtc (p2p)');
  assert.equal(server.stats.dm.relayed, relayed, 'the DM after the retry did not go through the server');
  assert.equal(await dan.evaluate(() => (globalThis as unknown as Win).dm.peers.get('cat')?.mode), 'p2p');
  await Promise.all([cat.context().close(), dan.context().close()]);
});

test('a page and a terminal client (werift) DM peer to peer both ways', { timeout: 60_000 }, async (t) => {
  if (!requirePeer(t, 'chromium', 'chromium')) return;
  const joe = await connectChat({ url: server.endpoint, name: 'joe', declineDmOffers: false });
  await joe.join('dms');
  const got: string[] = [];
  const agent = new DmAgent(joe, { iceTimeoutMs: 20_000, onDm: (from, text) => got.push(`${from}: ${text}`) });
  const kim = await open('kim');
  try {
    const before = server.stats.dm.relayed;
    await kim.waitForFunction(() => [...(globalThis as unknown as Win).document.querySelectorAll('#online li')].some((li) => li.textContent === 'joe'));
    await kim.fill('#text', '/dm joe from the page');
    await kim.click('#sendbtn');
    assert.match(await dmVia(kim, 'from the page', 'round trip'), /^webrtc \(p2p\) · \d+ ms round trip$/);
    assert.deepEqual(got, ['kim: from the page']);
    // joe answers on the channel kim opened.
    const back = await agent.send('kim', 'from the terminal');
    assert.equal(back.via, 'webrtc (p2p)');
    assert.equal(await dmVia(kim, 'from the terminal', '^webrtc'), 'webrtc (p2p)');
    assert.equal(server.stats.dm.relayed, before, 'nothing relayed');
  } finally {
    await agent.close();
    joe.close();
    await kim.context().close();
  }
});
