import type { Pop3Connection } from './index.ts';
import { REDACTED, redactLine } from '../../core/trace/index.ts';

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
  readonly #c: Pop3Connection;

  constructor(c: Pop3Connection) {
    this.#c = c;
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
    QUIT: () => this.#c.end('+OK bye'),
  };

  readonly #transaction: Record<string, Handler> = {
    CAPA: () => this.#capa(),
    STAT: () => {
      const live = this.#live();
      this.#c.send(`+OK ${live.length} ${live.reduce((n, m) => n + m.size, 0)}`);
    },
    LIST: (a) => this.#listing(a, (n, m) => `${n} ${m.size}`, 'scan listing'),
    UIDL: (a) => this.#listing(a, (n, m) => `${n} ${m.uidl}`, 'unique-id listing'),
    RETR: (a) => {
      const m = this.#message(a[0]);
      if (m) this.#c.sendMulti(`+OK ${m.size} octets`, m.raw);
    },
    TOP: (a) => this.#top(a),
    DELE: (a) => {
      const m = this.#message(a[0]);
      if (!m) return;
      m.deleted = true;
      this.#c.send(`+OK message ${a[0]} deleted`);
    },
    RSET: () => {
      for (const m of this.#drop) m.deleted = false;
      this.#c.send(`+OK maildrop has ${this.#drop.length} messages`);
    },
    NOOP: () => this.#c.send('+OK'),
    QUIT: () => this.#update(),
  };

  async handle(line: string): Promise<void> {
    if (this.#saslPending) {
      this.#saslPending = false;
      return this.#saslResponse(line.trim());
    }
    const [verb = '', ...args] = line.trim().split(/\s+/);
    const table = this.#state === 'AUTHORIZATION' ? this.#authorization : this.#transaction;
    const handler = table[verb.toUpperCase()];
    if (handler) return handler(args, line);
    const known = verb.toUpperCase() in this.#authorization || verb.toUpperCase() in this.#transaction;
    if (known) {
      this.#c.send(`-ERR ${verb.toUpperCase()} is not allowed in the ${this.#state} state`);
      return;
    }
    this.#unknown++;
    if (this.#unknown >= this.#c.o.maxUnknownCommands) {
      this.#c.o.tracer.emit(this.#c.o.proto, this.#c.cid, '*', 'limit', () => `maxUnknownCommands=${this.#c.o.maxUnknownCommands} reached`);
      this.#c.end('-ERR too many unknown commands, closing');
      return;
    }
    this.#c.send(`-ERR unknown command ${verb.slice(0, 40)}`);
  }

  #capa(): void {
    const plain = !(this.#state === 'AUTHORIZATION' && this.#c.plaintextAuthDisabled);
    const caps = ['TOP', ...(plain ? ['USER'] : []), 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING', ...(plain ? ['SASL PLAIN'] : []), 'IMPLEMENTATION wirelab'];
    if (this.#state === 'AUTHORIZATION' && !this.#c.secure) caps.push('STLS');
    this.#c.sendMulti('+OK capability list follows', Buffer.from(caps.join('\r\n') + '\r\n'));
  }

  #stls(): void {
    if (this.#c.secure) return this.#c.send('-ERR already in TLS');
    this.#c.send('+OK begin TLS negotiation');
    this.#c.startTls();
  }

  /** Answers -ERR and returns true when plaintext authentication is disabled here (before STLS, by default). */
  #refusePlaintext(command: string): boolean {
    if (!this.#c.plaintextAuthDisabled) return false;
    this.#c.o.tracer.emit(this.#c.o.proto, this.#c.cid, '*', 'auth-refused', () => `${command} before STLS refused (allowInsecureAuth=false)`);
    this.#c.send('-ERR [AUTH] Plaintext authentication is disabled; use STLS first');
    return true;
  }

  #userCmd(args: string[]): void {
    // Refused at USER, so a client that stops at the first -ERR never sends PASS.
    if (this.#refusePlaintext('USER')) return;
    if (args.length !== 1) return this.#c.send('-ERR usage: USER name');
    this.#user = args[0]!;
    this.#c.send(`+OK send PASS for ${this.#user}`);
  }

  async #pass(password: string): Promise<void> {
    if (this.#refusePlaintext('PASS')) return;
    if (this.#user === null) return this.#c.send('-ERR USER first');
    const name = this.#user;
    this.#user = null;
    await this.#login(name, this.#c.o.store.authenticate(name, password) !== null);
  }

  async #apop(args: string[]): Promise<void> {
    const [name, digest] = args;
    if (!name || !digest) return this.#c.send('-ERR usage: APOP name digest');
    // The store keeps plain passwords, which APOP needs: compare the digest of the greeting's timestamp + password.
    const known = this.#c.o.store.passwordFor(name);
    await this.#login(name, known !== null && this.#c.apopDigest(known) === digest.toLowerCase());
  }

  #auth(args: string[]): Promise<void> | void {
    const mech = (args[0] ?? '').toUpperCase();
    if (mech === '') return this.#c.sendMulti('+OK', Buffer.from(this.#c.plaintextAuthDisabled ? '' : 'PLAIN\r\n'));
    if (mech !== 'PLAIN') return this.#c.send('-ERR unsupported mechanism');
    if (this.#refusePlaintext('AUTH PLAIN')) return;
    if (args[1] !== undefined) return this.#saslResponse(args[1]);
    this.#saslPending = true;
    this.#c.send('+ ');
  }

  async #saslResponse(b64: string): Promise<void> {
    if (b64 === '*') return this.#c.send('-ERR authentication cancelled');
    const decoded = /^[A-Za-z0-9+/]*={0,2}$/.test(b64) ? Buffer.from(b64, 'base64').toString('utf8').split('\0') : [];
    if (decoded.length !== 3) return this.#c.send('-ERR [AUTH] malformed AUTH PLAIN response (bad base64)');
    const [, name, password] = decoded as [string, string, string];
    await this.#login(name, this.#c.o.store.authenticate(name, password) !== null);
  }

  async #login(name: string, ok: boolean): Promise<void> {
    const store = this.#c.o.store;
    if (!ok) {
      this.#failures++;
      this.#c.o.tracer.emit(this.#c.o.proto, this.#c.cid, '*', 'auth-failed', () => `wrong password #${this.#failures} for ${name}: slowed down`);
      await this.#c.failureDelay(this.#failures);
      if (this.#failures >= this.#c.o.maxAuthFailures) {
        this.#c.o.tracer.emit(this.#c.o.proto, this.#c.cid, '*', 'limit', () => `maxAuthFailures=${this.#c.o.maxAuthFailures} reached`);
        return this.#c.end('-ERR [AUTH] invalid user name or password; too many failures, closing');
      }
      return this.#c.send('-ERR [AUTH] invalid user name or password');
    }
    const user = store.canonicalUser(name)!;
    const unlock = store.lockMaildrop(user);
    if (!unlock) {
      this.#c.o.tracer.emit(this.#c.o.proto, this.#c.cid, '*', 'locked', () => `maildrop of ${user} is locked by another POP3 session`);
      return this.#c.send('-ERR [IN-USE] maildrop already locked by another session');
    }
    this.#unlock = unlock;
    const inbox = store.mailbox(user, 'INBOX')!;
    this.#drop = inbox.messages.map((m) => ({ uid: m.uid, size: m.size, raw: m.raw, uidl: `${inbox.uidValidity}.${m.uid}`, deleted: false }));
    this.#user = user;
    this.#state = 'TRANSACTION';
    this.#c.send(`+OK ${user}'s maildrop has ${this.#drop.length} messages (${this.#drop.reduce((n, m) => n + m.size, 0)} octets)`);
  }

  #live(): DropEntry[] {
    return this.#drop.filter((m) => !m.deleted);
  }

  #message(arg: string | undefined): DropEntry | null {
    const n = arg !== undefined && /^\d{1,9}$/.test(arg) ? Number(arg) : NaN;
    const m = this.#drop[n - 1];
    if (!m) {
      this.#c.send(`-ERR no such message${arg === undefined ? '' : ` ${arg.slice(0, 20)}`}`);
      return null;
    }
    if (m.deleted) {
      this.#c.send(`-ERR message ${n} already deleted`);
      return null;
    }
    return m;
  }

  #listing(args: string[], line: (n: number, m: DropEntry) => string, what: string): void {
    if (args[0] !== undefined) {
      const m = this.#message(args[0]);
      if (m) this.#c.send(`+OK ${line(Number(args[0]), m)}`);
      return;
    }
    const lines = this.#drop.map((m, i) => (m.deleted ? null : line(i + 1, m))).filter((l): l is string => l !== null);
    this.#c.sendMulti(`+OK ${what} follows`, Buffer.from(lines.map((l) => `${l}\r\n`).join('')));
  }

  #top(args: string[]): void {
    const m = this.#message(args[0]);
    if (!m) return;
    if (args[1] === undefined || !/^\d{1,9}$/.test(args[1])) return this.#c.send('-ERR usage: TOP msg lines');
    const text = m.raw.toString('latin1');
    const split = text.search(/\r?\n\r?\n/);
    if (split === -1) return this.#c.sendMulti('+OK top of message follows', m.raw);
    const sep = text.slice(split).match(/^\r?\n\r?\n/)![0];
    const bodyLines = text.slice(split + sep.length).split(/\r?\n/).slice(0, Number(args[1]));
    const out = text.slice(0, split) + '\r\n\r\n' + bodyLines.map((l) => `${l}\r\n`).join('');
    this.#c.sendMulti('+OK top of message follows', Buffer.from(out, 'latin1'));
  }

  /** QUIT in TRANSACTION: the UPDATE state removes the messages marked with DELE, then releases the lock. */
  async #update(): Promise<void> {
    this.#state = 'UPDATE';
    const gone = this.#drop.filter((m) => m.deleted).map((m) => m.uid);
    try {
      if (gone.length > 0) await this.#c.o.store.remove(this.#user!, 'INBOX', gone, this);
      this.release();
      this.#c.end(`+OK bye, ${gone.length} messages deleted`);
    } catch (err) {
      this.release();
      this.#c.end(`-ERR some deleted messages not removed: ${(err as Error).message}`);
    }
  }
}
