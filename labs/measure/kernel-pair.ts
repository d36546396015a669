import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCodes, WirelabError } from '../../core/errors.ts';
import { KernelLink } from '../../core/impair/kernel/index.ts';
import type { Tracer } from '../../core/trace/index.ts';
import type { TcpRunResult } from './tcp-messages.ts';
import { MODULE_EXT } from '../../core/paths.ts';

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
    const { port } = JSON.parse(await server.next()) as { port: number };
    return new KernelTcpPair(link, port, client.child, client.next);
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
}

/** A kernel link with a TCP pair on it, closed when the lab (or whatever `defer` belongs to) ends. */
export async function openKernelTcpPair(ctx: { tracer: Tracer; defer(fn: () => unknown): void }): Promise<KernelTcpPair> {
  const link = KernelLink.create({ tracer: ctx.tracer });
  ctx.defer(() => link.close());
  return KernelTcpPair.start(link);
}
