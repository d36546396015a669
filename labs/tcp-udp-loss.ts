import { spawnSync } from 'node:child_process';
import { startUdpRelay } from '../core/impair/index.ts';
import { kernelSupport, type KernelLink } from '../core/impair/kernel/index.ts';
import { defineLab, type LabContext } from '../core/lab/index.ts';
import { startUdpServer } from '../servers/udp/index.ts';
import { measureUdpMessages, openKernelTcpPair, tcpGuaranteeHeld } from './measure/index.ts';

const pct = (p: number): string => `${Math.round(p * 1000) / 10}%`;
/** Rows: a clean link, 1 %, and the lab's loss (when above 1 %). */
const lossRows = (max: number): number[] => [...new Set([0, Math.min(0.01, max), max])];

/** Packets and bytes (IP length: IP + transport headers + data) per protocol in namespace b, before and after the loss rule. */
interface Wire {
  tcpIn: number[];
  udpIn: number[];
  tcpKept: number[];
  udpKept: number[];
  tcpOut: number[];
  udpOut: number[];
}

const TABLE = 'wirelab_wire';

/**
 * nftables counters in b: on the input hook before (-10) and after (10) the lab's drop rule (priority 0), and on output.
 * Arriving before minus after is what the loss rule dropped, per protocol.
 */
function addWireCounters(link: KernelLink): void {
  const chain = (name: string, hook: string, prio: number): string =>
    ` chain ${name} {\n  type filter hook ${hook} priority ${prio};\n  meta l4proto tcp counter\n  meta l4proto udp counter\n }\n`;
  const rules = `table inet ${TABLE} {\n${chain('arrive', 'input', -10)}${chain('kept', 'input', 10)}${chain('leave', 'output', 10)}}\n`;
  spawnSync('ip', ['netns', 'exec', link.nsB, 'nft', '-f', '-'], { input: rules, encoding: 'utf8', timeout: 10_000 });
}

/** The counters of the lab's table, from b's whole ruleset as `nft list ruleset` prints it. */
function readWire(ruleset: string): Wire {
  const out = ruleset.slice(Math.max(0, ruleset.indexOf(`table inet ${TABLE}`)));
  const c = [...out.matchAll(/counter packets (\d+) bytes (\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
  const z = [0, 0];
  return { tcpIn: c[0] ?? z, udpIn: c[1] ?? z, tcpKept: c[2] ?? z, udpKept: c[3] ?? z, tcpOut: c[4] ?? z, udpOut: c[5] ?? z };
}

const delta = (a: Wire, b: Wire): Wire => Object.fromEntries(Object.keys(a).map((k) => [k, (b[k as keyof Wire]).map((v, i) => v - a[k as keyof Wire][i]!)])) as unknown as Wire;

/** Without kernel mode: the UDP half through the userland relay (it drops datagrams; it cannot make TCP lose one). */
async function udpOnly(ctx: LabContext, losses: number[], o: { N: number; RATE: number; SIZE: number; LATE: number }): Promise<void> {
  const echo = await ctx.start(startUdpServer({ tracer: ctx.tracer }));
  const relay = await ctx.start(startUdpRelay({ upstreamPort: echo.port, tracer: ctx.tracer }));
  const rows: Array<Array<string | number>> = [];
  const runs = [];
  for (const loss of losses) {
    relay.set('upstream', { loss });
    const before = relay.stats('upstream').lost;
    const r = await measureUdpMessages({ host: '127.0.0.1', port: relay.port, n: o.N, ratePerSec: o.RATE, size: o.SIZE, lateMs: o.LATE });
    const dropped = relay.stats('upstream').lost - before;
    runs.push({ loss, r, dropped });
    rows.push(['UDP (relay)', pct(loss), dropped, `${r.delivered}/${o.N}`, r.pastAGap, r.p50, r.p99, r.max, r.late]);
  }
  ctx.table(`${o.N} datagrams of ${o.SIZE} B at ${o.RATE}/s through the UDP relay (loss client → server)`, ['proto', 'loss', 'dropped by the relay', 'delivered', 'arrived past a lost one', 'p50 ms', 'p99 ms', 'max ms', `late > ${o.LATE} ms`], rows);
  const worst = runs.at(-1)!;
  ctx.claim('UDP missed exactly the datagrams the relay dropped, and nothing was resent', runs.every((x) => x.r.lost === x.dropped) && worst.dropped > 0, runs.map((x) => `${pct(x.loss)}: lost ${x.r.lost}, dropped ${x.dropped}`).join('; '));
  ctx.claim(`UDP at ${pct(worst.loss)}: datagrams after a lost one reached the application without waiting for it`, worst.r.pastAGap > 0, `${worst.r.pastAGap} delivered past a missing one`);
}

export default defineLab({
  id: 'tcp-udp-loss',
  title: 'TCP vs UDP under real loss: who waits, who loses, and what each costs on the wire',
  concept: 'The same paced stream of small messages over TCP and over UDP at once, through a kernel link dropping packets: TCP delivers every message but holds later ones behind a lost one (head-of-line blocking), UDP delivers what arrives at once and simply misses the rest; TCP also costs more bytes per payload byte.',
  protocols: ['tcp', 'udp'],
  timeoutMs: 60_000,
  params: {
    loss: { kind: 'percent', default: '5%', min: 0.01, max: 0.2, help: 'the highest loss rate, client → server (rows: 0, 1% and it)' },
    count: { kind: 'count', default: 300, min: 100, max: 20_000, help: 'messages per stream per row' },
    rate: { kind: 'count', default: 200, min: 20, max: 2_000, help: 'messages per second (each its own segment / datagram)' },
    size: { kind: 'size', default: 32, min: 9, max: 1_400, help: 'bytes per message' },
    late: { kind: 'duration', default: '25ms', min: 5, max: 2_000, help: 'a playout deadline: an echo later than this is late (a game or call would skip it)' },
  },
  checkParams: (p) =>
    p.count / p.rate > 15 ? `count / rate is ${(p.count / p.rate).toFixed(1)} s per row; keep it under 15 s`
    : p.count * p.loss < 10 ? `count × loss is ${(p.count * p.loss).toFixed(1)} drops expected; at least 10 are needed to decide the claims (raise count or loss)`
    : undefined,
  async run(ctx) {
    const { loss: MAX, count: N, rate: RATE, size: SIZE, late: LATE } = ctx.params;
    const support = kernelSupport();
    if (!support.available) {
      ctx.note(`not observed on this machine: TCP under real loss, head-of-line blocking and bytes on the wire. Kernel mode is not available (${support.reason}); the userland proxy terminates TCP, so no TCP segment could be lost there. UDP only, through wirelab's UDP relay:`);
      await udpOnly(ctx, lossRows(MAX), { N, RATE, SIZE, LATE });
      return;
    }
    const pair = await openKernelTcpPair(ctx);
    const link = pair.link;
    addWireCounters(link);
    const rows: Array<Array<string | number>> = [];
    const wireRows: Array<Array<string | number>> = [];
    const results = [];
    for (const loss of lossRows(MAX)) {
      link.setLoss('b', loss);
      const r = await pair.runBoth({ n: N, ratePerSec: RATE, size: SIZE, timeoutMs: 20_000, lateMs: LATE });
      const w = delta(readWire(r.ruleset.before), readWire(r.ruleset.after));
      const dropped = { tcp: w.tcpIn[0]! - w.tcpKept[0]!, udp: w.udpIn[0]! - w.udpKept[0]! };
      // Bytes on the wire: everything that reached b (dropped or not) and everything b sent, over the payload both ways.
      const payload = 2 * N * SIZE;
      const perByte = { tcp: (w.tcpIn[1]! + w.tcpOut[1]!) / payload, udp: (w.udpIn[1]! + w.udpOut[1]!) / payload };
      results.push({ loss, r, dropped, perByte, w });
      rows.push(['TCP', pct(loss), dropped.tcp, `${r.tcp.delivered}/${N}`, r.tcp.retransmitted, r.tcp.outOfOrderQueued, '-', r.tcp.p50, r.tcp.p99, r.tcp.max, r.tcp.late]);
      rows.push(['UDP', pct(loss), dropped.udp, `${r.udp.delivered}/${N}`, '-', '-', r.udp.pastAGap, r.udp.p50, r.udp.p99, r.udp.max, r.udp.late]);
      wireRows.push([pct(loss), w.tcpIn[0]! + w.tcpOut[0]!, w.tcpIn[1]! + w.tcpOut[1]!, perByte.tcp.toFixed(2), w.udpIn[0]! + w.udpOut[0]!, w.udpIn[1]! + w.udpOut[1]!, perByte.udp.toFixed(2)]);
    }
    link.setLoss('b', 0);
    ctx.table(`${N} messages of ${SIZE} B each way at ${RATE}/s, TCP and UDP side by side (loss client → server)`, ['proto', 'loss', 'dropped by nft', 'delivered', 'retransmitted', 'held out of order (TCPOFOQueue)', 'arrived past a lost one', 'p50 ms', 'p99 ms', 'max ms', `late > ${LATE} ms`], rows);
    ctx.table('on the wire in the server\'s namespace (nftables counters, IP length)', ['loss', 'TCP packets', 'TCP bytes', 'TCP bytes / payload byte', 'UDP packets', 'UDP bytes', 'UDP bytes / payload byte'], wireRows);
    const lossy = results.filter((x) => x.loss > 0);
    const worst = results.at(-1)!;

    ctx.claim('TCP delivered every message, in order, at every loss rate', results.every((x) => tcpGuaranteeHeld(x.r.tcp) && x.r.tcp.delivered === N), results.map((x) => `${pct(x.loss)}: ${x.r.tcp.delivered}/${N}`).join(', '));
    ctx.claim(
      'UDP missed exactly the datagrams the link dropped, and nothing was resent',
      results.every((x) => x.r.udp.lost === x.dropped.udp) && lossy.some((x) => x.r.udp.lost > 0),
      results.map((x) => `${pct(x.loss)}: lost ${x.r.udp.lost}, dropped ${x.dropped.udp}`).join('; '),
    );
    ctx.claim(
      `TCP retransmitted what the link dropped at ${pct(worst.loss)} (the kernel's RetransSegs): its "lost" messages came late instead of never`,
      worst.dropped.tcp > 0 && worst.r.tcp.retransmitted > 0,
      lossy.map((x) => `${pct(x.loss)}: ${x.dropped.tcp} TCP packets dropped (data or ACK), ${x.r.tcp.retransmitted} segments retransmitted`).join('; '),
    );
    ctx.claim(
      `head-of-line blocking at ${pct(worst.loss)}: segments that arrived after a lost one were held by the server's TCP until the hole was filled (TCPOFOQueue), while UDP datagrams after a lost one reached the application at once`,
      worst.r.tcp.outOfOrderQueued > 0 && worst.r.udp.pastAGap > 0,
      `TCP: ${worst.r.tcp.outOfOrderQueued} segments held out of order; UDP: ${worst.r.udp.pastAGap} datagrams delivered past a missing one`,
    );
    ctx.claim(
      'UDP costs 28 B per datagram on the wire (20 IP + 8 UDP), counted: bytes = packets × (payload + 28)',
      results.every((x) => x.w.udpIn[1]! + x.w.udpOut[1]! === (x.w.udpIn[0]! + x.w.udpOut[0]!) * (SIZE + 28)),
      results.map((x) => `${pct(x.loss)}: ${x.w.udpIn[1]! + x.w.udpOut[1]!} B in ${x.w.udpIn[0]! + x.w.udpOut[0]!} packets`).join('; '),
    );
    ctx.claim(
      'TCP is heavier: more bytes on the wire per payload byte than UDP at every loss rate (bigger headers, ACKs, retransmissions)',
      results.every((x) => x.perByte.tcp > x.perByte.udp),
      results.map((x) => `${pct(x.loss)}: TCP ${x.perByte.tcp.toFixed(2)} vs UDP ${x.perByte.udp.toFixed(2)}`).join('; '),
    );
    for (const x of results) ctx.measure(`p99 latency at ${pct(x.loss)} loss: TCP / UDP`, x.r.tcp.p99 / Math.max(0.001, x.r.udp.p99), 'ratio');
    ctx.note(`p50 / p99 / late are shown, not claimed: both streams run in one process at once, so a stall of this machine hits both alike, but on a loaded machine it can still outweigh a retransmission. Kernel mode: ${link.nsA} ⇄ veth ⇄ ${link.nsB}, nftables numgen random drop toward the server.`);
  },
});
