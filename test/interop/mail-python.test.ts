import assert from 'node:assert/strict';
import { test } from 'node:test';
import { getTlsMaterial } from '../../core/tls/index.ts';
import { startImapServer } from '../../servers/imap/index.ts';
import { startPop3Server } from '../../servers/pop3/index.ts';
import { startSmtpServer } from '../../servers/smtp/index.ts';
import { memoryStore, message } from '../helpers/mail.ts';
import { requirePeer } from '../helpers/peers.ts';
import { python } from '../helpers/run.ts';

// Python's standard library clients against our servers, over STARTTLS / STLS and implicit TLS, trusting the local CA.

test('smtplib: STARTTLS + AUTH, and SMTP_SSL; a bad recipient is refused', async (t) => {
  if (!requirePeer(t, 'python3', 'python3')) return;
  const store = await memoryStore();
  const plain = await startSmtpServer({ store });
  const secure = await startSmtpServer({ store, secure: true });
  t.after(() => Promise.all([plain.close(), secure.close()]));
  const { caCertPath } = await getTlsMaterial();
  const r = await python(`
import smtplib, ssl
ctx = ssl.create_default_context(cafile=${JSON.stringify(caCertPath)})
msg = "From: ann@localhost\\r\\nTo: demo@localhost\\r\\nSubject: from smtplib\\r\\n\\r\\nhello\\r\\n"
with smtplib.SMTP("127.0.0.1", ${plain.port}) as s:
    s.ehlo(); s.starttls(context=ctx); s.ehlo(); s.login("demo", "demo")
    print("refused", s.sendmail("ann@localhost", ["demo@localhost"], msg))
    try:
        s.sendmail("ann@localhost", ["nobody@localhost"], msg)
    except smtplib.SMTPRecipientsRefused as e:
        print("550" if e.recipients["nobody@localhost"][0] == 550 else e)
with smtplib.SMTP_SSL("127.0.0.1", ${secure.port}, context=ctx) as s:
    s.login("ann", "secret"); s.sendmail("ann@localhost", ["demo@localhost"], msg.replace("smtplib", "SMTP_SSL"))
print("done")
`);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /refused \{\}\n550\ndone/);
  const subjects = store.mailbox('demo', 'INBOX')!.messages.map((m) => /Subject: (.*)\r\n/.exec(m.raw.toString())![1]);
  assert.deepEqual(subjects, ['from smtplib', 'from SMTP_SSL']);
});

test('imaplib: STARTTLS, LOGIN, SELECT, SEARCH, FETCH, STORE, EXPUNGE, APPEND, LIST; IMAP4_SSL', async (t) => {
  if (!requirePeer(t, 'python3', 'python3')) return;
  const store = await memoryStore();
  await store.append('demo', 'INBOX', message('first'));
  await store.append('demo', 'INBOX', message('second'));
  const plain = await startImapServer({ store });
  const secure = await startImapServer({ store, secure: true });
  t.after(() => Promise.all([plain.close(), secure.close()]));
  const { caCertPath } = await getTlsMaterial();
  const r = await python(`
import imaplib, ssl
ctx = ssl.create_default_context(cafile=${JSON.stringify(caCertPath)})
m = imaplib.IMAP4("127.0.0.1", ${plain.port})
m.starttls(ssl_context=ctx)
print(m.login("demo", "demo")[0])
print(m.select("INBOX"))
print(m.search(None, "SUBJECT", "second"))
typ, data = m.fetch("1", "(RFC822)")
print("subject-first", b"Subject: first" in data[0][1])
print(m.fetch("1:2", "(FLAGS)"))
print(m.store("1", "+FLAGS", "\\\\Deleted")[0])
print(m.expunge())
print(m.append("INBOX", "(\\\\Seen)", None, b"Subject: appended\\r\\n\\r\\nhi\\r\\n")[0])
print(m.list()[1])
m.logout()
s = imaplib.IMAP4_SSL("127.0.0.1", ${secure.port}, ssl_context=ctx)
s.login("ann", "secret"); print("ssl", s.select("INBOX", readonly=True)[0]); s.logout()
`);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const out = r.stdout;
  assert.match(out, /^OK\n\('OK', \[b'2'\]\)/);
  assert.match(out, /\('OK', \[b'2'\]\)\nsubject-first True/);
  assert.match(out, /\('OK', \[b'1'\]\)\n/, 'EXPUNGE reported message 1');
  assert.match(out, /b'\(\\\\HasNoChildren \\\\Trash\) "\/" "Trash"'/);
  assert.match(out, /ssl OK/);
  assert.deepEqual(store.mailbox('demo', 'INBOX')!.messages.map((m) => [...m.flags]), [[], ['\\Seen']]);
});

test('poplib: STLS, USER/PASS, STAT, LIST, UIDL, TOP, RETR, DELE, QUIT; POP3_SSL; a second login is refused', async (t) => {
  if (!requirePeer(t, 'python3', 'python3')) return;
  const store = await memoryStore();
  await store.append('demo', 'INBOX', message('first', '.dot line\r\nsecond line\r\n'));
  await store.append('demo', 'INBOX', message('second'));
  const plain = await startPop3Server({ store });
  const secure = await startPop3Server({ store, secure: true });
  t.after(() => Promise.all([plain.close(), secure.close()]));
  const { caCertPath } = await getTlsMaterial();
  const r = await python(`
import poplib, ssl
ctx = ssl.create_default_context(cafile=${JSON.stringify(caCertPath)})
p = poplib.POP3("127.0.0.1", ${plain.port})
print(sorted(p.capa().keys()))
p.stls(context=ctx)
p.user("demo"); p.pass_("demo")
print("stat", p.stat())
print("uidl", len(p.uidl()[1]))
print("top", p.top(1, 1)[1])
print("retr", p.retr(1)[1][-2:])
q = poplib.POP3_SSL("127.0.0.1", ${secure.port}, context=ctx)
q.user("demo")
try:
    q.pass_("demo")
except poplib.error_proto as e:
    print("second", e)
q.quit()
p.dele(1)
print(p.quit())
`);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /'STLS'/);
  assert.match(r.stdout, /stat \(2, \d+\)/);
  assert.match(r.stdout, /uidl 2/);
  assert.match(r.stdout, /top \[.*b'Subject: first'.*b'', b'.dot line'\]/);
  assert.match(r.stdout, /retr \[b'.dot line', b'second line'\]/);
  assert.match(r.stdout, /second b'-ERR \[IN-USE\]/);
  assert.match(r.stdout, /b'\+OK bye, 1 messages deleted'/);
  assert.equal(store.mailbox('demo', 'INBOX')!.messages.length, 1);
});

test('secure by default: without starttls() / stls() smtplib is offered no AUTH (so sends no password), imaplib is refused, poplib.user() gets -ERR [AUTH]', async (t) => {
  if (!requirePeer(t, 'python3', 'python3')) return;
  const store = await memoryStore();
  const smtp = await startSmtpServer({ store });
  const imap = await startImapServer({ store });
  const pop = await startPop3Server({ store });
  t.after(() => Promise.all([smtp.close(), imap.close(), pop.close()]));
  const r = await python(`
import smtplib, imaplib, poplib
with smtplib.SMTP("127.0.0.1", ${smtp.port}) as s:
    s.ehlo()
    print("smtp auth offered", s.has_extn("auth"))
    try:
        s.login("demo", "demo"); print("smtp accepted")
    except smtplib.SMTPNotSupportedError:
        print("smtp login not tried")
    s.starttls(context=__import__("ssl")._create_unverified_context())
    s.ehlo()
    print("smtp auth after starttls", s.has_extn("auth"))
m = imaplib.IMAP4("127.0.0.1", ${imap.port})
print("imap caps", "LOGINDISABLED" in m.capabilities, "AUTH=PLAIN" in m.capabilities)
try:
    m.login("demo", "demo"); print("imap accepted")
except imaplib.IMAP4.error as e:
    print("imap refused", "PRIVACYREQUIRED" in str(e))
m.logout()
p = poplib.POP3("127.0.0.1", ${pop.port})
print("pop capa", "USER" in p.capa(), "SASL" in p.capa())
try:
    p.user("demo"); print("pop accepted")
except poplib.error_proto as e:
    print("pop", e.args[0][:10].decode())
p.quit()
`);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'smtp auth offered False\nsmtp login not tried\nsmtp auth after starttls True\nimap caps True False\nimap refused True\npop capa False False\npop -ERR [AUTH\n');
});
