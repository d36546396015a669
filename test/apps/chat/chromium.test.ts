import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { startChatServer, type RunningChatServer } from '../../../apps/chat/server/index.ts';
import { hashPassword } from '../../../pubsub/broker/auth.ts';
import { getTlsMaterial } from '../../../core/tls/index.ts';
import { chromiumTrusting, launchChromium } from '../../helpers/chromium.ts';
import { requirePeer } from '../../helpers/peers.ts';

let browser: Browser | undefined;
let server: RunningChatServer;

before(async () => {
  server = await startChatServer({ heartbeatMs: 0 });
  // The browser trusts the local certificate the tls: true servers use (pinned by its key; nothing else is waived).
  browser = await launchChromium([chromiumTrusting((await getTlsMaterial()).cert)]);
});
after(async () => {
  await browser?.close();
  await server.close();
});

const texts = (page: Page): Promise<string[]> => page.$$eval('#messages li .text', (els) => els.map((e) => e.textContent ?? ''));
/** The page's globals, typed here (the tests compile without the DOM library; the page's CSP forbids string eval). */
interface Win {
  document: { querySelectorAll(selector: string): Iterable<{ textContent: string | null }> };
  chat: { state: string; reconnects: number; dupes?: number; link: { close(): void } };
  pwned?: number;
}

/** Waits until the page's message list shows `text` (compared as text, in the page). */
async function shows(page: Page, text: string, timeout = 10_000): Promise<void> {
  await page.waitForFunction((want) => [...(globalThis as unknown as Win).document.querySelectorAll('#messages .text')].some((e) => e.textContent === want), text, { timeout });
}
async function say(page: Page, text: string): Promise<void> {
  await page.fill('#text', text);
  await page.click('#sendbtn');
}

test('two browsers chat both ways: presence, typing, receipts, recovery after a reset, and an XSS payload stays text', { timeout: 60_000 }, async (t) => {
  if (!requirePeer(t, 'chromium', 'chromium')) return;
  const a = await browser!.newContext();
  const b = await browser!.newContext();
  const ana = await a.newPage();
  const ben = await b.newPage();
  const errors: string[] = [];
  for (const p of [ana, ben]) p.on('pageerror', (e) => errors.push(e.message));
  await ana.goto(`${server.url}?name=ana&room=lobby`);
  await ana.waitForFunction(() => (globalThis as unknown as Win).chat.state === 'online');
  await ben.goto(`${server.url}?name=ben&room=lobby`);
  // Presence: ana's page lists ben.
  await ana.waitForFunction(() => [...(globalThis as unknown as Win).document.querySelectorAll('#online li')].some((li) => li.textContent === 'ben'));
  // Typing: ben sees ana typing (ephemeral).
  await ana.type('#text', 'hel');
  await ben.waitForFunction(() => [...(globalThis as unknown as Win).document.querySelectorAll('#typing')].some((e) => e.textContent?.includes('ana typing')));
  await say(ana, 'hello ben');
  await shows(ben, 'hello ben');
  // The wire and latency are shown next to the message.
  const wire = await ben.$eval('#messages li:last-child .wire', (e) => e.textContent);
  assert.match(wire ?? '', /^ws · \d+ ms since stored$/);
  // ben's page is visible: the receipt turns to seen on ana's.
  await ana.waitForFunction(() => [...(globalThis as unknown as Win).document.querySelectorAll('#messages .receipt')].some((e) => e.textContent === 'seen by ben'));
  await say(ben, 'hi ana');
  await shows(ana, 'hi ana');

  // XSS: the payload is shown as text, makes no element and runs nothing.
  const payload = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>';
  await say(ben, payload);
  await shows(ana, payload);
  assert.equal(await ana.evaluate(() => [...(globalThis as unknown as Win).document.querySelectorAll('#messages img, #messages script')].length), 0);
  assert.equal(await ana.evaluate(() => (globalThis as unknown as Win).pwned), undefined);

  // Recovery: ben's socket is dropped; what ana says meanwhile arrives once each, in order.
  await ben.evaluate(() => (globalThis as unknown as Win).chat.link.close());
  for (let i = 0; i < 5; i++) await say(ana, `while away ${i}`);
  await shows(ben, 'while away 4', 15_000);
  const seen = await texts(ben);
  assert.deepEqual(seen.slice(-5), [0, 1, 2, 3, 4].map((i) => `while away ${i}`));
  assert.equal(new Set(seen).size, seen.length, 'no message twice');
  assert.equal(await ben.evaluate(() => (globalThis as unknown as Win).chat.reconnects >= 1 && !(globalThis as unknown as Win).chat.dupes), true);
  assert.deepEqual(errors, []);
  await a.close();
  await b.close();
});

test('a WebSocket, an SSE + POST and a long-polling page chat in one room; each message says its transport', { timeout: 60_000 }, async (t) => {
  if (!requirePeer(t, 'chromium', 'chromium')) return;
  const pages: Record<string, Page> = {};
  const contexts = [];
  for (const [name, transport] of [['cat', 'ws'], ['dan', 'sse'], ['eli', 'poll']] as const) {
    const c = await browser!.newContext();
    contexts.push(c);
    const p = await c.newPage();
    await p.goto(`${server.url}?name=${name}&room=mixed&transport=${transport}`);
    await p.waitForFunction(() => (globalThis as unknown as Win).chat.state === 'online');
    pages[name] = p;
  }
  await pages.cat!.waitForFunction(() => [...(globalThis as unknown as Win).document.querySelectorAll('#online li')].length === 3);
  for (const [from, transport] of [['cat', 'ws'], ['dan', 'sse'], ['eli', 'poll']] as const) {
    await say(pages[from]!, `from ${transport}`);
    for (const [to, p] of Object.entries(pages)) {
      await shows(p, `from ${transport}`);
      if (to === from) continue;
      const wire = await p.$$eval('#messages li', (els, text) => els.find((li) => li.querySelector('.text')?.textContent === text)?.querySelector('.wire')?.textContent ?? '', `from ${transport}`);
      const own = to === 'cat' ? 'ws' : to === 'dan' ? 'sse' : 'poll';
      assert.match(wire, new RegExp(`^${own} · \\d+ ms since stored$`), `${to} got ${from}'s message over ${own}`);
    }
  }
  for (const c of contexts) await c.close();
});

test('the sign-in form over https (no allowInsecureAuth): a wrong password or token is a clear error and the form opens again; the right ones sign in; on plain http the fields are off', { timeout: 60_000 }, async (t) => {
  if (!requirePeer(t, 'chromium', 'chromium')) return;
  const TOKEN = 'tok-page-5d1c7a90e2';
  const users = [{ name: 'ana', passwordHash: await hashPassword('right one', { N: 1024 }) }, { name: 'bot', token: TOKEN }];
  const [withAuth, strict] = await Promise.all([startChatServer({ heartbeatMs: 0, users, tls: true }), startChatServer({ heartbeatMs: 0, users })]);
  const ctx = await browser!.newContext();
  try {
    const page = await ctx.newPage();
    page.on('pageerror', (e) => assert.fail(`page: ${e.message}`));
    assert.match(withAuth.url, /^https:/);
    await page.goto(withAuth.url);
    await page.waitForSelector('#password:not([hidden])');
    assert.equal(await page.isEnabled('#password'), true, 'the password field is on over https');
    const refused = async (): Promise<void> => {
      await page.waitForFunction(() => /WL_ERR_CHAT_AUTH: bad credentials/.test((globalThis as unknown as { document: { getElementById(id: string): { textContent: string } } }).document.getElementById('errors').textContent));
      // The refusal's text arrives before the server closes the connection, and the page says 'signed out' on the close.
      await page.waitForFunction(() => (globalThis as unknown as Win).chat.state === 'signed out');
      assert.equal(await page.isEnabled('#name'), true, 'the form is open again');
    };
    const login = async (password: string): Promise<void> => {
      await page.fill('#name', 'ana');
      await page.fill('#password', password);
      await page.click('#login button');
    };
    await login('wrong');
    await refused();
    await login('right one');
    await page.waitForFunction(() => (globalThis as unknown as Win).chat.state === 'online');
    assert.equal(await page.textContent('#whoami'), 'ana (signed in with a password)');
    // The password is not kept on the page's API object.
    assert.ok(!JSON.stringify(await page.evaluate(() => Object.keys((globalThis as unknown as Win).chat))).includes('right one'));
    // A token, no name typed (the token names its user): a wrong one refused, the right one signs in as its user.
    await page.goto(withAuth.url);
    await page.waitForSelector('#token:not([hidden])');
    await page.fill('#token', 'not-the-token');
    await page.click('#login button');
    await refused();
    await page.fill('#token', TOKEN);
    await page.click('#login button');
    await page.waitForFunction(() => (globalThis as unknown as Win).chat.state === 'online');
    assert.equal(await page.textContent('#whoami'), 'bot (signed in with a token)');
    // The fallbacks over https too: EventSource + POST with the token.
    await page.goto(`${withAuth.url}?transport=sse`);
    await page.waitForSelector('#token:not([hidden])');
    await page.fill('#token', TOKEN);
    await page.click('#login button');
    await page.waitForFunction(() => (globalThis as unknown as Win).chat.state === 'online');
    assert.equal(await page.textContent('#whoami'), 'bot (signed in with a token)');
    assert.equal(await page.inputValue('#transport'), 'sse');
    await page.goto(strict.url);
    await page.waitForSelector('#password:not([hidden])');
    assert.equal(await page.isDisabled('#password'), true, 'no password field over plain http when the server refuses it');
    assert.equal(await page.isDisabled('#token'), true, 'no token field either');
  } finally {
    await ctx.close();
    await Promise.all([withAuth.close(), strict.close()]);
  }
});
