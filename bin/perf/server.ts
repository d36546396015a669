// `wirelab perf server`: the receiving (or, with -R, sending) end of every `wirelab perf client` test.
// Port P: TCP (control and data) and UDP; P+1 wirelab's HTTP server (/upload, /bytes); P+2 a WebSocket server (/perf);
// P+3 wirelab's WebRTC signaling server (both peers of a webrtc test live in the client).
import dgram from 'node:dgram';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import type { WebSocket } from 'ws';
import { bindUdp, DEFAULT_HOST, listenTcp, SocketSet, type RunningServer } from '../../core/server.ts';
import { NOOP_TRACER, type Tracer } from '../../core/trace/index.ts';
import { startHttpServer } from '../../servers/http/index.ts';
import { startWsServer } from '../../servers/ws/index.ts';
import { startSignalingServer } from '../../servers/webrtc/index.ts';
import { checkStart, wsWriter, MAX_HEADER_BYTES, nowUs, readUdpHeader, splitFirstLine, UDP_HEADER, UdpStreamCounter, writeUdpHeader, type StartRequest, type StreamCount } from './wire.ts';

export interface PerfServerOptions {
  host?: string;
  /** TCP and UDP; HTTP, WebSocket and signaling take the next three. Default 5201 (iperf3's). 0: free ports. */
  port?: number;
  /** Tests kept at once (each holds its counters until its control connection closes). Default 64. */
  maxTests?: number;
  tracer?: Tracer;
}

export interface RunningPerfServer extends RunningServer {
  readonly ports: { tcp: number; udp: number; http: number; ws: number; signal: number };
}

interface Test {
  req: StartRequest;
  tag: number;
  streams: Map<number, StreamCount>;
  udp: Map<number, UdpStreamCounter>;
}

/** Sends `len`-byte writes for `ms`, paced to `rate` bit/s (0: as fast as the socket drains). Returns bytes sent. */
export async function pump(write: (b: Buffer) => boolean | Promise<unknown>, drained: () => Promise<void>, len: number, ms: number, rate: number, stop: () => boolean = () => false): Promise<number> {
  const block = Buffer.alloc(len, 0x61);
  const t0 = performance.now();
  let sent = 0;
  while (!stop()) {
    const elapsed = performance.now() - t0;
    if (elapsed >= ms) break;
    if (rate > 0 && sent * 8 > (rate * elapsed) / 1000) {
      await new Promise((r) => setTimeout(r, Math.max(1, ((sent * 8) / rate) * 1000 - elapsed)));
      continue;
    }
    const r = write(block);
    sent += len;
    if (r === false) await drained();
    else if (r instanceof Promise) await r;
  }
  return sent;
}

export async function startPerfServer(options: PerfServerOptions = {}): Promise<RunningPerfServer> {
  const host = options.host ?? DEFAULT_HOST;
  const base = options.port ?? 5201;
  const maxTests = options.maxTests ?? 64;
  const tracer = options.tracer ?? NOOP_TRACER;
  const tests = new Map<string, Test>();
  const byTag = new Map<number, Test>();
  const sockets = new SocketSet();

  const dropTest = (id: string): void => {
    const t = tests.get(id);
    if (!t) return;
    tests.delete(id);
    byTag.delete(t.tag);
  };

  const udp = dgram.createSocket('udp4');
  udp.on('error', (err) => tracer.emit('perf', 'perf-server', '*', 'error', () => `udp: ${err.message}`));

  const onConnection = (socket: net.Socket): void => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    let head: Buffer = Buffer.alloc(0);
    const onHead = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const split = splitFirstLine(head);
      if (!split) {
        if (head.length > MAX_HEADER_BYTES) socket.destroy();
        return;
      }
      socket.off('data', onHead);
      let msg: { op?: string; id?: string; stream?: number } & Partial<StartRequest>;
      try {
        msg = JSON.parse(split.line) as typeof msg;
      } catch {
        socket.end('{"error":"the first line must be JSON"}\n');
        return;
      }
      if (msg.op === 'start') return control(socket, msg as StartRequest, split.rest);
      if (msg.op === 'data') return data(socket, String(msg.id), Number(msg.stream), split.rest);
      socket.end(`{"error":"unknown op"}\n`);
    };
    socket.on('data', onHead);
  };

  const control = (socket: net.Socket, req: StartRequest, rest: Buffer): void => {
    const bad = checkStart(req);
    if (bad) {
      socket.end(JSON.stringify({ error: bad }) + '\n');
      return;
    }
    if (tests.size >= maxTests) {
      socket.end(`{"error":"maxTests=${maxTests} reached"}\n`);
      return;
    }
    const id = randomBytes(8).toString('hex');
    const test: Test = { req, tag: randomBytes(4).readUInt32BE(0), streams: new Map(), udp: new Map() };
    tests.set(id, test);
    byTag.set(test.tag, test);
    tracer.emit('perf', `perf-${id}`, '*', 'start', () => `${req.proto} test: ${req.streams} stream(s), ${req.time} s, ${req.reverse ? 'server sends' : 'client sends'}`);
    socket.write(JSON.stringify({ id, tag: test.tag, udpPort: ports.udp }) + '\n');
    let buf: Buffer = rest;
    socket.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      for (let split = splitFirstLine(buf); split; split = splitFirstLine(buf)) {
        buf = split.rest;
        const streams = [...test.streams.entries(), ...[...test.udp.entries()].map(([k, v]) => [k, v.toJSON()] as const)].sort((a, b) => a[0] - b[0]);
        socket.write(JSON.stringify({ streams: streams.map(([k, v]) => ({ stream: k, ...v })) }) + "\n");
      }
      if (buf.length > MAX_HEADER_BYTES) socket.destroy();
    });
    socket.on('close', () => dropTest(id));
  };

  const data = (socket: net.Socket, id: string, stream: number, rest: Buffer): void => {
    const test = tests.get(id);
    if (!test || !Number.isInteger(stream) || stream < 0 || stream >= test.req.streams) {
      socket.destroy();
      return;
    }
    const count: StreamCount = { bytes: rest.length };
    test.streams.set(stream, count);
    if (!test.req.reverse) {
      socket.on('data', (c: Buffer) => (count.bytes += c.length));
      socket.on('end', () => socket.end());
      return;
    }
    count.bytes = 0;
    void pump((b) => socket.write(b), () => new Promise((r) => socket.once('drain', r)), test.req.len, test.req.time * 1000, test.req.rate, () => socket.destroyed).then((n) => {
      count.bytes = n;
      socket.end();
    }, () => socket.destroy());
  };

  // UDP: count each test's datagrams; a "hello" (sequence 0xffffffff) from the client starts a reverse stream to it.
  udp.on('message', (msg, from) => {
    const h = readUdpHeader(msg);
    const test = h ? byTag.get(h.tag) : undefined;
    if (!h || !test) return;
    if (h.seq === 0xffffffff) {
      if (!test.req.reverse || test.streams.has(h.stream)) return;
      const count: StreamCount = { bytes: 0, packets: 0 };
      test.streams.set(h.stream, count);
      let seq = 0;
      void pump(
        (b) => {
          writeUdpHeader(b, test.tag, h.stream, seq++, nowUs());
          udp.send(b, from.port, from.address);
          count.packets!++;
          return true;
        },
        async () => undefined,
        Math.max(UDP_HEADER, test.req.len),
        test.req.time * 1000,
        test.req.rate,
      ).then((n) => (count.bytes = n), () => undefined); // the socket closed under it (server stopping)
      return;
    }
    let c = test.udp.get(h.stream);
    if (!c) test.udp.set(h.stream, (c = new UdpStreamCounter()));
    c.add(msg.length, h.seq, h.sentUs, nowUs());
  });

  const tcpServer = net.createServer(onConnection);
  tcpServer.on('error', (err) => tracer.emit('perf', 'perf-server', '*', 'error', () => err.message));
  const tcpPort = await listenTcp(tcpServer, base, host);
  const udpPort = await bindUdp(udp, tcpPort, host).catch(async (err: Error) => {
    await new Promise<void>((r) => tcpServer.close(() => r()));
    throw err;
  });
  const next = (n: number): number => (base === 0 ? 0 : base + n);
  const started: RunningServer[] = [];
  const closeAll = async (): Promise<void> => {
    sockets.destroyAll();
    await new Promise<void>((r) => tcpServer.close(() => r()));
    await new Promise<void>((r) => udp.close(() => r()));
    await Promise.all(started.map((s) => s.close()));
  };
  let http, ws, signal;
  try {
    started.push((http = await startHttpServer({ host, port: next(1), rateLimitBurst: 0, maxBodyBytes: 64 * 1024 * 1024, tracer })));
    started.push((ws = await startWsServer({
    host,
    port: next(2),
    builtinRoutes: false,
    tracer,
    paths: { '/perf': { maxPayload: 16 * 1024 * 1024, accept: (sock) => wsPerf(sock) } },
    })));
    started.push((signal = await startSignalingServer({ host, port: next(3), tracer, maxPayload: 1024 * 1024 })));
  } catch (err) {
    await closeAll();
    throw err;
  }
  const ports = { tcp: tcpPort, udp: udpPort, http: http.port, ws: ws.port, signal: signal.port };
  tracer.emit('perf', 'perf-server', '*', 'listen', () => `perf server: tcp/udp ${tcpPort}, http ${http.port}, ws ${ws.port}, signaling ${signal.port}`);

  return {
    proto: 'perf',
    host,
    port: tcpPort,
    url: `tcp://${host}:${tcpPort}`,
    ports,
    close: closeAll,
  };
}

/**
 * One WebSocket perf stream. The first message is the JSON request; then, client to server: binary messages counted
 * until the text "done", answered with {"bytes"}; server to client (reverse): binary messages for `time`, then {"bytes"}.
 */
function wsPerf(ws: WebSocket): void {
  let req: StartRequest | undefined;
  let bytes = 0;
  ws.on('error', () => undefined);
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary) {
      bytes += data.length;
      return;
    }
    const text = data.toString();
    if (text === 'done') {
      ws.send(JSON.stringify({ bytes }));
      return;
    }
    if (req) return;
    try {
      req = JSON.parse(text) as StartRequest;
    } catch {
      ws.close(1003, 'the first message must be JSON');
      return;
    }
    const bad = checkStart(req);
    if (bad) {
      ws.close(1008, bad.slice(0, 120));
      return;
    }
    if (!req.reverse) return;
    const r = req;
    const w = wsWriter(ws);
    void pump((b) => w.write(b), w.drained, r.len, r.time * 1000, r.rate, () => ws.readyState !== ws.OPEN).then((n) => {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ bytes: n }));
    }, () => ws.terminate());
  });
}
