import type net from 'node:net';
import tls from 'node:tls';
import { createDecoder, type Decoder } from '../../core/framing.ts';
import { attachKeylog, traceTlsHandshake } from '../../core/tls/index.ts';
import { redactLine, type Tracer } from '../../core/trace/index.ts';
import { DataChannel, plainAddress } from './data.ts';
import type { FtpUser, ResolvedFtpOptions } from './options.ts';
import type { Jail, Resolved } from './paths.ts';
import type { InFlightByRoot } from './quota.ts';

/**
 * One control connection. The state machine is explicit: `user` (waiting for USER), `password` (USER given, waiting
 * for PASS), `ready` (logged in), `closed`. Commands come from a `Record<verb, Handler>` table (commands/*.ts); a
 * handler runs only in the states it allows, and commands run one at a time in the order they arrived — except
 * ABOR, STAT and NOOP, which may arrive while a transfer is running.
 */
export type State = 'user' | 'password' | 'ready' | 'closed';

export interface Handler {
  run(s: FtpSession, arg: string): Promise<void> | void;
  /** One line for HELP: the syntax. */
  help: string;
  /** Allowed before login. Default false. */
  beforeLogin?: boolean;
  /** Changes the file system: refused for a read-only user. */
  writes?: boolean;
  /** Must have an argument (501 otherwise). */
  needsArg?: boolean;
  /** Uses a data connection: with requireTls it must be protected (PROT P). */
  data?: boolean;
}
export type CommandTable = Record<string, Handler>;

export type ResolvedUser = Required<Pick<FtpUser, 'name' | 'root'>> & FtpUser;

/** What every session of one server shares. */
export interface ServerContext {
  o: ResolvedFtpOptions;
  tracer: Tracer;
  commands: CommandTable;
  /** The TLS context for AUTH TLS and PROT P data connections; absent when TLS is off. */
  secureContext?: tls.SecureContext;
  /** Real port of the control listener, so PORT can never point a data connection back at it. */
  controlPort(): number;
  /** Gives the connection's slot back (maxConnections, maxConnectionsPerAddress): the session has decided to close. */
  release(socket: net.Socket): void;
  /** Wrong passwords per client address, across connections (reconnecting does not reset the slow-down). */
  failures: AddressFailures;
  /** Bytes uploads in progress have received, per root: the quota counts them across sessions. */
  inFlight: InFlightByRoot;
}

/**
 * Recent login failures by client address. A connection closes after maxLoginFailures, but a client that reconnects
 * keeps its count, so each new guess still waits longer. A successful login from the address clears it; an entry
 * untouched for `forgetMs` is forgotten, and at most `maxAddresses` are kept (the oldest is dropped).
 */
export class AddressFailures {
  readonly #map = new Map<string, { count: number; at: number }>();
  constructor(readonly forgetMs = 15 * 60_000, readonly maxAddresses = 10_000) {}

  /** Records one failure; returns the address's count including it. */
  add(address: string): number {
    const now = Date.now();
    const prev = this.#map.get(address);
    const count = prev && now - prev.at < this.forgetMs ? prev.count + 1 : 1;
    this.#map.delete(address);
    if (this.#map.size >= this.maxAddresses) this.#map.delete(this.#map.keys().next().value!);
    this.#map.set(address, { count, at: now });
    return count;
  }

  clear(address: string): void {
    this.#map.delete(address);
  }
}

const URGENT = new Set(['ABOR', 'STAT', 'NOOP', 'QUIT']);
const MAX_QUEUED = 64;
const RESUME_AT = 8;

export class FtpSession {
  state: State = 'user';
  pendingUser?: string;
  user?: ResolvedUser;
  readOnly = false;
  jail?: Jail;
  /** The working directory as the user sees it. */
  cwd = '/';
  type: 'A' | 'I' = 'A';
  /** REST offset for the next RETR / STOR. */
  restOffset = 0;
  renameFrom?: Resolved;
  /** Control connection protected (implicit FTPS or after AUTH TLS). */
  secure: boolean;
  pbsz = false;
  prot: 'C' | 'P' = 'C';
  loginFailures = 0;
  badCommands = 0;
  /** After EPSV ALL, PORT / EPRT / PASV are refused (RFC 2428 section 4). */
  epsvAll = false;
  /** The server closed the connection and the client did not close its side within a second: destroyed. */
  lingerExpired = false;
  /** Set by ABOR while it tears the running transfer down. */
  aborting = false;
  /** The running transfer, settled once its final reply is sent. */
  transfer?: Promise<void>;
  readonly data: DataChannel;
  /** The client's address: the only one PASV accepts from and PORT / EPRT may point at. */
  readonly peer: string;
  readonly local: string;

  socket: net.Socket;
  readonly #ctx: ServerContext;
  #decoder: Decoder;
  #chain: Promise<void> = Promise.resolve();
  #closing = false;
  /** Commands read but not yet answered; past MAX_QUEUED the socket is paused (a flood cannot grow the queue). */
  #queued = 0;

  constructor(ctx: ServerContext, socket: net.Socket, readonly cid: string) {
    this.#ctx = ctx;
    this.socket = socket;
    this.secure = socket instanceof tls.TLSSocket;
    this.peer = plainAddress(socket.remoteAddress);
    this.local = plainAddress(socket.localAddress);
    this.#decoder = createDecoder('line', { maxLineLength: ctx.o.maxLineLength });
    this.data = new DataChannel(
      {
        tracer: ctx.tracer,
        timeoutMs: ctx.o.dataTimeoutMs,
        idleTimeoutMs: ctx.o.dataIdleTimeoutMs,
        pasvPortMin: ctx.o.pasvPortMin,
        pasvPortMax: ctx.o.pasvPortMax,
      },
      cid,
    );
    this.#attach(socket);
    // Replies are small and often come in pairs (150 then 226): with Nagle on, the second waits for the client's
    // delayed ACK of the first (up to 40 ms on Linux).
    socket.setNoDelay(true);
    socket.setTimeout(ctx.o.idleTimeoutMs);
    socket.on('timeout', () => {
      if (this.transfer) return;
      this.trace('*', 'timeout', `idle for idleTimeoutMs=${ctx.o.idleTimeoutMs}`);
      this.close(421, 'Idle timeout, closing control connection.');
    });
    socket.on('close', () => {
      this.state = 'closed';
      this.data.destroy();
    });
  }

  get o(): ResolvedFtpOptions {
    return this.#ctx.o;
  }
  get tracer(): Tracer {
    return this.#ctx.tracer;
  }
  get ctx(): ServerContext {
    return this.#ctx;
  }

  /** `summary` may be a builder: it runs only when tracing is on (a command line's redaction, say). */
  trace(dir: '>' | '<' | '*', kind: string, summary: string | (() => string), meta?: Record<string, unknown>): void {
    this.#ctx.tracer.emit('ftp', this.cid, dir, kind, () => {
      const text = typeof summary === 'function' ? summary() : summary;
      return meta ? { summary: text, meta } : text;
    });
  }

  #attach(socket: net.Socket): void {
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => this.trace('*', 'error', `${err.code ?? ''} ${err.message}`));
  }

  #onData(chunk: Buffer): void {
    if (this.#closing) return;
    let lines: Buffer[];
    try {
      lines = this.#decoder.push(chunk);
    } catch (err) {
      this.socket.pause();
      this.trace('*', 'limit', (err as Error).message, { code: 'WL_ERR_LINE_TOO_LONG' });
      this.close(500, `Command line too long (maxLineLength=${this.o.maxLineLength}).`);
      return;
    }
    for (const raw of lines) {
      // Telnet IAC sequences (IP, DM before an urgent ABOR), other control bytes and blanks before the verb are
      // dropped, so the verb is found and ` PASS x` is redacted like `PASS x`.
      const line = raw.toString('utf8').replace(/^[^\x21-\x7e]+/, '');
      const verb = (line.split(' ', 1)[0] ?? '').toUpperCase();
      if (URGENT.has(verb) && this.transfer) void this.#handle(line);
      else {
        this.#queued++;
        if (this.#queued >= MAX_QUEUED) this.socket.pause();
        this.#chain = this.#chain.then(() => this.#handle(line)).finally(() => {
          this.#queued--;
          if (this.#queued === RESUME_AT && this.socket.isPaused()) this.socket.resume();
        });
      }
    }
  }

  async #handle(line: string): Promise<void> {
    if (this.state === 'closed') return;
    this.trace('>', 'command', () => redactLine(line), { bytes: Buffer.byteLength(line) + 2 });
    const space = line.indexOf(' ');
    const verb = (space === -1 ? line : line.slice(0, space)).toUpperCase();
    const arg = space === -1 ? '' : line.slice(space + 1);
    const handler = Object.hasOwn(this.#ctx.commands, verb) ? this.#ctx.commands[verb] : undefined;
    if (!handler) return this.bad(500, `Unknown command ${JSON.stringify(verb.slice(0, 16))}.`);
    if (this.state !== 'ready' && !handler.beforeLogin) return this.reply(530, 'Please log in with USER and PASS first.');
    if (handler.needsArg && arg.trim() === '') return this.bad(501, `Syntax: ${handler.help}`);
    if (handler.writes && this.readOnly) return this.reply(550, 'Permission denied: this account is read-only.');
    if (handler.data && this.o.requireTls && this.prot !== 'P') {
      this.data.reset();
      return this.reply(521, 'Data connections must be protected here: send PBSZ 0 and PROT P.');
    }
    if (!URGENT.has(verb) && this.transfer) await this.transfer;
    // RFC 959: RNTO must come right after RNFR; anything else in between forgets the RNFR.
    if (verb !== 'RNTO' && verb !== 'RNFR') this.renameFrom = undefined;
    try {
      await handler.run(this, arg);
    } catch (err) {
      this.trace('*', 'error', `${verb} failed: ${(err as Error).message}`);
      if ((this.state as State) !== 'closed') void this.reply(451, 'Requested action aborted: local error in processing.');
    }
  }

  /** An unknown or malformed command: answered, counted, and past maxBadCommands the connection is closed. */
  bad(code: number, text: string): void {
    this.badCommands++;
    if (this.badCommands > this.o.maxBadCommands) {
      this.trace('*', 'limit', `maxBadCommands=${this.o.maxBadCommands} exceeded`);
      this.close(421, 'Too many bad commands, closing control connection.');
      return;
    }
    this.reply(code, text);
  }

  /** Sends a reply; several lines make a multi-line reply (`code-first`, ` middle`, `code last`). */
  reply(code: number, text: string | string[]): Promise<void> {
    if (this.socket.destroyed || !this.socket.writable) return Promise.resolve();
    const lines = Array.isArray(text) ? text : [text];
    let wire: string;
    if (lines.length === 1) wire = `${code} ${lines[0]}\r\n`;
    else {
      const middle = lines.slice(1, -1).map((l) => ` ${l}\r\n`).join('');
      wire = `${code}-${lines[0]}\r\n${middle}${code} ${lines[lines.length - 1]}\r\n`;
    }
    this.#ctx.tracer.emit('ftp', this.cid, '<', 'reply', () => ({
      summary: lines.length === 1 ? `${code} ${lines[0]}` : `${code} ${lines[0]} (+${lines.length - 1} lines)`,
      bytes: Buffer.byteLength(wire),
      meta: { code, lines: lines.length },
    }));
    return new Promise((resolve) => this.socket.write(wire, () => resolve()));
  }

  /**
   * Replies, then closes the control connection (421 and friends). The slot is given back at once, and what the client
   * sends meanwhile is read and dropped: a paused socket would never see the client's FIN and stay open (and counted)
   * until the fallback destroy a second later.
   */
  close(code?: number, text?: string): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#ctx.release(this.socket);
    const end = (): void => {
      this.state = 'closed';
      this.data.destroy();
      const socket = this.socket;
      socket.end();
      socket.resume();
      setTimeout(() => {
        if (socket.destroyed) return;
        this.lingerExpired = true;
        socket.destroy();
      }, 1000).unref();
    };
    if (code !== undefined) void this.reply(code, text ?? '').then(end);
    else end();
  }

  /** AUTH TLS: after the 234 reply, the same TCP connection carries TLS (RFC 4217 section 4). */
  async upgradeToTls(): Promise<void> {
    const raw = this.socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('timeout');
    const secure = new tls.TLSSocket(raw, { isServer: true, secureContext: this.#ctx.secureContext! });
    this.socket = secure;
    this.secure = true;
    this.#decoder = createDecoder('line', { maxLineLength: this.o.maxLineLength });
    this.#attach(secure);
    traceTlsHandshake(this.tracer, this.cid, secure, 'server');
    attachKeylog(secure, this.o.tls ? this.o.tls.keylogFile : undefined);
    secure.once('secure', () => this.trace('*', 'tls', 'control connection is now TLS (AUTH TLS)'));
    raw.setTimeout(this.o.idleTimeoutMs);
    raw.on('timeout', () => {
      if (!this.transfer) this.close(421, 'Idle timeout, closing control connection.');
    });
  }

  /** Runs `job` as the session's one transfer: ABOR and STAT may come in meanwhile. */
  startTransfer(job: () => Promise<void>): void {
    const p = job()
      .catch((err: Error) => this.trace('*', 'error', `transfer: ${err.message}`))
      .finally(() => {
        if (this.transfer === p) this.transfer = undefined;
      });
    this.transfer = p;
  }
}
