import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../../helpers/chromium.ts';
import { runCli } from '../../helpers/cli.ts';
import { harErrors } from '../../helpers/har.ts';
import { requirePeer } from '../../helpers/peers.ts';
import { python, run } from '../../helpers/run.ts';
import { startUp, type UpProcess } from '../../helpers/up.ts';
import { exitCodeOf, runImpair } from '../../../bin/commands/impair.ts';

/**
 * One `wirelab up` for every case (HTTP behind an impairment proxy whose latency toxics start off, SMTP for mail):
 * the dashboard's event stream, its page in Chromium, the mail API, `wirelab impair`.
 */
const LATENCY_MS = 600;
let up: UpProcess;
let dataDir: string;
let base: string;
let dash: string;
let control: string;
let smtpPort: number;
let browser: Browser | undefined;
let listed: ReturnType<typeof runCli>;
let launched: Promise<Browser | undefined> | undefined;

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'wirelab-dash-'));
  // The browser starts while `up` does, and the one real `wirelab impair` run (a CLI start costs seconds) while the
  // first cases run: the file's time is the slowest of them, not their sum.
  launched = launchChromium();
  up = await startUp(['--port-base', '0', '--only', 'http,smtp', '--impair', `http:latency@down=${LATENCY_MS}ms,toxicity=0`], 60_000, { WIRELAB_DATA_DIR: dataDir });
  const http = up.endpoints.find((e) => e.name === 'http')!;
  base = http.url!;
  dash = String(http.dashboard);
  control = up.endpoints.find((e) => e.name === 'impair-control')!.url!;
  smtpPort = up.endpoints.find((e) => e.name === 'smtp')!.port;
  listed = runCli(['impair', 'list', '--url', control, '--json']);
  browser = await launched;
});
after(async () => {
  // Closed even when `up` failed before the launch was awaited.
  await (await launched?.catch(() => undefined))?.close();
  await up?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON answers are checked field by field
const getJson = async (url: string, init?: RequestInit): Promise<any> => {
  const r = await fetch(url, init);
  assert.ok(r.ok, `${init?.method ?? 'GET'} ${url}: ${r.status} ${await r.clone().text()}`);
  return r.json();
};
const status = (): Promise<{ tracing: boolean; watchers: number }> => getJson(`${dash}api/status`);
const curl = async (path: string): Promise<number> => {
  const r = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code} %{time_total}', `${base}${path}`]);
  const [code, seconds] = r.stdout.split(' ');
  assert.equal(code, '200', r.stderr);
  return Number(seconds) * 1000;
};
const toxicCount = async (): Promise<number> => (await getJson(`${control}/proxies/http`)).stats.toxics.latency_downstream ?? 0;

test('up prints the dashboard URL; the root page links every route and the dashboard; tracing is off while nobody watches', async () => {
  assert.equal(dash, `${base}/_wirelab/`);
  const index = await (await fetch(`${base}/`)).text();
  for (const path of ['/anything', '/status/:codes', '/bytes/:n', '/resources/:id', '/_wirelab/']) assert.ok(index.includes(`<code>${path}</code>`), path);
  assert.equal((index.match(/<form class="try"/g) ?? []).length >= 40, true);
  assert.deepEqual(await status(), { ...(await status()), tracing: false, watchers: 0 });
});

test('the event stream carries a curl request made while it is open, tracing stops when it closes, the downloads hold it', async (t) => {
  const ac = new AbortController();
  const r = await fetch(`${dash}api/events?proto=http`, { signal: ac.signal });
  assert.equal(r.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  const reader = r.body!.getReader();
  await reader.read(); // retry: line, sent at once
  assert.equal((await status()).tracing, true);
  await curl('/anything?probe=stream-1');
  let text = '';
  while (!/GET \/anything\?probe=stream-1/.test(text) || !/"kind":"done"/.test(text)) text += new TextDecoder().decode((await reader.read()).value);
  const events = text.split('\n').filter((l) => l.startsWith('data: [')).flatMap((l) => JSON.parse(l.slice(6)) as Array<{ proto: string; cid: string; kind: string; summary: string; ts: number }>);
  const request = events.find((e) => e.kind === 'request' && e.summary.includes('probe=stream-1'))!;
  assert.ok(events.every((e) => e.proto === 'http'), 'the proto filter holds');
  assert.ok(events.some((e) => e.cid === request.cid && e.kind === 'response' && e.summary.startsWith('200')));
  assert.ok(Math.abs(request.ts - Date.now()) < 60_000, 'an absolute timestamp');
  assert.ok(events.every((e) => e.kind !== 'bytes'), 'the socket taps\' raw bytes are recorded, not streamed');
  ac.abort();
  await reader.cancel().catch(() => {});
  for (let i = 0; i < 100 && (await status()).watchers > 0; i++) await new Promise((res) => setTimeout(res, 50));
  assert.deepEqual(await status(), { ...(await status()), tracing: false, watchers: 0 });

  // The download buttons: what the page recorded, as pcapng (tshark reads it, the request in it) and as HAR 1.2.
  const pcap = await fetch(`${dash}export/pcapng`);
  assert.equal(pcap.status, 200);
  assert.match(pcap.headers.get('content-disposition') ?? '', /wirelab-session\.pcapng/);
  const file = join(dataDir, 'session.pcapng');
  writeFileSync(file, Buffer.from(await pcap.arrayBuffer()));
  assert.ok(readFileSync(file).includes('GET /anything?probe=stream-1 HTTP/1.1'), 'the request\'s bytes are in the capture');
  if (requirePeer(t, 'tshark', 'tshark')) {
    const read = await run('tshark', ['-r', file, '-q', '-z', 'expert,warn', '-z', 'conv,tcp']);
    assert.equal(read.code, 0, read.stderr);
    assert.doesNotMatch(read.stdout, /Warnings|Errors|Malformed/, read.stdout);
    // curl → proxy, proxy → server: the impairment proxy's two legs.
    assert.ok((read.stdout.match(/<->/g) ?? []).length >= 2, read.stdout);
  }
  const har = await getJson(`${dash}export/har`);
  assert.deepEqual(await harErrors(har), []);
  assert.ok(har.log.entries.some((e: { request: { url: string } }) => e.request.url.includes('probe=stream-1')), 'the exchange is in the HAR');
});

test('the mail API lists, reads (headers, raw, attachment) and deletes a message sent with smtplib', async () => {
  const sent = await python(
    'import smtplib\nfrom email.message import EmailMessage\nm=EmailMessage();m["From"]="ana@localhost";m["To"]="demo@localhost";m["Subject"]="dashboard =?utf-8?q?caf=C3=A9?="\n' +
      'm.set_content("hello from smtplib");m.add_attachment(b"\\x00\\x01data",maintype="application",subtype="octet-stream",filename="blob.bin")\n' +
      `s=smtplib.SMTP("127.0.0.1",${smtpPort});s.send_message(m);s.quit()`,
  );
  assert.equal(sent.code, 0, sent.stderr);
  const list = await getJson(`${dash}api/mail/messages?user=demo&mailbox=INBOX`);
  const m = list.messages.find((x: { subject: string }) => x.subject === 'dashboard café');
  assert.ok(m, JSON.stringify(list));
  assert.equal(m.attachments, 1);
  const full = await getJson(`${dash}api/mail/message/${m.uid}`);
  assert.equal(full.text.text.trim(), 'hello from smtplib');
  assert.deepEqual(full.attachments.map((a: { filename: string; size: number }) => [a.filename, a.size]), [['blob.bin', 6]]);
  const part = Buffer.from(await (await fetch(`${dash}api/mail/message/${m.uid}/part/${full.attachments[0].partId}`)).arrayBuffer());
  assert.deepEqual(part, Buffer.from([0, 1, ...Buffer.from('data')]));
  const raw = await (await fetch(`${dash}api/mail/message/${m.uid}/raw`)).text();
  assert.match(raw, /^Received: |Subject: /m);
  assert.deepEqual((await getJson(`${dash}api/mail/message/${m.uid}/headers`)).from, ['ana@localhost']);
  assert.equal((await fetch(`${dash}api/mail/message/${m.uid}`, { method: 'DELETE' })).status, 204);
  assert.equal((await fetch(`${dash}api/mail/message/${m.uid}`)).status, 404);
  assert.equal((await fetch(`${dash}api/mail/message/x1`)).status, 400);
  assert.equal((await fetch(`${dash}api/mail/messages?user=nobody`)).status, 404);
});

test('wirelab impair lists the proxy, adds, updates and removes a toxic through the control API', async () => {
  // One real CLI run; the other actions run the same code in-process (a CLI start costs seconds on a loaded machine).
  const list = await listed;
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual(JSON.parse(list.stdout).proxies.http.toxics.map((t: { name: string; toxicity: number }) => [t.name, t.toxicity]), [['latency_downstream', 0]]);
  const cli = async (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
    const lines: string[] = [];
    try {
      await runImpair(args, { url: control, json: true }, (l) => lines.push(l));
      return { code: 0, stdout: lines.join('\n'), stderr: '' };
    } catch (err) {
      return { code: exitCodeOf(err), stdout: lines.join('\n'), stderr: (err as Error).message };
    }
  };
  const added = await cli('add', 'http', 'slow_close@up=100ms,toxicity=0');
  assert.equal(added.code, 0, added.stderr);
  assert.deepEqual(JSON.parse(added.stdout).map((t: { name: string }) => t.name), ['slow_close_upstream']);
  const again = await cli('add', 'http', 'slow_close@up=100ms');
  assert.equal(again.code, 2);
  assert.match(again.stderr, /already has slow_close_upstream/);
  const updated = JSON.parse((await cli('update', 'http', 'slow_close_upstream', 'delay=250')).stdout);
  assert.deepEqual([updated.attributes.delay, updated.toxicity], [250, 0]);
  assert.equal((await cli('remove', 'http', 'slow_close_upstream')).code, 0);
  const gone = await cli('remove', 'http', 'slow_close_upstream');
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /404/);
  assert.equal((await cli('add', 'http', 'loss=5%')).code, 2);
  assert.equal((await cli('frobnicate')).code, 2);
  assert.deepEqual((await getJson(`${control}/proxies/http`)).toxics.map((t: { name: string }) => t.name), ['latency_downstream']);
});

/** The page's globals, typed here (the tests compile without the DOM library). */
interface Win {
  dash: { connected: boolean; events: Array<{ summary: string; cid: string }> };
  document: { querySelectorAll(selector: string): Iterable<{ textContent: string | null }> };
}

test('the dashboard in Chromium shows a curl request live, draws its ladder, and a toxic switched on there delays the next request', { timeout: 60_000 }, async (t) => {
  if (!requirePeer(t, 'chromium', 'chromium')) return;
  const page = await browser!.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  try {
    await page.goto(dash);
    await page.waitForFunction(() => (globalThis as unknown as Win).dash.connected);
    // A view that fails says so in the status line (not only in the console), and clears it once it works again.
    await page.route('**/api/servers', (route) => route.fulfill({ status: 500, contentType: 'application/json', body: '{"detail":"servers view broke"}' }));
    await page.click('nav button[data-tab="servers"]');
    await page.waitForSelector('#problem:has-text("servers: servers view broke")');
    await page.unroute('**/api/servers');
    await page.click('nav button[data-tab="servers"]');
    await page.waitForFunction(() => [...(globalThis as unknown as Win).document.querySelectorAll('#problem')].every((p) => p.textContent === ''));
    await page.click('nav button[data-tab="traffic"]');
    await curl('/anything?probe=page-1');
    await page.waitForFunction(() => [...(globalThis as unknown as Win).document.querySelectorAll('#events td')].some((td) => td.textContent === 'GET /anything?probe=page-1 HTTP/1.1'));
    // The connection's ladder: click its id, an arrow each way.
    const cid = await page.evaluate(() => (globalThis as unknown as Win).dash.events.find((e) => e.summary.includes('probe=page-1'))!.cid);
    await page.click(`#events .cid >> text="${cid}"`);
    await page.waitForSelector('#ladder svg line[marker-end]', { state: 'attached' });
    assert.ok((await page.$$('#ladder svg line[marker-end]')).length >= 2);

    // Impairment tab: the toxic is off; a request through the proxy is not counted by it.
    await page.click('nav button[data-tab="impair"]');
    const box = 'input[data-toxic="http/latency_downstream"]';
    await page.waitForSelector(box);
    assert.equal(await page.isChecked(box), false);
    const before = await toxicCount();
    await curl('/anything?probe=off');
    assert.equal(await toxicCount(), before, 'off: the toxic held nothing');
    await page.click(box);
    for (let i = 0; i < 100 && (await getJson(`${control}/proxies/http`)).toxics[0].toxicity !== 1; i++) await new Promise((res) => setTimeout(res, 50));
    const ms = await curl('/anything?probe=on');
    // A hold, not a tight timing: the response cannot arrive before the proxy released it LATENCY_MS later.
    assert.ok(ms >= LATENCY_MS, `the request took ${ms} ms with a ${LATENCY_MS} ms latency toxic on`);
    assert.ok((await toxicCount()) > before, 'on: the toxic held the response');
    await page.waitForSelector(`${box}:checked`);
    await page.click(box);
    for (let i = 0; i < 100 && (await getJson(`${control}/proxies/http`)).toxics[0].toxicity !== 0; i++) await new Promise((res) => setTimeout(res, 50));
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});
