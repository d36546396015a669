import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { createSmtpClient } from '../../../clients/smtp.ts';
import { tlsClientOptions } from '../../../core/tls/index.ts';
import { createTracer, MemorySink } from '../../../core/trace/index.ts';
import { startImapServer } from '../../../servers/imap/index.ts';
import { openMailStore } from '../../../servers/mail/store/index.ts';
import { startPop3Server } from '../../../servers/pop3/index.ts';
import { startSmtpServer } from '../../../servers/smtp/index.ts';
import { memoryStore, tempDir, waitFor } from '../../helpers/mail.ts';

/** A raw SMTP conversation: each line sent after the previous reply; returns every reply (the greeting first). */
async function smtpTalk(port: number, lines: string[]): Promise<string[]> {
  const c = await talk(port);
  const done = /^\d{3} .*\r\n/m;
  try {
    const replies = [(await c.until(done)).trimEnd()];
    for (const l of lines) replies.push((await c.send(l, done)).trimEnd());
    return replies;
  } finally {
    c.close();
  }
}

/** A line conversation that can switch to TLS: `send` writes a line and waits until the text matches `done`. */
async function talk(port: number) {
  let socket: net.Socket = net.connect(port, '127.0.0.1');
  let buf = '';
  const listen = (s: net.Socket): void => {
    s.on('data', (d: Buffer) => (buf += d.toString('latin1')));
    s.on('error', () => undefined);
  };
  listen(socket);
  const until = async (done: RegExp): Promise<string> => {
    await waitFor(() => done.test(buf), `a reply matching ${done}`);
    const out = buf;
    buf = '';
    return out;
  };
  return {
    until,
    send: (line: string, done: RegExp): Promise<string> => {
      socket.write(`${line}\r\n`);
      return until(done);
    },
    async startTls(): Promise<void> {
      socket.removeAllListeners('data');
      const secure = tls.connect({ socket, ...(await tlsClientOptions()) });
      await new Promise((r) => secure.once('secureConnect', r));
      socket = secure;
      listen(secure);
    },
    close: () => socket.destroy(),
  };
}

test('SMTP: EHLO offers no AUTH before STARTTLS and AUTH there gets 538, MAIL on a submission server 530; after STARTTLS AUTH works; the option is checked', async (t) => {
  const store = await memoryStore();
  const sink = new MemorySink();
  const srv = await startSmtpServer({ store, tracer: createTracer([sink]) });
  const sub = await startSmtpServer({ store, requireAuth: true });
  t.after(() => Promise.all([srv.close(), sub.close()]));
  const r = await smtpTalk(srv.port, ['EHLO me', 'AUTH LOGIN', `AUTH PLAIN ${Buffer.from('\0demo\0demo').toString('base64')}`]);
  // EHLO offers STARTTLS and no AUTH before TLS (smtp-server would list it, then refuse it: Postfix's tls_auth_only).
  assert.match(r[1]!, /^250-STARTTLS\r?$/m);
  assert.doesNotMatch(r[1]!, /^250[- ]AUTH/m);
  assert.match(r[2]!, /^538 /);
  assert.match(r[3]!, /^538 /);
  const m = await smtpTalk(sub.port, ['EHLO me', 'MAIL FROM:<demo@localhost>']);
  assert.match(m[2]!, /^530 /);
  const client = await createSmtpClient({ port: srv.port, auth: { user: 'demo', pass: 'demo' } });
  t.after(() => client.close());
  assert.equal(await client.verify(), true);
  await assert.rejects(startSmtpServer({ store, allowInsecureAuth: 'yes' as never }), { code: 'WL_ERR_INVALID_OPTION', option: 'allowInsecureAuth' });
});

test('IMAP: before STARTTLS CAPABILITY says LOGINDISABLED (no AUTH=), LOGIN and AUTHENTICATE get NO [PRIVACYREQUIRED] (no "+"); after it LOGIN works', async (t) => {
  const store = await memoryStore();
  const sink = new MemorySink();
  const srv = await startImapServer({ store, tracer: createTracer([sink]) });
  t.after(() => srv.close());
  const c = await talk(srv.port);
  t.after(() => c.close());
  const greeting = await c.until(/^\* OK.*\r\n/m);
  assert.match(greeting, /LOGINDISABLED/);
  const caps = await c.send('a CAPABILITY', /^a OK.*\r\n/m);
  assert.match(caps, /^\* CAPABILITY .*STARTTLS LOGINDISABLED/m);
  assert.doesNotMatch(caps, /AUTH=/);
  assert.match(await c.send('b LOGIN demo demo', /^b (OK|NO|BAD).*\r\n/m), /^b NO \[PRIVACYREQUIRED\]/m);
  const auth = await c.send('c AUTHENTICATE PLAIN', /^(c (OK|NO|BAD)|\+).*\r\n/m);
  assert.match(auth, /^c NO \[PRIVACYREQUIRED\]/m, 'refused before the continuation, so no password follows');
  assert.equal(sink.find({ kind: 'auth-refused' }).length, 2);
  assert.match(await c.send('d STARTTLS', /^d OK.*\r\n/m), /^d OK/m);
  await c.startTls();
  const after = await c.send('e CAPABILITY', /^e OK.*\r\n/m);
  assert.match(after, /AUTH=PLAIN/);
  assert.doesNotMatch(after, /LOGINDISABLED|STARTTLS/);
  assert.match(await c.send('f LOGIN demo demo', /^f (OK|NO|BAD).*\r\n/m), /^f OK/m);
  await assert.rejects(startImapServer({ store, allowInsecureAuth: 1 as never }), { code: 'WL_ERR_INVALID_OPTION', option: 'allowInsecureAuth' });
});

test('POP3: before STLS CAPA lists neither USER nor SASL, USER / PASS / AUTH get -ERR [AUTH], APOP still works; after STLS USER / PASS work', async (t) => {
  const store = await memoryStore();
  const srv = await startPop3Server({ store });
  t.after(() => srv.close());
  const c = await talk(srv.port);
  t.after(() => c.close());
  const greeting = await c.until(/^\+OK.*\r\n/m);
  const capa = await c.send('CAPA', /\r\n\.\r\n/);
  assert.doesNotMatch(capa, /^(USER|SASL)/m);
  assert.match(capa, /^STLS\r$/m);
  assert.match(await c.send('USER demo', /^(\+OK|-ERR).*\r\n/m), /^-ERR \[AUTH\]/);
  assert.match(await c.send('PASS demo', /^(\+OK|-ERR).*\r\n/m), /^-ERR \[AUTH\]/);
  assert.match(await c.send(`AUTH PLAIN ${Buffer.from('\0demo\0demo').toString('base64')}`, /^(\+OK|-ERR).*\r\n/m), /^-ERR \[AUTH\]/);
  // APOP sends a digest of the greeting's timestamp and the password, never the password: allowed in clear.
  const { createHash } = await import('node:crypto');
  assert.match(greeting, /<[^>]+>/);
  const second = await talk(srv.port);
  t.after(() => second.close());
  const g2 = await second.until(/^\+OK.*\r\n/m);
  const digest = createHash('md5').update(/<[^>]+>/.exec(g2)![0] + 'secret').digest('hex');
  assert.match(await second.send(`APOP ann ${digest}`, /^(\+OK|-ERR).*\r\n/m), /^\+OK/);
  assert.match(await c.send('STLS', /^(\+OK|-ERR).*\r\n/m), /^\+OK/);
  await c.startTls();
  assert.match(await c.send('CAPA', /\r\n\.\r\n/), /^USER\r$/m);
  assert.match(await c.send('USER demo', /^(\+OK|-ERR).*\r\n/m), /^\+OK/);
  assert.match(await c.send('PASS demo', /^(\+OK|-ERR).*\r\n/m), /^\+OK/);
});

test('SMTP spooling: an accepted message is spooled on disk and linked into every recipient INBOX; a client vanishing mid-DATA leaves no spool', async (t) => {
  const dir = await tempDir(t);
  const store = await openMailStore({ dir, users: [{ name: 'demo', password: 'demo' }, { name: 'ann', password: 'secret' }] });
  const sink = new MemorySink();
  const srv = await startSmtpServer({ store, maxMessageSize: 4096, tracer: createTracer([sink]) });
  t.after(() => srv.close());
  const body = 'Subject: both\r\n\r\nto two people\r\n';
  const r = await smtpTalk(srv.port, ['EHLO me', 'MAIL FROM:<x@localhost>', 'RCPT TO:<demo@localhost>', 'RCPT TO:<ann@localhost>', 'DATA', `${body}.`]);
  assert.match(r[6]!, /^250 /);
  for (const user of ['demo', 'ann']) assert.equal(await readFile(join(dir, user, 'INBOX', 'msg', '1.eml'), 'utf8'), body);
  assert.equal(store.mailbox('ann', 'INBOX')!.messages[0]!.raw.toString(), body);
  const big = await smtpTalk(srv.port, ['EHLO me', 'MAIL FROM:<x@localhost>', 'RCPT TO:<demo@localhost>', 'DATA', `Subject: big\r\n\r\n${'y'.repeat(8000)}\r\n.`]);
  assert.match(big[5]!, /^552 /);
  assert.equal(sink.find({ kind: 'limit' }).length, 1, 'the limit was seen while streaming');
  const sock = net.connect(srv.port, '127.0.0.1');
  sock.on('error', () => undefined);
  let heard = '';
  sock.on('data', (d: Buffer) => (heard += d.toString()));
  await new Promise((res) => sock.once('data', res));
  sock.write('EHLO me\r\nMAIL FROM:<a@localhost>\r\nRCPT TO:<demo@localhost>\r\nDATA\r\n');
  await waitFor(() => /^354 /m.test(heard), '354');
  sock.write('Subject: half\r\n\r\nsome text');
  const left = async (): Promise<string[]> => (await readdir(join(dir, '.tmp'))).filter((f) => f.endsWith('.spool'));
  for (let i = 0; i < 100 && (await left()).length === 0; i++) await new Promise((res) => setTimeout(res, 20));
  assert.equal((await left()).length, 1, 'the message being received is spooled on disk');
  sock.destroy();
  await waitFor(() => sink.find({ proto: 'smtp', kind: 'close' }).length >= 3, 'the close event');
  await store.flush();
  // The spool is removed when smtp-server destroys the DATA stream; the close event may come first.
  for (let i = 0; i < 100 && (await left()).length > 0; i++) await new Promise((res) => setTimeout(res, 20));
  assert.deepEqual(await left(), []);
  assert.equal(store.mailbox('demo', 'INBOX')!.messages.length, 1);
});
