/**
 * The README's worked example of adding your own protocol experiment: reliability built on UDP by hand, written the
 * way a user of wirelab would, in one file, with the same seams every lab uses (defineLab, ctx, the UDP relay).
 *
 * The protocol: DATA = [1, seq u32, payload], ACK = [2, n u32]. Stop-and-wait and go-back-N acknowledge cumulatively
 * (n = next sequence number expected); selective repeat acknowledges each packet (n = its seq).
 */
import dgram from 'node:dgram';
import { defineLab, type LabContext } from '../core/lab/index.ts';
import { startUdpRelay } from '../core/impair/index.ts';
import { kernelSupport, openKernelTcpPair, tcpGuaranteeHeld } from '../core/impair/kernel/index.ts';

type Mode = 'stop-and-wait' | 'go-back-N' | 'selective repeat';
const MODES: Mode[] = ['stop-and-wait', 'go-back-N', 'selective repeat'];
const MESSAGES = 150;
const SIZE = 512;
const WINDOW = 16;
const DELAY_MS = 2; // each way, added by the relay
const RTO_MS = 20; // fixed retransmission timeout: a few round trips of 2 × 2 ms
const LOSSES = [0, 0.05, 0.2];

interface Result {
  delivered: number;
  inOrderOnce: boolean;
  dataSent: number;
  retransmissions: number;
  maxInFlight: number;
  /** Receiver: out-of-order packets buffered (selective repeat) or thrown away (go-back-N, stop-and-wait). */
  buffered: number;
  discarded: number;
  ms: number;
  p50: number;
  p99: number;
}

const bind = (s: dgram.Socket): Promise<number> => new Promise((r) => s.bind(0, '127.0.0.1', () => r(s.address().port)));
const packet = (type: number, n: number, payload?: Buffer): Buffer => {
  const b = Buffer.alloc(5 + (payload?.length ?? 0));
  b[0] = type;
  b.writeUInt32BE(n, 1);
  payload?.copy(b, 5);
  return b;
};

/** Receiver: delivers in order, exactly once; remembers when each message was delivered. */
async function receiver(mode: Mode) {
  const sock = dgram.createSocket('udp4');
  const port = await bind(sock);
  const deliveredAt: number[] = [];
  const order: number[] = [];
  const buffer = new Map<number, Buffer>();
  const stats = { buffered: 0, discarded: 0 };
  let expected = 0;
  sock.on('message', (m, from) => {
    if (m.length < 5 || m[0] !== 1) return; // not DATA: ignore whatever it is
    const seq = m.readUInt32BE(1);
    const ack = (n: number): void => sock.send(packet(2, n), from.port, from.address);
    if (mode === 'selective repeat') {
      if (seq >= expected && seq < expected + WINDOW && !buffer.has(seq)) {
        if (seq !== expected) stats.buffered++;
        buffer.set(seq, m);
        while (buffer.has(expected)) {
          buffer.delete(expected);
          order.push(expected);
          deliveredAt[expected++] = performance.now();
        }
      }
      if (seq < expected + WINDOW) ack(seq); // re-acknowledge old ones too: their ACK may have been lost
      return;
    }
    if (seq === expected) {
      order.push(seq);
      deliveredAt[expected++] = performance.now();
    } else if (seq > expected) stats.discarded++;
    ack(expected);
  });
  return { sock, port, deliveredAt, order, stats };
}

/** Sender: a window of 1 (stop-and-wait) or WINDOW, and what to resend when the timer fires. */
function send(mode: Mode, sock: dgram.Socket, to: number): Promise<{ firstSent: number[]; dataSent: number; retransmissions: number; maxInFlight: number }> {
  const window = mode === 'stop-and-wait' ? 1 : WINDOW;
  const payload = Buffer.alloc(SIZE, 0x61);
  const firstSent: number[] = [];
  const acked = new Set<number>();
  const timers = new Map<number, NodeJS.Timeout>();
  let base = 0;
  let next = 0;
  let dataSent = 0;
  let retransmissions = 0;
  let maxInFlight = 0;
  let gbnTimer: NodeJS.Timeout | undefined;
  return new Promise((resolve) => {
    const transmit = (seq: number): void => {
      if (firstSent[seq] === undefined) firstSent[seq] = performance.now();
      else retransmissions++;
      dataSent++;
      sock.send(packet(1, seq, payload), to, '127.0.0.1');
      if (mode === 'selective repeat') {
        clearTimeout(timers.get(seq));
        timers.set(seq, setTimeout(() => transmit(seq), RTO_MS));
      } else if (gbnTimer === undefined) {
        gbnTimer = setTimeout(onTimeout, RTO_MS);
      }
    };
    // Go-back-N (and stop-and-wait, its window of 1): on timeout, everything not yet acknowledged goes again.
    const onTimeout = (): void => {
      gbnTimer = undefined;
      for (let s = base; s < next; s++) transmit(s);
    };
    const fill = (): void => {
      while (next < MESSAGES && next < base + window) transmit(next++);
      maxInFlight = Math.max(maxInFlight, next - base);
      if (base >= MESSAGES) {
        clearTimeout(gbnTimer);
        for (const t of timers.values()) clearTimeout(t);
        resolve({ firstSent, dataSent, retransmissions, maxInFlight });
      }
    };
    sock.on('message', (m) => {
      if (m.length < 5 || m[0] !== 2) return;
      const n = m.readUInt32BE(1);
      if (mode === 'selective repeat') {
        clearTimeout(timers.get(n));
        timers.delete(n);
        acked.add(n);
        while (acked.has(base)) base++;
      } else if (n > base) {
        base = n;
        clearTimeout(gbnTimer);
        gbnTimer = undefined;
        if (base < next) gbnTimer = setTimeout(onTimeout, RTO_MS);
      }
      fill();
    });
    fill();
  });
}

async function runOne(ctx: LabContext, mode: Mode, loss: number, seed: number): Promise<Result> {
  const rx = await receiver(mode);
  ctx.defer(() => new Promise<void>((r) => rx.sock.close(() => r())));
  const impair = { loss, delayMs: DELAY_MS };
  const relay = await ctx.start(startUdpRelay({ upstreamPort: rx.port, upstream: impair, downstream: impair, seed, tracer: ctx.tracer }));
  const tx = dgram.createSocket('udp4');
  await bind(tx);
  ctx.defer(() => new Promise<void>((r) => tx.close(() => r())));
  const started = performance.now();
  const s = await send(mode, tx, relay.port);
  const ms = performance.now() - started;
  const latency = rx.deliveredAt.map((t, i) => t - s.firstSent[i]!).sort((a, b) => a - b);
  const q = (p: number): number => Math.round(latency[Math.min(latency.length - 1, Math.floor(p * latency.length))]! * 10) / 10;
  return {
    delivered: rx.order.length,
    inOrderOnce: rx.order.length === MESSAGES && rx.order.every((seq, i) => seq === i),
    ...s,
    ...rx.stats,
    ms,
    p50: q(0.5),
    p99: q(0.99),
  };
}

const pct = (p: number): string => `${p * 100}%`;
const goodput = (ms: number): number => Math.round((MESSAGES * SIZE * 8) / ms) / 1000; // Mbit/s

export default defineLab({
  id: 'reliable-udp',
  title: 'Reliability by hand: stop-and-wait, go-back-N and selective repeat over lossy UDP',
  concept: 'What TCP does for you: sequence numbers, acknowledgements, timers and a window turn a lossy datagram service into an ordered stream.',
  protocols: ['udp', 'tcp'],
  timeoutMs: 60_000,
  async run(ctx) {
    const results = new Map<string, Result>();
    const rows: Array<Array<string | number>> = [];
    for (const loss of LOSSES) {
      for (const mode of MODES) {
        const r = await runOne(ctx, mode, loss, 100 + LOSSES.indexOf(loss));
        results.set(`${mode}@${loss}`, r);
        rows.push([mode, pct(loss), `${r.delivered}/${MESSAGES}`, r.dataSent, r.retransmissions, r.maxInFlight, goodput(r.ms), r.p50, r.p99]);
      }
    }
    const get = (m: Mode, l: number): Result => results.get(`${m}@${l}`)!;
    const worst = LOSSES[LOSSES.length - 1]!;

    // TCP next to it: real TCP under the same loss both ways, in kernel mode where available.
    const support = kernelSupport();
    const tcpRetrans: number[] = [];
    if (support.available) {
      const pair = await openKernelTcpPair(ctx);
      const link = pair.link;
      for (const loss of LOSSES) {
        link.setLoss('a', loss);
        link.setLoss('b', loss);
        const r = await pair.run({ n: MESSAGES, ratePerSec: 1_000_000, size: SIZE });
        tcpRetrans.push(r.retransmitted);
        rows.push(['TCP (kernel)', pct(loss), `${r.delivered}/${MESSAGES}`, '-', r.retransmitted, '-', goodput(r.durationMs), r.p50, r.p99]);
        ctx.claim(
          `TCP at ${pct(loss)} loss both ways: nothing lost, skipped, duplicated or reordered`,
          tcpGuaranteeHeld(r),
          `${r.delivered}/${MESSAGES}${r.endedBy === 'deadline' ? ' by the deadline, the rest still being retransmitted' : ''}, ${r.retransmitted} segments retransmitted`,
        );
        if (r.endedBy === 'deadline') ctx.note(`TCP at ${pct(loss)}: the retransmission timer backed off past the deadline (RTO doubles on each loss of the same segment); ${r.delivered} of ${MESSAGES} had arrived, in order, none skipped.`);
      }
      ctx.note(`TCP rows: kernel mode (${link.nsA} ⇄ ${link.nsB}), same loss both ways through nftables, but without the 2 ms each way (netem is ${kernelSupport().netem ? 'present but unused' : 'not available here'}), so compare its retransmissions, not its speed.`);
    } else {
      ctx.note(`No TCP rows: kernel mode is not available (${support.reason}), and the userland proxy cannot make TCP lose a segment.`);
    }
    ctx.table(`${MESSAGES} messages of ${SIZE} B, loss both ways, ${DELAY_MS} ms each way, window ${WINDOW}, timeout ${RTO_MS} ms`, ['protocol', 'loss', 'delivered', 'data sent', 'retransmitted', 'max in flight', 'goodput Mbit/s', 'p50 ms', 'p99 ms'], rows);

    ctx.claim('all three deliver every message exactly once and in order, at every loss rate', [...results.values()].every((r) => r.inOrderOnce), [...results.entries()].map(([k, r]) => `${k}: ${r.delivered}`).join(', '));
    ctx.claim('stop-and-wait never has more than one packet unacknowledged; the others fill their window', LOSSES.every((l) => get('stop-and-wait', l).maxInFlight === 1 && get('go-back-N', l).maxInFlight === WINDOW && get('selective repeat', l).maxInFlight === WINDOW), `max in flight: ${MODES.map((m) => `${m} ${get(m, 0).maxInFlight}`).join(', ')}`);
    ctx.claim('loss costs retransmissions: each protocol resends more at the highest loss than at none', MODES.every((m) => get(m, worst).retransmissions > get(m, 0).retransmissions), MODES.map((m) => `${m} ${get(m, 0).retransmissions} → ${get(m, worst).retransmissions}`).join(', '));
    const gbn = get('go-back-N', worst);
    const sr = get('selective repeat', worst);
    ctx.claim(`go-back-N resends the whole window, selective repeat only what was lost: more retransmissions at ${pct(worst)} loss`, gbn.retransmissions > sr.retransmissions, `${gbn.retransmissions} vs ${sr.retransmissions}`);
    ctx.claim('the go-back-N receiver throws away packets after a gap; the selective-repeat receiver buffers them', gbn.discarded > 0 && sr.buffered > 0 && sr.discarded === 0, `go-back-N discarded ${gbn.discarded}; selective repeat buffered ${sr.buffered}`);
    ctx.claim('a window pays: go-back-N and selective repeat send everything in fewer round trips than stop-and-wait on a clean path', get('go-back-N', 0).ms < get('stop-and-wait', 0).ms && get('selective repeat', 0).ms < get('stop-and-wait', 0).ms, `${Math.round(get('stop-and-wait', 0).ms)} ms vs ${Math.round(get('go-back-N', 0).ms)} and ${Math.round(get('selective repeat', 0).ms)} ms`);
    if (tcpRetrans.length > 0) ctx.claim('TCP does the same work in the kernel: it retransmits under loss', tcpRetrans.slice(1).every((n) => n > 0), `retransmitted segments: ${tcpRetrans.join(', ')}`);
    ctx.measure(`stop-and-wait goodput at ${pct(worst)} loss`, goodput(get('stop-and-wait', worst).ms), 'Mbit/s');
    ctx.measure(`selective repeat goodput at ${pct(worst)} loss`, goodput(sr.ms), 'Mbit/s');
  },
});
