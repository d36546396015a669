import http from 'node:http';
import { WebSocket } from 'ws';
import { connectTcp } from '../clients/tcp.ts';
import { openUdp } from '../clients/udp.ts';
import { defineLab } from '../core/lab/index.ts';
import { startTcpProxy, startUdpRelay, type TcpImpairmentProxy } from '../core/impair/index.ts';
import { datagramSeq } from '../protocols/datagram.ts';
import { kernelSupport } from '../core/impair/kernel/index.ts';
import { median } from '../core/stats.ts';
import { startHttpServer } from '../servers/http/index.ts';
import { startTcpServer } from '../servers/tcp/index.ts';
import { startUdpServer } from '../servers/udp/index.ts';
import { startWsServer } from '../servers/ws/index.ts';


function httpGet(port: number, path = '/'): Promise<{ ttfb: number; total: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      const ttfb = performance.now() - t0;
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => resolve({ ttfb, total: performance.now() - t0, bytes }));
    });
    req.on('error', reject);
  });
}

async function wsFirstMessage(port: number): Promise<number> {
  const t0 = performance.now();
  const ws = new WebSocket(`ws://127.0.0.1:${port}/echo`);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => ws.send('ping'));
    ws.once('message', () => resolve());
    ws.once('error', reject);
  });
  const t = performance.now() - t0;
  ws.terminate();
  return t;
}

export default defineLab({
  id: 'latency-under-impairment',
  title: 'Round trips before the first byte, made visible by 20 ms ± 5 ms and a 1 Mbit/s cap',
  concept: 'Every round trip a protocol needs before its first byte costs one network delay: UDP and a TCP echo need one, an HTTP request one, a WebSocket two (upgrade, then the message).',
  protocols: ['tcp', 'udp', 'http', 'ws'],
  timeoutMs: 60_000,
  params: {
    latency: { kind: 'duration', default: '20ms', min: 2, max: 500, help: 'delay added on the way back (server to client) to each chunk' },
    jitter: { kind: 'duration', default: '5ms', min: 0, max: 250, help: '± jitter on that delay (below latency)' },
    rate: { kind: 'rate', default: '1mbit', min: 64_000, max: 1_000_000_000, help: 'the bandwidth cap, both ways' },
    samples: { kind: 'count', default: 5, min: 3, max: 51, help: 'new connections per exchange (the median is shown)' },
    body: { kind: 'size', default: '64KiB', min: 1024, max: 16 * 1024 * 1024, help: 'the HTTP body fetched through the cap' },
  },
  checkParams: (p) =>
    p.jitter >= p.latency ? `jitter (${p.jitter} ms) must be below latency (${p.latency} ms): a crossing's delay is counted against latency − jitter`
    : (p.body * 8) / p.rate > 10 ? `body at rate takes ${((p.body * 8) / p.rate).toFixed(1)} s; keep it under 10 s (a smaller body or a higher rate)`
    : p.samples * (2 * (p.latency + p.jitter) + 10) * 4 > 30_000 ? 'samples × latency is over the lab\'s time budget; lower one of them'
    : undefined,
  async run(ctx) {
    const { latency: LATENCY, jitter: JITTER, samples: SAMPLES, body: BODY } = ctx.params;
    const RATE_KBPS = ctx.params.rate / 8000; // KB/s (1 KB = 1000 bytes): the bandwidth toxic's unit
    const tcpServer = await ctx.start(startTcpServer({ mode: 'echo', framing: 'line', tracer: ctx.tracer }));
    const udpServer = await ctx.start(startUdpServer({ tracer: ctx.tracer }));
    const web = await ctx.start(startHttpServer({ tracer: ctx.tracer }));
    const wsServer = await ctx.start(startWsServer({ tracer: ctx.tracer }));
    // Each proxy records into its own sink (and still honours --trace): its 'delay' events say how long it held each
    // chunk, which is the delay actually applied to a sample.
    const proxied = async (name: string, upstreamPort: number, seed: number) => {
      const rec = ctx.recorder();
      const proxy = await ctx.start(startTcpProxy({ name, upstreamPort, seed, tracer: rec.tracer }));
      const heldMs = (): number => rec.events.find({ kind: 'delay' }).reduce((sum, e) => sum + Number((e.meta as { heldMs?: number } | undefined)?.heldMs ?? 0), 0);
      return { proxy, heldMs };
    };
    const tcp = await proxied('tcp', tcpServer.port, 1);
    const webP = await proxied('web', web.port, 2);
    const wsP = await proxied('ws', wsServer.port, 4);
    const [tcpProxy, webProxy, wsProxy] = [tcp.proxy, webP.proxy, wsP.proxy];
    const relay = await ctx.start(startUdpRelay({ upstreamPort: udpServer.port, seed: 3, sequenceOf: datagramSeq, tracer: ctx.tracer }));

    const impair = (on: boolean): void => {
      for (const p of [tcpProxy, webProxy, wsProxy]) {
        p.clearToxics();
        if (!on) continue;
        // The delay on the way back only: each round trip crosses it exactly once. The cap applies both ways.
        p.addToxic({ name: 'latency', type: 'latency', stream: 'downstream', attributes: { latency: LATENCY, jitter: JITTER } });
        p.addToxic({ name: 'cap_down', type: 'bandwidth', stream: 'downstream', attributes: { rate: RATE_KBPS } });
        p.addToxic({ name: 'cap_up', type: 'bandwidth', stream: 'upstream', attributes: { rate: RATE_KBPS } });
      }
      relay.set('downstream', on ? { delayMs: LATENCY, jitterMs: JITTER, rateKbit: RATE_KBPS * 8 } : {});
    };
    const delayed = (p: TcpImpairmentProxy) => () => p.stats.toxics.latency ?? 0;
    const udpHeldMs = (): number => relay.records.reduce((sum, r) => sum + (r.stream === 'downstream' && r.fate === 'delivered' ? r.delayMs : 0), 0);
    /** The proxy and the relay release a chunk up to 0.5 ms before its time (their timers flush what is due within it). */
    const EARLY_MS = 0.5;

    /**
     * One row: time to first byte (median of SAMPLES, new connection each), the delayed crossings counted per sample,
     * and the delay the proxy or relay actually applied to each sample.
     */
    const probes: Array<{ name: string; expected: number; once: () => Promise<number>; crossings: () => number; applied: () => number }> = [
      {
        name: 'TCP echo (one line)',
        expected: 1,
        once: async () => {
          const c = await connectTcp({ port: tcpProxy.port, framing: 'line', noDelay: true });
          const t0 = performance.now();
          await c.send('ping');
          await c.next();
          const t = performance.now() - t0;
          await c.destroy();
          return t;
        },
        crossings: delayed(tcpProxy),
        applied: tcp.heldMs,
      },
      {
        name: 'UDP echo (one datagram)',
        expected: 1,
        once: async () => {
          const c = await openUdp({ port: relay.port });
          const r = await c.echo('ping');
          await c.close();
          return r.rttMs;
        },
        crossings: () => relay.stats('downstream').delivered,
        applied: udpHeldMs,
      },
      { name: 'HTTP/1.1 GET, new connection', expected: 1, once: async () => (await httpGet(webProxy.port, '/hello')).ttfb, crossings: delayed(webProxy), applied: webP.heldMs },
      { name: 'WebSocket: upgrade, then one message', expected: 2, once: () => wsFirstMessage(wsProxy.port), crossings: delayed(wsProxy), applied: wsP.heldMs },
    ];

    const rows: Array<Array<string | number>> = [];
    for (const p of probes) {
      impair(false);
      const clean: number[] = [];
      for (let i = 0; i < SAMPLES; i++) clean.push(await p.once());
      impair(true);
      const slow: number[] = [];
      const counts: number[] = [];
      const applied: number[] = [];
      for (let i = 0; i < SAMPLES; i++) {
        const before = p.crossings();
        const heldBefore = p.applied();
        slow.push(await p.once());
        counts.push(p.crossings() - before);
        applied.push(p.applied() - heldBefore);
      }
      const rtts = median(counts);
      const extra = median(slow) - median(clean);
      // Every impaired sample waited out the delay applied to it (each crossing waits for the one before it). Load can
      // only make a sample slower, so this bound holds however busy the machine is; it fails if the delay was not in
      // the path, or was not applied the number of times counted.
      const short = slow.map((t, i) => t - (applied[i]! - counts[i]! * EARLY_MS)).filter((d) => d < 0);
      rows.push([p.name, rtts, +median(clean).toFixed(2), +median(slow).toFixed(2), +extra.toFixed(1), +median(applied).toFixed(1)]);
      ctx.claim(
        `${p.name}: ${p.expected} delayed round trip${p.expected > 1 ? 's' : ''} before the first byte, and every sample waited out the delay applied to it`,
        counts.every((c) => c === p.expected) && applied.every((a, i) => a >= counts[i]! * (LATENCY - JITTER)) && short.length === 0,
        `counted ${counts.join(',')}; samples ${slow.map((t) => t.toFixed(1)).join(', ')} ms against ${applied.map((a) => a.toFixed(1)).join(', ')} ms applied (${LATENCY} ± ${JITTER} ms per crossing)`,
      );
    }
    ctx.table(`time to first byte, median of ${SAMPLES}, clean vs ${LATENCY} ms ± ${JITTER} ms on the way back and a ${ctx.params.rate / 1e6} Mbit/s cap`, ['exchange', 'round trips counted', 'clean ms', 'impaired ms', 'added ms', 'delay applied ms (median)'], rows);

    // The cap: a 64 KiB body cannot come faster than the proxy's serialisation of the bytes it forwarded at 1 Mbit/s.
    impair(true);
    const downBefore = webProxy.stats.bytesDown;
    const capBefore = webProxy.stats.toxics.cap_down ?? 0;
    const big = await httpGet(webProxy.port, `/bytes/${BODY}`);
    const forwarded = webProxy.stats.bytesDown - downBefore;
    const capped = (webProxy.stats.toxics.cap_down ?? 0) - capBefore;
    const requiredMs = forwarded / RATE_KBPS - EARLY_MS; // KB/s = bytes per ms
    const mbit = (big.bytes * 8) / big.total / 1000;
    ctx.measure(`HTTP GET of ${BODY / 1024} KiB through the ${ctx.params.rate / 1e6} Mbit/s cap`, +mbit.toFixed(3), 'Mbit/s');
    ctx.claim(
      `the bandwidth cap holds: the response took at least as long as ${ctx.params.rate / 1e6} Mbit/s needs for the bytes the proxy forwarded`,
      big.bytes === BODY && capped > 0 && big.total >= requiredMs,
      `${big.bytes} B body, ${forwarded} B forwarded in ${capped} capped chunks: ${big.total.toFixed(0)} ms ≥ ${requiredMs.toFixed(0)} ms needed (${mbit.toFixed(3)} Mbit/s of body)`,
    );
    const kernel = kernelSupport();
    const why = !kernel.available ? `kernel mode is not available (${kernel.reason})` : kernel.netem ? 'kernel-mode delay (netem) is not used by this lab yet' : 'kernel mode cannot add delay here (netem is absent)';
    ctx.note(`The userland proxy accepts the TCP connection itself, so the TCP handshake is local and never delayed: only the round trips the application makes through it are counted; ${why}.`);
  },
});
