import type net from 'node:net';
import tls from 'node:tls';
import { ErrorCodes, WirelabError } from '../../core/errors.ts';
import { createDecoder } from '../../core/framing.ts';
import { attachKeylog, traceTlsHandshake, type TlsSettings } from '../../core/tls/index.ts';
import { lineMask, tapSocket, type Tracer, type WireMask } from '../../core/trace/index.ts';

/**
 * One server connection of a line protocol (IMAP, POP3, FTP control): the transport, apart from the commands, as
 * basic-ftp's FtpContext is apart from its Client. It reads bytes, cuts them into units with a framer, runs the units
 * one at a time in arrival order (each behind the client having read the previous answers), writes answers, swaps the
 * socket for TLS in place (STARTTLS, STLS, AUTH TLS), times out an idle client, and ends with a last answer. It knows
 * no protocol: what a unit means, and every answer, come from the session's `LineHandlers`.
 */

/**
 * Cuts the byte stream into units (lines, or IMAP's commands with literals). Past a limit it sets `error` (and returns
 * the units completed before the bad one), or throws: either way input stops there.
 */
export interface Framer<T> {
  push(chunk: Buffer): T[];
  /** Bytes held back waiting for the rest of a unit. */
  readonly pending: number;
  readonly error?: WirelabError;
}

/**
 * A framer of lines (CRLF or LF, terminator dropped) as strings, each passed through `map`; past maxLineLength it sets a
 * WL_ERR_LINE_TOO_LONG error, after handing over the whole lines that came before the long one in the same read.
 */
export function lineFramer(maxLineLength: number, encoding: BufferEncoding = 'latin1', map: (line: string) => string = (l) => l): Framer<string> {
  const decoder = createDecoder('line', { maxLineLength });
  let error: WirelabError | undefined;
  return {
    push(chunk) {
      const out: string[] = [];
      let start = 0;
      try {
        // One line at a time, so the lines before an overlong one are not lost with it.
        while (start < chunk.length) {
          const nl = chunk.indexOf(0x0a, start);
          const end = nl === -1 ? chunk.length : nl + 1;
          for (const l of decoder.push(chunk.subarray(start, end))) out.push(map(l.toString(encoding)));
          start = end;
        }
      } catch (err) {
        error = err as WirelabError;
      }
      return out;
    },
    get pending() {
      return decoder.pending;
    },
    get error() {
      return error;
    },
  };
}

/** What STARTTLS needs: the server's context, and where to log TLS keys (SSLKEYLOGFILE) if anywhere. */
export interface ServerTls {
  context: tls.SecureContext;
  options: tls.TlsOptions;
  settings: TlsSettings;
}

/** Byte counters a server keeps over all its connections (the mail servers' stats). */
export interface ByteCounters {
  bytesIn: number;
  bytesOut: number;
}

export interface LineConnectionOptions<T> {
  /** Trace proto and connection id of the events this connection emits. */
  proto: string;
  cid: string;
  tracer: Tracer;
  /** A new framer: one at the start, and a fresh one after STARTTLS (nothing read in clear carries over). */
  framer(): Framer<T>;
  /** Units read ahead of the one running; at this many the socket is paused until they are done. */
  maxPipelined: number;
  /** Silence (no byte either way) this long calls `idle`. 0: never. */
  idleTimeoutMs: number;
  /** Gives the connection's slot back (SocketSet.release): called once, when the connection ends itself. */
  release(socket: net.Socket): void;
  /** Counted as bytes arrive and leave. */
  counters?: ByteCounters;
  /** How long an ended connection waits for the client's FIN before it is destroyed. Default 1000 ms. */
  lingerMs?: number;
  /** Cork the socket while a unit runs, so its answer lines leave in as few segments as possible. Default true. */
  cork?: boolean;
}

/** The session's side: what each unit means, and what to say when the transport has something to report. */
export interface LineHandlers<T> {
  /** Runs one unit. Units run one at a time, in arrival order, each once the client has read the previous answers. */
  unit(u: T): Promise<void> | void;
  /**
   * Called as a unit is read, before it is queued: return true to take it at once instead (IMAP's `+` to a
   * synchronizing literal, FTP's ABOR during a transfer). Default: everything is queued.
   */
  urgent?(u: T): boolean;
  /**
   * The framer failed (a line past its limit): input stopped there and the 'limit' event is traced. Called in order,
   * after the units read before the bad one have run: answer and end.
   */
  overlong(err: WirelabError): void;
  /** No byte moved for idleTimeoutMs. */
  idle(): void;
  /** An error on the socket (the socket closes after it). */
  error?(err: NodeJS.ErrnoException): void;
  /** The socket closed; `pending` bytes of a unit were unread, `lingerExpired` if the client never sent its FIN. */
  close(info: { pending: number; lingerExpired: boolean }): void;
}

/** Where the framer failed, in the queue: the units before it run first. */
const OVERLONG: unique symbol = Symbol('overlong');

export class LineConnection<T> {
  #socket: net.Socket;
  #framer: Framer<T>;
  #handlers!: LineHandlers<T>;
  readonly #queue: Array<T | typeof OVERLONG> = [];
  #overlong: WirelabError | null = null;
  #busy = false;
  /** Input stopped (the framer threw): what arrives is dropped. */
  #deaf = false;
  #ended = false;
  #closed = false;
  #lingerExpired = false;
  readonly #o: LineConnectionOptions<T>;
  /** Secrets out of the traced wire bytes; one state across STARTTLS (the plaintext on both sides of it). */
  readonly #mask: WireMask = lineMask();
  readonly #onData = (chunk: Buffer): void => this.#read(chunk);
  readonly #onTimeout = (): void => this.#handlers.idle();
  readonly #onError = (err: NodeJS.ErrnoException): void => this.#handlers.error?.(err);

  constructor(socket: net.Socket, o: LineConnectionOptions<T>) {
    this.#o = o;
    this.#socket = socket;
    this.#framer = o.framer();
  }

  /** Starts reading with the session's handlers (separate from the constructor, so a session can hold its connection). */
  start(handlers: LineHandlers<T>): void {
    this.#handlers = handlers;
    this.#attach(this.#socket);
  }

  get socket(): net.Socket {
    return this.#socket;
  }

  get secure(): boolean {
    return this.#socket instanceof tls.TLSSocket;
  }

  /** True once the connection ended itself or the socket closed: nothing more is written. */
  get ended(): boolean {
    return this.#ended || this.#closed;
  }

  /** Units read and waiting behind the one running. */
  get queued(): number {
    return this.#queue.length;
  }

  #attach(socket: net.Socket): void {
    // Answers go out at once: with Nagle on, a reply that follows another waits for the client's delayed ACK (~40 ms).
    socket.setNoDelay(true);
    if (this.#o.idleTimeoutMs > 0) socket.setTimeout(this.#o.idleTimeoutMs);
    socket.on('timeout', this.#onTimeout);
    // The bytes on the wire, for pcapng (after STARTTLS: the TLS socket's plaintext).
    tapSocket(this.#o.tracer, this.#o.proto, this.#o.cid, socket, 'server', this.#mask);
    socket.on('data', this.#onData);
    socket.on('error', this.#onError);
    socket.on('close', () => {
      if (socket !== this.#socket) return;
      this.#closed = true;
      this.#queue.length = 0;
      this.#handlers.close({ pending: this.#framer.pending, lingerExpired: this.#lingerExpired });
    });
  }

  #read(chunk: Buffer): void {
    if (this.#o.counters) this.#o.counters.bytesIn += chunk.length;
    if (this.#deaf || this.ended) return;
    let units: T[] = [];
    let failure: unknown = null;
    try {
      units = this.#framer.push(chunk);
      failure = this.#framer.error ?? null;
    } catch (err) {
      failure = err;
    }
    for (const u of units) if (!this.#handlers.urgent?.(u)) this.#queue.push(u);
    if (failure !== null) {
      this.#deaf = true;
      const e = failure instanceof WirelabError ? failure : new WirelabError(ErrorCodes.LINE_TOO_LONG, String(failure));
      this.#o.tracer.emit(this.#o.proto, this.#o.cid, '*', 'limit', () => ({ summary: e.message, meta: { code: e.code } }));
      this.#overlong = e;
      this.#queue.push(OVERLONG);
    }
    // Units waiting beyond the limit: stop reading until they are done (TCP flow control reaches the client).
    if (this.#queue.length >= this.#o.maxPipelined) this.#socket.pause();
    void this.#run();
  }

  async #run(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      while (this.#queue.length > 0 && !this.ended) {
        // The client reads the previous answers before the next unit runs: one that pipelines without reading holds
        // the server at the socket's high-water mark, not at the size of everything it asked for.
        await waitWritable(this.#socket);
        if (this.ended) break;
        const socket = this.#socket;
        const cork = this.#o.cork !== false;
        if (cork) socket.cork();
        try {
          const u = this.#queue.shift()!;
          if (u === OVERLONG) this.#handlers.overlong(this.#overlong!);
          else await this.#handlers.unit(u);
        } finally {
          if (cork) socket.uncork();
        }
      }
    } finally {
      this.#busy = false;
      if (!this.ended) this.#socket.resume();
    }
  }

  /**
   * Writes answer bytes (nothing once the connection has ended). `done` runs when they are handed to the kernel, or at
   * once when they were dropped.
   */
  write(data: Buffer | string, done?: () => void): void {
    if (this.ended || this.#socket.destroyed || !this.#socket.writable) {
      done?.();
      return;
    }
    const buf = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
    if (this.#o.counters) this.#o.counters.bytesOut += buf.length;
    this.#socket.write(buf, done && (() => done()));
  }

  /**
   * The last answer (if any), then close. The slot is given back at once; the socket keeps reading (and dropping) so
   * the client's FIN closes it even when reading was paused for pipelining, and a client that never closes is cut off
   * after lingerMs.
   */
  end(last?: Buffer | string): void {
    if (this.ended) return;
    if (last !== undefined) this.write(last);
    this.#ended = true;
    this.#queue.length = 0;
    const socket = this.#socket;
    this.#o.release(socket);
    socket.end();
    socket.resume();
    setTimeout(() => {
      if (socket.destroyed) return;
      this.#lingerExpired = true;
      socket.destroy();
    }, this.#o.lingerMs ?? 1000).unref();
  }

  /**
   * STARTTLS / STLS / AUTH TLS: the answer already written goes out in clear, then the same TCP connection carries TLS.
   * Everything the client sent after the command and before the handshake (units queued, a partial line, bytes not yet
   * read) is discarded and counted in a `discarded` event, so no plaintext can be injected into the TLS session
   * (RFC 3207 section 4.2, CVE-2011-0411). Call it from the unit of the command itself.
   */
  startTls(t: { context: tls.SecureContext; settings: { keylogFile?: string } }, trace: { proto?: string; onSecure?: () => void } = {}): tls.TLSSocket {
    const plain = this.#socket;
    while (plain.writableCorked > 0) plain.uncork();
    plain.off('data', this.#onData);
    plain.off('timeout', this.#onTimeout);
    plain.setTimeout(0);
    const units = this.#queue.filter((u) => u !== OVERLONG).length;
    const bytes = this.#framer.pending;
    this.#queue.length = 0;
    this.#framer = this.#o.framer();
    this.#deaf = false;
    this.#overlong = null;
    const secure = new tls.TLSSocket(plain, { isServer: true, secureContext: t.context });
    // A failed handshake (garbage after STARTTLS) is an 'error' on this new socket, before any session code listens.
    secure.on('error', (err) => this.#o.tracer.emit('tls', this.#o.cid, '*', 'error', () => `handshake failed: ${err.message}`));
    attachKeylog(secure, t.settings.keylogFile);
    traceTlsHandshake(this.#o.tracer, this.#o.cid, secure, 'server');
    if (trace.onSecure) secure.once('secure', trace.onSecure);
    if (units > 0 || bytes > 0) {
      this.#o.tracer.emit(trace.proto ?? this.#o.proto, this.#o.cid, '*', 'discarded', () => ({
        summary: `${units} command(s) and ${bytes} B sent in clear after the TLS command discarded`,
        meta: { units, bytes },
      }));
    }
    this.#socket = secure;
    this.#attach(secure);
    return secure;
  }
}

/**
 * Waits while the client is not reading what was already sent (the socket's buffer is over its high-water mark), so a
 * client that pipelines FETCH after FETCH without reading cannot make the server buffer without limit.
 */
export function waitWritable(socket: net.Socket): Promise<void> {
  if (!socket.writableNeedDrain || socket.destroyed) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = (): void => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}
