/**
 * The program kernel mode runs inside a namespace (`node --import tsx kernel-peer.ts <command>`): wirelab's own TCP echo
 * server, or a client that sends numbered, time-stamped messages and reports what came back. One JSON line per answer.
 *
 *   echo-server <host>         prints {"port": N, "udpPort": M} (TCP line echo, UDP echo); serves until stdin closes
 *   tcp-messages <host>        reads {"port", "n", "ratePerSec", "size"} lines; answers each with a TcpRunResult line; a
 *                              line with "udpPort" runs a UDP stream beside the TCP one and answers {"tcp", "udp"}
 */
import { createInterface } from 'node:readline';
import { connectTcp } from '../../clients/tcp.ts';
import { startTcpServer } from '../../servers/tcp/index.ts';
import { startUdpServer } from '../../servers/udp/index.ts';
import { measureTcpMessages } from './tcp-messages.ts';
import { measureUdpMessages } from './udp-messages.ts';

const [command, host] = process.argv.slice(2);
const out = (v: unknown): boolean => process.stdout.write(JSON.stringify(v) + '\n');

if (command === 'echo-server') {
  const server = await startTcpServer({ host: host!, port: 0, mode: 'echo', framing: 'line' });
  const udp = await startUdpServer({ host: host!, port: 0 });
  out({ port: server.port, udpPort: udp.port });
  process.stdin.resume();
  process.stdin.on('end', () => void Promise.all([server.close(), udp.close()]).then(() => process.exit(0)));
} else if (command === 'tcp-messages') {
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    const { port, ...req } = JSON.parse(line) as { port: number; n: number; ratePerSec: number; size: number; timeoutMs?: number; lateMs?: number; udpPort?: number };
    try {
      const tcp = measureTcpMessages((o) => connectTcp({ host: host!, port, framing: 'line', noDelay: true, ...o }), req);
      if (req.udpPort === undefined) out(await tcp);
      else {
        // Side by side in one process: a stall of this process hits both streams alike.
        const udp = measureUdpMessages({ ...req, host: host!, port: req.udpPort });
        out({ tcp: await tcp, udp: await udp });
      }
    } catch (err) {
      out({ error: err instanceof Error ? err.message : String(err) });
    }
  }
  process.exit(0);
} else {
  process.stderr.write(`kernel-peer.ts: unknown command ${command}\n`);
  process.exit(2);
}
