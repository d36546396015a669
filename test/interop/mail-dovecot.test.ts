import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connectImap } from '../../clients/imap.ts';
import { connectPop3 } from '../../clients/pop3.ts';
import { startDovecot } from '../helpers/dovecot.ts';
import { message, tempDir } from '../helpers/mail.ts';
import { requirePeer } from '../helpers/peers.ts';

// Our clients against a server nobody here wrote: Dovecot, started from a temp-dir config and stopped by PID.

test('imapflow and the POP3 client against Dovecot (STARTTLS / STLS with the local certificate)', async (t) => {
  if (!requirePeer(t, 'dovecot', 'dovecot-imapd')) return;
  if (!requirePeer(t, '/usr/lib/dovecot/pop3', 'dovecot-pop3d')) return;
  const dir = await tempDir(t, 'wirelab-dovecot-');
  const dovecot = await startDovecot(dir);
  t.after(async () => {
    if (process.env.WIRELAB_DEBUG_DOVECOT) process.stderr.write(await dovecot.log());
    await dovecot.stop();
  });

  const imap = await connectImap({ port: dovecot.imapPort, auth: { user: dovecot.user, pass: dovecot.password } });
  try {
    await imap.append('INBOX', message('to dovecot', 'line one\r\n.dot line\r\n'), ['\\Flagged']);
    await imap.append('INBOX', message('second'));
    const lock = await imap.getMailboxLock('INBOX');
    try {
      const m = await imap.fetchOne('1', { envelope: true, flags: true, source: true });
      assert.ok(m);
      assert.equal(m.envelope?.subject, 'to dovecot');
      assert.ok(m.flags?.has('\\Flagged'));
      assert.equal(m.source?.toString(), message('to dovecot', 'line one\r\n.dot line\r\n').toString());
      assert.deepEqual(await imap.search({ subject: 'second' }), [2]);
    } finally {
      lock.release();
    }
    await imap.mailboxCreate('Projects');
    assert.ok((await imap.list()).some((b) => b.path === 'Projects'));
  } finally {
    await imap.logout();
  }

  const pop = await connectPop3({ port: dovecot.pop3Port, startTls: true });
  assert.ok((await pop.capa()).includes('TOP'));
  await pop.login(dovecot.user, dovecot.password);
  assert.equal((await pop.stat()).count, 2);
  assert.equal((await pop.uidl()).length, 2);
  assert.match((await pop.top(1, 0)).toString(), /Subject: to dovecot/);
  assert.equal((await pop.retr(1)).toString(), message('to dovecot', 'line one\r\n.dot line\r\n').toString());
  await pop.dele(1);
  await pop.quit();

  const again = await connectPop3({ port: dovecot.pop3Port, startTls: true });
  await again.login(dovecot.user, dovecot.password);
  assert.equal((await again.stat()).count, 1, 'Dovecot removed the message in the UPDATE state');
  await again.quit();
});
