import { connectPeerPair } from '../clients/webrtc-pair.ts';
import type { PeerChannel } from '../clients/webrtc.ts';
import { connectWs, type WsClient } from '../clients/ws.ts';
import { connectSignaling } from '../clients/signaling.ts';
import { createWebRtcPeer } from '../clients/webrtc.ts';
import { startHttpServer } from '../servers/http/index.ts';
import { registerWebRtcPage, startSignalingServer } from '../servers/webrtc/index.ts';
import { hasCommand } from '../test/helpers/peers.ts';
import { launchChromiumForWebRtc } from '../test/helpers/chromium.ts';
import { defineBench, type BenchRow } from './harness.ts';
import { median } from '../core/stats.ts';

const ROUND_TRIPS = 2000;
const SMALL = Buffer.alloc(64, 0x61);
const BULK = 16 * 1024 * 1024;
/** Under werift's default max-message-size (65,536). */
const CHUNK = 60_000;


async function rtts(once: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 200; i++) await once();
  const out: number[] = [];
  for (let i = 0; i < ROUND_TRIPS; i++) {
    const t = performance.now();
    await once();
    out.push(performance.now() - t);
  }
  return median(out);
}

async function channelThroughput(from: PeerChannel, to: PeerChannel): Promise<number> {
  let got = 0;
  const done = new Promise<void>((resolve) => {
    to.onMessage = (m) => {
      got += (m.data as Buffer).length;
      if (got >= BULK) resolve();
    };
  });
  const chunk = Buffer.alloc(CHUNK, 0x62);
  const t = performance.now();
  for (let sent = 0; sent < BULK; sent += CHUNK) await from.write(chunk);
  await done;
  return BULK / 1e6 / ((performance.now() - t) / 1000);
}

/** werift offering to the browser peer page in headless Chromium: an echo channel and a counting channel. */
async function chromiumRows(signalUrl: string): Promise<{ rtt: number; mbps: number }> {
  const http = await startHttpServer({ rateLimitBurst: 0, routes: [registerWebRtcPage] });
  const browser = await launchChromiumForWebRtc();
  const peer = createWebRtcPeer();
  try {
    const page = await browser.context.newPage();
    await page.goto(`${http.url}/webrtc?signal=${encodeURIComponent(signalUrl)}&room=chromium`);
    await page.waitForFunction(() => (globalThis as unknown as { wl: { id?: string } }).wl.id !== undefined);
    const pageId = String(await page.evaluate(() => (globalThis as unknown as { wl: { id: string } }).wl.id));
    const sig = await connectSignaling({ url: signalUrl, room: 'chromium' });
    const echo = peer.createChannel('echo');
    const count = peer.createChannel('count');
    await peer.call(sig, pageId);
    await Promise.all([peer.channel('echo'), peer.channel('count')]);
    const rtt = await rtts(() => {
      echo.send(SMALL);
      return echo.next();
    });
    const chunk = Buffer.alloc(CHUNK, 0x62);
    const t = performance.now();
    for (let sent = 0; sent < BULK; sent += CHUNK) await count.write(chunk);
    count.send('done');
    await count.next(60_000);
    const mbps = BULK / 1e6 / ((performance.now() - t) / 1000);
    await sig.close();
    return { rtt, mbps };
  } finally {
    await peer.close();
    await browser.close();
    await http.close();
  }
}

async function wsThroughput(ws: WsClient): Promise<number> {
  const chunk = Buffer.alloc(CHUNK, 0x62);
  const t = performance.now();
  for (let sent = 0; sent < BULK; sent += CHUNK) await ws.send(chunk);
  await ws.send('done');
  await ws.next(30_000);
  return BULK / 1e6 / ((performance.now() - t) / 1000);
}

export default defineBench({
  name: 'webrtc',
  title: `Data channel (werift ↔ werift, and werift → Chromium when chromium is installed) against a WebSocket (ws, direct to the server): median of ${ROUND_TRIPS} round trips of ${SMALL.length} B, and ${BULK / 1024 / 1024} MiB one way`,
  async run(): Promise<BenchRow[]> {
    const server = await startSignalingServer({ heartbeatMs: 0, maxPayload: 1024 * 1024 });
    const pair = await connectPeerPair(server.signalUrl, 'bench', (a) => {
      a.createChannel('rtt');
      a.createChannel('bulk');
    });
    const [rttA, rttB, bulkA, bulkB] = await Promise.all([pair.a.channel('rtt'), pair.b.channel('rtt'), pair.a.channel('bulk'), pair.b.channel('bulk')]);
    rttB.onMessage = (m) => rttB.send(m.data);
    const echo = await connectWs({ url: `${server.url}/echo` });
    const discard = await connectWs({ url: `${server.url}/discard` });

    const wsRtt = await rtts(async () => {
      await echo.send(SMALL);
      await echo.next();
    });
    const dcRtt = await rtts(() => {
      rttA.send(SMALL);
      return rttA.next();
    });
    const wsMBps = await wsThroughput(discard);
    const dcMBps = await channelThroughput(bulkA, bulkB);

    await echo.close();
    await discard.close();
    await pair.close();
    const browser = hasCommand('chromium') ? await chromiumRows(server.signalUrl) : undefined;
    await server.close();
    return [
      { label: 'ws round trip (median)', value: wsRtt, unit: 'ms', lowerIsBetter: true },
      { label: 'data channel round trip (median)', value: dcRtt, unit: 'ms', baseline: 'ws round trip (median)', lowerIsBetter: true },
      { label: 'ws throughput', value: wsMBps, unit: 'MB/s' },
      { label: 'data channel throughput', value: dcMBps, unit: 'MB/s', baseline: 'ws throughput' },
      ...(browser
        ? [
            { label: 'werift → Chromium round trip (median)', value: browser.rtt, unit: 'ms', baseline: 'ws round trip (median)', lowerIsBetter: true },
            { label: 'werift → Chromium throughput', value: browser.mbps, unit: 'MB/s', baseline: 'ws throughput' },
          ]
        : []),
    ];
  },
});
