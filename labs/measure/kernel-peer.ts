/**
 * The program kernel mode runs inside a namespace (`node --import tsx kernel-peer.ts <command>`): wirelab's own TCP echo
 * server, or a client that sends numbered, time-stamped messages and reports what came back. One JSON line per answer.
 *
 *   echo-server <host>         prints {"port": N}; serves until stdin closes
 *   tcp-messages <host>        reads {"port", "n", "ratePerSec", "size"} lines; answers each with a TcpRunResult line
 */
import { createInterface } from 'node:readline';
import { connectTcp } from '../../clients/tcp.ts';
import { startTcpServer } from '../../servers/tcp/index.ts';
import { measureTcpMessages } from './tcp-messages.ts';

const [command, host] = process.argv.slice(2);
const out = (v: unknown): boolean => process.stdout.write(JSON.stringify(v) + '\n');

if (command === 'echo-server') {
  const server = await startTcpServer({ host: host!, port: 0, mode: 'echo', framing: 'line' });
  out({ port: server.port });
  process.stdin.resume();
  process.stdin.on('end', () => void server.close().then(() => process.exit(0)));
} else if (command === 'tcp-messages') {
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    const { port, ...req } = JSON.parse(line) as { port: number; n: number; ratePerSec: number; size: number; timeoutMs?: number };
    try {
      out(await measureTcpMessages((o) => connectTcp({ host: host!, port, framing: 'line', noDelay: true, ...o }), req));
    } catch (err) {
      out({ error: err instanceof Error ? err.message : String(err) });
    }
  }
  process.exit(0);
} else {
  process.stderr.write(`kernel-peer.ts: unknown command ${command}\n`);
  process.exit(2);
}
