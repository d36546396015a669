import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, test } from 'node:test';
import { openUdp } from '../../../clients/udp.ts';
import { buildDiagram, toSvg } from '../../../core/export/diagram.ts';
import { renderLabReport, renderReportIndex } from '../../../core/export/html.ts';
import { startUdpRelay } from '../../../core/impair/index.ts';
import { runLab, type LabResult } from '../../../core/lab/index.ts';
import type { TraceEvent } from '../../../core/trace/index.ts';
import { datagramSeq } from '../../../protocols/datagram.ts';
import { startUdpServer } from '../../../servers/udp/index.ts';
import { launchChromium } from '../../helpers/chromium.ts';
import { requirePeer } from '../../helpers/peers.ts';

let dir: string;
let result: LabResult;
let events: TraceEvent[] = [];

/** A small real lab: 100 numbered datagrams through a relay dropping 10 %; round trips as samples, loss as a series. */
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wirelab-report-'));
  result = await runLab({
    id: 'report-fixture',
    title: 'UDP through a lossy relay <for the report>',
    concept: 'Datagrams the relay drops never come back.',
    protocols: ['udp'],
    async run(ctx) {
      const rec = ctx.recorder();
      const server = await ctx.start(startUdpServer({ tracer: rec.tracer }));
      const relay = await ctx.start(startUdpRelay({ upstreamPort: server.port, upstream: { loss: 0.1 }, seed: 3, sequenceOf: datagramSeq, tracer: rec.tracer }));
      const client = await openUdp({ port: relay.port, tracer: rec.tracer });
      ctx.defer(() => client.close());
      const rtts: number[] = [];
      let answered = 0;
      for (let i = 0; i < 100; i++) {
        try {
          rtts.push((await client.echo(`n${i}`, 100)).rttMs);
          answered++;
        } catch {
          // Dropped by the relay: no echo within 100 ms.
        }
      }
      const lost = relay.records.filter((r) => r.stream === 'upstream' && r.fate === 'lost').length;
      ctx.samples('echo round trip', 'ms', { UDP: rtts });
      const twentieths = Array.from({ length: 10 }, (_, i) => relay.records.filter((r) => r.stream === 'upstream').slice(i * 10, i * 10 + 10).filter((r) => r.fate === 'lost').length * 10);
      ctx.series('dropped over the run', 'datagrams sent', Array.from({ length: 10 }, (_, i) => (i + 1) * 10), 'dropped (%)', { 'relay at 10 %': twentieths });
      ctx.table('what came back', ['sent', 'answered', 'relay dropped'], [[100, answered, lost]]);
      ctx.claim('every datagram the relay did not drop was answered', answered === 100 - lost, `${answered} answered, ${lost} dropped`);
      events = [...rec.events.events];
    },
  });
});
after(() => rm(dir, { recursive: true, force: true }));

test('Chromium opens the report from file:// with no network request; the plots and the diagram render', async (t) => {
  if (!requirePeer(t, 'chromium', 'chromium')) return;
  assert.equal(result.ok, true, result.error);
  const model = buildDiagram(events);
  const file = join(dir, 'report.html');
  await writeFile(file, renderLabReport(result, { diagramSvg: toSvg(model, 'fixture'), links: [{ label: 'HAR', href: 'x.har' }] }));
  const browser = await launchChromium();
  assert.ok(browser);
  try {
    const page = await browser.newPage();
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    const url = pathToFileURL(file).href;
    await page.goto(url);
    // Page code as strings: this project's TypeScript has no DOM types.
    await page.waitForFunction('Array.isArray(window.wirelabCharts)', undefined, { timeout: 10_000 });
    assert.deepEqual(requests.filter((u) => u !== url), [], 'the report made a request');
    const drawn = (await page.evaluate('window.wirelabCharts')) as Array<{ title: string; points: number }>;
    // samples: a histogram and a CDF; series: one chart.
    assert.deepEqual(drawn.map((c) => c.title), ['echo round trip: histogram', 'echo round trip: CDF', 'dropped over the run']);
    for (const c of drawn) assert.ok(c.points > 0, `${c.title} has data`);
    // uPlot draws the series on a canvas: count pixels that are not blank in each chart's canvas.
    const inked = (await page.evaluate(`[...document.querySelectorAll('.wl-chart canvas')].map((canvas) => {
      const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      let n = 0;
      for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n++;
      return n;
    })`)) as number[];
    assert.equal(inked.length, 3);
    for (const n of inked) assert.ok(n > 500, `a chart canvas has ${n} inked pixels`);
    assert.equal(await page.locator('svg.wirelab-sequence g.arrow').count(), model.arrows.length);
    assert.ok(model.arrows.some((a) => a.lost), 'the diagram shows a lost datagram');
    assert.equal(await page.locator('svg.wirelab-sequence g.arrow.lost').count(), model.arrows.filter((a) => a.lost).length);
    assert.equal(await page.locator('ul.claims li.held').count(), 1);
    assert.match(await page.title(), /report-fixture/);
    assert.equal(await page.locator('h1').textContent(), 'report-fixture: UDP through a lossy relay <for the report>');
  } finally {
    await browser.close();
  }
});

test('the labs index links each lab page and says how many failed', () => {
  const failed: LabResult = { ...result, id: 'other <lab>', ok: false, claims: { held: 0, total: 1 } };
  const page = renderReportIndex([{ result, href: 'report-fixture.html' }, { result: failed, href: 'other.html' }]);
  assert.match(page, /<a href="report-fixture\.html">report-fixture<\/a>/);
  assert.match(page, /<a href="other\.html">other &lt;lab&gt;<\/a>/);
  assert.match(page, /1 failed/);
  assert.doesNotMatch(page, /<script/, 'the index has no plots, so no script');
});
