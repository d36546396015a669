import assert from 'node:assert/strict';
import { test } from 'node:test';
import { getTlsMaterial } from '../../core/tls/index.ts';
import { startImapServer } from '../../servers/imap/index.ts';
import { startPop3Server } from '../../servers/pop3/index.ts';
import { startSmtpServer } from '../../servers/smtp/index.ts';
import { memoryStore, message } from '../helpers/mail.ts';
import { requirePeer } from '../helpers/peers.ts';
import { run } from '../helpers/run.ts';

// curl's smtp://, imap:// and pop3:// (with --ssl-reqd for STARTTLS / STLS, and the implicit-TLS schemes), and swaks.

test('curl: smtp:// with --ssl-reqd and AUTH, smtps://; imap:// list, fetch by UID, search; pop3:// list and retrieve', async (t) => {
  if (!requirePeer(t, 'curl', 'curl')) return;
  const store = await memoryStore();
  const smtp = await startSmtpServer({ store });
  const smtps = await startSmtpServer({ store, secure: true });
  const imap = await startImapServer({ store });
  const imaps = await startImapServer({ store, secure: true });
  const pop3 = await startPop3Server({ store });
  const pop3s = await startPop3Server({ store, secure: true });
  t.after(() => Promise.all([smtp, smtps, imap, imaps, pop3, pop3s].map((s) => s.close())));
  const { caCertPath } = await getTlsMaterial();
  const curl = (...args: string[]) => run('curl', ['-sS', '--cacert', caCertPath, '-u', 'demo:demo', ...args]);

  const body = 'From: ann@localhost\r\nTo: demo@localhost\r\nSubject: via curl\r\n\r\nsent by curl\r\n';
  const sent = await run('curl', ['-sS', '--cacert', caCertPath, '--ssl-reqd', `smtp://127.0.0.1:${smtp.port}`, '-u', 'demo:demo', '--mail-from', 'ann@localhost', '--mail-rcpt', 'demo@localhost', '-T', '-'], { input: body });
  assert.equal(sent.code, 0, sent.stderr);
  const sent2 = await run('curl', ['-sS', '--cacert', caCertPath, `smtps://127.0.0.1:${smtps.port}`, '-u', 'ann:secret', '--mail-from', 'ann@localhost', '--mail-rcpt', 'demo@localhost', '-T', '-'], { input: body.replace('via curl', 'via smtps') });
  assert.equal(sent2.code, 0, sent2.stderr);
  const bad = await run('curl', ['-sS', `smtp://127.0.0.1:${smtp.port}`, '--mail-from', 'ann@localhost', '--mail-rcpt', 'nobody@localhost', '-T', '-'], { input: body });
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /550/);

  const list = await curl('--ssl-reqd', `imap://127.0.0.1:${imap.port}/`);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /\* LIST \(\\HasNoChildren\) "\/" "?INBOX"?/);
  const fetched = await curl('--ssl-reqd', `imap://127.0.0.1:${imap.port}/INBOX;UID=1`);
  assert.equal(fetched.code, 0, fetched.stderr);
  assert.equal(fetched.stdout, body);
  assert.ok(store.mailbox('demo', 'INBOX')!.messages[0]!.flags.has('\\Seen'), 'BODY[] (not PEEK) marked the message \\Seen');
  const searched = await curl(`imaps://127.0.0.1:${imaps.port}/INBOX?SUBJECT%20smtps`);
  assert.equal(searched.code, 0, searched.stderr);
  assert.match(searched.stdout, /^\* SEARCH 2\r?\n$/);

  const pl = await curl('--ssl-reqd', `pop3://127.0.0.1:${pop3.port}/`);
  assert.equal(pl.code, 0, pl.stderr);
  assert.match(pl.stdout, /^1 \d+\r\n2 \d+\r\n$/);
  const retr = await curl(`pop3s://127.0.0.1:${pop3s.port}/2`);
  assert.equal(retr.code, 0, retr.stderr);
  assert.match(retr.stdout, /Subject: via smtps/);
});

test('swaks: STARTTLS, AUTH LOGIN and PLAIN, pipelined delivery; an oversized message gets 552', async (t) => {
  if (!requirePeer(t, 'swaks', 'swaks')) return;
  const store = await memoryStore();
  await store.append('ann', 'INBOX', message('seed'));
  const smtp = await startSmtpServer({ store, maxMessageSize: 4096 });
  t.after(() => smtp.close());
  const swaks = (...args: string[]) => run('swaks', ['--server', `127.0.0.1:${smtp.port}`, '--from', 'ann@localhost', '--to', 'demo@localhost', '--hide-all', ...args]);
  for (const type of ['LOGIN', 'PLAIN']) {
    const r = await swaks('--tls', '--auth', type, '--auth-user', 'demo', '--auth-password', 'demo', '--header', `Subject: swaks ${type}`);
    assert.equal(r.code, 0, r.stderr + r.stdout);
  }
  const piped = await swaks('--pipeline', '--header', 'Subject: swaks pipelined');
  assert.equal(piped.code, 0, piped.stderr + piped.stdout);
  const big = await run('swaks', ['--server', `127.0.0.1:${smtp.port}`, '--from', 'ann@localhost', '--to', 'demo@localhost', '--body', 'x'.repeat(8000)]);
  assert.notEqual(big.code, 0);
  assert.match(big.stdout, /<\*\* +552/);
  const subjects = store.mailbox('demo', 'INBOX')!.messages.map((m) => /Subject: (.*)\r\n/.exec(m.raw.toString())![1]);
  assert.deepEqual(subjects, ['swaks LOGIN', 'swaks PLAIN', 'swaks pipelined']);
});
