/**
 * The README's worked example of adding your own protocol experiment: reliability built on UDP by hand, written the
 * way a user of wirelab would, in one file, with the same seams every lab uses (defineLab, ctx, the UDP relay).
 *
 * The protocol: DATA = [1, seq u32, round u32, payload], ACK = [2, n u32, round u32]. Stop-and-wait and go-back-N
 * acknowledge cumulatively (n = next sequence number expected); selective repeat acknowledges each packet (n = its seq).
 * `round` counts round trips on the wire: an ACK carries the round of the DATA it answers, and a DATA sent because of
 * an ACK of round r is of round r + 1 (a retransmission after a timeout starts a new round too), so the highest round
 * is the number of times the sender had to wait for an answer, whatever the clock says.
 */
import dgram from 'node:dgram';
import { defineLab, type LabContext } from '../core/lab/index.ts';
import { startUdpRelay } from '../core/impair/index.ts';
import { kernelSupport } from '../core/impair/kernel/index.ts';
import { openKernelTcpPair, tcpGuaranteeHeld, type TcpRunResult } from './measure/index.ts';
import { percentile, round as roundTo } from '../core/stats.ts';
import { bindUdp } from '../core/server.ts';

type Mode = 'stop-and-wait' | 'go-back-N' | 'selective repeat';
const MODES: Mode[] = ['stop-and-wait', 'go-back-N', 'selective repeat'];
// Set from ctx.params when run() starts (labs run one at a time); the values here are the defaults.
let MESSAGES = 150;
let SIZE = 512;
let WINDOW = 16;
let DELAY_MS = 2; // each way, added by the relay
let RTO_MS = 20; // fixed retransmission timeout: five round trips of 2 × 2 ms
let LOSSES = [0, 0.05, 0.2];
/** Kernel TCP rows wait this long for the last echo: long enough that delivery, not the timer, decides the claim. */
const TCP_DEADLINE_MS = 45_000;
const HEADER = 9;

interface Result {
  delivered: number;
  inOrderOnce: boolean;
  dataSent: number;
  retransmissions: number;
  maxInFlight: number;
  /** Highest round on the wire: round trips the sender waited through (see the protocol above). */
  rounds: number;
  /** Most sequence numbers sent and not yet acknowledged, as a tap between the sender and the relay saw them pass. */
  wireInFlight: number;
  /** DATA datagrams the relay dropped. */
  dataDropped: number;
  /** Receiver: out-of-order packets buffered (selective repeat) or thrown away (go-back-N, stop-and-wait). */
  buffered: number;
  discarded: number;
  ms: number;
  p50: number;
  p99: number;
}

/** Binds to a free loopback port through core's bindUdp, which keeps an 'error' listener on the socket. */
const bind = (s: dgram.Socket): Promise<number> => bindUdp(s, 0, '127.0.0.1');
const packet = (type: number, n: number, round: number, payload?: Buffer): Buffer => {
  const b = Buffer.alloc(HEADER + (payload?.length ?? 0));
  b[0] = type;
  b.writeUInt32BE(n, 1);
  b.writeUInt32BE(round, 5);
  payload?.copy(b, HEADER);
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
    if (m.length < HEADER || m[0] !== 1) return; // not DATA: ignore whatever it is
    const seq = m.readUInt32BE(1);
    const round = m.readUInt32BE(5);
    const ack = (n: number): void => sock.send(packet(2, n, round), from.port, from.address);
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
function send(mode: Mode, sock: dgram.Socket, to: number): Promise<{ firstSent: number[]; dataSent: number; retransmissions: number; maxInFlight: number; rounds: number }> {
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
  /** Round of the newest ACK: what a DATA sent now answers. Highest round sent: the count of waits. */
  let ackRound = 0;
  let rounds = 0;
  const lastRound: number[] = [];
  let gbnTimer: NodeJS.Timeout | undefined;
  return new Promise((resolve) => {
    const transmit = (seq: number, afterTimeout = false): void => {
      if (firstSent[seq] === undefined) firstSent[seq] = performance.now();
      else retransmissions++;
      dataSent++;
      // A timeout is a wait too: what it resends goes a round after its own previous sending.
      const round = afterTimeout ? (lastRound[seq] ?? 0) + 1 : ackRound + 1;
      lastRound[seq] = round;
      rounds = Math.max(rounds, round);
      sock.send(packet(1, seq, round, payload), to, '127.0.0.1');
      if (mode === 'selective repeat') {
        clearTimeout(timers.get(seq));
        timers.set(seq, setTimeout(() => transmit(seq, true), RTO_MS));
      } else if (gbnTimer === undefined) {
        gbnTimer = setTimeout(onTimeout, RTO_MS);
      }
    };
    // Go-back-N (and stop-and-wait, its window of 1): on timeout, everything not yet acknowledged goes again.
    const onTimeout = (): void => {
      gbnTimer = undefined;
      for (let s = base; s < next; s++) transmit(s, true);
    };
    const fill = (): void => {
      while (next < MESSAGES && next < base + window) transmit(next++);
      maxInFlight = Math.max(maxInFlight, next - base);
      if (base >= MESSAGES) {
        clearTimeout(gbnTimer);
        for (const t of timers.values()) clearTimeout(t);
        resolve({ firstSent, dataSent, retransmissions, maxInFlight, rounds });
      }
    };
    sock.on('message', (m) => {
      if (m.length < HEADER || m[0] !== 2) return;
      const n = m.readUInt32BE(1);
      ackRound = Math.max(ackRound, m.readUInt32BE(5));
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

/**
 * A tap on the wire between the sender and the relay: it forwards every datagram both ways and reads the sequence
 * numbers going out and the acknowledgements coming back, so packets in flight are counted from what crossed it, not
 * from the sender's own variables. Retransmissions of a number already out do not count twice.
 */
async function wireTap(mode: Mode, relayPort: number) {
  const sock = dgram.createSocket('udp4');
  const port = await bind(sock);
  let senderPort: number | undefined;
  const out = new Set<number>();
  const acked = new Set<number>();
  let ackedBelow = 0; // cumulative: every number under it is acknowledged
  let highestOut = -1;
  let max = 0;
  sock.on('message', (m, from) => {
    if (from.port === relayPort) {
      if (m.length >= HEADER && m[0] === 2) {
        const n = m.readUInt32BE(1);
        if (mode === 'selective repeat') acked.add(n);
        else ackedBelow = Math.max(ackedBelow, n);
      }
      if (senderPort !== undefined) sock.send(m, senderPort, '127.0.0.1');
      return;
    }
    senderPort = from.port;
    if (m.length >= HEADER && m[0] === 1) {
      const seq = m.readUInt32BE(1);
      out.add(seq);
      highestOut = Math.max(highestOut, seq);
      const inFlight = mode === 'selective repeat' ? [...out].filter((x) => !acked.has(x)).length : highestOut + 1 - ackedBelow;
      max = Math.max(max, inFlight);
    }
    sock.send(m, relayPort, '127.0.0.1');
  });
  return { sock, port, maxInFlight: () => max };
}

async function runOne(ctx: LabContext, mode: Mode, loss: number, seed: number): Promise<Result> {
  const rx = await receiver(mode);
  ctx.defer(() => new Promise<void>((r) => rx.sock.close(() => r())));
  const impair = { loss, delayMs: DELAY_MS };
  const relay = await ctx.start(startUdpRelay({ upstreamPort: rx.port, upstream: impair, downstream: impair, seed, tracer: ctx.tracer }));
  const tap = await wireTap(mode, relay.port);
  ctx.defer(() => new Promise<void>((r) => tap.sock.close(() => r())));
  const tx = dgram.createSocket('udp4');
  await bind(tx);
  ctx.defer(() => new Promise<void>((r) => tx.close(() => r())));
  const started = performance.now();
  const s = await send(mode, tx, tap.port);
  const ms = performance.now() - started;
  const latency = rx.deliveredAt.map((t, i) => t - s.firstSent[i]!).sort((a, b) => a - b);
  const q = (p: number): number => roundTo(percentile(latency, p * 100), 1);
  return {
    delivered: rx.order.length,
    inOrderOnce: rx.order.length === MESSAGES && rx.order.every((seq, i) => seq === i),
    ...s,
    ...rx.stats,
    wireInFlight: tap.maxInFlight(),
    dataDropped: relay.stats('upstream').lost,
    ms,
    p50: q(0.5),
    p99: q(0.99),
  };
}

const pct = (p: number): string => `${p * 100}%`;
/** TCP's guarantee, decided by delivery: every message back, once each, in order, before the deadline. */
const allDelivered = (r: TcpRunResult): boolean => tcpGuaranteeHeld(r) && r.endedBy === 'complete' && r.delivered === r.sent;
const goodput = (ms: number): number => Math.round((MESSAGES * SIZE * 8) / ms) / 1000; // Mbit/s

export default defineLab({
  id: 'reliable-udp',
  title: 'Reliability by hand: stop-and-wait, go-back-N and selective repeat over lossy UDP',
  concept: 'What TCP does for you: sequence numbers, acknowledgements, timers and a window turn a lossy datagram service into an ordered stream.',
  protocols: ['udp', 'tcp'],
  // Normally ~12 s; the TCP deadline can stretch a row in a rare long backoff.
  timeoutMs: 120_000,
  params: {
    loss: { kind: 'percent', default: '20%', min: 0.1, max: 0.2, help: 'the highest loss rate, both ways (rows: 0, 5%, and it); above 20% kernel TCP can outlast its 45 s deadline (seen at 30%)' },
    messages: { kind: 'count', default: 150, min: 50, max: 2_000, help: 'messages each protocol delivers per row' },
    size: { kind: 'size', default: 512, min: 16, max: 1_400, help: 'payload bytes per message' },
    window: { kind: 'int', default: 16, min: 2, max: 64, help: 'the go-back-N and selective-repeat window' },
    delay: { kind: 'duration', default: '2ms', min: 1, max: 20, help: 'delay each way, added by the relay (the timeout is five round trips)' },
  },
  checkParams: (p) =>
    p.messages < 4 * p.window ? `messages (${p.messages}) must be at least 4 × window (${p.window}) for a full window to be seen in flight`
    : p.messages * p.loss < 15 ? `messages × loss (${(p.messages * p.loss).toFixed(1)}) must be at least 15 for losses to decide the retransmission claims`
    : p.messages * p.delay * 2 > 30_000 ? 'stop-and-wait needs messages × round trip; over 30 s here, lower messages or delay'
    : undefined,
  async run(ctx) {
    ({ messages: MESSAGES, size: SIZE, window: WINDOW, delay: DELAY_MS } = ctx.params);
    RTO_MS = 10 * DELAY_MS;
    LOSSES = [0, 0.05, ctx.params.loss];
    const results = new Map<string, Result>();
    const rows: Array<Array<string | number>> = [];
    for (const loss of LOSSES) {
      for (const mode of MODES) {
        const r = await runOne(ctx, mode, loss, 100 + LOSSES.indexOf(loss));
        results.set(`${mode}@${loss}`, r);
        rows.push([mode, pct(loss), `${r.delivered}/${MESSAGES}`, r.dataSent, r.retransmissions, r.maxInFlight, r.rounds, goodput(r.ms), r.p50, r.p99]);
      }
    }
    const get = (m: Mode, l: number): Result => results.get(`${m}@${l}`)!;
    const worst = LOSSES[LOSSES.length - 1]!;
    ctx.series('goodput against loss', 'loss %', LOSSES.map((l) => l * 100), 'goodput Mbit/s', Object.fromEntries(MODES.map((m) => [m, LOSSES.map((l) => goodput(get(m, l).ms))])));

    // TCP next to it: real TCP under the same loss both ways, in kernel mode where available.
    const support = kernelSupport();
    const tcpRetrans: number[] = [];
    if (support.available) {
      const pair = await openKernelTcpPair(ctx);
      const link = pair.link;
      for (const loss of LOSSES) {
        link.setLoss('a', loss);
        link.setLoss('b', loss);
        const r = await pair.run({ n: MESSAGES, ratePerSec: 1_000_000, size: SIZE, timeoutMs: TCP_DEADLINE_MS });
        tcpRetrans.push(r.retransmitted);
        rows.push(['TCP (kernel)', pct(loss), `${r.delivered}/${MESSAGES}`, '-', r.retransmitted, '-', '-', goodput(r.durationMs), r.p50, r.p99]);
        ctx.claim(
          `TCP at ${pct(loss)} loss both ways: every message delivered, nothing skipped, duplicated or reordered`,
          allDelivered(r),
          `${r.delivered}/${MESSAGES} in ${(r.durationMs / 1000).toFixed(1)} s${r.endedBy === 'complete' ? '' : `, ended by the ${r.endedBy} (${TCP_DEADLINE_MS / 1000} s)`}, ${r.retransmitted} segments retransmitted`,
        );
      }
      ctx.note(`TCP rows: kernel mode (${link.nsA} ⇄ ${link.nsB}), same loss both ways through nftables, but without the 2 ms each way (netem is ${kernelSupport().netem ? 'present but unused' : 'not available here'}), so compare its retransmissions, not its speed.`);
    } else {
      ctx.note(`not observed: TCP under the same loss (no TCP rows). Kernel mode is not available (${support.reason}), and the userland proxy cannot make TCP lose a segment.`);
    }
    ctx.table(`${MESSAGES} messages of ${SIZE} B, loss both ways, ${DELAY_MS} ms each way, window ${WINDOW}, timeout ${RTO_MS} ms`, ['protocol', 'loss', 'delivered', 'data sent', 'retransmitted', 'max in flight', 'round trips', 'goodput Mbit/s', 'p50 ms', 'p99 ms'], rows);

    ctx.claim('all three deliver every message exactly once and in order, at every loss rate', [...results.values()].every((r) => r.inOrderOnce), [...results.entries()].map(([k, r]) => `${k}: ${r.delivered}`).join(', '));
    ctx.claim(
      'on the wire (a tap in front of the relay, clean path): stop-and-wait never had more than one packet unacknowledged; the others filled their window',
      get('stop-and-wait', 0).wireInFlight === 1 && get('go-back-N', 0).wireInFlight === WINDOW && get('selective repeat', 0).wireInFlight === WINDOW,
      `most sequence numbers out without their ACK back: ${MODES.map((m) => `${m} ${get(m, 0).wireInFlight}`).join(', ')} (window ${WINDOW})`,
    );
    ctx.claim(
      'loss costs retransmissions: at every loss rate each protocol resent at least every DATA packet the relay dropped',
      [...results.values()].every((r) => r.retransmissions >= r.dataDropped) && MODES.every((m) => get(m, worst).dataDropped > 0),
      MODES.map((m) => `${m} at ${pct(worst)}: ${get(m, worst).retransmissions} resent for ${get(m, worst).dataDropped} dropped`).join(', '),
    );
    const gbn = get('go-back-N', worst);
    const sr = get('selective repeat', worst);
    ctx.claim(`go-back-N resends the whole window, selective repeat only what was lost: more retransmissions at ${pct(worst)} loss`, gbn.retransmissions > sr.retransmissions, `${gbn.retransmissions} vs ${sr.retransmissions}`);
    ctx.claim('the go-back-N receiver throws away packets after a gap; the selective-repeat receiver buffers them', gbn.discarded > 0 && sr.buffered > 0 && sr.discarded === 0, `go-back-N discarded ${gbn.discarded}; selective repeat buffered ${sr.buffered}`);
    ctx.claim(
      'a window pays: go-back-N and selective repeat send everything in fewer round trips than stop-and-wait on a clean path',
      get('go-back-N', 0).rounds < get('stop-and-wait', 0).rounds && get('selective repeat', 0).rounds < get('stop-and-wait', 0).rounds,
      `round trips counted on the wire: stop-and-wait ${get('stop-and-wait', 0).rounds}, go-back-N ${get('go-back-N', 0).rounds}, selective repeat ${get('selective repeat', 0).rounds} (${Math.round(get('stop-and-wait', 0).ms)}, ${Math.round(get('go-back-N', 0).ms)} and ${Math.round(get('selective repeat', 0).ms)} ms)`,
    );
    // A few segments at 5% may all get through; at 20% both ways some are always lost (and the claim says so if not).
    if (tcpRetrans.length > 0) ctx.claim(`TCP does the same work in the kernel: it retransmitted at ${pct(worst)} loss`, tcpRetrans[tcpRetrans.length - 1]! > 0, `retransmitted segments at ${LOSSES.map(pct).join(', ')}: ${tcpRetrans.join(', ')}`);
    ctx.measure(`stop-and-wait goodput at ${pct(worst)} loss`, goodput(get('stop-and-wait', worst).ms), 'Mbit/s');
    ctx.measure(`selective repeat goodput at ${pct(worst)} loss`, goodput(sr.ms), 'Mbit/s');
  },
});
