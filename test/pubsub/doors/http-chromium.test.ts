import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../../helpers/chromium.ts';
import { requirePeer } from '../../helpers/peers.ts';
import { startDoor, type DoorUnderTest } from './http-helpers.ts';

let d: DoorUnderTest;
let browser: Browser | undefined;

before(async () => {
  d = await startDoor();
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await d?.close();
});

test("Chromium's EventSource subscribes to the door, publishes with fetch, and resumes with lastEventId", async (t) => {
  if (!requirePeer(t, 'chromium', 'chromium') || !browser) return;
  const page = await browser.newPage();
  await page.goto(`${d.url}/`);
  // A string, not a function: tsx would wrap the helpers' names in __name(), which the page does not have.
  const result = (await page.evaluate(`(async () => {
    const post = (body) => fetch('/topics/chat.room', { method: 'POST', body, headers: { 'content-type': 'text/plain' } });
    const collect = (url, n, publish) =>
      new Promise((resolve, reject) => {
        const ids = [];
        const data = [];
        const es = new EventSource(url);
        es.onopen = () => void publish();
        es.addEventListener('message', (e) => {
          ids.push(e.lastEventId);
          data.push(String(e.data));
          if (ids.length === n) {
            es.close();
            resolve({ ids, data });
          }
        });
        setTimeout(() => reject(new Error('only ' + ids.length + ' events')), 10000);
      });
    const first = await collect('/topics/chat.room/events', 3, async () => {
      for (const m of ['hi', 'h\u00e9llo', 'multi\\nline']) await post(m);
    });
    const statuses = [];
    for (const m of ['away 1', 'away 2']) statuses.push((await post(m)).status);
    const resumed = await collect('/topics/chat.room/events?lastEventId=' + first.ids.at(-1), 3, () => post('live'));
    return { first, statuses, resumed };
  })()`)) as { first: { ids: string[]; data: string[] }; statuses: number[]; resumed: { ids: string[]; data: string[] } };
  assert.deepEqual(result.first, { ids: ['0', '1', '2'], data: ['hi', 'héllo', 'multi\nline'] });
  assert.deepEqual(result.statuses, [201, 201]);
  assert.deepEqual(result.resumed, { ids: ['3', '4', '5'], data: ['away 1', 'away 2', 'live'] });
  await page.close();
});
