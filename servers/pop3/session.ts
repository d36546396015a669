import { createHash } from 'node:crypto';
import tls from 'node:tls';
import { REDACTED, redactLine, socketEnds } from '../../core/trace/index.ts';
import { traceTlsHandshake } from '../../core/tls/index.ts';
import type { LineConnection } from '../line/connection.ts';
import type { MailLineResolved } from '../mail/line-server.ts';
import type { MailServerStats } from '../mail/conn.ts';
import { sleep } from '../../core/time.ts';
import { authFailureDelay } from '../mail/shared.ts';
import { describeHit } from '../line/chaos.ts';

/** The options a POP3 session reads (the server's, resolved). */
export type Pop3Resolved = MailLineResolved;

type State = 'AUTHORIZATION' | 'TRANSACTION' | 'UPDATE';

interface DropEntry {
  uid: number;
  size: number;
  uidl: string;
  raw: Buffer;
  deleted: boolean;
}

type Handler = (args: string[], line: string) => Promise<void> | void;

/**
 * The RFC 1939 state machine. The maildrop (the user's INBOX) is snapshotted at login and locked; DELE only marks,
 * and the marked messages are removed in the UPDATE state, after QUIT. A connection that drops removes nothing.
 */
export class Pop3Session {
  #state: State = 'AUTHORIZATION';
  #user: string | null = null;
  #drop: DropEntry[] = [];
  #unlock: (() => void) | null = null;
  #failures = 0;
  #unknown = 0;
  /** AUTH PLAIN waiting for its response line (the next line is a secret). */
  #saslPending = false;
  readonly timestamp: string;

  constructor(
    readonly conn: LineConnection<string>,
    readonly cid: string,
    readonly o: Pop3Resolved,
    readonly stats: MailServerStats,
  ) {
    this.timestamp = `<${process.pid}.${Date.now()}.${cid.replace(/\W/g, '')}@wirelab.test>`;
    const socket = conn.socket;
    o.tracer.emit(o.proto, cid, '*', 'accept', () => ({ summary: `accepted ${socket.remoteAddress}:${socket.remotePort}`, ...socketEnds(socket, 'server') }));
    if (socket instanceof tls.TLSSocket) traceTlsHandshake(o.tracer, cid, socket, 'server');
    conn.start({
      unit: (line) => {
        this.stats.commands++;
        this.o.tracer.emit(this.o.proto, this.cid, '>', 'command', () => this.redact(line));
        return this.handle(line);
      },
      overlong: () => this.end(`-ERR line too long (maxLineLength=${this.o.maxLineLength})`),
      idle: () => {
        this.o.tracer.emit(this.o.proto, this.cid, '*', 'timeout', () => `idle for idleTimeoutMs=${this.o.idleTimeoutMs}: autologout`);
        this.end('-ERR [SYS/TEMP] autologout: idle too long');
      },
      close: () => {
        this.release();
        this.o.tracer.emit(this.o.proto, this.cid, '*', 'close', () => 'connection closed');
      },
    });
    this.send(`+OK wirelab POP3 ready ${this.timestamp}`);
  }

  get secure(): boolean {
    return this.conn.secure;
  }

  /** True while a password would cross the wire in clear and the server does not allow that. */
  get plaintextAuthDisabled(): boolean {
    return !this.secure && !this.o.allowInsecureAuth;
  }

  /** One reply line (CRLF added). */
  send(line: string): void {
    this.o.tracer.emit(this.o.proto, this.cid, '<', 'reply', () => line);
    this.conn.write(`${line}\r\n`);
  }

  /** A multi-line reply: the status line, the body byte-stuffed (RFC 1939 3), then the lone dot. */
  sendMulti(status: string, body: Buffer): void {
    const text = body.toString('latin1').replace(/\r?\n/g, '\r\n');
    const stuffed = text.replace(/^\./gm, '..');
    const tail = stuffed.length === 0 || stuffed.endsWith('\r\n') ? '' : '\r\n';
    const out = Buffer.from(`${status}\r\n${stuffed}${tail}.\r\n`, 'latin1');
    this.o.tracer.emit(this.o.proto, this.cid, '<', 'reply', () => ({ summary: `${status} [+${out.length} B multi-line]`, bytes: out.length }));
    this.conn.write(out);
  }

  /** The last reply, then close (the connection gives the slot back and waits for the client's FIN). */
  end(last: string): void {
    if (this.conn.ended) return;
    this.send(last);
    this.conn.end();
  }

  apopDigest(password: string): string {
    return createHash('md5').update(this.timestamp + password).digest('hex');
  }

  failureDelay(failures: number): Promise<void> {
    return sleep(authFailureDelay(this.o.authFailureDelayMs, failures));
  }

  redact(line: string): string {
    return this.#saslPending ? REDACTED : redactLine(line);
  }

  release(): void {
    this.#unlock?.();
    this.#unlock = null;
  }

  readonly #authorization: Record<string, Handler> = {
    CAPA: () => this.#capa(),
    USER: (a) => this.#userCmd(a),
    PASS: (_a, line) => this.#pass(line.slice(5)),
    APOP: (a) => this.#apop(a),
    AUTH: (a) => this.#auth(a),
    STLS: () => this.#stls(),
    QUIT: () => this.end('+OK bye'),
  };

  readonly #transaction: Record<string, Handler> = {
    CAPA: () => this.#capa(),
    STAT: () => {
      const live = this.#live();
      this.send(`+OK ${live.length} ${live.reduce((n, m) => n + m.size, 0)}`);
    },
    LIST: (a) => this.#listing(a, (n, m) => `${n} ${m.size}`, 'scan listing'),
    UIDL: (a) => this.#listing(a, (n, m) => `${n} ${m.uidl}`, 'unique-id listing'),
    RETR: (a) => {
      const m = this.#message(a[0]);
      if (m) this.sendMulti(`+OK ${m.size} octets`, m.raw);
    },
    TOP: (a) => this.#top(a),
    DELE: (a) => {
      const m = this.#message(a[0]);
      if (!m) return;
      m.deleted = true;
      this.send(`+OK message ${a[0]} deleted`);
    },
    RSET: () => {
      for (const m of this.#drop) m.deleted = false;
      this.send(`+OK maildrop has ${this.#drop.length} messages`);
    },
    NOOP: () => this.send('+OK'),
    QUIT: () => this.#update(),
  };

  async handle(line: string): Promise<void> {
    if (this.#saslPending) {
      this.#saslPending = false;
      return this.#saslResponse(line.trim());
    }
    const [verb = '', ...args] = line.trim().split(/\s+/);
    if (this.#injected(verb)) return;
    const table = this.#state === 'AUTHORIZATION' ? this.#authorization : this.#transaction;
    const handler = table[verb.toUpperCase()];
    if (handler) return handler(args, line);
    const known = verb.toUpperCase() in this.#authorization || verb.toUpperCase() in this.#transaction;
    if (known) {
      this.send(`-ERR ${verb.toUpperCase()} is not allowed in the ${this.#state} state`);
      return;
    }
    this.#unknown++;
    if (this.#unknown >= this.o.maxUnknownCommands) {
      this.o.tracer.emit(this.o.proto, this.cid, '*', 'limit', () => `maxUnknownCommands=${this.o.maxUnknownCommands} reached`);
      this.end('-ERR too many unknown commands, closing');
      return;
    }
    this.send(`-ERR unknown command ${verb.slice(0, 40)}`);
  }

  /** Chaos: a failure reply instead of the command, or the connection dropped (after -ERR, or with no reply). */
  #injected(verb: string): boolean {
    const hit = verb ? this.o.chaos.check(verb) : null;
    if (!hit) return false;
    this.o.tracer.emit(this.o.proto, this.cid, '*', 'chaos', () => describeHit(verb, hit));
    // RFC 3206: [SYS/TEMP] says "try again later"; a text with its own response code ([SYS/PERM], [IN-USE]) keeps it.
    const text = /^\[/.test(hit.text) ? hit.text : `[SYS/TEMP] ${hit.text}`;
    if (hit.action === 'abrupt') this.conn.socket.destroy();
    else if (hit.action === 'disconnect') this.end(`-ERR ${text}, closing`);
    else this.send(`-ERR ${text}`);
    return true;
  }

  #capa(): void {
    const plain = !(this.#state === 'AUTHORIZATION' && this.plaintextAuthDisabled);
    const caps = ['TOP', ...(plain ? ['USER'] : []), 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING', ...(plain ? ['SASL PLAIN'] : []), 'IMPLEMENTATION wirelab'];
    if (this.#state === 'AUTHORIZATION' && !this.secure) caps.push('STLS');
    this.sendMulti('+OK capability list follows', Buffer.from(caps.join('\r\n') + '\r\n'));
  }

  #stls(): void {
    if (this.secure) return this.send('-ERR already in TLS');
    this.send('+OK begin TLS negotiation');
    this.conn.startTls(this.o.tls);
  }

  /** Answers -ERR and returns true when plaintext authentication is disabled here (before STLS, by default). */
  #refusePlaintext(command: string): boolean {
    if (!this.plaintextAuthDisabled) return false;
    this.o.tracer.emit(this.o.proto, this.cid, '*', 'auth-refused', () => `${command} before STLS refused (allowInsecureAuth=false)`);
    this.send('-ERR [AUTH] Plaintext authentication is disabled; use STLS first');
    return true;
  }

  #userCmd(args: string[]): void {
    // Refused at USER, so a client that stops at the first -ERR never sends PASS.
    if (this.#refusePlaintext('USER')) return;
    if (args.length !== 1) return this.send('-ERR usage: USER name');
    this.#user = args[0]!;
    this.send(`+OK send PASS for ${this.#user}`);
  }

  async #pass(password: string): Promise<void> {
    if (this.#refusePlaintext('PASS')) return;
    if (this.#user === null) return this.send('-ERR USER first');
    const name = this.#user;
    this.#user = null;
    await this.#login(name, this.o.store.authenticate(name, password) !== null);
  }

  async #apop(args: string[]): Promise<void> {
    const [name, digest] = args;
    if (!name || !digest) return this.send('-ERR usage: APOP name digest');
    // The store keeps plain passwords, which APOP needs: compare the digest of the greeting's timestamp + password.
    const known = this.o.store.passwordFor(name);
    await this.#login(name, known !== null && this.apopDigest(known) === digest.toLowerCase());
  }

  #auth(args: string[]): Promise<void> | void {
    const mech = (args[0] ?? '').toUpperCase();
    if (mech === '') return this.sendMulti('+OK', Buffer.from(this.plaintextAuthDisabled ? '' : 'PLAIN\r\n'));
    if (mech !== 'PLAIN') return this.send('-ERR unsupported mechanism');
    if (this.#refusePlaintext('AUTH PLAIN')) return;
    if (args[1] !== undefined) return this.#saslResponse(args[1]);
    this.#saslPending = true;
    this.send('+ ');
  }

  async #saslResponse(b64: string): Promise<void> {
    if (b64 === '*') return this.send('-ERR authentication cancelled');
    const decoded = /^[A-Za-z0-9+/]*={0,2}$/.test(b64) ? Buffer.from(b64, 'base64').toString('utf8').split('\0') : [];
    if (decoded.length !== 3) return this.send('-ERR [AUTH] malformed AUTH PLAIN response (bad base64)');
    const [, name, password] = decoded as [string, string, string];
    await this.#login(name, this.o.store.authenticate(name, password) !== null);
  }

  async #login(name: string, ok: boolean): Promise<void> {
    const store = this.o.store;
    if (!ok) {
      this.#failures++;
      this.o.tracer.emit(this.o.proto, this.cid, '*', 'auth-failed', () => `wrong password #${this.#failures} for ${name}: slowed down`);
      await this.failureDelay(this.#failures);
      if (this.#failures >= this.o.maxAuthFailures) {
        this.o.tracer.emit(this.o.proto, this.cid, '*', 'limit', () => `maxAuthFailures=${this.o.maxAuthFailures} reached`);
        return this.end('-ERR [AUTH] invalid user name or password; too many failures, closing');
      }
      return this.send('-ERR [AUTH] invalid user name or password');
    }
    const user = store.canonicalUser(name)!;
    const unlock = store.lockMaildrop(user);
    if (!unlock) {
      this.o.tracer.emit(this.o.proto, this.cid, '*', 'locked', () => `maildrop of ${user} is locked by another POP3 session`);
      return this.send('-ERR [IN-USE] maildrop already locked by another session');
    }
    this.#unlock = unlock;
    const inbox = store.mailbox(user, 'INBOX')!;
    this.#drop = inbox.messages.map((m) => ({ uid: m.uid, size: m.size, raw: m.raw, uidl: `${inbox.uidValidity}.${m.uid}`, deleted: false }));
    this.#user = user;
    this.#state = 'TRANSACTION';
    this.send(`+OK ${user}'s maildrop has ${this.#drop.length} messages (${this.#drop.reduce((n, m) => n + m.size, 0)} octets)`);
  }

  #live(): DropEntry[] {
    return this.#drop.filter((m) => !m.deleted);
  }

  #message(arg: string | undefined): DropEntry | null {
    const n = arg !== undefined && /^\d{1,9}$/.test(arg) ? Number(arg) : NaN;
    const m = this.#drop[n - 1];
    if (!m) {
      this.send(`-ERR no such message${arg === undefined ? '' : ` ${arg.slice(0, 20)}`}`);
      return null;
    }
    if (m.deleted) {
      this.send(`-ERR message ${n} already deleted`);
      return null;
    }
    return m;
  }

  #listing(args: string[], line: (n: number, m: DropEntry) => string, what: string): void {
    if (args[0] !== undefined) {
      const m = this.#message(args[0]);
      if (m) this.send(`+OK ${line(Number(args[0]), m)}`);
      return;
    }
    const lines = this.#drop.map((m, i) => (m.deleted ? null : line(i + 1, m))).filter((l): l is string => l !== null);
    this.sendMulti(`+OK ${what} follows`, Buffer.from(lines.map((l) => `${l}\r\n`).join('')));
  }

  #top(args: string[]): void {
    const m = this.#message(args[0]);
    if (!m) return;
    if (args[1] === undefined || !/^\d{1,9}$/.test(args[1])) return this.send('-ERR usage: TOP msg lines');
    const text = m.raw.toString('latin1');
    const split = text.search(/\r?\n\r?\n/);
    if (split === -1) return this.sendMulti('+OK top of message follows', m.raw);
    const sep = text.slice(split).match(/^\r?\n\r?\n/)![0];
    const bodyLines = text.slice(split + sep.length).split(/\r?\n/).slice(0, Number(args[1]));
    const out = text.slice(0, split) + '\r\n\r\n' + bodyLines.map((l) => `${l}\r\n`).join('');
    this.sendMulti('+OK top of message follows', Buffer.from(out, 'latin1'));
  }

  /** QUIT in TRANSACTION: the UPDATE state removes the messages marked with DELE, then releases the lock. */
  async #update(): Promise<void> {
    this.#state = 'UPDATE';
    const gone = this.#drop.filter((m) => m.deleted).map((m) => m.uid);
    try {
      if (gone.length > 0) await this.o.store.remove(this.#user!, 'INBOX', gone, this);
      this.release();
      this.end(`+OK bye, ${gone.length} messages deleted`);
    } catch (err) {
      this.release();
      this.end(`-ERR some deleted messages not removed: ${(err as Error).message}`);
    }
  }
}
