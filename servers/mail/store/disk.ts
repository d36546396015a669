import { randomUUID } from 'node:crypto';
import { link, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Mailbox, StoredMessage } from './types.ts';

/**
 * The on-disk layout, Maildir-like: `<root>/<user>/<encoded mailbox>/mailbox.json` (UIDVALIDITY, UIDNEXT, every
 * message's UID, flags and internal date) and `msg/<uid>.eml` (the message as received). Every file is written to a
 * temporary name and renamed into place, and a message is listed in mailbox.json only after its file is complete, so a
 * crash or a vanished client never leaves a half-written message that the servers would show.
 */
export async function writeAtomic(file: string, data: string | Buffer, tmpDir: string): Promise<void> {
  const tmp = join(tmpDir, `${randomUUID()}.tmp`);
  await writeFile(tmp, data, { mode: 0o600 });
  await rename(tmp, file);
}

interface MailboxFile {
  name: string;
  uidValidity: number;
  uidNext: number;
  messages: Array<{ uid: number; flags: string[]; internalDate: string; size: number }>;
}

/**
 * A user or mailbox name as one safe path segment: percent-encoded, dots included, so `..`, `.tmp` or `a/b` can never
 * leave the store's folder or collide with its own files.
 */
export function segment(name: string): string {
  return encodeURIComponent(name).replace(/\./g, '%2E').replace(/[!'()*~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export function mailboxDir(root: string, user: string, mailbox: string): string {
  return join(root, segment(user), segment(mailbox));
}

export async function saveMailboxIndex(root: string, user: string, mb: Mailbox): Promise<void> {
  const dir = mailboxDir(root, user, mb.name);
  const body: MailboxFile = {
    name: mb.name,
    uidValidity: mb.uidValidity,
    uidNext: mb.uidNext,
    messages: mb.messages.map((m) => ({
      uid: m.uid,
      flags: [...m.flags],
      internalDate: m.internalDate.toISOString(),
      size: m.size,
    })),
  };
  await writeAtomic(join(dir, 'mailbox.json'), JSON.stringify(body), join(root, '.tmp'));
}

export async function createMailboxDir(root: string, user: string, mb: Mailbox): Promise<void> {
  await mkdir(join(mailboxDir(root, user, mb.name), 'msg'), { recursive: true });
  await saveMailboxIndex(root, user, mb);
}

export async function writeMessageFile(root: string, user: string, mailbox: string, uid: number, raw: Buffer): Promise<void> {
  await writeAtomic(join(mailboxDir(root, user, mailbox), 'msg', `${uid}.eml`), raw, join(root, '.tmp'));
}

/**
 * Puts a complete spool file (SMTP DATA, already in `<root>/.tmp`) in place as a message without writing its bytes
 * again: a hard link under a temporary name, then a rename, so each recipient gets its own name for the same file
 * and the final name only ever shows a whole message.
 */
export async function linkMessageFile(root: string, user: string, mailbox: string, uid: number, spool: string): Promise<void> {
  const tmp = join(root, '.tmp', `${randomUUID()}.tmp`);
  await link(spool, tmp);
  await rename(tmp, join(mailboxDir(root, user, mailbox), 'msg', `${uid}.eml`));
}

export async function removeMessageFiles(root: string, user: string, mailbox: string, uids: number[]): Promise<void> {
  const dir = join(mailboxDir(root, user, mailbox), 'msg');
  await Promise.all(uids.map((uid) => rm(join(dir, `${uid}.eml`), { force: true })));
}

/** Moves the folder aside first (one rename), so a crash never leaves half a mailbox under its name. */
export async function removeMailboxDir(root: string, user: string, mailbox: string): Promise<void> {
  const aside = join(root, '.tmp', `${randomUUID()}.deleted`);
  await rename(mailboxDir(root, user, mailbox), aside);
  await rm(aside, { recursive: true, force: true });
}

export async function renameMailboxDir(root: string, user: string, from: string, mb: Mailbox): Promise<void> {
  await rename(mailboxDir(root, user, from), mailboxDir(root, user, mb.name));
  await saveMailboxIndex(root, user, mb);
}

/** Every mailbox of a user as last saved; message files not in an index (an interrupted delivery) are ignored. */
export async function loadUserMailboxes(root: string, user: string): Promise<Mailbox[]> {
  const userDir = join(root, segment(user));
  let entries: string[];
  try {
    entries = await readdir(userDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: Mailbox[] = [];
  for (const e of entries) {
    let index: MailboxFile;
    try {
      index = JSON.parse(await readFile(join(userDir, e, 'mailbox.json'), 'utf8')) as MailboxFile;
    } catch {
      continue;
    }
    const messages: StoredMessage[] = [];
    for (const m of index.messages) {
      let raw: Buffer;
      try {
        raw = await readFile(join(userDir, e, 'msg', `${m.uid}.eml`));
      } catch {
        continue;
      }
      messages.push({ uid: m.uid, flags: new Set(m.flags), internalDate: new Date(m.internalDate), size: raw.length, raw });
    }
    out.push({ name: index.name, uidValidity: index.uidValidity, uidNext: index.uidNext, messages });
  }
  return out;
}

export async function prepareRoot(root: string): Promise<void> {
  await mkdir(join(root, '.tmp'), { recursive: true });
}
