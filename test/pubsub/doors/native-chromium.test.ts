import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { connectPubsub } from '../../../clients/pubsub.ts';
import { createBroker, type Broker } from '../../../pubsub/broker/index.ts';
import { startPubsubWsServer, type RunningPubsubWsServer } from '../../../pubsub/doors/native/index.ts';
import { startHttpServer, type RunningHttpServer } from '../../../servers/http/index.ts';
import { launchChromium } from '../../helpers/chromium.ts';
import { requirePeer } from '../../helpers/peers.ts';

let broker: Broker;
let ws: RunningPubsubWsServer;
let http: RunningHttpServer;
let browser: Browser | undefined;

before(async () => {
  broker = await createBroker({});
  ws = await startPubsubWsServer({ broker });
  http = await startHttpServer({ rateLimitBurst: 0 });
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await http.close();
  await ws.close();
  await broker.close();
});

test("Chromium's WebSocket speaks the JSON encoding: hello, sub, pub, msg, ack; and gets what a TCP client publishes", async (t) => {
  if (!requirePeer(t, 'chromium', 'chromium') || !browser) return;
  const page = await browser.newPage();
  await page.goto(`${http.url}/`);
  const node = await connectPubsub({ url: ws.endpoint });
  try {
    // Plain JavaScript as a string: tsx would add helpers (__name) to a function passed to evaluate.
    const script = `(async (url) => {
      const sock = new WebSocket(url);
      const inbox = [];
      const waiters = [];
      sock.onmessage = (e) => {
        const m = JSON.parse(String(e.data));
        const w = waiters.shift();
        if (w) w(m); else inbox.push(m);
      };
      const next = () => (inbox.length ? Promise.resolve(inbox.shift()) : new Promise((r) => waiters.push(r)));
      await new Promise((r, j) => { sock.onopen = r; sock.onerror = j; });
      sock.send(JSON.stringify({ type: 'hello', version: 1, clientId: 'chromium' }));
      const welcome = await next();
      sock.send(JSON.stringify({ type: 'sub', id: 'b1', pattern: 'browser.>', ack: 'manual' }));
      const subscribed = await next();
      sock.send(JSON.stringify({ type: 'pub', id: 1, topic: 'browser.self', payload: 'from the page', acks: 1 }));
      const seen = [];
      while (seen.length < 3) {
        const m = await next();
        seen.push(m);
        if (m.type === 'msg') sock.send(JSON.stringify({ type: 'ack', deliveryId: m.deliveryId }));
        if (m.type === 'puback') globalThis.published = true;
      }
      sock.close(1000);
      return { welcome: welcome.type, subscribed: subscribed.type, seen };
    })(${JSON.stringify(ws.endpoint)})`;
    const result = page.evaluate(script) as Promise<{ welcome: string; subscribed: string; seen: Record<string, unknown>[] }>;
    // The page's own message, then one from a Node client once the page has published.
    await page.waitForFunction(() => (globalThis as { published?: boolean }).published === true, undefined, { timeout: 10_000 });
    await node.publish('browser.node', Buffer.from([0xff, 0x00]));
    const r = await result;
    assert.equal(r.welcome, 'welcome');
    assert.equal(r.subscribed, 'subscribed');
    const msgs = r.seen.filter((m) => m.type === 'msg');
    assert.deepEqual(msgs.map((m) => m.topic), ['browser.self', 'browser.node']);
    assert.equal(msgs[0]!.payload, 'from the page');
    assert.deepEqual([msgs[1]!.base64, msgs[1]!.payload], [true, Buffer.from([0xff, 0]).toString('base64')]);
  } finally {
    await node.close();
    await page.close();
  }
});
