import { Pool } from 'undici';
import { childRounds, defineBench, jsonlCostRows, opsPerSecond, sampledRow, startChildServer, type BenchRow } from './harness.ts';

const MS = 1000;
const ROUNDS = 5;
const CONCURRENCY = 32;

export default defineBench({
  name: 'http',
  title: `keep-alive GET /hello, ${CONCURRENCY} in flight on 8 connections, each server in its own process; ${ROUNDS} interleaved rounds of ${MS / 1000} s`,
  async run(): Promise<BenchRow[]> {
    const kinds = ['http-bare', 'http-off', 'http-jsonl', 'http-jsonl-lean', 'http-null', 'http-null-all', 'http-on', 'http-on-detail', 'http-live'] as const;
    type Kind = (typeof kinds)[number];
    const servers = Object.fromEntries(await Promise.all(kinds.map(async (k) => [k, await startChildServer(k)] as const))) as Record<(typeof kinds)[number], Awaited<ReturnType<typeof startChildServer>>>;
    const pools = Object.fromEntries(kinds.map((k) => [k, new Pool(`http://127.0.0.1:${servers[k].port}`, { connections: 8 })])) as Record<(typeof kinds)[number], Pool>;
    const onceFor = (pool: Pool) => async (): Promise<void> => {
      const r = await pool.request({ path: '/hello', method: 'GET' });
      await r.body.dump();
    };
    for (const k of kinds) for (let i = 0; i < 2000; i++) await onceFor(pools[k])();
    const m = await childRounds(servers, (k) => () => opsPerSecond(onceFor(pools[k]), MS, CONCURRENCY), ROUNDS);
    await Promise.all(kinds.map((k) => pools[k].close()));
    kinds.forEach((k) => servers[k].stop());
    const cpu = { unit: 'µs/req', lowerIsBetter: true } as const;
    return [
      sampledRow('bare node:http', m['http-bare'].rate, 'req/s'),
      sampledRow('wirelab http, tracing off', m['http-off'].rate, 'req/s', { baseline: 'bare node:http', target: 0.95 }),
      sampledRow('wirelab http, JSON-lines tracer on', m['http-jsonl'].rate, 'req/s', { baseline: 'wirelab http, tracing off' }),
      sampledRow('wirelab http, terminal tracer on', m['http-on'].rate, 'req/s', { baseline: 'wirelab http, tracing off' }),
      sampledRow('bare node:http, server CPU', m['http-bare'].cpu, cpu.unit, cpu),
      sampledRow('wirelab http, tracing off, server CPU', m['http-off'].cpu, cpu.unit, { ...cpu, baseline: 'bare node:http, server CPU', target: 0.95 }),
      ...jsonlCostRows('http', (k) => m[`http-${k}` as Kind].cpu, cpu.unit),
      sampledRow('wirelab http, terminal tracer, server CPU', m['http-on'].cpu, cpu.unit, { ...cpu, baseline: 'wirelab http, tracing off, server CPU' }),
      // The terminal tracer as it cost before it could skip details (header lists, bodies, HAR exchanges): a sink that
      // keeps them is attached beside it. The ratio is what summary-only tracing saves.
      sampledRow('wirelab http, terminal tracer + details (before), server CPU', m['http-on-detail'].cpu, cpu.unit, { ...cpu, baseline: 'wirelab http, tracing off, server CPU' }),
      sampledRow('wirelab http, terminal tracer: after vs before, server CPU', m['http-on'].cpu, cpu.unit, { ...cpu, baseline: 'wirelab http, terminal tracer + details (before), server CPU' }),
      // wirelab up's LiveTracer while no dashboard page watches: no event is built, so it runs as tracing off does.
      sampledRow('wirelab http, live tracer idle (up, nobody watching)', m['http-live'].rate, 'req/s', { baseline: 'wirelab http, tracing off', target: 0.95 }),
      sampledRow('wirelab http, live tracer idle, server CPU', m['http-live'].cpu, cpu.unit, { ...cpu, baseline: 'wirelab http, tracing off, server CPU', target: 0.95 }),
    ];
  },
});
