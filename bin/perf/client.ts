// `wirelab perf client`: runs one test against a `wirelab perf server` and reports per-interval and summary numbers
// the way iperf3 does. Each stream counts its own side (sender, or receiver with -R); the server's side comes back on
// the control connection at the end (TCP, UDP, WebSocket) or from its replies (HTTP).
import dgram from 'node:dgram';
import net from 'node:net';
import { WebSocket } from 'ws';
import { connectPeerPair } from '../../clients/webrtc-pair.ts';
import { createHttpClient } from '../../clients/http.ts';
import { impairServer, parseImpairSpecs } from '../../core/impair/cli.ts';
import { NOOP_TRACER, type Tracer } from '../../core/trace/index.ts';
import { retransmittedSegments } from './kernel.ts';
import { pump } from './server.ts';
import { nowUs, wsWriter, readUdpHeader, splitFirstLine, UDP_HEADER, UdpStreamCounter, writeUdpHeader, type PerfProto, type StartRequest, type StreamCount } from './wire.ts';
import { sleep } from '../../core/time.ts';

export interface PerfClientOptions {
  host: string;
  /** The server's base port (TCP / UDP); HTTP, WebSocket and signaling are the next three. */
  port: number;
  proto: PerfProto;
  /** Seconds. Default 10 (iperf3's). */
  time: number;
  /** Parallel streams. Default 1. */
  streams: number;
  /** Server sends, client receives. */
  reverse: boolean;
  /** Bits per second per stream; 0: unlimited. Default 0, UDP 1 Mbit/s (iperf3's defaults). */
  rate: number;
  /** Bytes per write / datagram / message / HTTP body. */
  len: number;
  /** Seconds between interval reports. Default 1. */
  interval: number;
  /** An impairment spec ('latency=20ms,loss=1%'): the data connections go through a proxy / relay in this process. */
  impair?: string;
  tracer?: Tracer;
}

export interface PerfInterval {
  start: number;
  end: number;
  /** Bytes this side counted per stream in the interval. */
  streams: number[];
  bytes: number;
  bitsPerSecond: number;
}

export interface PerfSide {
  bytes: number;
  seconds: number;
  bitsPerSecond: number;
  /** TCP-based tests: the kernel's retransmitted segments during the test, host-wide (/proc/net/snmp); null where unknown. */
  retransmits?: number | null;
  /** UDP. */
  packets?: number;
  lostPackets?: number;
  lostPercent?: number;
  jitterMs?: number;
  outOfOrder?: number;
}

export interface PerfResult {
  start: { proto: PerfProto; streams: number; reverse: boolean; time: number; len: number; rate: number; impair?: string; connectedTo: string };
  intervals: PerfInterval[];
  end: { sender: PerfSide | null; receiver: PerfSide | null };
}

/** A stream as the client drives it: `counted` grows as this side sends or receives; `run` ends when the stream does. */
interface LocalStream {
  counted: number;
  run(): Promise<void>;
}

function lineReader(socket: net.Socket): () => Promise<string> {
  let buf: Buffer = Buffer.alloc(0);
  const waiting: Array<(l: string) => void> = [];
  const lines: string[] = [];
  socket.on('data', (c: Buffer) => {
    buf = Buffer.concat([buf, c]);
    for (let s = splitFirstLine(buf); s; s = splitFirstLine(buf)) {
      buf = s.rest;
      const w = waiting.shift();
      if (w) w(s.line);
      else lines.push(s.line);
    }
  });
  return () => (lines.length ? Promise.resolve(lines.shift()!) : new Promise((r, reject) => {
    waiting.push(r);
    socket.once('close', () => reject(new Error('the perf server closed the control connection')));
  }));
}

const connect = (host: string, port: number): Promise<net.Socket> =>
  new Promise((resolve, reject) => {
    const s = net.connect(port, host, () => {
      s.off('error', reject);
      s.on('error', () => undefined);
      resolve(s);
    });
    s.once('error', reject);
  });

/** Runs a test. `onInterval` is called as each interval ends (the terminal prints it at once). */
export async function runPerfClient(o: PerfClientOptions, onInterval: (i: PerfInterval) => void = () => undefined): Promise<PerfResult> {
  const tracer = o.tracer ?? NOOP_TRACER;
  const req: StartRequest = { op: 'start', proto: o.proto, streams: o.streams, reverse: o.reverse, time: o.time, len: o.len, rate: o.rate };
  const cleanups: Array<() => Promise<unknown>> = [];
  // --impair: an impairment proxy (TCP) or relay (UDP) in this process, in front of the port the data goes to.
  const front = async (proto: 'tcp' | 'udp', port: number): Promise<number> => {
    if (!o.impair) return port;
    const plans = parseImpairSpecs(o.impair);
    const s = await impairServer({ name: `perf-${proto}`, proto }, { proto, host: o.host, port, close: async () => undefined }, plans, { host: '127.0.0.1', port: 0, tracer });
    cleanups.push(() => s.close());
    return s.port;
  };
  // TCP and UDP tests have a control connection (start, then the server's counts); the others report in-band.
  const needsControl = o.proto === 'tcp' || o.proto === 'udp';
  const ctl = needsControl ? await connect(o.host, o.port) : undefined;
  if (ctl) cleanups.push(async () => ctl.destroy());
  const readLine = ctl ? lineReader(ctl) : async () => '{}';
  let started: { id: string; tag: number; udpPort: number } | undefined;
  if (ctl) {
    ctl.write(JSON.stringify(req) + '\n');
    started = JSON.parse(await readLine()) as typeof started & { error?: string };
    if ((started as { error?: string }).error) throw new Error(`perf server: ${(started as { error?: string }).error}`);
  }
  const retransBefore = retransmittedSegments();
  const streams: LocalStream[] = [];
  const far: Array<Promise<StreamCount | null>> = [];
  try {
    for (let i = 0; i < o.streams; i++) {
      const s = await openStream(o, i, started, front, far, cleanups, tracer);
      streams.push(s);
    }
    // Intervals: sample every stream's count; the last interval ends with the test.
    const intervals: PerfInterval[] = [];
    const t0 = performance.now();
    let last = streams.map(() => 0);
    let lastT = 0;
    const sample = (): void => {
      const t = (performance.now() - t0) / 1000;
      const now = streams.map((s) => s.counted);
      const per = now.map((n, k) => n - last[k]!);
      const bytes = per.reduce((a, b) => a + b, 0);
      const iv = { start: lastT, end: Math.min(t, o.time), streams: per, bytes, bitsPerSecond: t > lastT ? (bytes * 8) / (t - lastT) : 0 };
      intervals.push(iv);
      onInterval(iv);
      last = now;
      lastT = t;
    };
    const timer = setInterval(sample, o.interval * 1000);
    await Promise.all(streams.map((s) => s.run()));
    clearInterval(timer);
    if (Math.min((performance.now() - t0) / 1000, o.time) - lastT > 0.05) sample();
    const seconds = (performance.now() - t0) / 1000;
    const local = streams.reduce((a, s) => a + s.counted, 0);
    // The other side: the server's counts (TCP, UDP) or what each stream's protocol reported back (WS, HTTP).
    let remote: StreamCount[] | null;
    if (needsControl) {
      if (o.proto === 'udp') await sleep(250); // stragglers still in flight
      ctl!.write(JSON.stringify({ op: 'result', id: started!.id }) + '\n');
      remote = (JSON.parse(await readLine()) as { streams: StreamCount[] }).streams;
    } else {
      const got = await Promise.all(far);
      remote = got.some((g) => g === null) ? null : (got as StreamCount[]);
    }
    const retrans = o.proto === 'udp' || o.proto === 'webrtc' ? undefined : retransmittedSegments();
    const retransmits = retrans === undefined ? undefined : retrans === null || retransBefore === null ? null : retrans - retransBefore;
    const localSide: PerfSide = { bytes: local, seconds, bitsPerSecond: (local * 8) / seconds };
    const remoteSide: PerfSide | null = remote ? { bytes: remote.reduce((a, r) => a + r.bytes, 0), seconds, bitsPerSecond: (remote.reduce((a, r) => a + r.bytes, 0) * 8) / seconds } : null;
    let sender = o.reverse ? remoteSide : localSide;
    let receiver = o.reverse ? localSide : remoteSide;
    if (o.proto === 'udp') {
      const counters = o.reverse ? (streams as Array<LocalStream & { udp?: UdpStreamCounter }>).map((s) => s.udp!.toJSON()) : remote ?? [];
      const packets = counters.reduce((a, c) => a + (c.packets ?? 0), 0);
      const sent = o.reverse ? (remote ?? []).reduce((a, c) => a + (c.packets ?? 0), 0) : streams.reduce((a, s) => a + Math.round(s.counted / o.len), 0);
      const lost = Math.max(0, sent - packets);
      const jitter = counters.length ? counters.reduce((a, c) => a + (c.jitterMs ?? 0), 0) / counters.length : 0;
      receiver = receiver && { ...receiver, packets, lostPackets: lost, lostPercent: sent ? +((lost / sent) * 100).toFixed(3) : 0, jitterMs: +jitter.toFixed(3), outOfOrder: counters.reduce((a, c) => a + (c.outOfOrder ?? 0), 0) };
      sender = sender && { ...sender, packets: sent };
    } else if (sender) sender = { ...sender, retransmits: retransmits ?? null };
    return {
      start: { proto: o.proto, streams: o.streams, reverse: o.reverse, time: o.time, len: o.len, rate: o.rate, ...(o.impair ? { impair: o.impair } : {}), connectedTo: `${o.host}:${o.port}` },
      intervals,
      end: { sender, receiver },
    };
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  }
}

/** The other side's count, once the stream's run() has ended (both ends are in this process, or replies said it). */
function after(st: LocalStream, count: () => StreamCount): Promise<StreamCount> {
  return new Promise((resolve) => {
    const run = st.run;
    st.run = async () => {
      await run();
      resolve(count());
    };
  });
}

async function openStream(
  o: PerfClientOptions,
  i: number,
  started: { id: string; tag: number; udpPort: number } | undefined,
  front: (proto: 'tcp' | 'udp', port: number) => Promise<number>,
  far: Array<Promise<StreamCount | null>>,
  cleanups: Array<() => Promise<unknown>>,
  tracer: Tracer,
): Promise<LocalStream> {
  const ms = o.time * 1000;
  const req: StartRequest = { op: 'start', proto: o.proto, streams: o.streams, reverse: o.reverse, time: o.time, len: o.len, rate: o.rate };
  switch (o.proto) {
    case 'tcp': {
      const s = await connect(o.host, await front('tcp', o.port));
      cleanups.push(async () => s.destroy());
      s.write(JSON.stringify({ op: 'data', id: started!.id, stream: i }) + '\n');
      const st: LocalStream = {
        counted: 0,
        run: () =>
          o.reverse
            ? new Promise<void>((resolve) => {
                s.on('data', (c: Buffer) => (st.counted += c.length));
                s.on('close', () => resolve());
              })
            : pump((b) => {
                st.counted += b.length;
                return s.write(b);
              }, () => new Promise((r) => s.once('drain', r)), o.len, ms, o.rate, () => s.destroyed).then(() => new Promise<void>((resolve) => {
                s.end();
                s.on('close', () => resolve());
                s.resume();
              })),
      };
      return st;
    }
    case 'udp': {
      const sock = dgram.createSocket('udp4');
      sock.on('error', () => undefined);
      await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
      cleanups.push(async () => sock.close());
      const port = await front('udp', started!.udpPort);
      const len = Math.max(UDP_HEADER, o.len);
      const counter = new UdpStreamCounter();
      const st: LocalStream & { udp: UdpStreamCounter } = {
        counted: 0,
        udp: counter,
        run: async () => {
          if (o.reverse) {
            sock.on('message', (m) => {
              const h = readUdpHeader(m);
              if (!h || h.tag !== started!.tag) return;
              counter.add(m.length, h.seq, h.sentUs, nowUs());
              st.counted += m.length;
            });
            const hello = Buffer.alloc(UDP_HEADER);
            writeUdpHeader(hello, started!.tag, i, 0xffffffff, nowUs());
            sock.send(hello, port, o.host);
            await sleep(ms + 300);
            return;
          }
          let seq = 0;
          await pump((b) => {
            writeUdpHeader(b, started!.tag, i, seq++, nowUs());
            st.counted += b.length;
            return new Promise<void>((r) => sock.send(b, port, o.host, () => r()));
          }, async () => undefined, len, ms, o.rate);
        },
      };
      return st;
    }
    case 'ws': {
      const port = await front('tcp', o.port + 2);
      const ws = new WebSocket(`ws://${o.host}:${port}/perf`, { maxPayload: 64 * 1024 * 1024 });
      ws.on('error', () => undefined);
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      cleanups.push(async () => ws.terminate());
      let resolveFar!: (c: StreamCount | null) => void;
      far.push(new Promise((r) => (resolveFar = r)));
      ws.on('close', () => resolveFar(null));
      const st: LocalStream = {
        counted: 0,
        run: () =>
          new Promise<void>((resolve) => {
            ws.on('close', () => resolve()); // refused (1008) or cut: the server's count is then not reported
            ws.on('message', (data: Buffer, binary: boolean) => {
              if (binary) st.counted += data.length;
              else {
                resolveFar(JSON.parse(data.toString()) as StreamCount);
                resolve();
              }
            });
            ws.send(JSON.stringify(req));
            if (o.reverse) return;
            const w = wsWriter(ws);
            void pump((b) => {
              st.counted += b.length;
              return w.write(b);
            }, w.drained, o.len, ms, o.rate, () => ws.readyState !== ws.OPEN).then(() => ws.send('done'));
          }),
      };
      return st;
    }
    case 'http': {
      const port = await front('tcp', o.port + 1);
      const client = await createHttpClient({ tracer });
      cleanups.push(() => client.close());
      const base = `http://${o.host}:${port}`;
      let received = 0;
      const st: LocalStream = {
        counted: 0,
        run: async () => {
          const body = Buffer.alloc(o.len, 0x61);
          const t0 = performance.now();
          while (performance.now() - t0 < ms) {
            if (o.reverse) {
              const r = await client.request(`${base}/bytes/${o.len}`);
              st.counted += r.body.length;
            } else {
              const r = await client.request(`${base}/upload?hash=0`, { method: 'POST', body });
              st.counted += o.len;
              received += (JSON.parse(r.body.toString()) as { bytes: number }).bytes;
            }
            if (o.rate > 0) {
              const due = ((st.counted * 8) / o.rate) * 1000 - (performance.now() - t0);
              if (due > 0) await sleep(due);
            }
          }
        },
      };
      // Upload: the server's replies say what it read. Download: the server does not report; the sender side is unknown.
      if (o.reverse) far.push(Promise.resolve(null));
      else far.push(after(st, () => ({ bytes: received })));
      return st;
    }
    case 'webrtc': {
      // Both peers in this process, signaled through the perf server's signaling port: a data channel over loopback.
      const port = o.port + 3;
      const pair = await connectPeerPair(`ws://${o.host}:${port}/signal`, `perf-${process.pid}-${i}-${Date.now()}`, (a) => a.createChannel('perf'), { tracer });
      cleanups.push(() => pair.close());
      const [ca, cb] = await Promise.all([pair.a.channel('perf'), pair.b.channel('perf')]);
      const [from, to] = o.reverse ? [cb!, ca!] : [ca!, cb!];
      let got = 0;
      to.onMessage = (m) => (got += (m.data as Buffer).length);
      let sent = 0;
      const st: LocalStream = {
        counted: 0,
        run: async () => {
          const block = Buffer.alloc(Math.min(o.len, 60_000), 0x62);
          const t0 = performance.now();
          const timer = setInterval(() => (st.counted = o.reverse ? got : sent), 50);
          while (performance.now() - t0 < ms) {
            await from.write(block);
            sent += block.length;
            if (o.rate > 0) {
              const due = ((sent * 8) / o.rate) * 1000 - (performance.now() - t0);
              if (due > 0) await sleep(due);
            }
          }
          // Let what is in flight arrive (the channel is reliable and ordered), up to a second.
          for (let k = 0; k < 100 && got < sent; k++) await sleep(10);
          clearInterval(timer);
          st.counted = o.reverse ? got : sent;
        },
      };
      far.push(after(st, () => ({ bytes: o.reverse ? sent : got })));
      return st;
    }
  }
}
