import net from 'node:net';
import tls from 'node:tls';
import { ErrorCodes, WirelabError } from '../core/errors.ts';
import { ReadQueue } from '../core/read-queue.ts';
import { createDecoder, encodeFrame, FRAMINGS, type Framing, type FramingLimits } from '../core/framing.ts';
import { checkBoolean, checkInt, checkOneOf, checkPort, checkString, withDefaults } from '../core/options.ts';
import { DEFAULT_HOST } from '../core/server.ts';
import { attachKeylog, describeHandshake, handshakeInfo, tlsClientOptions, type HandshakeInfo, type TlsSettings } from '../core/tls/index.ts';
import { NOOP_TRACER, nextCid, preview, socketEnds, type Tracer } from '../core/trace/index.ts';
import { describeEnd, type EndReason } from '../protocols/tcp.ts';
import { round } from '../core/stats.ts';

export interface TcpClientOptions extends FramingLimits {
  /** Default 127.0.0.1. */
  host?: string;
  port: number;
  /** Must match the server's framing. Default 'raw'. */
  framing?: Framing;
  /** Give up connecting after this long. Default 5000 ms. */
  connectTimeoutMs?: number;
  /** Disable Nagle's algorithm (TCP_NODELAY). Default false, as in the kernel. */
  noDelay?: boolean;
  /** Speak TLS, trusting the local CA; pass a TLS session to resume it. Default off. */
  tls?: (TlsSettings & { session?: Buffer }) | boolean;
  /**
   * Received messages kept unread (no `next()` waiting). One more closes the connection: reads then give what was
   * queued, then WL_ERR_QUEUE_FULL. Default 10,000.
   */
  maxQueued?: number;
  tracer?: Tracer;
}

export interface TcpCloseInfo {
  how: EndReason;
  bytesIn: number;
  bytesOut: number;
  reads: number[];
}

/** A TCP (or TLS) connection that sends and receives framed messages, and remembers how each read arrived. */
/** Every default of TcpClientOptions (the framing limits' are core/framing.ts's). */
export const TCP_CLIENT_DEFAULTS = Object.freeze({
  host: DEFAULT_HOST,
  framing: 'raw' as Framing,
  connectTimeoutMs: 5000,
  noDelay: false,
  maxQueued: 10_000,
});

export class TcpClient {
  readonly cid: string;
  /** Milliseconds from connect() to the connection being usable (TCP handshake, plus TLS when on). */
  readonly connectMs: number;
  /** The TLS handshake, when TLS is on. */
  readonly tls?: HandshakeInfo;
  /** Size of every read, in order: shows how writes were coalesced or split on the way. */
  readonly reads: number[] = [];
  bytesIn = 0;
  bytesOut = 0;
  /** Resolves once the connection has closed, saying how. */
  readonly closed: Promise<TcpCloseInfo>;
  /** The TLS session ticket to resume with, once the server sent one. */
  session?: Buffer;

  readonly #socket: net.Socket;
  readonly #framing: Framing;
  readonly #tracer: Tracer;
  readonly #proto: string;
  readonly #queue = new ReadQueue<Buffer>();
  #reason?: EndReason;

  private constructor(
    socket: net.Socket,
    proto: string,
    cid: string,
    connectMs: number,
    o: TcpClientOptions,
    early: { session?: Buffer },
    info?: HandshakeInfo,
  ) {
    this.#socket = socket;
    this.#proto = proto;
    this.cid = cid;
    this.connectMs = connectMs;
    if (info) this.tls = info;
    this.#framing = o.framing ?? 'raw';
    this.#tracer = o.tracer ?? NOOP_TRACER;
    const decoder = createDecoder(this.#framing, o);
    const maxQueued = o.maxQueued ?? TCP_CLIENT_DEFAULTS.maxQueued;
    if (early.session) this.session = early.session;
    socket.on('session', (s: Buffer) => (this.session = s));
    socket.on('data', (chunk: Buffer) => {
      this.reads.push(chunk.length);
      this.bytesIn += chunk.length;
      this.#tracer.emit(proto, cid, '<', 'read', () => ({ summary: `read #${this.reads.length} ${preview(chunk)}`, bytes: chunk.length, data: chunk }));
      let messages: Buffer[];
      try {
        messages = decoder.push(chunk);
      } catch (err) {
        this.#fail(err as Error);
        socket.destroy();
        return;
      }
      for (const m of messages) {
        if (!this.#queue.offer(m, maxQueued)) {
          this.#tracer.emit(proto, cid, '*', 'limit', () => `maxQueued=${maxQueued} unread messages: closing`);
          this.#fail(new WirelabError(ErrorCodes.QUEUE_FULL, `more than maxQueued=${maxQueued} messages received and not read`));
          socket.destroy();
          return;
        }
      }
    });
    this.closed = new Promise((resolve) => {
      socket.on('end', () => (this.#reason ??= 'fin'));
      socket.on('error', (err: NodeJS.ErrnoException) => {
        this.#reason ??= err.code === 'ECONNRESET' ? 'rst' : 'error';
        this.#fail(err);
      });
      socket.on('close', () => {
        const how = this.#reason ?? 'local';
        this.#fail(new WirelabError(ErrorCodes.CLOSED, `connection ${describeEnd(how, 'server')}`));
        this.#tracer.emit(proto, cid, '*', 'close', () => ({
          summary: `${describeEnd(how, 'server')}: ${this.bytesOut} B out, ${this.bytesIn} B in (${this.reads.length} reads)`,
          meta: { how },
        }));
        resolve({ how, bytesIn: this.bytesIn, bytesOut: this.bytesOut, reads: this.reads });
      });
    });
  }

  /** Connects and resolves once the connection (and TLS handshake, if any) is up. */
  static async connect(options: TcpClientOptions): Promise<TcpClient> {
    const o = withDefaults(TCP_CLIENT_DEFAULTS, options);
    const host = checkString('host', o.host);
    checkPort('port', options.port);
    checkOneOf('framing', o.framing, FRAMINGS);
    const timeout = checkInt('connectTimeoutMs', o.connectTimeoutMs, 1, 600_000);
    checkBoolean('noDelay', o.noDelay);
    checkInt('maxQueued', o.maxQueued, 1, 10_000_000);
    const tracer = options.tracer ?? NOOP_TRACER;
    const useTls = options.tls !== undefined && options.tls !== false;
    const proto = useTls ? 'tls' : 'tcp';
    const cid = nextCid(proto);
    const started = performance.now();
    let socket: net.Socket;
    const early: { session?: Buffer } = {};
    if (useTls) {
      const settings = options.tls === true ? {} : (options.tls as TlsSettings & { session?: Buffer });
      socket = tls.connect({ host, port: options.port, ...(await tlsClientOptions(settings)), ...(settings.session ? { session: settings.session } : {}) });
      attachKeylog(socket, settings.keylogFile);
      // TLS 1.2 hands over its session before 'secureConnect': keep it for the client object made afterwards.
      socket.on('session', (s: Buffer) => (early.session = s));
    } else {
      socket = net.connect({ host, port: options.port, noDelay: o.noDelay });
    }
    tracer.emit(proto, cid, '>', 'connect', () => `connecting to ${host}:${options.port}`);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new WirelabError(ErrorCodes.TIMEOUT, `connect to ${host}:${options.port} timed out after ${timeout} ms`));
      }, timeout);
      socket.once(useTls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    const connectMs = round(performance.now() - started);
    const info = useTls ? handshakeInfo(socket as tls.TLSSocket, started) : undefined;
    tracer.emit(proto, cid, '*', 'connected', () => ({
      summary: info
        ? `${describeHandshake(info)} (TCP + TLS)`
        : `connected ${socket.localAddress}:${socket.localPort} → ${host}:${options.port} in ${connectMs} ms`,
      meta: { connectMs, ...(info ?? {}) },
      ...socketEnds(socket, 'client'),
    }));
    return new TcpClient(socket, proto, cid, connectMs, options, early, info);
  }

  /** This end's port: what the server sees as the peer's port. */
  get localPort(): number {
    return this.#socket.localPort ?? 0;
  }

  /** Sends one message in the connection's framing; resolves when it was handed to the kernel. */
  send(message: Buffer | string): Promise<void> {
    const buf = encodeFrame(this.#framing, message);
    this.bytesOut += buf.length;
    this.#tracer.emit(this.#proto, this.cid, '>', 'write', () => ({ summary: `write ${preview(buf)}`, bytes: buf.length, data: buf }));
    return new Promise((resolve, reject) => this.#socket.write(buf, (err) => (err ? reject(err) : resolve())));
  }

  /** The next message (a whole frame, or one read in raw framing). */
  next(timeoutMs = 5000): Promise<Buffer> {
    return this.#queue.next(timeoutMs, 'message');
  }

  /** Reads raw bytes until `n` have arrived (raw framing), whatever the read boundaries. */
  async readBytes(n: number, timeoutMs = 5000): Promise<Buffer> {
    const parts: Buffer[] = [];
    let got = 0;
    while (got < n) {
      const b = await this.next(timeoutMs);
      parts.push(b);
      got += b.length;
    }
    const all = Buffer.concat(parts);
    if (all.length > n) this.#queue.unshift(all.subarray(n));
    return all.subarray(0, n);
  }

  /** Half-closes: sends FIN, keeps reading what the server still sends. */
  end(): Promise<TcpCloseInfo> {
    this.#reason ??= 'local';
    this.#socket.end();
    return this.closed;
  }

  /** Aborts with an RST instead of a FIN. */
  reset(): Promise<TcpCloseInfo> {
    this.#reason = 'local';
    this.#socket.resetAndDestroy();
    return this.closed;
  }

  destroy(): Promise<TcpCloseInfo> {
    this.#reason ??= 'local';
    this.#socket.destroy();
    return this.closed;
  }

  #fail(err: Error): void {
    this.#queue.fail(err);
  }
}

export function connectTcp(options: TcpClientOptions): Promise<TcpClient> {
  return TcpClient.connect(options);
}
