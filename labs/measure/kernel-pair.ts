import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { promisify } from 'node:util';
import { createInterface } from 'node:readline';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCodes, WirelabError } from '../../core/errors.ts';
import { KernelLink } from '../../core/impair/kernel/index.ts';
import type { Tracer } from '../../core/trace/index.ts';
import type { TcpRunResult } from './tcp-messages.ts';
import type { UdpStreamResult } from './udp-messages.ts';
import { MODULE_EXT } from '../../core/paths.ts';

const run = promisify(execFile);
const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..');
// From the sources the peer runs through tsx; from the built package (dist/) it is plain JavaScript.
const PEER_ARGS = MODULE_EXT === '.ts' ? ['--import', 'tsx', join(HERE, 'kernel-peer.ts')] : [join(HERE, 'kernel-peer.js')];

/**
 * A TCP echo server in namespace b and a message client in namespace a, over a kernel link: each `run` sends numbered
 * messages through whatever loss and rate the link has at that moment.
 */
export class KernelTcpPair {
  readonly #next: () => Promise<string>;
  private constructor(
    readonly link: KernelLink,
    readonly serverPort: number,
    /** The UDP echo beside the TCP one in namespace b. */
    readonly udpPort: number,
    private readonly client: ReturnType<KernelLink['spawn']>,
    next: () => Promise<string>,
  ) {
    this.#next = next;
  }

  static async start(link: KernelLink): Promise<KernelTcpPair> {
    const peer = (side: 'a' | 'b', args: string[]) => {
      // link.spawn handles the child's 'error' (and its stdin's) where it makes the process.
      const child = link.spawn(side, process.execPath, [...PEER_ARGS, ...args], ROOT);
      const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
      let stderr = '';
      child.stderr!.on('data', (d) => (stderr += d));
      const next = async (): Promise<string> => {
        const r = await Promise.race([lines.next(), once(child, 'exit').then(() => ({ done: true, value: undefined }))]);
        if (r.done || r.value === undefined) throw new WirelabError(ErrorCodes.CLOSED, `kernel-mode peer in ${link.ns(side)} ended: ${stderr.trim()}`);
        return r.value;
      };
      return { child, next };
    };
    // Both peers start at once (each is a node process loading tsx, seconds on a loaded machine); the client learns
    // the server's port from each request, so it need not wait for the server to print it.
    const server = peer('b', ['echo-server', link.addrB]);
    const client = peer('a', ['tcp-messages', link.addrB]);
    const { port, udpPort } = JSON.parse(await server.next()) as { port: number; udpPort: number };
    return new KernelTcpPair(link, port, udpPort, client.child, client.next);
  }

  /** Sends the messages from a to b's echo server and back; adds the kernel's retransmission counts of both sides. */
  async run(req: { n: number; ratePerSec: number; size: number; timeoutMs?: number }): Promise<TcpRunResult & { retransmitted: number; dropped: number; duplicateSegments: number }> {
    const count = (): number[] => [
      this.link.tcpCounters('a').RetransSegs ?? 0,
      this.link.tcpCounters('b').RetransSegs ?? 0,
      this.link.dropped('b'),
      // Duplicate segments the server's TCP received and threw away (it answers each with a D-SACK).
      this.link.tcpExtCounters('b').TCPDSACKOldSent ?? 0,
    ];
    const before = count();
    this.client.stdin!.write(JSON.stringify({ ...req, port: this.serverPort }) + '\n');
    const answer = JSON.parse(await this.#next()) as TcpRunResult & { error?: string };
    if (answer.error) throw new WirelabError(ErrorCodes.CLOSED, `kernel-mode client: ${answer.error}`);
    const after = count();
    const d = after.map((v, i) => v - before[i]!);
    return { ...answer, retransmitted: d[0]! + d[1]!, dropped: d[2]!, duplicateSegments: d[3]! };
  }

  /**
   * A TCP stream and a UDP stream of the same messages at once, from a to b's echoes, through whatever the link does;
   * with the retransmissions, the segments b's TCP held out of order (waiting for a hole) and b's nftables ruleset
   * before and after (its counters), each read in one process per namespace, both namespaces at once.
   */
  async runBoth(req: { n: number; ratePerSec: number; size: number; timeoutMs?: number; lateMs?: number }): Promise<{ tcp: TcpRunResult & { retransmitted: number; outOfOrderQueued: number }; udp: UdpStreamResult; ruleset: { before: string; after: string } }> {
    const before = await Promise.all([snapshot(this.link.nsA), snapshot(this.link.nsB)]);
    this.client.stdin!.write(JSON.stringify({ ...req, port: this.serverPort, udpPort: this.udpPort }) + '\n');
    const answer = JSON.parse(await this.#next()) as { tcp: TcpRunResult; udp: UdpStreamResult; error?: string };
    if (answer.error) throw new WirelabError(ErrorCodes.CLOSED, `kernel-mode client: ${answer.error}`);
    const after = await Promise.all([snapshot(this.link.nsA), snapshot(this.link.nsB)]);
    const d = (side: 0 | 1, key: string): number => (after[side].counters[key] ?? 0) - (before[side].counters[key] ?? 0);
    return {
      tcp: { ...answer.tcp, retransmitted: d(0, 'RetransSegs') + d(1, 'RetransSegs'), outOfOrderQueued: d(1, 'TCPOFOQueue') },
      udp: answer.udp,
      ruleset: { before: before[1].ruleset, after: after[1].ruleset },
    };
  }
}

/** A namespace's Tcp: and TcpExt: counters (/proc/net/snmp, /proc/net/netstat) and its nftables ruleset, in one process. */
async function snapshot(ns: string): Promise<{ counters: Record<string, number>; ruleset: string }> {
  const { stdout } = await run('ip', ['netns', 'exec', ns, 'sh', '-c', 'cat /proc/net/snmp /proc/net/netstat; echo ===; nft list ruleset'], { timeout: 10_000 });
  const [proc = '', ruleset = ''] = stdout.split('===\n');
  const counters: Record<string, number> = {};
  const lines = proc.split('\n');
  for (let i = 0; i + 1 < lines.length; i++) {
    const [k, v] = [lines[i]!.split(/\s+/), lines[i + 1]!.split(/\s+/)];
    if ((k[0] === 'Tcp:' || k[0] === 'TcpExt:') && v[0] === k[0] && Number.isNaN(Number(k[1]))) k.slice(1).forEach((name, j) => (counters[name] = Number(v[j + 1])));
  }
  return { counters, ruleset };
}

/** A kernel link with a TCP pair on it, closed when the lab (or whatever `defer` belongs to) ends. */
export async function openKernelTcpPair(ctx: { tracer: Tracer; defer(fn: () => unknown): void }): Promise<KernelTcpPair> {
  const link = KernelLink.create({ tracer: ctx.tracer });
  ctx.defer(() => link.close());
  return KernelTcpPair.start(link);
}
