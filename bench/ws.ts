import WebSocket from 'ws';
import { childRounds, defineBench, jsonlCostRows, opsPerSecond, sampledRow, startChildServer, type BenchRow } from './harness.ts';

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
  // One 'message' listener per client, resolving the oldest echo its client waits for (a once() per message would add
  // and remove a listener for every message: the load generator's own cost, paid on every row alike but noise).
  const waiting: Array<Array<() => void>> = clients.map(() => []);
  clients.forEach((ws, i) => ws.on('message', () => waiting[i]!.shift()?.()));
  let next = 0;
  const once = (): Promise<void> => {
    const i = next++ % CONNECTIONS;
    return new Promise((resolve) => {
      waiting[i]!.push(resolve);
      clients[i]!.send(PAYLOAD);
    });
  };
  return { once, close: () => clients.forEach((ws) => ws.terminate()) };
}

export default defineBench({
  name: 'ws',
  title: `WebSocket echo of ${PAYLOAD.length} B, ${CONNECTIONS} connections, each server in its own process; ${ROUNDS} interleaved rounds of ${MS / 1000} s`,
  async run(): Promise<BenchRow[]> {
    const kinds = ['ws-bare', 'ws-off', 'ws-jsonl', 'ws-jsonl-lean', 'ws-null', 'ws-null-all', 'ws-on'] as const;
    type Kind = (typeof kinds)[number];
    const servers = Object.fromEntries(await Promise.all(kinds.map(async (k) => [k, await startChildServer(k)] as const))) as Record<Kind, Awaited<ReturnType<typeof startChildServer>>>;
    const loads = Object.fromEntries(await Promise.all(kinds.map(async (k) => [k, await echoLoad(`ws://127.0.0.1:${servers[k].port}${k === 'ws-bare' ? '' : '/echo'}`)] as const))) as Record<Kind, Awaited<ReturnType<typeof echoLoad>>>;
    for (const k of kinds) for (let i = 0; i < 2000; i++) await loads[k].once();
    const m = await childRounds(servers, (k) => () => opsPerSecond(loads[k].once, MS, CONNECTIONS), ROUNDS);
    kinds.forEach((k) => loads[k].close());
    kinds.forEach((k) => servers[k].stop());
    const cpu = { unit: 'µs/msg', lowerIsBetter: true } as const;
    return [
      sampledRow('bare ws', m['ws-bare'].rate, 'msg/s'),
      sampledRow('wirelab ws, tracing off', m['ws-off'].rate, 'msg/s', { baseline: 'bare ws', target: 0.97 }),
      sampledRow('wirelab ws, JSON-lines tracer on', m['ws-jsonl'].rate, 'msg/s', { baseline: 'wirelab ws, tracing off' }),
      sampledRow('wirelab ws, terminal tracer on', m['ws-on'].rate, 'msg/s', { baseline: 'wirelab ws, tracing off' }),
      sampledRow('bare ws, server CPU', m['ws-bare'].cpu, cpu.unit, cpu),
      sampledRow('wirelab ws, tracing off, server CPU', m['ws-off'].cpu, cpu.unit, { ...cpu, baseline: 'bare ws, server CPU', target: 0.97 }),
      ...jsonlCostRows('ws', (k) => m[`ws-${k}` as Kind].cpu, cpu.unit),
      sampledRow('wirelab ws, terminal tracer, server CPU', m['ws-on'].cpu, cpu.unit, { ...cpu, baseline: 'wirelab ws, tracing off, server CPU' }),
    ];
  },
});
