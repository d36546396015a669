/**
 * One chat node for test/apps/chat/multinode.test.ts: a chat server on a broker of its own on the JetStream engine,
 * joined to the chat cluster on the same NATS, with a short presence lease.
 * Usage: node --conditions=wirelab-source --import tsx multinode-node.ts <nats-url> <presenceLeaseMs>
 * Prints one JSON line {endpoint, node} when it listens; SIGTERM closes it.
 */
import { startChatServer } from '../../../apps/chat/server/index.ts';
import { createBroker } from '../../../pubsub/broker/index.ts';
import { createEngine } from '../../../pubsub/engines/index.ts';

const [servers, lease] = process.argv.slice(2) as [string, string];
const engine = await createEngine({ kind: 'jetstream', servers });
const broker = await createBroker({ engine });
const chat = await startChatServer({ broker, cluster: { servers }, presenceLeaseMs: Number(lease), heartbeatMs: 0, ratePerSecond: 50, rateBurst: 50 });
process.stdout.write(`${JSON.stringify({ endpoint: chat.endpoint, node: chat.cluster?.node })}\n`);
process.once('SIGTERM', () => {
  void (async () => {
    await chat.close();
    await broker.close();
    await engine.close();
    process.exit(0);
  })();
});
