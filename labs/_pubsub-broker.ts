/**
 * A broker process for the pub/sub labs to kill by PID (labs/_pubsub.ts startBrokerProcess): an embedded engine on
 * `<dir>` with fsync `<policy>`, the broker and wirelab's native TCP door on a free 127.0.0.1 port.
 * Prints `listening <port>` once it serves; runs until it is killed (or stdin closes: the lab's process is gone).
 * Not a lab: files starting with _ are not listed.
 */
import { createEmbeddedEngine } from '../pubsub/engines/index.ts';
import { createBroker } from '../pubsub/broker/index.ts';
import { startPubsubTcpServer } from '../pubsub/doors/native/index.ts';
import type { FsyncPolicy } from '../pubsub/log/types.ts';

const [dir, fsync] = process.argv.slice(2) as [string, FsyncPolicy];
const engine = await createEmbeddedEngine({ dir, fsync });
const broker = await createBroker({ engine });
// The lab publishes windows of 64 to 256 in flight; the door's default (256) would refuse a burst of acks=0 publishes.
const door = await startPubsubTcpServer({ broker, limits: { maxPendingPublishes: 100_000 } });
process.stdout.write(`listening ${door.port}\n`);
process.stdin.on('error', () => undefined);
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
