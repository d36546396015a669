import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { openMailStore, type MailStore, type MailStoreOptions } from '../../servers/mail/store/index.ts';

/** An in-memory store with the demo user and a second one (ann / secret). */
export function memoryStore(extra: MailStoreOptions = {}): Promise<MailStore> {
  return openMailStore({ memory: true, users: [{ name: 'demo', password: 'demo' }, { name: 'ann', password: 'secret' }], ...extra });
}

/** A temp folder removed when the test ends. */
export async function tempDir(t: TestContext, prefix = 'wirelab-mail-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export function message(subject: string, body = 'Hello from wirelab.\r\n', from = 'ann@localhost', to = 'demo@localhost'): Buffer {
  return Buffer.from(
    `From: Ann <${from}>\r\nTo: Demo <${to}>\r\nSubject: ${subject}\r\nDate: Sun, 22 Nov 2026 03:00:00 +0000\r\nMessage-ID: <${subject.replace(/\W/g, '')}@wirelab.test>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body}`,
  );
}

/** Waits until `check()` is true (polling every 10 ms), failing after `timeoutMs`: no fixed sleeps in the tests. */
export async function waitFor(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
