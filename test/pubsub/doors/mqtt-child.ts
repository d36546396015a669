// A broker with an embedded engine on a data directory and one MQTT listener, in its own process, so a test can
// kill -9 it by PID and start it again on the same directory. Prints {"port": n} on stdout once listening.
import { createBroker } from '../../../pubsub/broker/index.ts';
import { createEngine } from '../../../pubsub/engines/index.ts';
import { startMqttServer } from '../../../pubsub/doors/mqtt/index.ts';

const dir = process.argv[2]!;
const port = Number(process.argv[3] ?? 0);
const engine = await createEngine({ kind: 'embedded', dir, fsync: 'batch' });
const broker = await createBroker({ engine });
const server = await startMqttServer({ broker, port });
process.stdout.write(JSON.stringify({ port: server.port }) + '\n');
process.on('SIGTERM', () => {
  void server.close().then(() => broker.close()).then(() => engine.close()).then(() => process.exit(0));
});
