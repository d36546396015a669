// `npm run bench -- perf`: wirelab perf's TCP, WebSocket and HTTP throughput against iperf3's TCP, same machine, same
// run, interleaved rounds and medians (the machine is shared). The ratio is what the README quotes.
import { spawn } from 'node:child_process';
import { runPerfClient, type PerfClientOptions } from '../bin/perf/client.ts';
import { startPerfServer } from '../bin/perf/server.ts';
import { median } from '../core/stats.ts';
import { defineBench, type BenchRow } from './harness.ts';
import { freePort, has } from './fixtures/ports.ts';

const SECONDS = 2;
const ROUNDS = 3;

/** One iperf3 TCP stream for SECONDS against an iperf3 server on `port`; Gbit/s received. */
async function iperf(port: number): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const child = spawn('iperf3', ['-c', '127.0.0.1', '-p', String(port), '-t', String(SECONDS), '-J'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    await new Promise((r) => child.once('exit', r));
    const j = JSON.parse(out || '{}') as { end?: { sum_received?: { bits_per_second: number } } };
    if (j.end?.sum_received) return j.end.sum_received.bits_per_second / 1e9;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('iperf3 gave no result');
}

export default defineBench({
  name: 'perf',
  title: 'wirelab perf (TCP, WebSocket, HTTP) against iperf3 TCP, one stream, Gbit/s received',
  async run() {
    // A fixed base: the WebSocket and HTTP servers listen on base + 1 and base + 2.
    let server;
    for (let i = 0; !server; i++) {
      const base = (await freePort()) - 3;
      server = await startPerfServer({ port: base }).catch((err: Error) => (i < 10 ? undefined : Promise.reject(err)));
    }
    const iperfPort = await freePort();
    const iperfServer = has('iperf3') ? spawn('iperf3', ['-s', '-p', String(iperfPort), '-B', '127.0.0.1'], { stdio: 'ignore' }) : undefined;
    iperfServer?.on('error', () => undefined);
    const o = (proto: PerfClientOptions['proto'], len: number): PerfClientOptions => ({ host: '127.0.0.1', port: server.port, proto, time: SECONDS, streams: 1, reverse: false, rate: 0, len, interval: SECONDS });
    const got: Record<string, number[]> = { iperf3: [], tcp: [], ws: [], http: [] };
    try {
      for (let r = 0; r < ROUNDS; r++) {
        if (iperfServer) got.iperf3!.push(await iperf(iperfPort));
        got.tcp!.push((await runPerfClient(o('tcp', 128 * 1024))).end.receiver!.bitsPerSecond / 1e9);
        got.ws!.push((await runPerfClient(o('ws', 128 * 1024))).end.receiver!.bitsPerSecond / 1e9);
        got.http!.push((await runPerfClient(o('http', 1024 * 1024))).end.receiver!.bitsPerSecond / 1e9);
      }
    } finally {
      iperfServer?.kill('SIGTERM');
      await server.close();
    }
    const rows: BenchRow[] = [];
    if (iperfServer) rows.push({ label: 'iperf3 TCP', value: median(got.iperf3!), unit: 'Gbit/s' });
    const base = iperfServer ? 'iperf3 TCP' : undefined;
    rows.push({ label: 'wirelab perf TCP', value: median(got.tcp!), unit: 'Gbit/s', ...(base ? { baseline: base } : {}) });
    rows.push({ label: 'wirelab perf WebSocket', value: median(got.ws!), unit: 'Gbit/s', baseline: 'wirelab perf TCP' });
    rows.push({ label: 'wirelab perf HTTP (1 MiB POSTs)', value: median(got.http!), unit: 'Gbit/s', baseline: 'wirelab perf TCP' });
    return rows;
  },
});
