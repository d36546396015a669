import assert from 'node:assert/strict';
import { exec } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { NOOP_TRACER } from '../../../core/trace/index.ts';
import { createBroker } from '../../../pubsub/broker/index.ts';
import type { Broker } from '../../../pubsub/broker/types.ts';
import type { RunningServer } from '../../../core/server.ts';
import { PUBSUB_HTTP_PORT, pubsubHttpService } from '../../../pubsub/doors/http/service.ts';
import { requirePeer } from '../../helpers/peers.ts';

const sh = promisify(exec);

test('wirelab up row pubsub-http: port base + 8222, and its pasted curl commands publish, subscribe, poll and list topics', async (t) => {
  if (!requirePeer(t, 'curl', 'curl')) return;
  let broker: Broker | undefined;
  const entry = pubsubHttpService(async <S extends RunningServer>(start: (b: Broker) => Promise<S>) => {
    broker = await createBroker({ dataDir: null });
    return start(broker);
  });
  assert.equal(entry.name, 'pubsub-http');
  assert.equal(entry.wellKnownPort, PUBSUB_HTTP_PORT);
  const server = await entry.start({ host: '127.0.0.1', port: 0, tracer: NOOP_TRACER });
  t.after(async () => {
    await server.close();
    await broker?.close();
  });
  const publish = await sh(entry.tryWith(server), { timeout: 20_000 });
  assert.match(publish.stdout, /^HTTP\/1\.1 201/);
  const extra = entry.extra!(server) as Record<string, string>;
  const poll = await sh(extra.poll!, { timeout: 20_000 });
  assert.match(poll.stdout, /"payload": "hello over http"/);
  const sub = await sh(`${extra.subscribe!.replace('curl -N', 'curl -N --max-time 1')} || true`, { timeout: 20_000 });
  assert.match(sub.stdout, /^id: 0\nevent: message\ndata: hello over http$/m);
  const admin = await sh(extra.admin!, { timeout: 20_000 });
  assert.match(admin.stdout, /"name": "demo"/);
});
