import tls from 'node:tls';
import { ErrorCodes } from '../../core/errors.ts';
import { oneLine, REDACTED, redactLine, socketEnds } from '../../core/trace/index.ts';
import { traceTlsHandshake } from '../../core/tls/index.ts';
import type { Mailbox, MailChange, StoredMessage } from '../mail/store/index.ts';
import { sleep } from '../../core/time.ts';
import { authFailureDelay } from '../mail/shared.ts';
import type { MailServerStats } from '../mail/conn.ts';
import type { LineConnection } from '../line/connection.ts';
import type { MailLineResolved } from '../mail/line-server.ts';
import type { ReaderEvent } from './reader.ts';
import { ImapParseError, parseCommand, type ImapCommand } from './parser.ts';
import { parseSequenceSet } from './sequence.ts';
import { describeHit } from '../line/chaos.ts';

export type ImapState = 'not-authenticated' | 'authenticated' | 'selected' | 'logout';

/** The options an IMAP session reads: the mail line server's, and IMAP's own limits. */
export interface ImapResolved extends MailLineResolved {
  maxLiteralSize: number;
  maxCommandSize: number;
  maxNesting: number;
  maxSearchDepth: number;
}

export interface CommandContext {
  session: ImapSession;
  cmd: ImapCommand;
}

export interface CommandHandler {
  /** The states the command is valid in (RFC 3501 6); elsewhere it gets BAD. */
  states: ImapState[];
  run(ctx: CommandContext): Promise<void> | void;
}

/** The command table by verb (commands/index.ts), passed in by the server so this file imports no command. */
export type CommandTable = Record<string, CommandHandler>;

export interface Selected {
  name: string;
  readOnly: boolean;
  uidValidity: number;
  /** The session's view: sequence number n is uids[n-1]. Changes by others arrive at flush points. */
  uids: number[];
  /** UIDs whose flags another session changed, to report as FETCH at the next flush. */
  flagChanges: Set<number>;
}

/** One IMAP connection: reading, the state, the selected mailbox's view, and the untagged updates. */
export class ImapSession {
  state: ImapState = 'not-authenticated';
  user: string | null = null;
  selected: Selected | null = null;
  failures = 0;
  unknown = 0;
  /** Set by AUTHENTICATE and IDLE: the next line goes here instead of to the command table. */
  continuation: ((line: string) => Promise<void> | void) | null = null;
  /** When IDLE is on: push updates as they happen. */
  idling = false;
  readonly #onChange = (c: MailChange): void => this.#storeChanged(c);

  constructor(
    readonly conn: LineConnection<ReaderEvent>,
    readonly cid: string,
    readonly o: ImapResolved,
    readonly stats: MailServerStats,
    readonly commands: CommandTable,
  ) {
    const socket = conn.socket;
    o.store.on('change', this.#onChange);
    o.tracer.emit(o.proto, cid, '*', 'accept', () => ({ summary: `accepted ${socket.remoteAddress}:${socket.remotePort}`, ...socketEnds(socket, 'server') }));
    if (socket instanceof tls.TLSSocket) traceTlsHandshake(o.tracer, cid, socket, 'server');
    conn.start({
      // A synchronizing literal: the client waits for this before sending it.
      urgent: (ev) => ev.type === 'continue' && (this.send('+ Ready for literal data'), true),
      unit: (ev) => this.#handle(ev),
      overlong: () => this.bye('Closing: cannot resynchronize after an overlong line'),
      idle: () => {
        this.o.tracer.emit(this.o.proto, this.cid, '*', 'timeout', () => `idle for idleTimeoutMs=${this.o.idleTimeoutMs}: autologout`);
        this.bye('Autologout; idle for too long');
      },
      close: ({ pending }) => {
        this.o.store.off('change', this.#onChange);
        this.o.tracer.emit(this.o.proto, this.cid, '*', 'close', () => (pending > 0 ? `connection closed with ${pending} B of a command unread (discarded)` : 'connection closed'));
      },
    });
    this.send(`* OK [CAPABILITY ${this.capabilities().join(' ')}] wirelab IMAP4rev1 ready`);
  }

  get secure(): boolean {
    return this.conn.secure;
  }

  /** True while a password would cross the wire in clear and the server does not allow that (RFC 3501 6.2.3). */
  get plaintextAuthDisabled(): boolean {
    return !this.secure && !this.o.allowInsecureAuth;
  }

  capabilities(): string[] {
    const caps = ['IMAP4rev1', 'LITERAL+', 'SASL-IR', 'IDLE', 'UIDPLUS', 'MOVE', 'NAMESPACE', 'ID', 'UNSELECT', 'CHILDREN', 'SPECIAL-USE'];
    if (this.state === 'not-authenticated') {
      if (!this.secure) caps.push('STARTTLS');
      // Like Dovecot: before TLS no mechanism is offered and LOGINDISABLED tells clients not to send LOGIN.
      caps.push(...(this.plaintextAuthDisabled ? ['LOGINDISABLED'] : ['AUTH=PLAIN']));
    } else {
      caps.push('AUTH=PLAIN');
    }
    return caps;
  }

  /**
   * Answers NO [PRIVACYREQUIRED] (RFC 5530) and returns true when plaintext authentication is disabled here. AUTHENTICATE
   * checks this before its `+`, so a client that waits for it never sends the password.
   */
  refusePlaintextAuth(tag: string, command: string): boolean {
    if (!this.plaintextAuthDisabled) return false;
    this.o.tracer.emit(this.o.proto, this.cid, '*', 'auth-refused', () => `${command} before STARTTLS refused (allowInsecureAuth=false)`);
    this.tagged(tag, 'NO', '[PRIVACYREQUIRED] Plaintext authentication is disabled; use STARTTLS first');
    return true;
  }

  async #handle(ev: ReaderEvent): Promise<void> {
    if (ev.type === 'line-too-long') {
      this.o.tracer.emit(this.o.proto, this.cid, '*', 'limit', () => `line over maxLineLength=${this.o.maxLineLength}`);
      this.send(`* BAD [TOOBIG] Line too long (maxLineLength=${this.o.maxLineLength})`);
      this.bye('Closing: cannot resynchronize after an overlong line');
      return;
    }
    if (ev.type === 'too-big') {
      const tag = /^(\S+)/.exec(ev.line.toString('latin1'))?.[1] ?? '*';
      const limit = ev.what === 'literal' ? `maxLiteralSize=${this.o.maxLiteralSize}` : `maxCommandSize=${this.o.maxCommandSize}`;
      this.o.tracer.emit(this.o.proto, this.cid, '*', 'limit', () => `${ev.what} of ${ev.size} B refused (${limit})`);
      this.send(`${tag} BAD [TOOBIG] ${ev.what} of ${ev.size} octets is over ${limit}`);
      return;
    }
    if (ev.type !== 'command') return;
    this.stats.commands++;
    const text = ev.data.toString('latin1');
    if (this.continuation) {
      const next = this.continuation;
      this.continuation = null;
      this.o.tracer.emit(this.o.proto, this.cid, '>', 'continuation', () => (this.idling ? text.trim() : REDACTED));
      await next(text.replace(/\r?\n$/, ''));
      return;
    }
    this.o.tracer.emit(this.o.proto, this.cid, '>', 'command', () => ({ summary: traceLine(text), bytes: ev.data.length }));
    let cmd: ImapCommand;
    try {
      cmd = parseCommand(ev.data, this.o.maxNesting);
    } catch (err) {
      const tag = err instanceof ImapParseError && err.tag ? err.tag : '*';
      this.#unknownCommand(tag, `Syntax error: ${(err as Error).message}`);
      return;
    }
    const handler = Object.hasOwn(this.commands, cmd.name) ? this.commands[cmd.name] : undefined;
    if (!handler) {
      this.#unknownCommand(cmd.tag, `Unknown command ${cmd.name.slice(0, 30)}`);
      return;
    }
    if (!handler.states.includes(this.state)) {
      this.tagged(cmd.tag, 'BAD', `${cmd.name} is not allowed in the ${this.state} state`);
      return;
    }
    if (this.#injected(cmd)) return;
    const ctx: CommandContext = { session: this, cmd };
    try {
      await handler.run(ctx);
    } catch (err) {
      const code = (err as { code?: string }).code;
      const resp = code === ErrorCodes.MAIL_NOT_ALLOWED ? '[CANNOT] ' : code === ErrorCodes.MAIL_MAILBOX_EXISTS ? '[ALREADYEXISTS] ' : code === ErrorCodes.MAIL_NO_SUCH_MAILBOX ? '[NONEXISTENT] ' : '';
      this.tagged(cmd.tag, 'NO', `${resp}${cmd.name} failed: ${(err as Error).message}`);
    }
  }

  /** Chaos: NO / BAD instead of the command, or BYE and close, or a close with no reply. A FETCH rule also hits UID FETCH. */
  #injected(cmd: ImapCommand): boolean {
    const first = cmd.args[0];
    const sub = cmd.name === 'UID' && first?.type === 'atom' ? first.value.toUpperCase() : undefined;
    const name = sub ?? cmd.name;
    const hit = this.o.chaos.check(name);
    if (!hit) return false;
    this.o.tracer.emit(this.o.proto, this.cid, '*', 'chaos', () => describeHit(name, hit));
    if (hit.action === 'abrupt') this.conn.socket.destroy();
    else if (hit.action === 'disconnect') this.bye(`[UNAVAILABLE] ${hit.text}`);
    else this.tagged(cmd.tag, hit.code as 'NO' | 'BAD', `${hit.code === 'NO' ? '[UNAVAILABLE] ' : ''}${hit.text}`);
    return true;
  }

  #unknownCommand(tag: string, message: string): void {
    this.unknown++;
    this.tagged(tag, 'BAD', message);
    if (this.unknown >= this.o.maxUnknownCommands) {
      this.o.tracer.emit(this.o.proto, this.cid, '*', 'limit', () => `maxUnknownCommands=${this.o.maxUnknownCommands} reached`);
      this.bye('Too many bad commands');
    }
  }

  /** A response line (CRLF added); `line` is a binary string and may hold literals. */
  send(line: string): void {
    if (this.conn.ended) return;
    const buf = Buffer.from(`${line}\r\n`, 'latin1');
    this.o.tracer.emit(this.o.proto, this.cid, '<', 'response', () => ({
      summary: oneLine(line),
      bytes: buf.length,
    }));
    this.conn.write(buf);
  }

  /** The tagged completion, after any pending updates (EXPUNGE only where `allowExpunge`). */
  tagged(tag: string, status: 'OK' | 'NO' | 'BAD', text: string, allowExpunge = true): void {
    if (status === 'OK' && this.selected) this.flush(allowExpunge);
    this.send(`${tag} ${status} ${text}`);
  }

  /**
   * BYE (unless already sent, as LOGOUT does before its tagged OK), then close: the connection gives the slot back at
   * once and keeps reading (and dropping) until the client's FIN.
   */
  bye(text?: string): void {
    if (this.conn.ended) return;
    if (text !== undefined) this.send(`* BYE ${text}`);
    this.state = 'logout';
    this.conn.end();
  }

  /** RFC 3501 6.2.1: OK in clear, then TLS; whatever the client pipelined after the command is discarded. */
  startTls(tag: string): void {
    this.tagged(tag, 'OK', 'Begin TLS negotiation now');
    this.conn.startTls(this.o.tls);
  }

  async loginFailed(tag: string, user: string): Promise<void> {
    this.failures++;
    this.o.tracer.emit(this.o.proto, this.cid, '*', 'auth-failed', () => `wrong password #${this.failures} for ${user}: slowed down`);
    await sleep(authFailureDelay(this.o.authFailureDelayMs, this.failures));
    this.tagged(tag, 'NO', '[AUTHENTICATIONFAILED] Invalid credentials');
    if (this.failures >= this.o.maxAuthFailures) {
      this.o.tracer.emit(this.o.proto, this.cid, '*', 'limit', () => `maxAuthFailures=${this.o.maxAuthFailures} reached`);
      this.bye('Too many authentication failures');
    }
  }

  loggedIn(tag: string, user: string): void {
    this.user = user;
    this.state = 'authenticated';
    this.tagged(tag, 'OK', `[CAPABILITY ${this.capabilities().join(' ')}] Logged in`);
  }

  // ---- the selected mailbox ----

  mailbox(): Mailbox | undefined {
    return this.selected && this.user ? this.o.store.mailbox(this.user, this.selected.name) : undefined;
  }

  /** The stored message behind a UID of our view, if it still exists. */
  message(uid: number): StoredMessage | undefined {
    const msgs = this.mailbox()?.messages ?? [];
    let lo = 0;
    let hi = msgs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const m = msgs[mid]!;
      if (m.uid === uid) return m;
      if (m.uid < uid) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  }

  /** Resolves a sequence set (or UID set) to [seq, uid] pairs of the view, in order. Null when malformed. */
  resolveSet(text: string, byUid: boolean): Array<[number, number]> | null {
    const view = this.selected?.uids ?? [];
    if (byUid) {
      const max = view.length > 0 ? view[view.length - 1]! : 0;
      const set = parseSequenceSet(text, max);
      if (!set) return null;
      // `n:*` with n above the highest UID still means the highest one (RFC 3501 6.4.8).
      if (/\*/.test(text) && max > 0) set.add(max);
      return view.map((uid, i) => [i + 1, uid] as [number, number]).filter(([, uid]) => set.has(uid));
    }
    const set = parseSequenceSet(text, view.length);
    if (!set) return null;
    if ([...set].some((n) => n > view.length)) return null;
    return [...set].sort((a, b) => a - b).map((n) => [n, view[n - 1]!]);
  }

  /**
   * Tells the client what other sessions changed: EXPUNGE (not during FETCH, STORE, SEARCH: RFC 3501 7.4.1), EXISTS
   * for new messages, FETCH FLAGS for changed flags.
   */
  flush(allowExpunge: boolean): void {
    const sel = this.selected;
    const mb = this.mailbox();
    if (!sel || !mb) return;
    if (allowExpunge) {
      const live = new Set(mb.messages.map((m) => m.uid));
      for (let i = 0; i < sel.uids.length; ) {
        if (live.has(sel.uids[i]!)) {
          i++;
          continue;
        }
        sel.uids.splice(i, 1);
        this.send(`* ${i + 1} EXPUNGE`);
      }
    }
    const last = sel.uids[sel.uids.length - 1] ?? 0;
    const added = mb.messages.filter((m) => m.uid > last).map((m) => m.uid);
    if (added.length > 0) {
      sel.uids.push(...added);
      this.send(`* ${sel.uids.length} EXISTS`);
      this.send('* 0 RECENT');
    }
    for (const uid of sel.flagChanges) {
      const seq = sel.uids.indexOf(uid) + 1;
      const m = this.message(uid);
      if (seq > 0 && m) this.send(`* ${seq} FETCH (UID ${uid} FLAGS (${[...m.flags].join(' ')}))`);
    }
    sel.flagChanges.clear();
  }

  #storeChanged(c: MailChange): void {
    const sel = this.selected;
    if (!sel || c.user !== this.user || c.mailbox !== sel.name) return;
    if (c.kind === 'flags' && c.origin !== this) for (const uid of c.uids) sel.flagChanges.add(uid);
    if (this.idling && c.origin !== this) this.flush(true);
  }

  /** Selects a mailbox: a fresh view of its messages. */
  select(mb: Mailbox, readOnly: boolean): void {
    this.selected = { name: mb.name, readOnly, uidValidity: mb.uidValidity, uids: mb.messages.map((m) => m.uid), flagChanges: new Set() };
    this.state = 'selected';
  }

  unselect(): void {
    this.selected = null;
    this.state = 'authenticated';
  }

  /** Removes UIDs from our own view after we expunged them, answering `* n EXPUNGE` for each. */
  expunged(uids: number[]): void {
    const sel = this.selected;
    if (!sel) return;
    for (const uid of uids) {
      const i = sel.uids.indexOf(uid);
      if (i === -1) continue;
      sel.uids.splice(i, 1);
      this.send(`* ${i + 1} EXPUNGE`);
    }
  }
}

/** A command as it may appear in a trace: credentials redacted, literals summarized. */
function traceLine(text: string): string {
  const first = text.split(/\r?\n/)[0] ?? '';
  const more = text.length - first.length - 2;
  return redactLine(first) + (more > 0 ? ` [+${more} B of literal data]` : '');
}
