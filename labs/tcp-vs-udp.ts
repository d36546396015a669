import dgram from 'node:dgram';
import net from 'node:net';
import { captureAvailable, describePacket, startCapture, type Capture, type Packet } from '../core/capture/index.ts';
import { defineLab, type LabContext } from '../core/lab/index.ts';
import { closedPort } from '../core/ports.ts';
import { median } from '../core/stats.ts';
import { sleep } from '../core/time.ts';
import type { RunningServer } from '../core/server.ts';
import type { MemorySink, Tracer } from '../core/trace/index.ts';
import { connectTcp } from '../clients/tcp.ts';
import { openUdp } from '../clients/udp.ts';
import { startTcpServer } from '../servers/tcp/index.ts';
import { startUdpServer } from '../servers/udp/index.ts';

const BROADCAST = '127.255.255.255';
// Set from ctx.params when run() starts (labs run one at a time); the values here are the defaults.
let BIG_WRITE = 1024 * 1024;
let DATAGRAM = 60_000;

function errnoOf(err: unknown): string {
  return (err as NodeJS.ErrnoException)?.code ?? String(err);
}

/** Connection-oriented vs connectionless: what a closed port does to each. */
async function closedPorts(ctx: LabContext, tcpClosed: number, udpClosed: number): Promise<string[]> {
  const t0 = performance.now();
  const tcpErr = await new Promise<unknown>((resolve) => {
    const s = net.connect(tcpClosed, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(null);
    });
    s.once('error', resolve);
  });
  const tcpMs = performance.now() - t0;
  ctx.claim('TCP: connecting to a closed port fails at once with ECONNREFUSED', errnoOf(tcpErr) === 'ECONNREFUSED', `${errnoOf(tcpErr)} after ${tcpMs.toFixed(2)} ms`);

  // An unconnected UDP socket: the send succeeds and nothing ever comes back to it.
  const loose = dgram.createSocket('udp4');
  const looseEvents: string[] = [];
  loose.on('message', () => looseEvents.push('message'));
  loose.on('error', (e) => looseEvents.push(errnoOf(e)));
  await new Promise<void>((r) => loose.bind(0, '127.0.0.1', r));
  const sendErr = await new Promise<Error | null>((r) => loose.send('hello?', udpClosed, '127.0.0.1', r));
  await sleep(200);
  loose.close();
  ctx.claim('UDP: a datagram to a closed port is sent without any error', sendErr === null, sendErr ? errnoOf(sendErr) : 'send callback: no error');
  ctx.claim('UDP: an unconnected socket hears nothing back from a closed port', looseEvents.length === 0, `${looseEvents.length} events in 200 ms`);

  // A connected UDP socket is told about the ICMP port-unreachable on its next operation.
  const bound = await openUdp({ port: udpClosed, connect: true, tracer: ctx.tracer });
  await bound.sendRaw(Buffer.from('hello?'));
  await sleep(100);
  const seen = bound.errors.map((e) => errnoOf(e));
  await bound.close();
  ctx.claim(
    'UDP: only a connected socket learns of the closed port, later, as ECONNREFUSED (from ICMP port unreachable)',
    seen.includes('ECONNREFUSED'),
    seen.join(', ') || 'no error',
  );
  return [`connect refused in ${tcpMs.toFixed(2)} ms`, `send succeeds; connected socket later gets ${seen[0] ?? 'nothing'}`];
}

/** TCP delivers a byte stream (write boundaries are lost); UDP delivers messages (each datagram whole). */
interface Servers {
  echo: RunningServer;
  discard: RunningServer;
  udp: RunningServer;
}

/** What the UDP server read from the lab's client, datagram by datagram: the capture's header sizes are checked against it. */
interface UdpReads {
  clientPort: number;
  sizes: number[];
}

async function streamVsMessages(ctx: LabContext, { echo, discard, udp }: Servers, tracer: Tracer, events: MemorySink): Promise<{ rows: string[]; udpReads: UdpReads }> {
  const serverReads = (port: number): number[] => {
    const accept = events.find({ kind: 'accept' }).find((e) => e.meta?.peer === `127.0.0.1:${port}`);
    return accept ? events.find({ cid: accept.cid, kind: 'read' }).map((e) => e.bytes ?? 0) : [];
  };

  // Ten small writes, back to back.
  const c = await connectTcp({ port: echo.port, tracer });
  const acceptedBeforeData = events.find({ kind: 'accept' }).some((e) => e.meta?.peer === `127.0.0.1:${c.localPort}`) && serverReads(c.localPort).length === 0;
  await Promise.all(Array.from({ length: 10 }, (_, i) => c.send(`message-#${i}`)));
  await c.readBytes(100);
  const reads = serverReads(c.localPort);
  await c.end();
  ctx.claim('TCP: the server accepted the connection before a single byte was sent (a connection exists first)', acceptedBeforeData);
  ctx.claim('TCP: 10 writes of 10 bytes arrived as fewer than 10 reads (a byte stream keeps no write boundaries)', reads.length < 10 && reads.reduce((a, b) => a + b, 0) === 100, `reads: [${reads.join(', ')}]`);

  // One big write, cut up on the way.
  const big = await connectTcp({ port: discard.port, tracer });
  const bigPort = big.localPort;
  await big.send(Buffer.alloc(BIG_WRITE, 0x61));
  await big.end();
  const bigReads = serverReads(bigPort);
  ctx.claim(`TCP: one ${BIG_WRITE} B write arrived as many reads`, bigReads.length > 1 && bigReads.reduce((a, b) => a + b, 0) === BIG_WRITE, `${bigReads.length} reads, largest ${Math.max(...bigReads)} B`);

  // Ten datagrams of 10 bytes, then one of DATAGRAM bytes.
  const u = await openUdp({ port: udp.port, tracer });
  const udpClientPort = u.localPort;
  const got: number[] = [];
  u.onMessage((m) => got.push(m.length));
  for (let i = 0; i < 10; i++) await u.sendRaw(Buffer.from(`dgram-${String(i).padStart(4, '0')}`));
  await u.sendRaw(Buffer.alloc(DATAGRAM, 0x62));
  for (let i = 0; i < 50 && got.length < 11; i++) await sleep(10);
  const atServer = events.find({ proto: 'udp', kind: 'datagram', dir: '>' }).filter((e) => e.meta?.from === `127.0.0.1:${u.localPort}`).map((e) => e.bytes ?? 0);
  ctx.claim('UDP: 10 sends of 10 bytes arrived as exactly 10 datagrams of 10 bytes', atServer.slice(0, 10).length === 10 && atServer.slice(0, 10).every((n) => n === 10), `server saw [${atServer.slice(0, 10).join(', ')}]`);
  ctx.claim(`UDP: a ${DATAGRAM}-byte datagram arrived whole, in one read`, atServer[10] === DATAGRAM && got.includes(DATAGRAM), `server read ${atServer[10] ?? 'nothing'} B`);
  let tooBig: unknown;
  try {
    await u.sendRaw(Buffer.alloc(65_508));
  } catch (err) {
    tooBig = err;
  }
  // The limit is the kernel's, not wirelab's: a plain dgram socket asking the kernel to send 65,508 bytes gets
  // EMSGSIZE back, and 65,507 bytes (65,535 - 20 B IPv4 header - 8 B UDP header) go out and arrive.
  const raw = dgram.createSocket('udp4');
  raw.on('error', () => undefined);
  await new Promise<void>((r) => raw.bind(0, '127.0.0.1', r));
  const rawPort = raw.address().port;
  const kernelOver = await new Promise<Error | null>((r) => raw.send(Buffer.alloc(65_508), udp.port, '127.0.0.1', r));
  const kernelMax = await new Promise<Error | null>((r) => raw.send(Buffer.alloc(65_507), udp.port, '127.0.0.1', r));
  const maxRead = (): number | undefined =>
    events.find({ proto: 'udp', kind: 'datagram', dir: '>' }).find((e) => e.meta?.from === `127.0.0.1:${rawPort}` && e.bytes === 65_507)?.bytes;
  for (let i = 0; i < 50 && maxRead() === undefined; i++) await sleep(10);
  raw.close();
  ctx.claim(
    'UDP: the kernel refuses a 65,508-byte datagram (EMSGSIZE) and sends a 65,507-byte one, the IPv4 maximum; wirelab\'s client refuses it before the kernel sees it',
    errnoOf(kernelOver) === 'EMSGSIZE' && kernelMax === null && maxRead() === 65_507 && (tooBig as { code?: string })?.code === 'WL_ERR_DATAGRAM_TOO_LARGE',
    `raw socket: 65,508 B → ${kernelOver ? errnoOf(kernelOver) : 'sent'}; 65,507 B → ${kernelMax ? errnoOf(kernelMax) : 'sent'}, server read ${maxRead() ?? 'nothing'} B; wirelab client → ${(tooBig as { code?: string })?.code ?? 'sent'}`,
  );

  // Time to the first echoed byte: TCP must connect first, UDP just sends.
  const tcpFirst: number[] = [];
  const udpFirst: number[] = [];
  for (let i = 0; i < 20; i++) {
    const t0 = performance.now();
    const k = await connectTcp({ port: echo.port });
    await k.send('x');
    await k.next();
    tcpFirst.push(performance.now() - t0);
    await k.destroy();
    udpFirst.push((await u.echo('x')).rttMs);
  }
  await u.close();
  ctx.measure('TCP connect + first echo (median of 20, loopback)', median(tcpFirst), 'ms');
  ctx.measure('UDP first echo (median of 20, loopback)', median(udpFirst), 'ms');
  return {
    rows: [`10 writes → ${reads.length} read(s); 1 MiB → ${bigReads.length} reads`, `10 sends → ${atServer.slice(0, 10).length} datagrams; 60,000 B → 1`],
    udpReads: { clientPort: udpClientPort, sizes: atServer },
  };
}

/** Broadcast: UDP can address every socket on the broadcast address at once; TCP cannot connect to it. */
async function broadcast(ctx: LabContext): Promise<string[]> {
  const receivers = [dgram.createSocket({ type: 'udp4', reuseAddr: true }), dgram.createSocket({ type: 'udp4', reuseAddr: true })];
  const got = [0, 0];
  receivers.forEach((r, i) => r.on('message', () => got[i]!++));
  try {
    await new Promise<void>((resolve, reject) => receivers[0]!.once('error', reject).bind(0, BROADCAST, resolve));
  } catch (err) {
    receivers.forEach((r) => r.close());
    ctx.note(`broadcast not observed: this host does not allow binding ${BROADCAST} (${errnoOf(err)})`);
    return ['not observable here', 'not observable here'];
  }
  const port = receivers[0]!.address().port;
  await new Promise<void>((resolve) => receivers[1]!.bind(port, BROADCAST, resolve));
  const tx = dgram.createSocket('udp4');
  await new Promise<void>((r) => tx.bind(0, '127.0.0.1', r));
  const withoutFlag = await new Promise<Error | null>((r) => tx.send('to all', port, BROADCAST, r));
  tx.setBroadcast(true);
  const withFlag = await new Promise<Error | null>((r) => tx.send('to all', port, BROADCAST, r));
  for (let i = 0; i < 50 && got.some((n) => n === 0); i++) await sleep(10);
  tx.close();
  receivers.forEach((r) => r.close());
  const tcpErr = await new Promise<unknown>((resolve) => {
    const s = net.connect(port, BROADCAST);
    s.once('connect', () => {
      s.destroy();
      resolve(null);
    });
    s.once('error', resolve);
  });
  ctx.claim(`UDP: without SO_BROADCAST the kernel refuses to send to ${BROADCAST}`, errnoOf(withoutFlag) === 'EACCES', errnoOf(withoutFlag));
  ctx.claim(`UDP: with SO_BROADCAST one send reached both sockets bound to ${BROADCAST}`, withFlag === null && got[0]! >= 1 && got[1]! >= 1, `receivers got ${got.join(' and ')}`);
  ctx.claim('TCP: connecting to the broadcast address fails (ENETUNREACH): TCP is one-to-one', errnoOf(tcpErr) === 'ENETUNREACH', errnoOf(tcpErr));
  return [`connect → ${errnoOf(tcpErr)}`, `1 send → ${got.filter((n) => n > 0).length} receivers`];
}

/** What only a packet capture shows: the handshake, header sizes, acknowledgements. */
function fromCapture(ctx: LabContext, packets: Packet[], tcpPorts: number[], udpPort: number, udpClosed: number, udpReads: UdpReads): string[][] {
  const tcp = packets.filter((p) => p.proto === 'tcp' && (tcpPorts.includes(p.dport) || tcpPorts.includes(p.sport)));
  const udp = packets.filter((p) => p.proto === 'udp' && (p.dport === udpPort || p.sport === udpPort));
  // The first connection to the echo server: its first three packets.
  const firstConn = tcp.filter((p) => p.dport === tcpPorts[0] || p.sport === tcpPorts[0]);
  const clientPort = firstConn[0]?.sport;
  const three = firstConn.filter((p) => p.sport === clientPort || p.dport === clientPort).slice(0, 3);
  const shape = three.map((p) => p.flags.join('-')).join(' → ');
  ctx.table('first TCP connection, as captured', ['packet', 'header', 'options'], three.map((p) => [describePacket(p), `${p.l4Header} B`, p.options.join(',')]));
  ctx.claim('TCP: three packets (SYN, SYN-ACK, ACK) carrying no data came before any data', shape === 'SYN → SYN-ACK → ACK' && three.every((p) => p.payload === 0), shape);
  const firstUdp = udp.find((p) => p.dport === udpPort);
  ctx.claim('UDP: the first packet to the server was the data itself (no handshake)', firstUdp !== undefined && firstUdp.payload > 0, firstUdp ? describePacket(firstUdp) : 'none');
  // TCP: the header length is the data offset field × 4, 20 B plus options. Show the values seen, and check they vary
  // with the options: segments with the same options have the same header length, and every SYN (mss, sackOK, wscale,
  // timestamps) has a longer header than any other segment whose options are among the SYN's. A segment carrying SACK
  // blocks (after a loss or a duplicate, which a loaded machine can cause on loopback) may be longer still.
  const tcpHeaders = tcp.map((p) => p.l4Header);
  const minH = Math.min(...tcpHeaders);
  const maxH = Math.max(...tcpHeaders);
  const bySize = new Map<number, number>();
  for (const h of tcpHeaders) bySize.set(h, (bySize.get(h) ?? 0) + 1);
  const sizes = [...bySize].sort((a, b) => a[0] - b[0]).map(([h, n]) => `${h} B ×${n}`).join(', ');
  const kinds = (p: Packet): string[] => p.options.filter((o) => o !== 'nop' && o !== 'eol');
  const sizeByOptions = new Map<string, Set<number>>();
  for (const p of tcp) {
    const key = kinds(p).join(',') || 'none';
    sizeByOptions.set(key, (sizeByOptions.get(key) ?? new Set()).add(p.l4Header));
  }
  const consistent = [...sizeByOptions.values()].every((s) => s.size === 1);
  const syns = tcp.filter((p) => p.flags.includes('SYN'));
  const synKinds = new Set(syns.flatMap(kinds));
  const comparable = tcp.filter((p) => !p.flags.includes('SYN') && kinds(p).every((k) => synKinds.has(k)));
  const synOptions = syns[0] ? kinds(syns[0]).join(', ') : 'none';
  const byOptions = [...sizeByOptions].map(([k, s]) => `${k}: ${[...s].join('/')} B`).join('; ');
  ctx.claim(
    `TCP headers vary with their options (data offset × 4, 20–60 B): here ${sizes}; the same options always gave the same length, and the SYNs' (${synOptions}) were longer than any other segment with no options beyond theirs`,
    tcpHeaders.length > 0 && minH >= 20 && maxH <= 60 && bySize.size >= 2 && consistent && syns.length > 0 && comparable.length > 0 &&
      Math.min(...syns.map((p) => p.l4Header)) > Math.max(...comparable.map((p) => p.l4Header)),
    `${tcpHeaders.length} segments, ${syns.length} SYN or SYN-ACK; by options: ${byOptions}`,
  );
  // UDP: no header length field exists, so measure it: the IP payload (IP total length − IP header) of each datagram
  // the lab's client sent, minus the bytes the server read from that datagram; and the UDP length field must agree
  // with the IP payload.
  const sent = udp.filter((p) => p.sport === udpReads.clientPort && p.dport === udpPort).slice(0, udpReads.sizes.length);
  const measured = sent.map((p, i) => p.ipPayload - udpReads.sizes[i]!);
  const lengthAgrees = udp.every((p) => p.udpLength === p.ipPayload);
  ctx.claim(
    'UDP headers were 8 bytes: IP payload minus the bytes the server read, on every datagram matched; the UDP length field agreed with IP\'s on all',
    sent.length === udpReads.sizes.length && sent.length > 0 && measured.every((h) => h === 8) && lengthAgrees,
    `${sent.length} datagrams matched (IP payload − bytes read: ${[...new Set(measured)].join(', ')} B); UDP length = IP payload on ${udp.filter((p) => p.udpLength === p.ipPayload).length}/${udp.length}`,
  );
  const pureAcks = tcp.filter((p) => p.payload === 0 && p.flags.length === 1 && p.flags[0] === 'ACK').length;
  ctx.claim('TCP: the receiver sent acknowledgements (pure ACK segments); UDP: every packet carried data', pureAcks > 0 && udp.every((p) => p.payload > 0), `${pureAcks} pure ACKs`);
  const icmp = packets.find((p) => p.proto === 'icmp' && p.dport === udpClosed);
  ctx.claim('UDP to a closed port: the kernel answered with ICMP port unreachable', icmp?.icmp?.type === 3 && icmp.icmp.code === 3, icmp ? describePacket(icmp) : 'no ICMP seen');
  return [
    ['Handshake', shape, 'none: first packet is data'],
    ['Header size', sizes, `${[...new Set(measured)].join(', ')} B`],
    ['Acknowledgment', `${pureAcks} pure ACKs`, 'none'],
  ];
}

export default defineLab({
  id: 'tcp-vs-udp',
  title: 'TCP vs UDP, row by row',
  concept: "The seed's TCP-vs-UDP table, each row that loopback can show observed and checked: connections, streams vs messages, handshakes, headers, broadcast.",
  protocols: ['tcp', 'udp'],
  params: {
    write: { kind: 'size', default: '1MiB', min: 256 * 1024, max: 64 * 1024 * 1024, help: 'the one big TCP write (over the 64 KiB loopback MTU, so it is cut up)' },
    datagram: { kind: 'size', default: 60_000, min: 1_500, max: 65_507, help: 'the one big UDP datagram (up to the IPv4 maximum, 65,507 B)' },
  },
  async run(ctx) {
    ({ write: BIG_WRITE, datagram: DATAGRAM } = ctx.params);
    const { tracer, events } = ctx.recorder();
    const tcpClosed = await closedPort('tcp');
    const udpClosed = await closedPort('udp');
    const servers: Servers = {
      echo: await ctx.start(startTcpServer({ tracer })),
      discard: await ctx.start(startTcpServer({ mode: 'discard', tracer })),
      udp: await ctx.start(startUdpServer({ tracer })),
    };
    const avail = captureAvailable();
    let capture: Capture | undefined;
    if (avail.ok) {
      const ports = [servers.echo.port, servers.discard.port, servers.udp.port, tcpClosed, udpClosed];
      const running = await startCapture(`icmp or ${ports.map((p) => `port ${p}`).join(' or ')}`);
      capture = running;
      ctx.defer(() => running.stop());
    } else {
      ctx.note(`not observed: packets (handshake, header sizes, ACKs, ICMP): ${avail.reason}`);
    }
    const rows: string[][] = [];
    const [tcpConn, udpConn] = await closedPorts(ctx, tcpClosed, udpClosed);
    rows.push(['Type of service', tcpConn!, udpConn!]);
    const { rows: [tcpStream, udpStream], udpReads } = await streamVsMessages(ctx, servers, tracer, events);
    rows.push(['Data stream type', tcpStream!, udpStream!]);
    const [tcpB, udpB] = await broadcast(ctx);
    rows.push(['Broadcast support', tcpB!, udpB!]);
    if (capture) {
      const packets = await capture.stop();
      rows.push(...fromCapture(ctx, packets, [servers.echo.port, servers.discard.port], servers.udp.port, udpClosed, udpReads));
    }
    ctx.table('observed on this machine', ['row of the seed table', 'TCP', 'UDP'], rows);
    ctx.note('not observed here: reliability, ordering and retransmission. Loopback loses and reorders nothing; the reliability lab adds loss with the impairment layer.');
  },
});
