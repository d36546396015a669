import dgram from 'node:dgram';
import { crc32 } from '../core/crc32.ts';
import { startUdpRelay } from '../core/impair/index.ts';
import { KernelLink, kernelSupport } from '../core/impair/kernel/index.ts';
import { defineLab, type LabContext } from '../core/lab/index.ts';
import { sleep } from '../core/time.ts';
import { datagramSeq, decodeHeader, encodeDatagram, HEADER_BYTES } from '../protocols/datagram.ts';
import { RawUdpAgent, rawUdpAvailable, type UdpCounters } from './measure/raw-udp.ts';

const pct = (p: number): string => `${Math.round(p * 1000) / 10}%`;

/**
 * The application's check: wirelab's datagram header, the payload, then a CRC-32 of both. The relay flips a bit in its
 * own memory and sends the datagram on with a fresh UDP checksum, so the kernel cannot see it: only an end-to-end
 * check (the end-to-end argument) catches it.
 */
async function applicationChecksum(ctx: LabContext, n: number, corrupt: number, size: number): Promise<void> {
  const receiver = dgram.createSocket('udp4');
  const got: Array<{ crcOk: boolean; headerOk: boolean; seq: number | undefined; i: number }> = [];
  receiver.on('error', (err) => ctx.note(`receiver: ${err.message}`));
  receiver.on('message', (m) => {
    const body = m.subarray(0, m.length - 4);
    const crcOk = m.length >= 4 && crc32(body) === m.readUInt32BE(m.length - 4);
    got.push({ crcOk, headerOk: decodeHeader(body) !== null, seq: datagramSeq(body), i: got.length });
  });
  await new Promise<void>((r) => receiver.bind(0, '127.0.0.1', () => r()));
  ctx.defer(() => new Promise<void>((r) => receiver.close(() => r())));
  const relay = await ctx.start(startUdpRelay({ upstreamPort: receiver.address().port, upstream: { corrupt }, sequenceOf: datagramSeq, tracer: ctx.tracer }));
  const sender = dgram.createSocket('udp4');
  sender.on('error', (err) => ctx.note(`sender: ${err.message}`));
  await new Promise<void>((r) => sender.bind(0, '127.0.0.1', () => r()));
  ctx.defer(() => new Promise<void>((r) => sender.close(() => r())));
  const payload = Buffer.alloc(Math.max(0, size - HEADER_BYTES - 4), 0x2e);
  // Paced in small bursts, so neither socket buffer overflows on a loaded machine: every datagram should arrive.
  for (let i = 0; i < n; i++) {
    const body = encodeDatagram(i, payload);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    await new Promise<void>((r) => sender.send(Buffer.concat([body, crc]), relay.port, '127.0.0.1', () => r()));
    if (i % 32 === 31) while (got.length < i - 64) await sleep(2);
  }
  for (let i = 0; i < 100 && got.length < n; i++) await sleep(20);
  const flipped = relay.records.filter((r) => r.stream === 'upstream' && r.corruptBit >= 0);
  const stats = relay.stats('upstream');
  const caught = got.filter((g) => !g.crcOk);
  // Arrival order is send order here (the relay neither drops nor reorders), so the i-th arrival is record n = i.
  const matched = got.every((g, i) => g.crcOk === !relay.records.some((r) => r.stream === 'upstream' && r.n === i && r.corruptBit >= 0));
  const headerOnly = caught.filter((g) => !g.headerOk).length;
  const wrongSeq = caught.filter((g) => g.headerOk && g.seq !== g.i).length;
  const inHeader = flipped.filter((r) => r.corruptBit < HEADER_BYTES * 8).length;
  ctx.table('application checksum: datagrams through the relay', ['sent', 'arrived', 'bits flipped by the relay', 'caught by CRC-32', 'rejected by the header alone', 'flip inside the 16-byte header'], [
    [n, got.length, stats.corrupted, caught.length, headerOnly, inHeader],
  ]);
  ctx.claim(
    `every datagram arrived, the ${stats.corrupted} corrupted ones too: UDP's own checksum cannot see a flip made before the relay re-sent the datagram`,
    got.length === n && stats.corrupted > 0,
    `${got.length}/${n} arrived, ${stats.corrupted} with a flipped bit (${pct(corrupt)} asked)`,
  );
  ctx.claim(
    'CRC-32 at the application caught every flipped bit, and only those: its failures are exactly the datagrams the relay corrupted',
    caught.length === stats.corrupted && matched,
    `${caught.length} CRC failures, ${flipped.length} flips recorded, matched datagram by datagram: ${matched}`,
  );
  ctx.claim(
    'the wirelab header alone (magic "WL", version) rejects only flips in its first 3 bytes: fewer than the CRC caught',
    headerOnly < caught.length,
    `${headerOnly} rejected by the header, ${wrongSeq} accepted with a wrong sequence number, the rest looked valid`,
  );
}

const CASES = [
  { iface: 'veth', from: 'a' as const, src: '10.77.0.1', dst: '10.77.0.2' },
  { iface: 'lo', from: 'b' as const, src: '127.0.0.1', dst: '127.0.0.1' },
];

/** The kernel's check: a raw datagram with a wrong UDP checksum into a namespace of the lab's own, over veth and over lo. */
async function kernelChecksum(ctx: LabContext): Promise<void> {
  const support = kernelSupport();
  const py = rawUdpAvailable();
  if (!support.available || !py.ok) {
    ctx.note(`not observed on this machine: the kernel's UDP checksum check (Udp InCsumErrors). ${support.available ? py.reason : `Kernel mode is not available (${support.reason})`}.`);
    return;
  }
  const link = KernelLink.create({ tracer: ctx.tracer });
  ctx.defer(() => link.close());
  const [rx, tx] = await Promise.all([RawUdpAgent.start(link, 'b'), RawUdpAgent.start(link, 'a')]);
  ctx.defer(() => Promise.all([rx.stop(), tx.stop()]));
  const rows: Array<Array<string | number>> = [];
  const results: Array<{ iface: string; kind: string; delivered: boolean; csumErrors: number; inErrors: number; inDatagrams: number }> = [];
  for (const c of CASES) {
    for (const kind of ['good', 'bad', 'none'] as const) {
      const text = `${c.iface} ${kind} checksum ${process.pid}`;
      const before: UdpCounters = await rx.counters();
      const agent = c.from === 'a' ? tx : rx;
      const sent = await agent.send({ src: c.src, dst: c.dst, dport: rx.port, checksum: kind, payload: text });
      const delivered = await rx.waitFor(text, kind === 'bad' ? 400 : 3_000);
      const after = await rx.counters();
      const d = (k: string): number => (after[k] ?? 0) - (before[k] ?? 0);
      results.push({ iface: c.iface, kind, delivered, csumErrors: d('InCsumErrors'), inErrors: d('InErrors'), inDatagrams: d('InDatagrams') });
      rows.push([c.iface, `${kind} (0x${sent.checksum.toString(16).padStart(4, '0')})`, delivered ? 'delivered' : 'dropped', d('InDatagrams'), d('InErrors'), d('InCsumErrors')]);
    }
  }
  ctx.table(`a raw UDP datagram into ${link.nsB} (its own /proc/net/snmp)`, ['interface', 'UDP checksum', 'application', 'Δ InDatagrams', 'Δ InErrors', 'Δ InCsumErrors'], rows);
  const get = (iface: string, kind: string) => results.find((r) => r.iface === iface && r.kind === kind)!;
  ctx.claim(
    'control: the same raw datagram with its checksum computed right was delivered on both interfaces, no checksum error counted',
    CASES.every((c) => get(c.iface, 'good').delivered && get(c.iface, 'good').csumErrors === 0),
    CASES.map((c) => `${c.iface}: ${get(c.iface, 'good').delivered ? 'delivered' : 'dropped'}`).join(', '),
  );
  const verified = CASES.filter((c) => !get(c.iface, 'bad').delivered && get(c.iface, 'bad').csumErrors === 1 && get(c.iface, 'bad').inErrors === 1).map((c) => c.iface);
  ctx.claim(
    `the kernel verified the UDP checksum and dropped the bad datagram, counting it in Udp InCsumErrors (and InErrors), on: ${verified.join(' and ') || 'no interface'}`,
    verified.length > 0,
    CASES.map((c) => `${c.iface}: ${get(c.iface, 'bad').delivered ? 'delivered' : 'dropped'}, InCsumErrors +${get(c.iface, 'bad').csumErrors}`).join('; '),
  );
  ctx.claim(
    'where a bad checksum was delivered instead, no error was counted (the interface marked it verified): the two outcomes never mix',
    CASES.every((c) => get(c.iface, 'bad').delivered === (get(c.iface, 'bad').csumErrors === 0)),
    CASES.map((c) => `${c.iface}: ${get(c.iface, 'bad').delivered ? 'delivered' : 'dropped'} / +${get(c.iface, 'bad').csumErrors}`).join(', '),
  );
  ctx.claim(
    'a checksum field of 0 means "no checksum" in UDP over IPv4 (RFC 768): delivered unchecked on both interfaces',
    CASES.every((c) => get(c.iface, 'none').delivered && get(c.iface, 'none').csumErrors === 0),
    CASES.map((c) => `${c.iface}: ${get(c.iface, 'none').delivered ? 'delivered' : 'dropped'}`).join(', '),
  );
  ctx.note(`kernel side: namespaces ${link.nsA} ⇄ veth ⇄ ${link.nsB}; datagrams built by a raw socket (Python's socket module, as root), the counters are ${link.nsB}'s own, so nothing else on the machine moves them.`);
}

export default defineLab({
  id: 'error-detection',
  title: 'Error detection: a CRC at the application, the UDP checksum in the kernel',
  concept: 'A checksum detects corruption: a bit flipped in a relay\'s memory passes UDP\'s checksum (recomputed when it is re-sent) and only an end-to-end CRC catches it; a datagram whose UDP checksum is wrong on the wire is dropped by the receiving kernel and counted.',
  protocols: ['udp'],
  timeoutMs: 45_000,
  params: {
    count: { kind: 'count', default: 500, min: 50, max: 100_000, help: 'datagrams sent through the corrupting relay' },
    corrupt: { kind: 'percent', default: '10%', min: 0.01, max: 1, help: 'share of datagrams with one bit flipped by the relay' },
    size: { kind: 'size', default: 64, min: 24, max: 8_192, help: 'bytes per datagram: header (16) + payload + CRC-32 (4)' },
  },
  checkParams: (p) => (p.count * p.corrupt < 5 ? `count × corrupt is ${p.count * p.corrupt}: too few flips to show anything; raise one of them` : undefined),
  async run(ctx) {
    await applicationChecksum(ctx, ctx.params.count, ctx.params.corrupt, ctx.params.size);
    await kernelChecksum(ctx);
  },
});
