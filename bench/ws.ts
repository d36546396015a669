import { Writable } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';
import { createTracer, PrettySink } from '../core/trace/index.ts';
import { startWsServer } from '../servers/ws/index.ts';
import { defineBench, opsPerSecond, type BenchRow } from './harness.ts';

const MS = 3000;
const CONNECTIONS = 8;
const PAYLOAD = Buffer.alloc(64, 0x61);

/** Echo messages/s: CONNECTIONS clients, each with one message in flight at a time. */
async function measure(url: string): Promise<number> {
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
  for (let i = 0; i < 500; i++) await once();
  const rate = await opsPerSecond(once, MS, CONNECTIONS);
  for (const ws of clients) ws.terminate();
  return rate;
}

export default defineBench({
  name: 'ws',
  title: `WebSocket echo of ${PAYLOAD.length} B, ${CONNECTIONS} connections, ${MS / 1000} s each`,
  async run(): Promise<BenchRow[]> {
    const bare = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    bare.on('connection', (ws) => ws.on('message', (d, isBinary) => ws.send(d, { binary: isBinary })));
    await new Promise((r) => bare.once('listening', r));
    const bareUrl = `ws://127.0.0.1:${(bare.address() as { port: number }).port}`;
    const off = await startWsServer({ heartbeatMs: 0 });
    const devnull = new Writable({ write: (_c, _e, cb) => cb() });
    const on = await startWsServer({ heartbeatMs: 0, tracer: createTracer([new PrettySink({ stream: devnull, color: false })]) });
    const b1 = await measure(bareUrl);
    const w = await measure(`${off.url}/echo`);
    const b2 = await measure(bareUrl);
    const t = await measure(`${on.url}/echo`);
    for (const c of bare.clients) c.terminate();
    await new Promise((r) => bare.close(r));
    await off.close();
    await on.close();
    return [
      { label: 'bare ws', value: (b1 + b2) / 2, unit: 'msg/s' },
      { label: 'wirelab ws, tracing off', value: w, unit: 'msg/s', baseline: 'bare ws', target: 0.95 },
      { label: 'wirelab ws, terminal tracer on', value: t, unit: 'msg/s', baseline: 'bare ws' },
    ];
  },
});
