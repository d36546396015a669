import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { dataDir } from '../../../core/paths.ts';
import { ErrorCodes, WirelabError } from '../../../core/errors.ts';
import { checkInt, withDefaults } from '../../../core/options.ts';
import * as disk from './disk.ts';
import { loadUsersFile, passwordMatches } from './users.ts';
import {
  DEFAULT_DOMAINS,
  DEFAULT_MAILBOXES,
  DEMO_USER,
  type FlagMode,
  type MailChange,
  type Mailbox,
  type MailUser,
  type StoredMessage,
} from './types.ts';

export * from './types.ts';

export interface MailStoreOptions {
  /** Keep everything in memory (tests, labs): nothing is read or written on disk. Default false. */
  memory?: boolean;
  /** Where mailboxes live on disk. Default `<data dir>/mail/store`. */
  dir?: string;
  /** The users file. Default `<data dir>/mail/users.json` (made with the demo user when missing). */
  usersFile?: string;
  /** Users given directly (memory mode's default is the demo user); overrides the users file. */
  users?: MailUser[];
  /** Domains delivered here. Default from the users file, else localhost and wirelab.test. */
  domains?: string[];
  /** Mailboxes one user may have; CREATE past it is refused. Default 1000. */
  maxMailboxes?: number;
  /** Longest mailbox name accepted, in octets of its UTF-8 form (CREATE / RENAME past it are refused). Default 200. */
  maxMailboxNameBytes?: number;
}

export const MAIL_STORE_DEFAULTS = Object.freeze({ maxMailboxes: 1000, maxMailboxNameBytes: 200 });

/** Why a mailbox name is refused, or null: empty levels, wildcards, control characters, longer than `maxBytes`. */
export function mailboxNameProblem(name: string, maxBytes: number = MAIL_STORE_DEFAULTS.maxMailboxNameBytes): string | null {
  if (name.length === 0) return 'empty name';
  if (Buffer.byteLength(name) > maxBytes) return `longer than maxMailboxNameBytes=${maxBytes} bytes`;
  if (name.split('/').some((p) => p === '')) return 'empty hierarchy level';
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f*%]/.test(name)) return 'control characters and the wildcards * and % are not allowed';
  return null;
}

/** The mail store the SMTP, IMAP and POP3 servers share. Emits 'change' (MailChange) after every change. */
export class MailStore extends EventEmitter {
  readonly root: string | null;
  readonly domains: string[];
  readonly #users = new Map<string, MailUser>();
  readonly #boxes = new Map<string, Map<string, Mailbox>>();
  readonly #locks = new Set<string>();
  readonly #chains = new Map<string, Promise<unknown>>();
  #lastUidValidity = 0;

  readonly maxMailboxes: number;
  readonly maxMailboxNameBytes: number;

  private constructor(root: string | null, users: MailUser[], domains: string[], limits: { maxMailboxes: number; maxMailboxNameBytes: number }) {
    super();
    this.setMaxListeners(0);
    this.root = root;
    this.maxMailboxes = limits.maxMailboxes;
    this.maxMailboxNameBytes = limits.maxMailboxNameBytes;
    this.domains = domains.map((d) => d.toLowerCase());
    for (const u of users) this.#users.set(u.name.toLowerCase(), u);
  }

  static async open(options: MailStoreOptions = {}): Promise<MailStore> {
    let users = options.users;
    let domains = options.domains;
    if (!users && !options.memory) {
      const cfg = await loadUsersFile(options.usersFile ?? join(dataDir(), 'mail', 'users.json'));
      users = cfg.users;
      domains ??= cfg.domains;
    }
    const root = options.memory ? null : (options.dir ?? join(dataDir(), 'mail', 'store'));
    const limits = withDefaults(MAIL_STORE_DEFAULTS, { maxMailboxes: options.maxMailboxes, maxMailboxNameBytes: options.maxMailboxNameBytes });
    checkInt('maxMailboxes', limits.maxMailboxes, 3, 1_000_000);
    // One level is a directory on disk: 200 octets of name stays under the 255-byte file name limit once encoded.
    checkInt('maxMailboxNameBytes', limits.maxMailboxNameBytes, 16, 1000);
    const store = new MailStore(root, users ?? [DEMO_USER], domains ?? DEFAULT_DOMAINS, limits);
    if (root) await disk.prepareRoot(root);
    for (const u of store.#users.values()) await store.#loadUser(u.name);
    return store;
  }

  async #loadUser(name: string): Promise<void> {
    const boxes = new Map<string, Mailbox>();
    this.#boxes.set(name, boxes);
    if (this.root) {
      for (const mb of await disk.loadUserMailboxes(this.root, name)) {
        boxes.set(mb.name, mb);
        this.#lastUidValidity = Math.max(this.#lastUidValidity, mb.uidValidity);
      }
    }
    for (const n of DEFAULT_MAILBOXES) if (!boxes.has(n)) await this.createMailbox(name, n);
  }

  /** The user for these credentials, or null. */
  authenticate(name: string, password: string): MailUser | null {
    const u = this.#users.get(name.toLowerCase());
    return u && passwordMatches(u, password) ? u : null;
  }

  /** The stored spelling of a user name (logins are case-insensitive), or null. */
  canonicalUser(name: string): string | null {
    return this.#users.get(name.toLowerCase())?.name ?? null;
  }

  /** The plain password, for challenge mechanisms such as APOP that need it; null for an unknown user. */
  passwordFor(name: string): string | null {
    return this.#users.get(name.toLowerCase())?.password ?? null;
  }

  /** The user an address is delivered to (`<name>@<one of domains>`), or null. */
  userForAddress(address: string): MailUser | null {
    const at = address.lastIndexOf('@');
    if (at <= 0) return null;
    if (!this.domains.includes(address.slice(at + 1).toLowerCase())) return null;
    return this.#users.get(address.slice(0, at).toLowerCase()) ?? null;
  }

  /** Every user's stored name (the dashboard's mail view lists their mailboxes). */
  userNames(): string[] {
    return [...this.#users.values()].map((u) => u.name);
  }

  addressOf(user: string): string {
    return `${user}@${this.domains[0] ?? 'localhost'}`;
  }

  #userBoxes(user: string): Map<string, Mailbox> {
    const boxes = this.#boxes.get(user);
    if (!boxes) throw new WirelabError(ErrorCodes.MAIL_NO_SUCH_USER, `no user ${user}`);
    return boxes;
  }

  /** INBOX is case-insensitive (RFC 3501 5.1); other names are exact. */
  static canonical(name: string): string {
    return name.toUpperCase() === 'INBOX' ? 'INBOX' : name;
  }

  listMailboxes(user: string): string[] {
    return [...this.#userBoxes(user).keys()].sort((a, b) => (a === 'INBOX' ? -1 : b === 'INBOX' ? 1 : a.localeCompare(b)));
  }

  mailbox(user: string, name: string): Mailbox | undefined {
    return this.#userBoxes(user).get(MailStore.canonical(name));
  }

  #mustMailbox(user: string, name: string): Mailbox {
    const mb = this.mailbox(user, name);
    if (!mb) throw new WirelabError(ErrorCodes.MAIL_NO_SUCH_MAILBOX, `no mailbox ${name}`);
    return mb;
  }

  /** Runs store writes of one user one at a time, so the on-disk index always follows the order of changes. */
  #serial<T>(user: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#chains.get(user) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    this.#chains.set(user, next.catch(() => undefined));
    return next;
  }

  async #save(user: string, mb: Mailbox): Promise<void> {
    if (this.root) await disk.saveMailboxIndex(this.root, user, mb);
  }

  #nextUidValidity(): number {
    this.#lastUidValidity = Math.max(Math.floor(Date.now() / 1000), this.#lastUidValidity + 1);
    return this.#lastUidValidity;
  }

  /** Why this store refuses the name: the rules for every store, and on disk the 255-byte limit of one file name. */
  #nameProblem(name: string): string | null {
    const problem = mailboxNameProblem(name, this.maxMailboxNameBytes);
    if (problem || !this.root) return problem;
    return disk.segment(name).length > 255 ? `${disk.segment(name).length} bytes once encoded as a file name (the limit is 255)` : null;
  }

  async createMailbox(user: string, name: string): Promise<Mailbox> {
    const boxes = this.#userBoxes(user);
    const canonical = MailStore.canonical(name);
    if (boxes.has(canonical)) throw new WirelabError(ErrorCodes.MAIL_MAILBOX_EXISTS, `mailbox ${name} exists`);
    const problem = this.#nameProblem(canonical);
    if (problem) throw new WirelabError(ErrorCodes.MAIL_NOT_ALLOWED, `bad mailbox name: ${problem}`);
    if (boxes.size >= this.maxMailboxes) throw new WirelabError(ErrorCodes.MAIL_NOT_ALLOWED, `maxMailboxes=${this.maxMailboxes} reached`);
    const mb: Mailbox = { name: canonical, uidValidity: this.#nextUidValidity(), uidNext: 1, messages: [] };
    boxes.set(canonical, mb);
    await this.#serial(user, async () => {
      if (this.root) await disk.createMailboxDir(this.root, user, mb);
    });
    this.#emit({ user, mailbox: canonical, kind: 'mailboxes', uids: [] });
    return mb;
  }

  async deleteMailbox(user: string, name: string): Promise<void> {
    const canonical = MailStore.canonical(name);
    if (canonical === 'INBOX') throw new WirelabError(ErrorCodes.MAIL_NOT_ALLOWED, 'INBOX cannot be deleted');
    this.#mustMailbox(user, canonical);
    this.#userBoxes(user).delete(canonical);
    await this.#serial(user, async () => {
      if (this.root) await disk.removeMailboxDir(this.root, user, canonical);
    });
    this.#emit({ user, mailbox: canonical, kind: 'mailboxes', uids: [] });
  }

  async renameMailbox(user: string, from: string, to: string): Promise<void> {
    const src = MailStore.canonical(from);
    const dst = MailStore.canonical(to);
    if (src === 'INBOX' || dst === 'INBOX') throw new WirelabError(ErrorCodes.MAIL_NOT_ALLOWED, 'INBOX cannot be renamed here');
    const boxes = this.#userBoxes(user);
    const mb = this.#mustMailbox(user, src);
    if (boxes.has(dst)) throw new WirelabError(ErrorCodes.MAIL_MAILBOX_EXISTS, `mailbox ${to} exists`);
    const problem = this.#nameProblem(dst);
    if (problem) throw new WirelabError(ErrorCodes.MAIL_NOT_ALLOWED, `bad mailbox name: ${problem}`);
    boxes.delete(src);
    mb.name = dst;
    boxes.set(dst, mb);
    await this.#serial(user, async () => {
      if (this.root) await disk.renameMailboxDir(this.root, user, src, mb);
    });
    this.#emit({ user, mailbox: dst, kind: 'mailboxes', uids: [] });
  }

  /** Where SMTP spools a message while it arrives (`<root>/.tmp`), or null for a memory store. */
  get spoolDir(): string | null {
    return this.root === null ? null : join(this.root, '.tmp');
  }

  /**
   * Stores a message (`spoolFile`: the same bytes, complete, in `spoolDir`, linked into place rather than written
   * again); resolves with its UID once it is on disk (file and index), and only then is it visible. A caller
   * that acknowledges after this resolves (SMTP 250, IMAP APPEND OK) never acknowledges a half-written message.
   */
  async append(
    user: string,
    mailbox: string,
    raw: Buffer,
    options: { flags?: string[]; internalDate?: Date; origin?: unknown; spoolFile?: string } = {},
  ): Promise<number> {
    const mb = this.#mustMailbox(user, mailbox);
    const uid = mb.uidNext++;
    const msg: StoredMessage = {
      uid,
      flags: new Set(options.flags ?? []),
      internalDate: options.internalDate ?? new Date(),
      size: raw.length,
      raw,
    };
    await this.#serial(user, async () => {
      if (this.root && options.spoolFile) await disk.linkMessageFile(this.root, user, mb.name, uid, options.spoolFile);
      else if (this.root) await disk.writeMessageFile(this.root, user, mb.name, uid, raw);
      mb.messages.push(msg);
      mb.messages.sort((a, b) => a.uid - b.uid);
      await this.#save(user, mb);
    });
    this.#emit({ user, mailbox: mb.name, kind: 'exists', uids: [uid], origin: options.origin });
    return uid;
  }

  /** Changes flags of the given UIDs; resolves with the messages that changed. */
  async setFlags(user: string, mailbox: string, uids: number[], mode: FlagMode, flags: string[], origin?: unknown): Promise<StoredMessage[]> {
    const mb = this.#mustMailbox(user, mailbox);
    const wanted = new Set(uids);
    const changed: StoredMessage[] = [];
    for (const m of mb.messages) {
      if (!wanted.has(m.uid)) continue;
      const before = [...m.flags].sort().join(' ');
      if (mode === 'set') m.flags = new Set(flags);
      else if (mode === 'add') for (const f of flags) m.flags.add(f);
      else for (const f of flags) m.flags.delete(f);
      if ([...m.flags].sort().join(' ') !== before) changed.push(m);
    }
    if (changed.length > 0) {
      await this.#serial(user, () => this.#save(user, mb));
      this.#emit({ user, mailbox: mb.name, kind: 'flags', uids: changed.map((m) => m.uid), origin });
    }
    return changed;
  }

  /** Removes messages for good (IMAP EXPUNGE of \Deleted ones, POP3 UPDATE state); resolves with the UIDs removed. */
  async remove(user: string, mailbox: string, uids: number[], origin?: unknown): Promise<number[]> {
    const mb = this.#mustMailbox(user, mailbox);
    const wanted = new Set(uids);
    const removed = mb.messages.filter((m) => wanted.has(m.uid)).map((m) => m.uid);
    if (removed.length === 0) return [];
    mb.messages = mb.messages.filter((m) => !wanted.has(m.uid));
    await this.#serial(user, async () => {
      await this.#save(user, mb);
      if (this.root) await disk.removeMessageFiles(this.root, user, mb.name, removed);
    });
    this.#emit({ user, mailbox: mb.name, kind: 'expunge', uids: removed, origin });
    return removed;
  }

  /** Copies messages (flags and internal date kept); resolves with [source UID, new UID] pairs. */
  async copy(user: string, from: string, uids: number[], to: string, origin?: unknown): Promise<Array<[number, number]>> {
    const src = this.#mustMailbox(user, from);
    this.#mustMailbox(user, to);
    const wanted = new Set(uids);
    const pairs: Array<[number, number]> = [];
    for (const m of src.messages.filter((x) => wanted.has(x.uid))) {
      const uid = await this.append(user, to, m.raw, { flags: [...m.flags], internalDate: m.internalDate, origin });
      pairs.push([m.uid, uid]);
    }
    return pairs;
  }

  /**
   * RFC 1939's maildrop lock: one POP3 session per user at a time. Returns the release function, or null when the
   * maildrop is already locked.
   */
  lockMaildrop(user: string): (() => void) | null {
    if (this.#locks.has(user)) return null;
    this.#locks.add(user);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#locks.delete(user);
    };
  }

  /** Resolves once every pending write has reached the disk. */
  async flush(): Promise<void> {
    await Promise.all([...this.#chains.values()]);
  }

  #emit(change: MailChange): void {
    this.emit('change', change);
  }
}

/** Opens the store; `memory: true` for tests and labs. */
export function openMailStore(options: MailStoreOptions = {}): Promise<MailStore> {
  return MailStore.open(options);
}
