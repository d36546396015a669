import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { NOOP_TRACER } from '../../../core/trace/index.ts';
import { createBroker } from '../../../pubsub/broker/index.ts';
import { mqttServices } from '../../../pubsub/doors/mqtt/services.ts';
import { PUBSUB_SERVICES } from '../../../pubsub/services.ts';
import { requirePeer } from '../../helpers/peers.ts';

const run = promisify(execFile);

test('the wirelab up rows mqtt, mqtts and mqtt-ws start on one broker and their try commands work as printed', async (t) => {
  if (!requirePeer(t, 'mosquitto_sub', 'mosquitto-clients')) return;
  const broker = await createBroker({});
  t.after(() => broker.close());
  // The rows as `wirelab up` lists them, started here on this test's broker instead of the process's shared one.
  assert.deepEqual(PUBSUB_SERVICES.filter((r) => r.name.startsWith('mqtt')).map((r) => r.name), ['mqtt', 'mqtts', 'mqtt-ws']);
  const rows = mqttServices((start) => start(broker));
  assert.deepEqual(rows.map((r) => [r.name, r.wellKnownPort]), [['mqtt', 1883], ['mqtts', 8883], ['mqtt-ws', 8083]]);
  for (const row of rows) {
    const server = await row.start({ host: '127.0.0.1', port: 0, tracer: NOOP_TRACER });
    t.after(() => server.close());
    const { stdout } = await run('bash', ['-c', row.tryWith(server)], { timeout: 20_000 });
    if (row.name !== 'mqtt-ws') assert.match(stdout, /^demo\/(hello|tls) hi$/m, row.name);
  }
});
