import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { startTcpProxy, startUdpRelay } from '../core/impair/index.ts';
import { datagramSeq } from '../protocols/datagram.ts';
import { measureUdpEcho } from '../labs/measure/index.ts';
import { startUdpServer } from '../servers/udp/index.ts';
import { defineBench, type BenchRow } from './harness.ts';
import { median } from '../core/stats.ts';
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

/** One iperf3 TCP stream to `port` for SECONDS; MB/s received. iperf3 runs in its own process, not in this one. */
async function iperf(port: number): Promise<number> {
  const child = spawn('iperf3', ['-c', '127.0.0.1', '-p', String(port), '-t', String(SECONDS), '-J'], { stdio: ['ignore', 'pipe', 'inherit'] });
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

export default defineBench({
  name: 'impair',
  title: `TCP proxy without toxics vs direct, a naive Node pipe and socat (one iperf3 stream, ${SECONDS} s, median of ${ROUNDS} interleaved runs); UDP relay vs direct`,
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
        const paths: Array<[string, number]> = [['direct', target], ['naive Node pipe', (pipe.address() as net.AddressInfo).port], ['wirelab proxy', proxy.port]];
        if (has('socat')) {
          const port = await freePort();
          children.push(spawn('socat', [`TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork`, `TCP:127.0.0.1:${target}`], { stdio: 'ignore' }));
          await waitListening(port);
          paths.push(['socat', port]);
        } else {
          console.log('socat is missing (Debian package socat): its row is skipped');
        }
        const seen = new Map<string, number[]>(paths.map(([l]) => [l, []]));
        for (let round = 0; round < ROUNDS; round++) {
          for (const [label, port] of paths) seen.get(label)!.push(await iperf(port));
        }
        const medianOf = (l: string): number => median([...seen.get(l)!]);
        rows.push({ label: 'direct', value: medianOf('direct'), unit: 'MB/s' });
        rows.push({ label: 'naive Node pipe', value: medianOf('naive Node pipe'), unit: 'MB/s', baseline: 'direct' });
        if (seen.has('socat')) rows.push({ label: 'socat', value: medianOf('socat'), unit: 'MB/s', baseline: 'direct' });
        const value = medianOf('wirelab proxy');
        rows.push({ label: 'wirelab proxy, no toxics', value, unit: 'MB/s', baseline: 'naive Node pipe', target: 1.0 });
        if (seen.has('socat')) rows.push({ label: 'wirelab proxy (vs socat)', value, unit: 'MB/s', baseline: 'socat', target: 1.4 });
        rows.push({ label: 'wirelab proxy (vs direct)', value, unit: 'MB/s', baseline: 'direct' });
        pipe.close();
        await proxy.close();
      } finally {
        for (const c of children) c.kill('SIGTERM');
      }
    }

    // UDP: numbered datagrams to wirelab's echo, 32 unanswered at most, directly and through the relay.
    const echo = await startUdpServer({ maxEchoPerSecond: 10_000_000 });
    const relay = await startUdpRelay({ upstreamPort: echo.port, sequenceOf: datagramSeq });
    const rate = async (port: number): Promise<number> => {
      const n = 20_000;
      const r = await measureUdpEcho({ port, n, settleMs: 50 });
      return r.delivered / (r.durationMs / 1000);
    };
    const direct: number[] = [];
    const relayed: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      direct.push(await rate(echo.port));
      relayed.push(await rate(relay.port));
    }
    const mid = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    rows.push({ label: 'UDP echo direct', value: mid(direct), unit: 'datagrams/s' });
    rows.push({ label: 'UDP echo through the relay', value: mid(relayed), unit: 'datagrams/s', baseline: 'UDP echo direct' });
    await relay.close();
    await echo.close();
    return rows;
  },
});
