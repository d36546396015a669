import dgram from 'node:dgram';
import { checkDatagramSize } from '../core/datagram.ts';
import { nowMs } from '../core/time.ts';
import { decodeHeader, encodeDatagram } from '../protocols/datagram.ts';
import { ErrorCodes, WirelabError } from '../core/errors.ts';
import { checkBoolean, checkPort, checkString, withDefaults } from '../core/options.ts';
import { DEFAULT_HOST } from '../core/server.ts';
import { addressOf, endsOf, NOOP_TRACER, nextCid, preview, type Ends, type Tracer } from '../core/trace/index.ts';

export interface UdpClientOptions {
  /** Default 127.0.0.1. */
  host?: string;
  port: number;
  /**
   * connect() the socket to the server. A connected socket receives only the server's datagrams and is told of ICMP
   * errors (a closed port shows up as ECONNREFUSED); an unconnected one never hears of them. Default true.
   */
  connect?: boolean;
  tracer?: Tracer;
}

export interface EchoReply {
  seq: number;
  rttMs: number;
  bytes: number;
}

/** Sends numbered, time-stamped datagrams and matches the echoes by sequence number. */
/** Every default of UdpClientOptions. */
export const UDP_CLIENT_DEFAULTS = Object.freeze({ host: DEFAULT_HOST, connect: true });

export class UdpClient {
  readonly cid: string;
  readonly host: string;
  readonly port: number;
  /** Errors the kernel reported on this socket (ECONNREFUSED from an ICMP port unreachable, say). */
  readonly errors: NodeJS.ErrnoException[] = [];
  sent = 0;
  received = 0;
  duplicates = 0;
  outOfOrder = 0;

  readonly #socket: dgram.Socket;
  readonly #tracer: Tracer;
  readonly #connected: boolean;
  readonly #pending = new Map<number, (r: EchoReply) => void>();
  readonly #seen = new Set<number>();
  #highest = -1;
  #seq = 0;
  readonly #listeners = new Set<(msg: Buffer) => void>();

  private constructor(socket: dgram.Socket, o: UdpClientOptions, host: string, connected: boolean) {
    this.#socket = socket;
    this.#tracer = o.tracer ?? NOOP_TRACER;
    this.#connected = connected;
    this.host = host;
    this.port = o.port;
    this.cid = nextCid('udp');
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.errors.push(err);
      this.#tracer.emit('udp', this.cid, '*', 'error', () => `${err.code ?? ''} on ${err.syscall ?? 'socket'}: ${err.message}`);
    });
    socket.on('message', (msg) => this.#onMessage(msg));
  }

  static async open(options: UdpClientOptions): Promise<UdpClient> {
    const o = withDefaults(UDP_CLIENT_DEFAULTS, options);
    checkPort('port', o.port);
    const host = checkString('host', o.host);
    const connect = checkBoolean('connect', o.connect);
    const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      const done = (): void => {
        socket.off('error', reject);
        resolve();
      };
      if (connect) socket.connect(options.port, host, done);
      else socket.bind(0, host.includes(':') ? '::1' : DEFAULT_HOST, done);
    });
    return new UdpClient(socket, options, host, connect);
  }

  get localPort(): number {
    return this.#socket.address().port;
  }

  /** Sends one numbered datagram; returns its sequence number. Throws WL_ERR_DATAGRAM_TOO_LARGE past 65,507 bytes. */
  async send(payload: Uint8Array | string = ''): Promise<number> {
    const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
    const seq = this.#seq++;
    await this.sendRaw(encodeDatagram(seq, body));
    return seq;
  }

  /** Sends bytes as they are, without wirelab's header. */
  async sendRaw(buf: Uint8Array): Promise<void> {
    checkDatagramSize(buf.byteLength, 'datagram');
    this.sent++;
    const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    this.#tracer.emit('udp', this.cid, '>', 'datagram', () => {
      const h = decodeHeader(b);
      return { summary: `to ${this.host}:${this.port} ${h ? `seq=${h.seq}` : preview(b)}`, bytes: b.length, data: b, ...this.#ends() };
    });
    return new Promise((resolve, reject) => {
      const cb = (err: Error | null): void => (err ? reject(err) : resolve());
      if (this.#connected) this.#socket.send(b, cb);
      else this.#socket.send(b, this.port, this.host, cb);
    });
  }

  /** Sends one datagram and waits for its echo. */
  async echo(payload: Uint8Array | string = '', timeoutMs = 2000): Promise<EchoReply> {
    const seq = this.#seq;
    const reply = new Promise<EchoReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(seq);
        reject(new WirelabError(ErrorCodes.TIMEOUT, `no echo of seq=${seq} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(seq, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
    });
    await this.send(payload);
    return reply;
  }

  /** Calls `fn` with every datagram that arrives, header or not. Returns a function that removes it. */
  onMessage(fn: (msg: Buffer) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** This socket and the server as trace ends (none before the socket is bound). */
  #ends(): Partial<Ends> {
    try {
      const a = this.#socket.address();
      const local = addressOf(a.address, a.port);
      const remote = addressOf(this.host, this.port);
      return local && remote ? endsOf('udp', 'client', local, remote) : {};
    } catch {
      return {};
    }
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#socket.close(() => resolve()));
  }

  #onMessage(msg: Buffer): void {
    this.received++;
    for (const fn of this.#listeners) fn(msg);
    const h = decodeHeader(msg);
    if (!h) {
      this.#tracer.emit('udp', this.cid, '<', 'datagram', () => ({ summary: preview(msg), bytes: msg.length, data: msg, ...this.#ends() }));
      return;
    }
    const rttMs = nowMs() - h.sentAt;
    if (this.#seen.has(h.seq)) this.duplicates++;
    else if (h.seq < this.#highest) this.outOfOrder++;
    this.#seen.add(h.seq);
    this.#highest = Math.max(this.#highest, h.seq);
    this.#tracer.emit('udp', this.cid, '<', 'datagram', () => ({
      summary: `seq=${h.seq} rtt=${rttMs.toFixed(3)} ms`,
      bytes: msg.length,
      meta: { seq: h.seq, rttMs },
      data: msg,
      ...this.#ends(),
    }));
    const waiter = this.#pending.get(h.seq);
    if (waiter) {
      this.#pending.delete(h.seq);
      waiter({ seq: h.seq, rttMs, bytes: msg.length });
    }
  }
}

export function openUdp(options: UdpClientOptions): Promise<UdpClient> {
  return UdpClient.open(options);
}
