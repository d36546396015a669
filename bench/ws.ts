import WebSocket from 'ws';
import { defineBench, measureChild, opsPerSecond, startChildServer, type BenchRow } from './harness.ts';
import { median } from '../core/stats.ts';

const MS = 1000;
const ROUNDS = 5;
const CONNECTIONS = 8;
const PAYLOAD = Buffer.alloc(64, 0x61);


/** CONNECTIONS clients, each with one message in flight at a time; `once` sends one and waits for its echo. */
async function echoLoad(url: string): Promise<{ once: () => Promise<void>; close: () => void }> {
  const clients = await Promise.all(
    Array.from({ length: CONNECTIONS }, () => new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.once('open', () => resolve(ws));
      ws.once('error', reject);
    })),
  );
  let next = 0;
  const once = (): Promise<void> => {
    const ws = clients[next++ % CONNECTIONS]!;
    return new Promise((resolve) => {
      ws.once('message', () => resolve());
      ws.send(PAYLOAD);
    });
  };
  return { once, close: () => clients.forEach((ws) => ws.terminate()) };
}

export default defineBench({
  name: 'ws',
  title: `WebSocket echo of ${PAYLOAD.length} B, ${CONNECTIONS} connections, each server in its own process; ${ROUNDS} rounds of ${MS / 1000} s taking turns, medians`,
  async run(): Promise<BenchRow[]> {
    const kinds = ['ws-bare', 'ws-off', 'ws-on'] as const;
    const servers = await Promise.all(kinds.map((k) => startChildServer(k)));
    const loads = await Promise.all(servers.map((s, i) => echoLoad(`ws://127.0.0.1:${s.port}${i === 0 ? '' : '/echo'}`)));
    for (const l of loads) for (let i = 0; i < 2000; i++) await l.once();
    const rates: number[][] = kinds.map(() => []);
    const cpu: number[][] = kinds.map(() => []);
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i] of kinds.entries()) {
        const m = await measureChild(servers[i]!, () => opsPerSecond(loads[i]!.once, MS, CONNECTIONS));
        rates[i]!.push(m.rate);
        cpu[i]!.push(m.cpuPerOp);
      }
    }
    loads.forEach((l) => l.close());
    servers.forEach((s) => s.stop());
    return [
      { label: 'bare ws', value: median(rates[0]!), unit: 'msg/s' },
      { label: 'wirelab ws, tracing off', value: median(rates[1]!), unit: 'msg/s', baseline: 'bare ws', target: 0.95 },
      { label: 'wirelab ws, terminal tracer on', value: median(rates[2]!), unit: 'msg/s', baseline: 'bare ws' },
      { label: 'bare ws, server CPU', value: median(cpu[0]!), unit: 'µs/msg', lowerIsBetter: true },
      { label: 'wirelab ws, tracing off, server CPU', value: median(cpu[1]!), unit: 'µs/msg', baseline: 'bare ws, server CPU', lowerIsBetter: true, target: 0.95 },
      { label: 'wirelab ws, tracer on, server CPU', value: median(cpu[2]!), unit: 'µs/msg', baseline: 'bare ws, server CPU', lowerIsBetter: true },
    ];
  },
});
