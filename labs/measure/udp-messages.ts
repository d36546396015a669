import dgram from 'node:dgram';
import { percentile, round } from '../../core/stats.ts';
import { sleep } from '../../core/time.ts';

/** What a paced stream of numbered datagrams through a UDP echo showed: the same shape of run as tcp-messages.ts. */
export interface UdpStreamResult {
  sent: number;
  delivered: number;
  lost: number;
  outOfOrder: number;
  p50: number;
  p99: number;
  max: number;
  /** Echoes that came back later than `lateMs` after their send (when asked). */
  late: number;
  /** Datagrams that arrived although an earlier one never did: nothing waited for the missing one. */
  pastAGap: number;
  durationMs: number;
}

/**
 * Sends `n` datagrams "seq padding" (8 digits, then padding to `size` bytes) paced at `ratePerSec` to a UDP echo and
 * times each echo; waits `settleMs` after the last send for stragglers. Used inside a namespace (kernel mode).
 */
export async function measureUdpMessages(req: { host: string; port: number; n: number; ratePerSec: number; size: number; lateMs?: number; settleMs?: number }): Promise<UdpStreamResult> {
  const socket = dgram.createSocket('udp4');
  socket.on('error', () => undefined); // an ICMP error for one datagram is one lost datagram here
  await new Promise<void>((r) => socket.bind(0, () => r()));
  const sentAt = new Float64Array(req.n);
  const latency = new Map<number, number>();
  let outOfOrder = 0;
  let highest = -1;
  socket.on('message', (m) => {
    const seq = Number.parseInt(m.toString('latin1', 0, 8), 10);
    if (!(seq >= 0 && seq < req.n) || latency.has(seq)) return;
    latency.set(seq, performance.now() - sentAt[seq]!);
    if (seq < highest) outOfOrder++;
    highest = Math.max(highest, seq);
  });
  const pad = 'x'.repeat(Math.max(0, req.size - 8));
  const started = performance.now();
  const gap = 1000 / req.ratePerSec;
  for (let i = 0; i < req.n; i++) {
    const wait = started + i * gap - performance.now();
    if (wait > 1) await sleep(wait);
    sentAt[i] = performance.now();
    socket.send(`${String(i).padStart(8, '0')}${pad}`, req.port, req.host);
  }
  const deadline = performance.now() + (req.settleMs ?? 400);
  while (latency.size < req.n && performance.now() < deadline) await sleep(20);
  const durationMs = performance.now() - started;
  socket.close();
  const missing = Array.from({ length: req.n }, (_, i) => i).filter((i) => !latency.has(i));
  const firstMissing = missing[0] ?? req.n;
  const l = [...latency.values()].sort((a, b) => a - b);
  return {
    sent: req.n,
    delivered: latency.size,
    lost: missing.length,
    outOfOrder,
    p50: round(percentile(l, 50)),
    p99: round(percentile(l, 99)),
    max: round(l[l.length - 1] ?? NaN),
    late: req.lateMs === undefined ? 0 : l.filter((x) => x > req.lateMs!).length,
    pastAGap: [...latency.keys()].filter((s) => s > firstMissing).length,
    durationMs: Math.round(durationMs),
  };
}
