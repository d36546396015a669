import { connectTcp } from '../clients/tcp.ts';
import { defineLab } from '../core/lab/index.ts';
import { startTcpProxy, startUdpRelay, type UdpImpairments } from '../core/impair/index.ts';
import { datagramSeq } from '../protocols/datagram.ts';
import { kernelSupport } from '../core/impair/kernel/index.ts';
import { measureTcpMessages, measureUdpEcho, openKernelTcpPair, tcpGuaranteeHeld, type TcpRunResult } from './measure/index.ts';
import { startTcpServer } from '../servers/tcp/index.ts';
import { startUdpServer } from '../servers/udp/index.ts';

// TCP messages are paced (one every 0.5 ms) so each is its own segment; 1,500 keep the lab under 15 s.
const TCP_RATE = 2_000;
/** The loss rows: a clean path, 1% and 5% when below the highest, and the highest (`--param loss`, default 20%). */
const lossRows = (top: number): number[] => [0, ...[0.01, 0.05].filter((l) => l < top), top];
/**
 * How long a TCP row may wait for its last echo. TCP's retransmission timer starts at 200 ms and doubles each time the
 * same segment is lost again, so only eight losses in a row of one segment (0.2^8 at 20% loss) outlast 45 s: the TCP
 * claim is decided by delivery, and a row that still ends at the deadline fails it rather than passing as "slow".
 */
const TCP_DEADLINE_MS = 45_000;

/** TCP's guarantee, decided by delivery: every message back, once each, in order, before the deadline. */
const allDelivered = (r: TcpRunResult): boolean => tcpGuaranteeHeld(r) && r.endedBy === 'complete' && r.delivered === r.sent;

const pct = (p: number): string => `${+(p * 100).toFixed(2)}%`;
const bar = (v: number, max: number, width = 30): string => '█'.repeat(max > 0 ? Math.round((Math.min(v, max) / max) * width) : 0) || '·';

/** Binomial bounds: `lost` is within 5 standard deviations of n·p. */
function plausibleLoss(lost: number, n: number, p: number): boolean {
  const sd = Math.sqrt(n * p * (1 - p));
  return Math.abs(lost - n * p) <= 5 * sd + 1;
}

export default defineLab({
  id: 'reliability',
  title: 'TCP vs UDP under loss, reordering and duplication',
  concept: 'TCP is reliable and ordered and pays for it in retransmission stalls; UDP is fast and may lose, reorder and duplicate.',
  protocols: ['tcp', 'udp'],
  // Normally ~20 s; the TCP deadline can stretch one row in the rare long backoff.
  timeoutMs: 120_000,
  params: {
    loss: { kind: 'percent', default: '20%', min: 0.02, max: 0.2, help: 'the highest loss rate measured (rows: 0, 1%, 5% below it, and it); above 20% a TCP row may outlast its 45 s deadline' },
    count: { kind: 'count', default: 3_000, min: 1_000, max: 100_000, help: 'numbered UDP datagrams per row (3,000 keep `npm run labs` short; 10,000 was the old default)' },
    'tcp-count': { kind: 'count', default: 1_500, min: 1_000, max: 10_000, help: 'numbered TCP messages per row, paced at 2,000/s' },
  },
  async run(ctx) {
    const { count: UDP_MESSAGES, 'tcp-count': TCP_MESSAGES } = ctx.params;
    const LOSSES = lossRows(ctx.params.loss);
    const rows: Array<Array<string | number>> = [];
    const chart: Array<[string, number]> = [];

    // UDP: wirelab's echo behind the impairment relay; impairments on the client → server direction only.
    const udpServer = await ctx.start(startUdpServer({ tracer: ctx.tracer }));
    const relay = await ctx.start(startUdpRelay({ upstreamPort: udpServer.port, seed: 4, sequenceOf: datagramSeq, tracer: ctx.tracer }));
    const udpRun = async (label: string, imp: UdpImpairments) => {
      relay.set('upstream', imp);
      const before = { ...relay.stats('upstream') };
      const r = await measureUdpEcho({ port: relay.port, n: UDP_MESSAGES, gone: () => relay.stats('upstream').lost - before.lost });
      const after = relay.stats('upstream');
      const relayed = { lost: after.lost - before.lost, duplicated: after.duplicated - before.duplicated, reordered: after.reordered - before.reordered };
      rows.push(['UDP', label, r.sent, r.delivered, r.lost, r.duplicates, r.outOfOrder, r.p50, r.p99, '-']);
      return { r, relayed };
    };
    const lossOverTime: Record<string, number[]> = {};
    for (const loss of LOSSES) {
      const firstN = relay.records.at(-1)?.n ?? 0;
      const { r, relayed } = await udpRun(`loss ${pct(loss)}`, { loss });
      lossOverTime[`loss ${pct(loss)}`] = lostPerTwentieth(relay.records.filter((x) => x.stream === 'upstream' && x.n > firstN));
      chart.push([`UDP ${pct(loss)} lost`, r.lost]);
      if (loss === 0) {
        ctx.claim('UDP on a clean path: every datagram arrives, in order', r.delivered === r.sent && r.outOfOrder === 0, `${r.delivered}/${r.sent}, ${r.outOfOrder} out of order`);
      } else {
        ctx.claim(`UDP at ${pct(loss)} loss: every datagram the relay dropped is missing, nothing is resent`, r.lost === relayed.lost && plausibleLoss(r.lost, r.sent, loss), `lost ${r.lost}, relay dropped ${relayed.lost}, expected about ${Math.round(r.sent * loss)}`);
      }
    }
    ctx.series('UDP datagrams the relay dropped, over each run', 'datagrams sent (%)', Array.from({ length: 20 }, (_, i) => (i + 1) * 5), 'dropped (%)', lossOverTime);
    const re = await udpRun('reorder 5%', { reorder: 0.05, reorderGap: 3 });
    ctx.claim('UDP with reordering: datagrams arrive out of order and UDP does not put them back', re.r.outOfOrder > 0 && re.r.lost === 0, `${re.r.outOfOrder} out of order (relay held back ${re.relayed.reordered}), ${re.r.lost} lost`);
    const du = await udpRun('duplicate 5%', { duplicate: 0.05 });
    ctx.claim('UDP with duplication: every duplicate reaches the application', du.r.duplicates === du.relayed.duplicated && du.r.duplicates > 0, `${du.r.duplicates} duplicates received, relay made ${du.relayed.duplicated}`);
    ctx.note(`UDP: ${UDP_MESSAGES.toLocaleString('en')} numbered datagrams per row through wirelab's UDP relay (seed ${relay.seed}, so a rerun loses the same ones); loss only on client → server.`);

    // TCP: real loss needs the kernel (the userland proxy terminates TCP, so no segment of it can be lost).
    const support = kernelSupport();
    const tcp: Array<{ loss: number; r: TcpRunResult & { retransmitted?: number; dropped?: number } }> = [];
    let tcpDup: (TcpRunResult & { duplicateSegments: number }) | undefined;
    if (support.available) {
      const pair = await openKernelTcpPair(ctx);
      const link = pair.link;
      for (const loss of LOSSES) {
        link.setLoss('b', loss);
        tcp.push({ loss, r: await pair.run({ n: TCP_MESSAGES, ratePerSec: TCP_RATE, size: 32, timeoutMs: TCP_DEADLINE_MS }) });
      }
      link.setLoss('b', 0);
      link.setDuplicate('b', 0.05);
      tcpDup = await pair.run({ n: TCP_MESSAGES, ratePerSec: TCP_RATE, size: 32, timeoutMs: TCP_DEADLINE_MS });
      link.setDuplicate('b', 0);
      ctx.note(`TCP: kernel mode: namespaces ${link.nsA} ⇄ veth ⇄ ${link.nsB}, nftables numgen random drops packets toward the server; retransmissions are the kernel's own count (/proc/net/snmp RetransSegs, both namespaces).`);
      if (!support.netem) ctx.note('netem is not available on this kernel: TCP under kernel-level reordering is not shown (duplication uses nftables dup).');
    } else {
      ctx.note(`not observed: TCP under loss, its retransmissions and stalls. Kernel mode is not available (${support.reason}); TCP is measured through the userland proxy, which terminates TCP, so no TCP segment can be lost there; only the clean row is shown.`);
      const server = await ctx.start(startTcpServer({ mode: 'echo', framing: 'line', tracer: ctx.tracer }));
      const proxy = await ctx.start(startTcpProxy({ upstreamPort: server.port, tracer: ctx.tracer }));
      tcp.push({ loss: 0, r: await measureTcpMessages((o) => connectTcp({ port: proxy.port, framing: 'line', noDelay: true, ...o }), { n: TCP_MESSAGES, ratePerSec: TCP_RATE, size: 32, timeoutMs: TCP_DEADLINE_MS }) });
    }
    for (const { loss, r } of tcp) {
      rows.push(['TCP', `loss ${pct(loss)}`, r.sent, r.delivered, r.sent - r.delivered, r.duplicates, r.outOfOrder, r.p50, r.p99, r.retransmitted ?? '-']);
      chart.push([`TCP ${pct(loss)} p99 ms`, r.p99]);
    }
    if (tcpDup) {
      const r = tcpDup;
      rows.push(['TCP', 'duplicate 5%', r.sent, r.delivered, r.sent - r.delivered, r.duplicates, r.outOfOrder, r.p50, r.p99, '-']);
      ctx.claim('TCP with duplicated segments: the application sees every message once; the kernel threw the copies away', r.delivered === r.sent && r.duplicates === 0 && r.duplicateSegments > 0, `${r.duplicates} duplicates delivered; the server's kernel discarded ${r.duplicateSegments} duplicate segments (TCPDSACKOldSent)`);
    }
    ctx.table('numbered messages, client → server loss', ['proto', 'impairment', 'sent', 'delivered', 'lost', 'duplicated', 'out of order', 'p50 ms', 'p99 ms', 'retransmitted'], rows);
    const maxLost = Math.max(...chart.filter(([l]) => l.includes('lost')).map(([, v]) => v));
    const maxP99 = Math.max(...chart.filter(([l]) => l.includes('p99')).map(([, v]) => v));
    ctx.table('chart: what UDP loses, what TCP waits', ['row', 'value', ''], chart.map(([l, v]) => [l, v, bar(v, l.includes('lost') ? maxLost : maxP99)]));

    ctx.claim(
      'TCP loses, skips, duplicates and reorders nothing, at every loss rate measured',
      tcp.every(({ r }) => allDelivered(r)),
      tcp.map(({ loss, r }) => `${pct(loss)}: ${r.delivered}/${r.sent} in ${(r.durationMs / 1000).toFixed(1)} s${r.endedBy === 'complete' ? '' : `, ended by the ${r.endedBy} (${TCP_DEADLINE_MS / 1000} s)`}`).join(', '),
    );
    const lossy = tcp.filter((t) => t.loss > 0);
    if (lossy.length > 0) {
      ctx.claim('under loss TCP retransmits: the kernel counted retransmitted segments at every loss rate', lossy.every(({ r }) => (r.retransmitted ?? 0) > 0), lossy.map(({ loss, r }) => `${pct(loss)}: ${r.retransmitted} retransmitted, ${r.dropped} dropped`).join('; '));
      const clean = tcp[0]!.r;
      const worst = lossy[lossy.length - 1]!.r;
      ctx.claim(`TCP pays for its guarantees in stalls: more messages wait over 100 ms at ${pct(LOSSES.at(-1)!)} loss than on a clean path`, worst.stalled > clean.stalled, `${worst.stalled} vs ${clean.stalled} of ${TCP_MESSAGES}; p99 ${worst.p99} ms vs ${clean.p99} ms`);
      ctx.measure(`TCP p99 latency at ${pct(LOSSES.at(-1)!)} loss`, worst.p99, 'ms');
    }
    ctx.note(`TCP: ${TCP_MESSAGES.toLocaleString('en')} messages per row (--param tcp-count), paced at ${TCP_RATE}/s so each is its own segment, which keeps the lab under 15 s.`);
  },
});

/** Percent of datagrams lost in each twentieth of a run (by the relay's own record of each datagram's fate). */
function lostPerTwentieth(records: Array<{ fate: string }>): number[] {
  return Array.from({ length: 20 }, (_, i) => {
    const part = records.slice(Math.floor((i * records.length) / 20), Math.floor(((i + 1) * records.length) / 20));
    return part.length === 0 ? 0 : Math.round((1000 * part.filter((x) => x.fate === 'lost').length) / part.length) / 10;
  });
}
