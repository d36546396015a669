import { Pool } from 'undici';
import { defineBench, measureChild, opsPerSecond, startChildServer, type BenchRow } from './harness.ts';
import { median } from '../core/stats.ts';

const MS = 1000;
const ROUNDS = 5;
const CONCURRENCY = 32;


export default defineBench({
  name: 'http',
  title: `keep-alive GET /hello, ${CONCURRENCY} in flight on 8 connections, each server in its own process; ${ROUNDS} rounds of ${MS / 1000} s taking turns, medians`,
  async run(): Promise<BenchRow[]> {
    const kinds = ['http-bare', 'http-off', 'http-on', 'http-live'] as const;
    const servers = await Promise.all(kinds.map((k) => startChildServer(k)));
    const pools = servers.map((s) => new Pool(`http://127.0.0.1:${s.port}`, { connections: 8 }));
    const onceFor = (pool: Pool) => async (): Promise<void> => {
      const r = await pool.request({ path: '/hello', method: 'GET' });
      await r.body.dump();
    };
    for (const pool of pools) for (let i = 0; i < 2000; i++) await onceFor(pool)();
    const rates: number[][] = kinds.map(() => []);
    const cpu: number[][] = kinds.map(() => []);
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i] of kinds.entries()) {
        const m = await measureChild(servers[i]!, () => opsPerSecond(onceFor(pools[i]!), MS, CONCURRENCY));
        rates[i]!.push(m.rate);
        cpu[i]!.push(m.cpuPerOp);
      }
    }
    await Promise.all(pools.map((p) => p.close()));
    servers.forEach((s) => s.stop());
    return [
      { label: 'bare node:http', value: median(rates[0]!), unit: 'req/s' },
      { label: 'wirelab http, tracing off', value: median(rates[1]!), unit: 'req/s', baseline: 'bare node:http', target: 0.95 },
      { label: 'wirelab http, terminal tracer on', value: median(rates[2]!), unit: 'req/s', baseline: 'bare node:http' },
      { label: 'bare node:http, server CPU', value: median(cpu[0]!), unit: 'µs/req', lowerIsBetter: true },
      { label: 'wirelab http, tracing off, server CPU', value: median(cpu[1]!), unit: 'µs/req', baseline: 'bare node:http, server CPU', lowerIsBetter: true, target: 0.95 },
      { label: 'wirelab http, tracer on, server CPU', value: median(cpu[2]!), unit: 'µs/req', baseline: 'bare node:http, server CPU', lowerIsBetter: true },
      // wirelab up's LiveTracer while no dashboard page watches: no event is built, so it runs as tracing off does.
      { label: 'wirelab http, live tracer idle (up, nobody watching)', value: median(rates[3]!), unit: 'req/s', baseline: 'wirelab http, tracing off', target: 0.95 },
      { label: 'wirelab http, live tracer idle, server CPU', value: median(cpu[3]!), unit: 'µs/req', baseline: 'wirelab http, tracing off, server CPU', lowerIsBetter: true, target: 0.95 },
    ];
  },
});
