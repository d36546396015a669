import type { TcpClient } from '../../clients/tcp.ts';
import { percentile, round } from '../../core/stats.ts';
import { sleep } from '../../core/time.ts';

/** What a run of numbered messages over one TCP connection showed. */
export interface TcpRunResult {
  sent: number;
  delivered: number;
  duplicates: number;
  outOfOrder: number;
  /** Latency from write to echo, per message, ms. */
  p50: number;
  p99: number;
  max: number;
  /** Messages that waited over 100 ms: the stalls a lost segment causes while TCP waits to retransmit it. */
  stalled: number;
  /** Messages whose echo came later than the request's `lateMs` (0 when it set none). */
  late: number;
  durationMs: number;
  /** What ended the wait: every message back, the deadline (TCP still retransmitting), or a connection error. */
  endedBy: 'complete' | 'deadline' | 'error';
  /** The messages that came back are 0..delivered-1 with none missing in between (TCP never skips one). */
  contiguous: boolean;
}

/**
 * TCP's guarantee as far as a bounded run can see it: nothing duplicated, reordered or skipped, and either everything
 * arrived or the connection was still alive at the deadline (a deep retransmission backoff under heavy loss can
 * outlast any fixed deadline, which is slowness, not loss).
 */
export function tcpGuaranteeHeld(r: TcpRunResult): boolean {
  return r.duplicates === 0 && r.outOfOrder === 0 && r.contiguous && (r.delivered === r.sent || r.endedBy === 'deadline');
}


/**
 * Sends `n` numbered lines ("seq padding") paced at `ratePerSec` over a line-framed echo connection and times each
 * echo. Used in the lab process (userland) and inside a namespace (kernel mode) alike.
 */
export async function measureTcpMessages(
  connect: (o: object) => Promise<TcpClient>,
  req: { n: number; ratePerSec: number; size: number; timeoutMs?: number; lateMs?: number },
): Promise<TcpRunResult> {
  const client = await connect({});
  const sentAt = new Float64Array(req.n);
  const latency: number[] = [];
  const seen = new Set<number>();
  let duplicates = 0;
  let outOfOrder = 0;
  let highest = -1;
  const pad = 'x'.repeat(Math.max(0, req.size - 8));
  const started = performance.now();
  let endedBy: TcpRunResult['endedBy'] = 'complete';
  const receiving = (async () => {
    const deadline = performance.now() + (req.timeoutMs ?? 20_000);
    while (seen.size < req.n) {
      if (performance.now() >= deadline) {
        endedBy = 'deadline';
        break;
      }
      let msg: Buffer;
      try {
        msg = await client.next(Math.max(1, deadline - performance.now()));
      } catch (err) {
        endedBy = (err as { code?: string }).code === 'WL_ERR_TIMEOUT' ? 'deadline' : 'error';
        break;
      }
      const seq = Number.parseInt(msg.toString('latin1', 0, 8), 10);
      if (seen.has(seq)) duplicates++;
      else {
        if (seq < highest) outOfOrder++;
        seen.add(seq);
        latency.push(performance.now() - sentAt[seq]!);
      }
      highest = Math.max(highest, seq);
    }
  })();
  const gap = 1000 / req.ratePerSec;
  for (let i = 0; i < req.n; i++) {
    const due = started + i * gap;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    sentAt[i] = performance.now();
    void client.send(`${String(i).padStart(8, '0')}${pad}`);
  }
  await receiving;
  const durationMs = performance.now() - started;
  await client.destroy();
  latency.sort((a, b) => a - b);
  return {
    sent: req.n,
    delivered: seen.size,
    duplicates,
    outOfOrder,
    p50: round(percentile(latency, 50)),
    p99: round(percentile(latency, 99)),
    max: round(latency[latency.length - 1] ?? NaN),
    stalled: latency.filter((l) => l > 100).length,
    late: req.lateMs === undefined ? 0 : latency.filter((l) => l > req.lateMs!).length,
    durationMs: Math.round(durationMs),
    endedBy,
    contiguous: highest === seen.size - 1,
  };
}
