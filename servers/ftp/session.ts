import type net from 'node:net';
import { describeHit, type ChaosHit, type CommandChaosPolicy } from '../line/chaos.ts';
import tls from 'node:tls';
import { redactLine, type Tracer } from '../../core/trace/index.ts';
import { LineConnection, lineFramer } from '../line/connection.ts';
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
  /** Injected failures, checked before each known command runs. */
  chaos: CommandChaosPolicy;
}

/**
 * Recent login failures by client address. A connection closes after maxAuthFailures, but a client that reconnects
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
/**
 * Telnet IAC sequences (IP, DM before an urgent ABOR), other control bytes and blanks before the verb are dropped, so
 * the verb is found and ` PASS x` is redacted like `PASS x`.
 */
const stripLeadingControls = (line: string): string => line.replace(/^[^\x21-\x7e]+/, '');

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
  authFailures = 0;
  unknownCommands = 0;
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

  /** The transport: reading, the command queue, writing, AUTH TLS, idle timeout, the end. */
  readonly conn: LineConnection<string>;
  readonly #ctx: ServerContext;
  #closing = false;

  constructor(ctx: ServerContext, socket: net.Socket, readonly cid: string) {
    this.#ctx = ctx;
    this.secure = socket instanceof tls.TLSSocket;
    this.peer = plainAddress(socket.remoteAddress);
    this.local = plainAddress(socket.localAddress);
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
    this.conn = new LineConnection(socket, {
      proto: 'ftp',
      cid,
      tracer: ctx.tracer,
      framer: () => lineFramer(ctx.o.maxLineLength, 'utf8', stripLeadingControls),
      maxPipelined: ctx.o.maxPipelinedCommands,
      idleTimeoutMs: ctx.o.idleTimeoutMs,
      release: ctx.release,
      // Not corked: a handler awaits its reply's write (150 before the transfer, 234 before the handshake).
      cork: false,
    });
    this.conn.start({
      // ABOR, STAT, NOOP and QUIT during a transfer are taken at once; everything else waits its turn.
      urgent: (line) => {
        if (!this.transfer || !URGENT.has((line.split(' ', 1)[0] ?? '').toUpperCase())) return false;
        void this.#handle(line);
        return true;
      },
      unit: (line) => this.#handle(line),
      overlong: () => this.close(500, `Command line too long (maxLineLength=${this.o.maxLineLength}).`),
      idle: () => {
        if (this.transfer) return;
        this.trace('*', 'timeout', `idle for idleTimeoutMs=${ctx.o.idleTimeoutMs}`);
        this.close(421, 'Idle timeout, closing control connection.');
      },
      error: (err) => this.trace('*', 'error', `${err.code ?? ''} ${err.message}`),
      close: ({ lingerExpired }) => {
        this.state = 'closed';
        this.lingerExpired = lingerExpired;
        this.data.destroy();
        this.trace('*', 'close', lingerExpired ? 'control connection closed: the client did not close within 1 s, destroyed' : 'control connection closed', { lingerExpired });
      },
    });
  }

  get socket(): net.Socket {
    return this.conn.socket;
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

  async #handle(line: string): Promise<void> {
    if (this.state === 'closed') return;
    this.trace('>', 'command', () => redactLine(line), { bytes: Buffer.byteLength(line) + 2 });
    const space = line.indexOf(' ');
    const verb = (space === -1 ? line : line.slice(0, space)).toUpperCase();
    const arg = space === -1 ? '' : line.slice(space + 1);
    const handler = Object.hasOwn(this.#ctx.commands, verb) ? this.#ctx.commands[verb] : undefined;
    if (!handler) return this.bad(500, `Unknown command ${JSON.stringify(verb.slice(0, 16))}.`);
    const hit = this.#ctx.chaos.check(verb);
    if (hit) return this.#inject(verb, hit, handler.data === true);
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

  /** Chaos: a 4xx / 5xx reply instead of the command, 421 and a close, or a close with no reply. */
  #inject(verb: string, hit: ChaosHit, data: boolean): void {
    this.trace('*', 'chaos', () => describeHit(verb, hit));
    if (data) this.data.reset();
    if (hit.action === 'abrupt') this.conn.socket.destroy();
    else if (hit.action === 'disconnect') this.close(421, `${hit.text}, closing control connection.`);
    else void this.reply(hit.code as number, `${hit.text}.`);
  }

  /** An unknown or malformed command: answered, counted, and past maxUnknownCommands the connection is closed. */
  bad(code: number, text: string): void {
    this.unknownCommands++;
    if (this.unknownCommands > this.o.maxUnknownCommands) {
      this.trace('*', 'limit', `maxUnknownCommands=${this.o.maxUnknownCommands} exceeded`);
      this.close(421, 'Too many bad commands, closing control connection.');
      return;
    }
    this.reply(code, text);
  }

  /** Sends a reply; several lines make a multi-line reply (`code-first`, ` middle`, `code last`). */
  reply(code: number, text: string | string[]): Promise<void> {
    if (this.conn.ended) return Promise.resolve();
    const wire = this.#traced(code, text);
    return new Promise((resolve) => this.conn.write(Buffer.from(wire, 'utf8'), resolve));
  }

  #traced(code: number, text: string | string[]): string {
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
    return wire;
  }

  /**
   * Replies, then closes the control connection (421 and friends). The connection gives the slot back at once, and
   * reads and drops what the client sends meanwhile: a paused socket would never see the client's FIN and stay open
   * (and counted) until the fallback destroy a second later.
   */
  close(code?: number, text?: string): void {
    if (this.#closing) return;
    this.#closing = true;
    const last = code !== undefined && !this.conn.ended ? this.#traced(code, text ?? '') : undefined;
    this.conn.end(last === undefined ? undefined : Buffer.from(last, 'utf8'));
    this.state = 'closed';
    this.data.destroy();
  }

  /** AUTH TLS: after the 234 reply, the same TCP connection carries TLS (RFC 4217 section 4). */
  upgradeToTls(): void {
    this.conn.startTls(
      { context: this.#ctx.secureContext!, settings: this.o.tls || {} },
      { onSecure: () => this.trace('*', 'tls', 'control connection is now TLS (AUTH TLS)') },
    );
    this.secure = true;
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
