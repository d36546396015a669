import { openMailStore, type MailStore } from './store/index.ts';

let shared: Promise<MailStore> | undefined;

/**
 * The one on-disk store every mail server started without a `store` option uses (`wirelab up`: SMTP delivers, IMAP and
 * POP3 read the same mailboxes). Opened once per process, under the data dir.
 */
export function defaultMailStore(): Promise<MailStore> {
  shared ??= openMailStore();
  return shared;
}

/** The slow-down after the n-th wrong password of a connection: base × n, capped at 8 × base. */
export function authFailureDelay(baseMs: number, failures: number): number {
  return baseMs * Math.min(failures, 8);
}
