/** One user of the mail store: the login name is also the local part of the user's address. */
export interface MailUser {
  name: string;
  password: string;
}

/** The users file (`<data dir>/mail/users.json`), made with the demo user on first use. */
export interface UsersConfig {
  users: MailUser[];
  /** Domains whose addresses are delivered here: `<name>@<domain>`. */
  domains: string[];
}

export interface StoredMessage {
  uid: number;
  flags: Set<string>;
  internalDate: Date;
  size: number;
  raw: Buffer;
}

export interface Mailbox {
  name: string;
  uidValidity: number;
  uidNext: number;
  /** Sorted by UID. */
  messages: StoredMessage[];
}

export type ChangeKind = 'exists' | 'expunge' | 'flags' | 'mailboxes';

/** What the store emits as 'change' so IMAP sessions see each other's work (IDLE, untagged updates). */
export interface MailChange {
  user: string;
  mailbox: string;
  kind: ChangeKind;
  uids: number[];
  /** The session that made the change (it reports the change itself). */
  origin?: unknown;
}

export type FlagMode = 'set' | 'add' | 'remove';

/** The demo user that works out of the box (README "Mail"). */
export const DEMO_USER: MailUser = { name: 'demo', password: 'demo' };
export const DEFAULT_DOMAINS = ['localhost', 'wirelab.test'];
export const DEFAULT_MAILBOXES = ['INBOX', 'Sent', 'Trash'];
export const SYSTEM_FLAGS = ['\\Seen', '\\Answered', '\\Flagged', '\\Deleted', '\\Draft'];
