/**
 * A queue-group member that takes messages and never acks them (the kill -9 test SIGKILLs it mid-processing).
 * Usage: node --conditions=wirelab-source --import tsx native-holder.ts <url> <pattern> <group> <ackWaitMs>
 * Prints "got <offset>" for each message it holds.
 */
import { connectPubsub } from '../../../clients/pubsub.ts';

const [url, pattern, group, ackWaitMs] = process.argv.slice(2) as [string, string, string, string];
const client = await connectPubsub({ url });
await client.subscribe(pattern, {
  group,
  ack: 'manual',
  ackWaitMs: Number(ackWaitMs),
  onMessage: (m) => process.stdout.write(`got ${m.offset}\n`),
});
process.stdout.write('ready\n');
