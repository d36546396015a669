import http from 'node:http';
import { Writable } from 'node:stream';
import { Pool } from 'undici';
import { createTracer, PrettySink } from '../core/trace/index.ts';
import { startHttpServer } from '../servers/http/index.ts';
import { defineBench, opsPerSecond, type BenchRow } from './harness.ts';

const MS = 3000;
const CONCURRENCY = 32;

async function measure(origin: string): Promise<number> {
  const pool = new Pool(origin, { connections: 8 });
  const once = async (): Promise<void> => {
    const r = await pool.request({ path: '/hello', method: 'GET' });
    await r.body.dump();
  };
  for (let i = 0; i < 500; i++) await once(); // warm-up
  const rate = await opsPerSecond(once, MS, CONCURRENCY);
  await pool.close();
  return rate;
}

export default defineBench({
  name: 'http',
  title: `keep-alive GET /hello, ${CONCURRENCY} in flight on 8 connections, ${MS / 1000} s each`,
  async run(): Promise<BenchRow[]> {
    const bare = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-length': 6, 'content-type': 'text/plain' });
      res.end('hello\n');
    });
    await new Promise<void>((r) => bare.listen(0, '127.0.0.1', r));
    const bareUrl = `http://127.0.0.1:${(bare.address() as { port: number }).port}`;
    const off = await startHttpServer({ rateLimitBurst: 0, maxConcurrentRequests: 100_000 });
    const devnull = new Writable({ write: (_c, _e, cb) => cb() });
    const on = await startHttpServer({ rateLimitBurst: 0, maxConcurrentRequests: 100_000, tracer: createTracer([new PrettySink({ stream: devnull, color: false })]) });
    const rows: BenchRow[] = [];
    // bare, wirelab, bare again: the baseline is the mean of the runs around the subject, against drift.
    const b1 = await measure(bareUrl);
    const w = await measure(off.url);
    const b2 = await measure(bareUrl);
    const t = await measure(on.url);
    rows.push({ label: 'bare node:http', value: (b1 + b2) / 2, unit: 'req/s' });
    rows.push({ label: 'wirelab http, tracing off', value: w, unit: 'req/s', baseline: 'bare node:http', target: 0.95 });
    rows.push({ label: 'wirelab http, terminal tracer on', value: t, unit: 'req/s', baseline: 'bare node:http' });
    await new Promise<void>((r) => {
      bare.close(() => r());
      bare.closeAllConnections();
    });
    await off.close();
    await on.close();
    return rows;
  },
});
