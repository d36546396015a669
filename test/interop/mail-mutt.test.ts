import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { getTlsMaterial } from '../../core/tls/index.ts';
import { MemorySink, createTracer } from '../../core/trace/index.ts';
import { startImapServer } from '../../servers/imap/index.ts';
import { startSmtpServer } from '../../servers/smtp/index.ts';
import { memoryStore, tempDir } from '../helpers/mail.ts';
import { requirePeer } from '../helpers/peers.ts';
import { run } from '../helpers/run.ts';

// mutt in batch mode (no terminal): it sends over SMTP with STARTTLS and AUTH, then files its copy in Sent over IMAP
// (STARTTLS, LOGIN or AUTHENTICATE, APPEND), both certificates checked against the local CA.
test('mutt: sends through our SMTP server and saves the copy to Sent through our IMAP server', async (t) => {
  if (!requirePeer(t, 'mutt', 'mutt')) return;
  const store = await memoryStore();
  const sink = new MemorySink();
  const tracer = createTracer([sink]);
  const smtp = await startSmtpServer({ store, tracer });
  const imap = await startImapServer({ store, tracer });
  t.after(() => Promise.all([smtp.close(), imap.close()]));
  const dir = await tempDir(t, 'wirelab-mutt-');
  const { caCertPath } = await getTlsMaterial();
  const rc = join(dir, 'muttrc');
  await writeFile(
    rc,
    [
      `set smtp_url = "smtp://demo@127.0.0.1:${smtp.port}/"`,
      'set smtp_pass = "demo"',
      'set ssl_starttls = yes',
      'set ssl_force_tls = yes',
      `set ssl_ca_certificates_file = "${caCertPath}"`,
      'set from = "demo@localhost"',
      'set imap_user = "demo"',
      'set imap_pass = "demo"',
      `set folder = "imap://127.0.0.1:${imap.port}/"`,
      'set record = "=Sent"',
      'set copy = yes',
      'set header_cache = ""',
    ].join('\n') + '\n',
  );
  const r = await run('mutt', ['-n', '-F', rc, '-s', 'from mutt', 'ann@localhost'], {
    input: 'Sent by mutt in batch mode.\n',
    env: { HOME: dir, TERM: 'dumb' },
    timeoutMs: 30_000,
  });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const inbox = store.mailbox('ann', 'INBOX')!.messages;
  assert.equal(inbox.length, 1);
  assert.match(inbox[0]!.raw.toString(), /Subject: from mutt/);
  const sent = store.mailbox('demo', 'Sent')!.messages;
  assert.equal(sent.length, 1, 'the copy was APPENDed to Sent over IMAP');
  assert.match(sent[0]!.raw.toString(), /Sent by mutt in batch mode/);
  assert.ok(sink.find({ proto: 'smtp', kind: 'command' }).some((e) => e.summary === 'STARTTLS'), 'SMTP went through STARTTLS');
  assert.ok(sink.find({ proto: 'imap', kind: 'command' }).some((e) => / STARTTLS$/.test(e.summary)), 'IMAP went through STARTTLS');
  assert.equal(sink.find({ proto: 'tls', kind: 'handshake' }).length, 1, 'the IMAP TLS handshake completed');
});
