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

/** Waits `ms` (the pause after a wrong password; zero skips the timer). */
export function pause(ms: number): Promise<void> {
  return ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve();
}

/** The slow-down after the n-th wrong password of a connection: base × n, capped at 8 × base. */
export function authFailureDelay(baseMs: number, failures: number): number {
  return baseMs * Math.min(failures, 8);
}
