import dgram from 'node:dgram';
import { checkInt, checkPort, checkString, InvalidOptionError, withDefaults } from '../../options.ts';
import { bindUdp, DEFAULT_HOST, type RunningServer } from '../../server.ts';
import { NOOP_TRACER, nextCid, type Tracer } from '../../trace/index.ts';
import { Prng, randomSeed } from '../prng.ts';
import type { Stream } from '../toxics.ts';
import { describeImpairments, FateDrawer, parseImpairments, type UdpImpairments } from './impairments.ts';
import { round } from '../../stats.ts';
import { tapDatagrams } from '../../capture/taps.ts';

export interface UdpRelayOptions {
  /** Shown in traces and the control API. Default `relay`. */
  name?: string;
  /** Where clients send. Default 127.0.0.1. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  upstreamHost?: string;
  upstreamPort: number;
  /** Client → server impairments. */
  upstream?: UdpImpairments;
  /** Server → client impairments. */
  downstream?: UdpImpairments;
  /** The same seed and the same datagrams give the same fates. Default: from the clock (see `seed`). */
  seed?: number;
  /** Clients (source addresses) relayed at once, each with its own upstream socket. Default 1024. */
  maxSessions?: number;
  /** A client silent this long loses its upstream socket. Default 60,000 ms. */
  sessionIdleMs?: number;
  /** Datagram records kept; the oldest are dropped past it. Default 100,000. */
  maxRecords?: number;
  /**
   * Reads a sequence number from a datagram for its record and trace (the relay itself knows no protocol): wirelab's
   * UDP clients pass `datagramSeq` from protocols/datagram.ts. Default: none, records carry no `seq`.
   */
  sequenceOf?: (datagram: Buffer) => number | undefined;
  tracer?: Tracer;
}

/** What happened to one datagram. */
export interface DatagramRecord {
  /** Order of arrival in its stream, from 0. */
  n: number;
  stream: Stream;
  /** ms since the relay started. */
  at: number;
  bytes: number;
  /** The datagram's sequence number, when `sequenceOf` is set and found one. */
  seq?: number;
  fate: 'delivered' | 'lost' | 'queue-full' | 'no-session';
  duplicated: boolean;
  reordered: boolean;
  corruptBit: number;
  delayMs: number;
}

export interface UdpRelayStreamStats {
  received: number;
  delivered: number;
  lost: number;
  duplicated: number;
  reordered: number;
  corrupted: number;
  queueFull: number;
  /** Datagrams actually sent on (duplicates counted twice). */
  sent: number;
  maxQueued: number;
}

interface Pending {
  at: number;
  buf: Buffer;
  to: (buf: Buffer) => void;
}

/** One direction: fates drawn in arrival order, a time-ordered send queue, held-back datagrams for reordering. */
class StreamState {
  imp: UdpImpairments;
  readonly drawer: FateDrawer;
  readonly stats: UdpRelayStreamStats = { received: 0, delivered: 0, lost: 0, duplicated: 0, reordered: 0, corrupted: 0, queueFull: 0, sent: 0, maxQueued: 0 };
  readonly queue: Pending[] = [];
  readonly held: Array<{ left: number; p: Pending; timer: NodeJS.Timeout }> = [];
  cursor = 0;
  timer: NodeJS.Timeout | undefined;
  constructor(imp: UdpImpairments, prng: Prng) {
    this.imp = imp;
    this.drawer = new FateDrawer(prng);
  }
  get waiting(): number {
    return this.queue.length + this.held.length;
  }
}

interface Session {
  socket: dgram.Socket;
  lastSeen: number;
  cid: string;
  /** Sends to the server on the session's connected socket; made once per session, not once per datagram. */
  toServer: (b: Buffer) => void;
  /** Sends a reply to this session's client. */
  toClient: (b: Buffer) => void;
}

/** Every default of UdpRelayOptions (`seed` defaults to one drawn from the clock, `upstream` / `downstream` to none). */
export const UDP_RELAY_DEFAULTS = Object.freeze({
  name: 'relay',
  host: DEFAULT_HOST,
  port: 0,
  upstreamHost: DEFAULT_HOST,
  maxSessions: 1024,
  sessionIdleMs: 60_000,
  maxRecords: 100_000,
});

/**
 * A UDP relay that loses, duplicates, reorders, delays, corrupts and rate-limits datagrams, per direction, from a seed.
 * Each client address gets its own upstream socket, so the server's replies find their way back.
 */
export class UdpImpairmentRelay implements RunningServer {
  readonly proto = 'udp-relay';
  readonly name: string;
  readonly host: string;
  readonly upstreamHost: string;
  readonly upstreamPort: number;
  readonly seed: number;
  readonly records: DatagramRecord[] = [];
  recordsDropped = 0;
  port = 0;

  readonly #socket: dgram.Socket;
  readonly #sessions = new Map<string, Session>();
  readonly #streams: Record<Stream, StreamState>;
  readonly #tracer: Tracer;
  readonly #maxSessions: number;
  readonly #idleMs: number;
  readonly #maxRecords: number;
  readonly #sequenceOf: ((datagram: Buffer) => number | undefined) | undefined;
  readonly #start = performance.now();
  readonly #sweep: NodeJS.Timeout;

  private constructor(options: UdpRelayOptions) {
    const o = withDefaults(UDP_RELAY_DEFAULTS, options);
    this.name = checkString('name', o.name);
    this.host = checkString('host', o.host);
    this.upstreamHost = checkString('upstreamHost', o.upstreamHost);
    this.upstreamPort = checkPort('upstreamPort', o.upstreamPort);
    checkPort('port', o.port);
    this.seed = checkInt('seed', o.seed ?? randomSeed(), 0, 0xffffffff);
    this.#maxSessions = checkInt('maxSessions', o.maxSessions, 1, 1_000_000);
    this.#idleMs = checkInt('sessionIdleMs', o.sessionIdleMs, 1, 24 * 3600_000);
    this.#maxRecords = checkInt('maxRecords', o.maxRecords, 0, 100_000_000);
    this.#tracer = o.tracer ?? NOOP_TRACER;
    if (o.sequenceOf !== undefined && typeof o.sequenceOf !== 'function') throw new InvalidOptionError('sequenceOf', 'a function (datagram) => number | undefined', o.sequenceOf);
    this.#sequenceOf = o.sequenceOf;
    const prng = new Prng(this.seed);
    this.#streams = {
      upstream: new StreamState(parseImpairments(o.upstream ?? {}), prng.fork('upstream')),
      downstream: new StreamState(parseImpairments(o.downstream ?? {}), prng.fork('downstream')),
    };
    this.#socket = dgram.createSocket(this.host.includes(':') ? 'udp6' : 'udp4');
    this.#socket.on('message', (msg, rinfo) => this.#fromClient(msg, rinfo));
    // The client leg's datagrams for the pcapng export (one conversation per client), only when a sink wants them.
    tapDatagrams(this.#tracer, 'impair', this.name, this.#socket, 'server');
    // A datagram socket's errors (ICMP port unreachable surfacing on send) never stop the relay.
    this.#socket.on('error', (err) => this.#tracer.emit('impair', this.name, '*', 'error', () => err.message));
    this.#sweep = setInterval(() => this.#expire(), Math.min(this.#idleMs, 5000));
    this.#sweep.unref();
  }

  static async start(options: UdpRelayOptions): Promise<UdpImpairmentRelay> {
    const relay = new UdpImpairmentRelay(options);
    relay.port = await bindUdp(relay.#socket, options.port ?? UDP_RELAY_DEFAULTS.port, relay.host);
    relay.#tracer.emit('impair', relay.name, '*', 'listen', () => `relay ${relay.name} on ${relay.host}:${relay.port} → ${relay.upstreamHost}:${relay.upstreamPort} seed=${relay.seed}`);
    return relay;
  }

  /** Replaces one direction's impairments; datagrams already queued keep their fate. Throws 400 on a bad value. */
  set(stream: Stream, impairments: UdpImpairments): void {
    this.#streams[stream].imp = parseImpairments(impairments);
    this.#tracer.emit('impair', this.name, '*', 'impair', () => `${stream}: ${describeImpairments(this.#streams[stream].imp)}`);
  }

  get(stream: Stream): UdpImpairments {
    return this.#streams[stream].imp;
  }

  /** Removes every impairment. */
  clear(): void {
    this.set('upstream', {});
    this.set('downstream', {});
  }

  stats(stream: Stream): UdpRelayStreamStats {
    return this.#streams[stream].stats;
  }

  get sessions(): number {
    return this.#sessions.size;
  }

  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      listen: `${this.host}:${this.port}`,
      upstream: `${this.upstreamHost}:${this.upstreamPort}`,
      seed: this.seed,
      impairments: { upstream: this.#streams.upstream.imp, downstream: this.#streams.downstream.imp },
      stats: { upstream: { ...this.#streams.upstream.stats }, downstream: { ...this.#streams.downstream.stats }, sessions: this.#sessions.size },
    };
  }

  async close(): Promise<void> {
    clearInterval(this.#sweep);
    for (const s of Object.values(this.#streams)) {
      clearTimeout(s.timer);
      for (const h of s.held) clearTimeout(h.timer);
    }
    await Promise.all([...this.#sessions.values()].map((s) => new Promise<void>((r) => s.socket.close(() => r()))));
    this.#sessions.clear();
    await new Promise<void>((r) => this.#socket.close(() => r()));
  }

  #fromClient(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const key = `${rinfo.address}:${rinfo.port}`;
    let session = this.#sessions.get(key);
    if (!session) {
      if (this.#sessions.size >= this.#maxSessions) {
        this.#streams.upstream.stats.received++;
        this.#record('upstream', msg, 'no-session', undefined);
        this.#tracer.emit('impair', this.name, '*', 'limit', () => `maxSessions=${this.#maxSessions} reached: datagram from ${key} dropped`);
        return;
      }
      const socket = dgram.createSocket(this.upstreamHost.includes(':') ? 'udp6' : 'udp4');
      const cid = nextCid('impair');
      // The upstream socket is connected to the server: a send names no address (node resolves and checks one per
      // send otherwise) and the kernel drops datagrams from anyone else. Sends before the connect completes wait.
      let early: Buffer[] | undefined = [];
      const toServer = (b: Buffer): void => {
        if (early) early.push(b);
        else socket.send(b);
      };
      const { port: clientPort, address: clientAddress } = rinfo;
      const toClient = (b: Buffer): void => this.#socket.send(b, clientPort, clientAddress);
      const s: Session = { socket, lastSeen: performance.now(), cid, toServer, toClient };
      session = s;
      this.#sessions.set(key, s);
      socket.on('error', (err) => this.#tracer.emit('impair', cid, '*', 'error', () => `upstream socket: ${err.message}`));
      tapDatagrams(this.#tracer, 'impair', cid, socket, 'client');
      // Toward a loopback server, listen on loopback only (sends made before the bind completes are queued by node).
      if (this.upstreamHost.startsWith('127.') || this.upstreamHost === '::1') socket.bind(0, this.upstreamHost === '::1' ? '::1' : '127.0.0.1');
      socket.connect(this.upstreamPort, this.upstreamHost, () => {
        const waiting = early ?? [];
        early = undefined;
        for (const b of waiting) socket.send(b);
      });
      socket.on('message', (reply) => {
        s.lastSeen = performance.now();
        this.#impair('downstream', reply, toClient);
      });
      this.#tracer.emit('impair', cid, '*', 'session', () => `new client ${key}`);
    }
    session.lastSeen = performance.now();
    this.#impair('upstream', msg, session.toServer);
  }

  #impair(stream: Stream, msg: Buffer, to: (b: Buffer) => void): void {
    const st = this.#streams[stream];
    st.stats.received++;
    const imp = st.imp;
    const fate = st.drawer.draw(imp, msg.length);
    if (fate.lost) {
      st.stats.lost++;
      this.#record(stream, msg, 'lost', fate);
      return;
    }
    const limit = imp.queueLimit ?? 1000;
    const needsQueue = fate.delayMs > 0 || fate.reordered || imp.rateKbit !== undefined || st.waiting > 0;
    if (needsQueue && st.waiting >= limit) {
      st.stats.queueFull++;
      this.#record(stream, msg, 'queue-full', fate);
      return;
    }
    let buf = msg;
    if (fate.corruptBit >= 0) {
      buf = Buffer.from(msg);
      buf[fate.corruptBit >> 3]! ^= 1 << (fate.corruptBit & 7);
      st.stats.corrupted++;
    }
    st.stats.delivered++;
    if (fate.duplicated) st.stats.duplicated++;
    if (fate.reordered) st.stats.reordered++;
    this.#record(stream, msg, 'delivered', fate);
    const copies = fate.duplicated ? 2 : 1;
    if (!needsQueue) {
      for (let i = 0; i < copies; i++) this.#send(st, buf, to);
      return;
    }
    const now = performance.now();
    let at = Math.max(st.cursor, now + fate.delayMs);
    for (let i = 0; i < copies; i++) {
      if (imp.rateKbit) at += (buf.length * 8) / imp.rateKbit; // kbit/s = bits per ms
      const p = { at, buf, to };
      if (fate.reordered && i === 0) {
        // Held back until `reorderGap` later datagrams of this stream have been sent (or 100 ms pass).
        const h = { left: imp.reorderGap ?? 3, p, timer: setTimeout(() => this.#release(st, h), 100) };
        st.held.push(h);
      } else {
        st.queue.push(p);
      }
    }
    st.cursor = at;
    st.stats.maxQueued = Math.max(st.stats.maxQueued, st.waiting);
    this.#schedule(st);
  }

  #send(st: StreamState, buf: Buffer, to: (b: Buffer) => void): void {
    st.stats.sent++;
    to(buf);
    if (st.held.length === 0) return;
    for (const h of [...st.held]) {
      if (--h.left <= 0) this.#release(st, h);
    }
  }

  #release(st: StreamState, h: StreamState['held'][number]): void {
    const i = st.held.indexOf(h);
    if (i === -1) return;
    st.held.splice(i, 1);
    clearTimeout(h.timer);
    this.#send(st, h.p.buf, h.p.to);
  }

  #schedule(st: StreamState): void {
    if (st.timer !== undefined) return;
    const now = performance.now() + 0.5;
    while (st.queue.length > 0 && st.queue[0]!.at <= now) {
      const p = st.queue.shift()!;
      this.#send(st, p.buf, p.to);
    }
    const head = st.queue[0];
    if (!head) return;
    st.timer = setTimeout(() => {
      st.timer = undefined;
      this.#schedule(st);
    }, Math.max(1, Math.ceil(head.at - performance.now())));
  }

  #record(stream: Stream, msg: Buffer, fate: DatagramRecord['fate'], f: { corruptBit: number; duplicated: boolean; reordered: boolean; delayMs: number } | undefined): void {
    const st = this.#streams[stream];
    const seq = this.#sequenceOf?.(msg);
    // One literal per datagram, `seq` set after (a conditional spread costs an object and a copy per datagram).
    const rec: DatagramRecord = {
      n: st.stats.received - 1,
      stream,
      at: round(performance.now() - this.#start),
      bytes: msg.length,
      fate,
      duplicated: f?.duplicated ?? false,
      reordered: f?.reordered ?? false,
      corruptBit: f?.corruptBit ?? -1,
      delayMs: f?.delayMs ?? 0,
    };
    if (seq !== undefined) rec.seq = seq;
    if (this.#maxRecords > 0) {
      if (this.records.length >= this.#maxRecords) {
        const n = Math.max(1, Math.floor(this.#maxRecords / 10));
        this.records.splice(0, n);
        this.recordsDropped += n;
      }
      this.records.push(rec);
    }
    if (this.#tracer.enabled) this.#tracer.emit('impair', this.name, stream === 'upstream' ? '>' : '<', 'datagram', () => ({
      summary: `#${rec.n}${seq === undefined ? '' : ` seq=${seq}`} ${msg.length} B ${fate}${rec.duplicated ? ' +dup' : ''}${rec.reordered ? ' reordered' : ''}${rec.corruptBit >= 0 ? ` bit ${rec.corruptBit} flipped` : ''}${rec.delayMs ? ` +${rec.delayMs.toFixed(1)} ms` : ''}`,
      bytes: msg.length,
      meta: { ...rec },
    }));
  }

  #expire(): void {
    const now = performance.now();
    for (const [key, s] of this.#sessions) {
      if (now - s.lastSeen > this.#idleMs) {
        this.#sessions.delete(key);
        s.socket.close();
        this.#tracer.emit('impair', s.cid, '*', 'session', () => `client ${key} idle for sessionIdleMs=${this.#idleMs}: forgotten`);
      }
    }
  }
}

export function startUdpRelay(options: UdpRelayOptions): Promise<UdpImpairmentRelay> {
  return UdpImpairmentRelay.start(options);
}
