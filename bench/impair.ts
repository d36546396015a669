import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { startTcpProxy } from '../core/impair/index.ts';
import { closedPort } from '../core/ports.ts';
import { sleep } from '../core/time.ts';
import { measureUdpEcho } from '../labs/measure/index.ts';
import { defineBench, interleaved, measureChild, sampledRow, startChildServer, type BenchRow, type ChildServer } from './harness.ts';
import { freePort, has } from './fixtures/ports.ts';

const SECONDS = 2;
/** Each path is measured this many times, interleaved, and its median kept: the machine is shared and noisy. */
const ROUNDS = 5;

async function waitListening(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        r(true);
      });
      s.on('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${port}`);
}

/** iperf3 with `streams` parallel TCP streams to `port` for SECONDS; MB/s received. iperf3 runs in its own process. */
async function iperf(port: number, streams = 1): Promise<number> {
  const child = spawn('iperf3', ['-c', '127.0.0.1', '-p', String(port), '-t', String(SECONDS), '-P', String(streams), '-J'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  await new Promise((r) => child.once('exit', r));
  const j = JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } };
  return j.end.sum_received.bits_per_second / 8 / 1e6;
}

/** The relay anyone would write first: pipe both ways, nothing else. */
async function naivePipe(upstream: number): Promise<net.Server> {
  const server = net.createServer((c) => {
    const u = net.connect(upstream, '127.0.0.1');
    c.pipe(u).on('error', () => c.destroy());
    u.pipe(c).on('error', () => u.destroy());
    c.on('error', () => u.destroy());
    u.on('error', () => c.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

const UDP_SIZES = [64, 1400];
const UDP_DATAGRAMS = 20_000;

export default defineBench({
  name: 'impair',
  title: `TCP proxy without toxics vs direct, a naive Node pipe and socat (iperf3, 1 and 4 streams, ${SECONDS} s); UDP relay (its own process) vs direct echo at ${UDP_SIZES.join(' and ')} B; ${ROUNDS} interleaved rounds`,
  async run() {
    const rows: BenchRow[] = [];
    if (!has('iperf3')) {
      console.log('iperf3 is missing (Debian package iperf3; npm run peers installs it): TCP rows skipped');
    } else {
      const children: ChildProcess[] = [];
      try {
        const target = await freePort();
        children.push(spawn('iperf3', ['-s', '-p', String(target)], { stdio: 'ignore' }));
        await waitListening(target);
        const pipe = await naivePipe(target);
        const proxy = await startTcpProxy({ upstreamPort: target });
        const paths: Record<string, number> = { direct: target, 'naive Node pipe': (pipe.address() as net.AddressInfo).port, 'wirelab proxy': proxy.port };
        if (has('socat')) {
          const port = await freePort();
          children.push(spawn('socat', [`TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork`, `TCP:127.0.0.1:${target}`], { stdio: 'ignore' }));
          await waitListening(port);
          paths.socat = port;
        } else {
          console.log('socat is missing (Debian package socat): its rows are skipped');
        }
        for (const streams of [1, 4]) {
          const seen = await interleaved(Object.fromEntries(Object.entries(paths).map(([l, port]) => [l, () => iperf(port, streams)])), ROUNDS);
          const tag = streams === 1 ? 'one stream' : `${streams} streams`;
          rows.push(sampledRow(`direct, ${tag}`, seen.direct!, 'MB/s'));
          rows.push(sampledRow(`naive Node pipe, ${tag}`, seen['naive Node pipe']!, 'MB/s', { baseline: `direct, ${tag}` }));
          if (seen.socat) rows.push(sampledRow(`socat, ${tag}`, seen.socat, 'MB/s', { baseline: `direct, ${tag}` }));
          rows.push(sampledRow(`wirelab proxy, no toxics, ${tag}`, seen['wirelab proxy']!, 'MB/s', { baseline: `naive Node pipe, ${tag}`, target: 1.0 }));
          if (seen.socat) rows.push(sampledRow(`wirelab proxy (vs socat), ${tag}`, seen['wirelab proxy']!, 'MB/s', { baseline: `socat, ${tag}`, target: streams === 1 ? 1.4 : 1.0 }));
        }
        pipe.close();
        await proxy.close();
      } finally {
        for (const c of children) c.kill('SIGTERM');
      }
    }

    // UDP: numbered datagrams to wirelab's echo, 32 unanswered at most, directly and through the relay. The echo server
    // and the relay each run in a process of their own (as a relay in front of a server elsewhere would), so the relay
    // is measured by what it adds, not by sharing one event loop with the client and the server.
    const echo = await startChildServer('udp-echo');
    const relay = await startChildServer(`udp-relay:${echo.port}`);
    // socat as a C relay in the same place: the bound a user-space relay (a recv and a send each way) reaches here.
    // With fork, the parent hands each new client address to a child (one per round); -T ends an idle child.
    let socatUdp: { port: number; child: ChildProcess } | undefined;
    if (has('socat')) {
      const port = await closedPort('udp');
      const child = spawn('socat', ['-T', '3', `UDP4-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork`, `UDP4:127.0.0.1:${echo.port}`], { stdio: 'ignore' });
      child.on('error', () => undefined);
      socatUdp = { port, child };
      await sleep(200);
    }
    try {
      for (const size of UDP_SIZES) {
        const rate = async (port: number): Promise<number> => {
          const r = await measureUdpEcho({ port, n: UDP_DATAGRAMS, size, settleMs: 50 });
          return r.delivered / (r.durationMs / 1000);
        };
        await rate(relay.port); // warm both up
        const cpuOf = async (server: ChildServer, port: number): Promise<{ rate: number; cpu: number }> => {
          const m = await measureChild(server, () => rate(port));
          return { rate: m.rate, cpu: m.cpuPerOp };
        };
        const subjects: Record<string, () => Promise<{ rate: number; cpu: number }>> = { direct: () => cpuOf(echo, echo.port), relayed: () => cpuOf(relay, relay.port) };
        if (socatUdp) subjects.socat = async () => ({ rate: await rate(socatUdp!.port), cpu: NaN });
        const seen = await interleaved(subjects, ROUNDS);
        rows.push(sampledRow(`UDP echo direct, ${size} B`, seen.direct!.map((m) => m.rate), 'datagrams/s'));
        rows.push(sampledRow(`UDP echo through the relay, ${size} B`, seen.relayed!.map((m) => m.rate), 'datagrams/s', { baseline: `UDP echo direct, ${size} B`, target: 0.75 }));
        if (seen.socat) {
          rows.push(sampledRow(`UDP echo through socat, ${size} B`, seen.socat.map((m) => m.rate), 'datagrams/s', { baseline: `UDP echo direct, ${size} B` }));
          rows.push(sampledRow(`wirelab relay vs socat, ${size} B`, seen.relayed!.map((m) => m.rate), 'datagrams/s', { baseline: `UDP echo through socat, ${size} B` }));
        }
        rows.push(sampledRow(`echo server CPU, ${size} B`, seen.direct!.map((m) => m.cpu), 'µs/datagram', { lowerIsBetter: true }));
        rows.push(sampledRow(`relay CPU (both ways), ${size} B`, seen.relayed!.map((m) => m.cpu), 'µs/datagram', { lowerIsBetter: true, baseline: `echo server CPU, ${size} B` }));
      }
    } finally {
      echo.stop();
      relay.stop();
      socatUdp?.child.kill('SIGTERM');
    }
    return rows;
  },
});
