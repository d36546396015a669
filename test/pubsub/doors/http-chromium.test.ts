import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { CHROMIUM_FLAGS } from '../../helpers/chromium.ts';
import { hasCommand, requirePeer } from '../../helpers/peers.ts';
import { startDoor, type DoorUnderTest } from './http-helpers.ts';

let d: DoorUnderTest;
let browser: Browser | undefined;

before(async () => {
  d = await startDoor();
  if (!hasCommand('chromium')) return;
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_FLAGS, timeout: 30_000 });
});
after(async () => {
  await browser?.close();
  await d?.close();
});

test("Chromium's EventSource subscribes to the door, publishes with fetch, and resumes with lastEventId", async (t) => {
  if (!requirePeer(t, 'chromium', 'chromium') || !browser) return;
  const page = await browser.newPage();
  await page.goto(`${d.url}/`);
  const result = await page.evaluate(async () => {
    const post = (body: string): Promise<Response> => fetch('/topics/chat.room', { method: 'POST', body, headers: { 'content-type': 'text/plain' } });
    const collect = (url: string, n: number, publish: () => Promise<unknown>): Promise<{ ids: string[]; data: string[] }> =>
      new Promise((resolve, reject) => {
        const ids: string[] = [];
        const data: string[] = [];
        const es = new EventSource(url);
        es.onopen = () => void publish();
        es.addEventListener('message', (e) => {
          ids.push((e as MessageEvent).lastEventId);
          data.push(String((e as MessageEvent).data));
          if (ids.length === n) {
            es.close();
            resolve({ ids, data });
          }
        });
        setTimeout(() => reject(new Error(`only ${ids.length} events`)), 10_000);
      });
    const first = await collect('/topics/chat.room/events', 3, async () => {
      for (const m of ['hi', 'héllo', 'multi\nline']) await post(m);
    });
    const statuses: number[] = [];
    for (const m of ['away 1', 'away 2']) statuses.push((await post(m)).status);
    const resumed = await collect(`/topics/chat.room/events?lastEventId=${first.ids.at(-1)}`, 3, () => post('live'));
    return { first, statuses, resumed };
  });
  assert.deepEqual(result.first, { ids: ['0', '1', '2'], data: ['hi', 'héllo', 'multi\nline'] });
  assert.deepEqual(result.statuses, [201, 201]);
  assert.deepEqual(result.resumed, { ids: ['3', '4', '5'], data: ['away 1', 'away 2', 'live'] });
  await page.close();
});
