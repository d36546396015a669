import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { startHttpServer, type RunningHttpServer } from '../../servers/http/index.ts';
import { startWsServer, type RunningWsServer } from '../../servers/ws/index.ts';
import { launchChromium } from '../helpers/chromium.ts';
import { requirePeer } from '../helpers/peers.ts';


let http: RunningHttpServer;
let ws: RunningWsServer;
let browser: Browser | undefined;

before(async () => {
  http = await startHttpServer({ rateLimitBurst: 0 });
  ws = await startWsServer({ maxPayload: 1000 });
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await http.close();
  await ws.close();
});

test('Chromium as a WebSocket client: echo, then close 1009 past maxPayload', async (t) => {
  if (!requirePeer(t, 'chromium', 'chromium') || !browser) return;
  const page = await browser.newPage();
  await page.goto(`${http.url}/`);
  const result = await page.evaluate(async (url) => {
    const sock = new WebSocket(url);
    await new Promise((r, j) => {
      sock.onopen = r;
      sock.onerror = j;
    });
    const echoed = await new Promise<string>((r) => {
      sock.onmessage = (m) => r(String(m.data));
      sock.send('hello from chromium');
    });
    const closed = await new Promise<number>((r) => {
      sock.onclose = (e) => r(e.code);
      sock.send('x'.repeat(5000));
    });
    return { echoed, closed };
  }, `${ws.url}/echo`);
  assert.deepEqual(result, { echoed: 'hello from chromium', closed: 1009 });
  await page.close();
});

test('Chromium as an SSE client: EventSource gets every event with its id', async (t) => {
  if (!requirePeer(t, 'chromium', 'chromium') || !browser) return;
  const page = await browser.newPage();
  await page.goto(`${http.url}/`);
  const ids = await page.evaluate(
    () =>
      new Promise<string[]>((resolve, reject) => {
        const got: string[] = [];
        const es = new EventSource('/sse?count=5&interval=10');
        es.addEventListener('tick', (e) => {
          got.push((e as MessageEvent).lastEventId);
          if (got.length === 5) {
            es.close();
            resolve(got);
          }
        });
        setTimeout(() => reject(new Error(`only ${got.length} events`)), 5000);
      }),
  );
  assert.deepEqual(ids, ['1', '2', '3', '4', '5']);
  await page.close();
});
