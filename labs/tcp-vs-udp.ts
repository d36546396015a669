import dgram from 'node:dgram';
import net from 'node:net';
import { captureAvailable, describePacket, startCapture, type Capture, type Packet } from '../core/capture/index.ts';
import { defineLab, type LabContext } from '../core/lab/index.ts';
import { closedPort } from '../core/ports.ts';
import { median } from '../core/stats.ts';
import type { RunningServer } from '../core/server.ts';
import type { MemorySink, Tracer } from '../core/trace/index.ts';
import { connectTcp } from '../clients/tcp.ts';
import { openUdp } from '../clients/udp.ts';
import { startTcpServer } from '../servers/tcp.ts';
import { startUdpServer } from '../servers/udp.ts';

const BROADCAST = '127.255.255.255';

function errnoOf(err: unknown): string {
  return (err as NodeJS.ErrnoException)?.code ?? String(err);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
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

async function streamVsMessages(ctx: LabContext, { echo, discard, udp }: Servers, tracer: Tracer, events: MemorySink): Promise<string[]> {
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
  await big.send(Buffer.alloc(1024 * 1024, 0x61));
  await big.end();
  const bigReads = serverReads(bigPort);
  ctx.claim('TCP: one 1 MiB write arrived as many reads', bigReads.length > 1 && bigReads.reduce((a, b) => a + b, 0) === 1024 * 1024, `${bigReads.length} reads, largest ${Math.max(...bigReads)} B`);

  // Ten datagrams of 10 bytes, then one of 60,000.
  const u = await openUdp({ port: udp.port, tracer });
  const got: number[] = [];
  u.onMessage((m) => got.push(m.length));
  for (let i = 0; i < 10; i++) await u.sendRaw(Buffer.from(`dgram-${String(i).padStart(4, '0')}`));
  await u.sendRaw(Buffer.alloc(60_000, 0x62));
  for (let i = 0; i < 50 && got.length < 11; i++) await sleep(10);
  const atServer = events.find({ proto: 'udp', kind: 'datagram', dir: '>' }).filter((e) => e.meta?.from === `127.0.0.1:${u.localPort}`).map((e) => e.bytes ?? 0);
  ctx.claim('UDP: 10 sends of 10 bytes arrived as exactly 10 datagrams of 10 bytes', atServer.slice(0, 10).length === 10 && atServer.slice(0, 10).every((n) => n === 10), `server saw [${atServer.slice(0, 10).join(', ')}]`);
  ctx.claim('UDP: a 60,000-byte datagram arrived whole, in one read', atServer[10] === 60_000 && got.includes(60_000), `server read ${atServer[10] ?? 'nothing'} B`);
  let tooBig: unknown;
  try {
    await u.sendRaw(Buffer.alloc(65_508));
  } catch (err) {
    tooBig = err;
  }
  ctx.claim('UDP: a 65,508-byte datagram is refused before it is sent (65,507 is the IPv4 maximum)', (tooBig as { code?: string })?.code === 'WL_ERR_DATAGRAM_TOO_LARGE', (tooBig as Error)?.message);

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
  return [`10 writes → ${reads.length} read(s); 1 MiB → ${bigReads.length} reads`, `10 sends → ${atServer.slice(0, 10).length} datagrams; 60,000 B → 1`];
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
function fromCapture(ctx: LabContext, packets: Packet[], tcpPorts: number[], udpPort: number, udpClosed: number): string[][] {
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
  const tcpHeaders = tcp.map((p) => p.l4Header);
  const minH = Math.min(...tcpHeaders);
  const maxH = Math.max(...tcpHeaders);
  ctx.claim(`TCP headers were 20–60 bytes: here ${minH}–${maxH} B (options: timestamps on every segment, more on SYN)`, tcpHeaders.length > 0 && minH >= 20 && maxH <= 60, `${tcpHeaders.length} segments`);
  ctx.claim('UDP headers were 8 bytes on every datagram', udp.length > 0 && udp.every((p) => p.l4Header === 8), `${udp.length} datagrams`);
  const pureAcks = tcp.filter((p) => p.payload === 0 && p.flags.length === 1 && p.flags[0] === 'ACK').length;
  ctx.claim('TCP: the receiver sent acknowledgements (pure ACK segments); UDP: every packet carried data', pureAcks > 0 && udp.every((p) => p.payload > 0), `${pureAcks} pure ACKs`);
  const icmp = packets.find((p) => p.proto === 'icmp' && p.dport === udpClosed);
  ctx.claim('UDP to a closed port: the kernel answered with ICMP port unreachable', icmp?.icmp?.type === 3 && icmp.icmp.code === 3, icmp ? describePacket(icmp) : 'no ICMP seen');
  return [
    ['Handshake', shape, 'none: first packet is data'],
    ['Header size', `${minH}–${maxH} B`, '8 B'],
    ['Acknowledgment', `${pureAcks} pure ACKs`, 'none'],
  ];
}

export default defineLab({
  id: 'tcp-vs-udp',
  title: 'TCP vs UDP, row by row',
  concept: "The seed's TCP-vs-UDP table, each row that loopback can show observed and checked: connections, streams vs messages, handshakes, headers, broadcast.",
  protocols: ['tcp', 'udp'],
  async run(ctx) {
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
    const [tcpStream, udpStream] = await streamVsMessages(ctx, servers, tracer, events);
    rows.push(['Data stream type', tcpStream!, udpStream!]);
    const [tcpB, udpB] = await broadcast(ctx);
    rows.push(['Broadcast support', tcpB!, udpB!]);
    if (capture) {
      const packets = await capture.stop();
      rows.push(...fromCapture(ctx, packets, [servers.echo.port, servers.discard.port], servers.udp.port, udpClosed));
    }
    ctx.table('observed on this machine', ['row of the seed table', 'TCP', 'UDP'], rows);
    ctx.note('not observed here: reliability, ordering and retransmission. Loopback loses and reorders nothing; the reliability lab adds loss with the impairment layer.');
  },
});
