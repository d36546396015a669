import type http from 'node:http';
import type { Duplex } from 'node:stream';
import WebSocket, { type RawData } from 'ws';
import { ErrorCodes, WirelabError } from '../core/errors.ts';
import { ReadQueue } from '../core/read-queue.ts';
import { checkBoolean, checkInt, checkString, withDefaults } from '../core/options.ts';
import { tlsClientOptions, type TlsSettings } from '../core/tls/index.ts';
import { NOOP_TRACER, nextCid, preview, redactLine, type Tracer } from '../core/trace/index.ts';
import { acceptFor, CLOSE_CODES, traceFrames, type FrameHeader } from '../protocols/ws.ts';
import { round } from '../core/stats.ts';
import { sleep } from '../core/time.ts';

export interface WsReconnectOptions {
  /** Attempts after an unexpected close before giving up. Default 5. */
  retries?: number;
  /** First wait; doubled each attempt, with ±20 % jitter. Default 200 ms. */
  baseMs?: number;
  /** Longest wait. Default 5000 ms. */
  maxMs?: number;
}

export interface WsClientOptions {
  url: string;
  /** Offer permessage-deflate. Default false. */
  perMessageDeflate?: boolean;
  /** Largest message accepted from the server (close 1009 past it). Default 100 MiB. */
  maxPayload?: number;
  /** Give up the opening handshake after this long. Default 5000 ms. */
  handshakeTimeoutMs?: number;
  /** For wss://: the local CA is trusted. Default {}. */
  tls?: TlsSettings;
  /** Reconnect with exponential backoff after an unexpected close. Default off. */
  reconnect?: WsReconnectOptions | boolean;
  /**
   * Received messages kept unread (no `next()` waiting). One more closes the connection (1008, no reconnect): reads
   * then give what was queued, then WL_ERR_QUEUE_FULL. Default 10,000.
   */
  maxQueued?: number;
  tracer?: Tracer;
}

export interface WsMessage {
  data: Buffer;
  isBinary: boolean;
  /** performance.now() when it arrived. */
  at: number;
}

export interface WsCloseInfo {
  code: number;
  reason: string;
}

/** The handshake as this client saw it. */
export interface WsHandshake {
  key: string;
  accept: string;
  /** Sec-WebSocket-Accept recomputed from our key matched the server's. */
  acceptMatches: boolean;
  status: number;
  extensions: string;
  ms: number;
}

/** Every default of WsClientOptions, and of `reconnect` when it is `true` or leaves a field out. */
export const WS_CLIENT_DEFAULTS = Object.freeze({
  perMessageDeflate: false,
  maxPayload: 100 * 1024 * 1024,
  handshakeTimeoutMs: 5000,
  maxQueued: 10_000,
  reconnect: Object.freeze({ retries: 5, baseMs: 200, maxMs: 5000 }),
});

/** A WebSocket client on ws, with the handshake and every frame traced, and optional reconnect with backoff. */
export class WsClient {
  cid: string;
  handshake!: WsHandshake;
  /** Frames seen on the wire (only filled when tracing is on). */
  frames: FrameHeader[] = [];
  reconnects = 0;
  /** Resolves when the connection has closed for good (after the last reconnect attempt, if any). */
  readonly closed: Promise<WsCloseInfo>;

  #ws!: WebSocket;
  #socket?: Duplex;
  readonly #o: WsClientOptions & { tracer: Tracer };
  readonly #queue = new ReadQueue<WsMessage>();
  #closing = false;
  #overflow?: WirelabError;
  #resolveClosed!: (c: WsCloseInfo) => void;
  readonly #tlsOpts: Record<string, unknown>;

  private constructor(o: WsClientOptions & { tracer: Tracer }, tlsOpts: Record<string, unknown>) {
    this.#o = o;
    this.#tlsOpts = tlsOpts;
    this.cid = nextCid(o.url.startsWith('wss:') ? 'wss' : 'ws');
    this.closed = new Promise((r) => (this.#resolveClosed = r));
  }

  static async connect(options: WsClientOptions): Promise<WsClient> {
    checkString('url', options.url);
    const o = withDefaults({ ...WS_CLIENT_DEFAULTS, reconnect: false as WsReconnectOptions | boolean }, options);
    checkBoolean('perMessageDeflate', o.perMessageDeflate);
    checkInt('maxPayload', o.maxPayload, 1, 1024 * 1024 * 1024);
    checkInt('handshakeTimeoutMs', o.handshakeTimeoutMs, 1, 600_000);
    if (typeof o.reconnect === 'object') {
      const r = withDefaults(WS_CLIENT_DEFAULTS.reconnect, o.reconnect);
      checkInt('reconnect.retries', r.retries, 0, 1000);
      checkInt('reconnect.baseMs', r.baseMs, 1, 3600_000);
      checkInt('reconnect.maxMs', r.maxMs, 1, 3600_000);
    } else checkBoolean('reconnect', o.reconnect);
    checkInt('maxQueued', o.maxQueued, 1, 10_000_000);
    const tlsOpts = options.url.startsWith('wss:') ? await tlsClientOptions(options.tls ?? {}) : {};
    const c = new WsClient({ ...options, tracer: options.tracer ?? NOOP_TRACER }, tlsOpts);
    await c.#open();
    return c;
  }

  /** The underlying ws socket (for labs that poke at it). */
  get ws(): WebSocket {
    return this.#ws;
  }

  #open(): Promise<void> {
    const o = this.#o;
    const tracer = o.tracer;
    const started = performance.now();
    let key = '';
    const ws = new WebSocket(o.url, {
      // ws's hook for the upgrade request before it is sent: read the key it made, to check the server's accept.
      finishRequest: (req: http.ClientRequest) => {
        key = String(req.getHeader('sec-websocket-key') ?? '');
        req.end();
      },
      perMessageDeflate: o.perMessageDeflate ?? WS_CLIENT_DEFAULTS.perMessageDeflate,
      maxPayload: o.maxPayload ?? WS_CLIENT_DEFAULTS.maxPayload,
      handshakeTimeout: o.handshakeTimeoutMs ?? WS_CLIENT_DEFAULTS.handshakeTimeoutMs,
      ...this.#tlsOpts,
    });
    this.#ws = ws;
    tracer.emit('ws', this.cid, '>', 'handshake', () => `GET ${o.url} Upgrade: websocket`);
    ws.on('upgrade', (res: http.IncomingMessage) => {
      const accept = String(res.headers['sec-websocket-accept'] ?? '');
      this.handshake = {
        key,
        accept,
        acceptMatches: accept === acceptFor(key),
        status: res.statusCode ?? 0,
        extensions: String(res.headers['sec-websocket-extensions'] ?? ''),
        ms: round(performance.now() - started),
      };
      tracer.emit('ws', this.cid, '<', 'handshake', () => {
        const lines: string[] = [];
        for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) lines.push(redactLine(`${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}`));
        return {
          summary: `${res.statusCode} ${res.statusMessage} key=${key} accept=${accept} ${this.handshake.acceptMatches ? '= base64(SHA-1(key + GUID)) ✓' : '✗ does not match'}`,
          meta: { headers: lines, acceptMatches: this.handshake.acceptMatches },
        };
      });
      this.#socket = res.socket;
      // Not now: a 'data' listener added before ws has taken the socket makes it flow, and a frame that came in the
      // same chunk as the 101 (a server that speaks first) would go to the tracer only, never to ws. On the next tick
      // ws has unshifted that chunk and listens too, and the socket has not flowed yet.
      process.nextTick(() => (this.frames = traceFrames(tracer, this.cid, res.socket, 'client').frames));
    });
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
      const m = { data: buf, isBinary, at: performance.now() };
      tracer.emit('ws', this.cid, '<', 'message', () => ({ summary: `${isBinary ? 'binary' : 'text'} ${preview(buf)}`, bytes: buf.length }));
      if (this.#overflow) return;
      const max = o.maxQueued ?? WS_CLIENT_DEFAULTS.maxQueued;
      if (!this.#queue.offer(m, max)) {
        tracer.emit('ws', this.cid, '*', 'limit', () => `maxQueued=${max} unread messages: closing`);
        this.#overflow = new WirelabError(ErrorCodes.QUEUE_FULL, `more than maxQueued=${max} messages received and not read`);
        this.#queue.fail(this.#overflow);
        this.#closing = true;
        ws.close(1008, 'client queue full');
      }
    });
    ws.on('error', (err: Error & { code?: string }) => {
      tracer.emit('ws', this.cid, '*', 'error', () => `${err.code ?? 'error'}: ${err.message}`);
    });
    ws.on('close', (code: number, reason: Buffer) => {
      const info = { code, reason: reason.toString() };
      tracer.emit('ws', this.cid, '*', 'close', () => `closed ${code} (${CLOSE_CODES[code] ?? 'application'})${info.reason ? ` "${info.reason}"` : ''}`);
      void this.#afterClose(info);
    });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', (err) => reject(new WirelabError(ErrorCodes.CLOSED, `WebSocket ${o.url} failed: ${err.message}`, { cause: err })));
    });
  }

  async #afterClose(info: WsCloseInfo): Promise<void> {
    const r = this.#o.reconnect === true ? {} : this.#o.reconnect;
    if (!this.#closing && r && info.code !== 1000) {
      const retries = r.retries ?? WS_CLIENT_DEFAULTS.reconnect.retries;
      while (this.reconnects < retries && !this.#closing) {
        const wait = Math.min(r.maxMs ?? WS_CLIENT_DEFAULTS.reconnect.maxMs, (r.baseMs ?? WS_CLIENT_DEFAULTS.reconnect.baseMs) * 2 ** this.reconnects) * (0.8 + Math.random() * 0.4);
        this.reconnects++;
        this.#o.tracer.emit('ws', this.cid, '*', 'reconnect', () => `attempt ${this.reconnects}/${retries} in ${Math.round(wait)} ms`);
        await sleep(wait);
        try {
          await this.#open();
          return;
        } catch {
          // the next attempt waits longer
        }
      }
    }
    this.#queue.fail(new WirelabError(ErrorCodes.CLOSED, `WebSocket closed ${info.code}${info.reason ? ` ${info.reason}` : ''}`, { status: info.code }));
    this.#resolveClosed(info);
  }

  send(data: string | Buffer, options: { binary?: boolean } = {}): Promise<void> {
    return new Promise((resolve, reject) => this.#ws.send(data, { binary: options.binary ?? Buffer.isBuffer(data) }, (err) => (err ? reject(err) : resolve())));
  }

  /** Writes bytes on the socket as they are, bypassing ws (bad-input tests: an unmasked or malformed frame). */
  sendRaw(bytes: Buffer): void {
    if (!this.#socket) throw new WirelabError(ErrorCodes.CLOSED, 'not connected');
    this.#socket.write(bytes);
  }

  next(timeoutMs = 5000): Promise<WsMessage> {
    return this.#queue.next(timeoutMs, 'WebSocket message');
  }

  /** Sends a close frame and resolves with the code the connection ended with. */
  close(code = 1000, reason = ''): Promise<WsCloseInfo> {
    this.#closing = true;
    if (this.#ws.readyState === WebSocket.OPEN || this.#ws.readyState === WebSocket.CONNECTING) this.#ws.close(code, reason);
    return this.closed;
  }

  terminate(): Promise<WsCloseInfo> {
    this.#closing = true;
    this.#ws.terminate();
    return this.closed;
  }
}

export function connectWs(options: WsClientOptions): Promise<WsClient> {
  return WsClient.connect(options);
}
