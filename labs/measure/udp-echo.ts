import { openUdp } from '../../clients/udp.ts';
import type { Tracer } from '../../core/trace/index.ts';
import { nowMs, sleep } from '../../core/time.ts';
import { decodeHeader } from '../../protocols/datagram.ts';
import { percentile, round } from '../../core/stats.ts';

/** What a run of numbered datagrams through an echo showed, from the sender's side. */
export interface UdpRunResult {
  sent: number;
  /** Distinct sequence numbers echoed. */
  delivered: number;
  lost: number;
  duplicates: number;
  outOfOrder: number;
  p50: number;
  p99: number;
  durationMs: number;
}

/**
 * Sends `n` numbered datagrams (protocols/datagram.ts) to a UDP echo with at most `window` unanswered at once, so the
 * sockets' own buffers never overflow and every loss is the impairment's; `gone()` tells how many the impairment
 * dropped on purpose so far (they free their place in the window). Then waits until nothing arrives for `settleMs`.
 */
export async function measureUdpEcho(o: { port: number; host?: string; n: number; size?: number; window?: number; gone?: () => number; settleMs?: number; tracer?: Tracer }): Promise<UdpRunResult> {
  const client = await openUdp({ port: o.port, host: o.host ?? '127.0.0.1', ...(o.tracer ? { tracer: o.tracer } : {}) });
  const rtts: number[] = [];
  const seen = new Set<number>();
  let wake: (() => void) | undefined;
  client.onMessage((m) => {
    wake?.();
    const h = decodeHeader(m);
    if (!h) return;
    if (!seen.has(h.seq)) {
      seen.add(h.seq);
      rtts.push(nowMs() - h.sentAt);
    }
  });
  const payload = Buffer.alloc(Math.max(0, (o.size ?? 32) - 16), 0x2e);
  const window = o.window ?? 32;
  const gone = o.gone ?? (() => 0);
  const started = performance.now();
  for (let i = 0; i < o.n; ) {
    if (i - seen.size - gone() < window) {
      void client.send(payload);
      i++;
      continue;
    }
    // Window full: wait for an answer, or 5 ms for the ones still held back by the impairment.
    await new Promise<void>((r) => {
      const timer = setTimeout(r, 5);
      wake = () => {
        clearTimeout(timer);
        wake = undefined;
        r();
      };
    });
  }
  const settle = o.settleMs ?? 150;
  let last = -1;
  // Wait until nothing more arrives for `settle` ms (delayed and held-back datagrams included).
  while (seen.size + client.duplicates !== last) {
    last = seen.size + client.duplicates;
    await sleep(settle);
  }
  const durationMs = performance.now() - started - settle;
  await client.close();
  rtts.sort((a, b) => a - b);
  return {
    sent: o.n,
    delivered: seen.size,
    lost: o.n - seen.size,
    duplicates: client.duplicates,
    outOfOrder: client.outOfOrder,
    p50: round(percentile(rtts, 50)),
    p99: round(percentile(rtts, 99)),
    durationMs: Math.round(durationMs),
  };
}
