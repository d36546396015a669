import { createJetStreamEngine, startNatsCluster } from '../pubsub/engines/jetstream/index.ts';
const cluster = await startNatsCluster({ nodes: 3 });
const e = await createJetStreamEngine({ servers: cluster.urls, publishTimeoutMs: 1000, publishRetryForMs: 3000 });
await e.append({ topic: 'x', payload: Buffer.from('a'), acks: 'all' });
for (let i = 0; i < 3; i++) await cluster.kill(i, 'SIGKILL');
for (let k = 0; k < 3; k++) {
  const t0 = Date.now();
  try { await e.append({ topic: 'x', payload: Buffer.from('b'), msgId: 'm' + k, acks: 'all' }); console.log('ok'); }
  catch (err) { console.log(Date.now() - t0, 'ms', (err as any).code, (err as Error).message, (err as any).cause?.code, (err as any).cause?.message); }
}
console.log('retries', e.counters.retries);
await e.close().catch(() => undefined);
await cluster.close();
export {};
