import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { openMailStore } from '../../../servers/mail/store/index.ts';
import { memoryStore, message, tempDir } from '../../helpers/mail.ts';

test('memory store: default mailboxes, UIDs, flags, remove, copy, rename', async () => {
  const s = await memoryStore();
  assert.deepEqual(s.listMailboxes('demo'), ['INBOX', 'Sent', 'Trash']);
  const u1 = await s.append('demo', 'inbox', message('one'));
  const u2 = await s.append('demo', 'INBOX', message('two'), { flags: ['\\Seen'] });
  assert.deepEqual([u1, u2], [1, 2]);
  const inbox = s.mailbox('demo', 'INBOX')!;
  assert.equal(inbox.uidNext, 3);
  assert.ok(inbox.uidValidity > 0);
  await s.setFlags('demo', 'INBOX', [1], 'add', ['\\Flagged']);
  assert.deepEqual([...inbox.messages[0]!.flags], ['\\Flagged']);
  const pairs = await s.copy('demo', 'INBOX', [1, 2], 'Trash');
  assert.deepEqual(pairs, [[1, 1], [2, 2]]);
  assert.deepEqual(await s.remove('demo', 'INBOX', [1]), [1]);
  assert.deepEqual(inbox.messages.map((m) => m.uid), [2]);
  await s.createMailbox('demo', 'Work');
  await s.renameMailbox('demo', 'Work', 'Archive');
  assert.ok(s.listMailboxes('demo').includes('Archive'));
  await assert.rejects(s.createMailbox('demo', 'Archive'), { code: 'WL_ERR_MAIL_MAILBOX_EXISTS' });
  await assert.rejects(s.deleteMailbox('demo', 'INBOX'), { code: 'WL_ERR_MAIL_NOT_ALLOWED' });
  await s.deleteMailbox('demo', 'Archive');
  // A mailbox made again under an old name gets a new UIDVALIDITY.
  const again = await s.createMailbox('demo', 'Archive');
  assert.ok(again.uidValidity > inbox.uidValidity);
});

test('users: authentication, addresses in the configured domains', async () => {
  const s = await memoryStore();
  assert.equal(s.authenticate('demo', 'demo')?.name, 'demo');
  assert.equal(s.authenticate('DEMO', 'demo')?.name, 'demo');
  assert.equal(s.authenticate('demo', 'nope'), null);
  assert.equal(s.userForAddress('Demo@LOCALHOST')?.name, 'demo');
  assert.equal(s.userForAddress('demo@example.com'), null);
  assert.equal(s.userForAddress('nobody@localhost'), null);
});

test('maildrop lock: one holder at a time', async () => {
  const s = await memoryStore();
  const release = s.lockMaildrop('demo');
  assert.ok(release);
  assert.equal(s.lockMaildrop('demo'), null);
  release();
  assert.ok(s.lockMaildrop('demo'));
});

test('disk store: a reopened store has every message, flag, UIDVALIDITY and UIDNEXT; a users file with the demo user is made', async (t) => {
  const dir = await tempDir(t);
  const opts = { dir: join(dir, 'store'), usersFile: join(dir, 'users.json') };
  const a = await openMailStore(opts);
  assert.ok(a.authenticate('demo', 'demo'), 'the demo user works out of the box');
  await a.append('demo', 'INBOX', message('kept'), { flags: ['\\Seen'] });
  await a.append('demo', 'INBOX', message('removed'));
  await a.remove('demo', 'INBOX', [2]);
  await a.createMailbox('demo', 'Projects/2026');
  await a.flush();
  const before = a.mailbox('demo', 'INBOX')!;

  const b = await openMailStore(opts);
  const after = b.mailbox('demo', 'INBOX')!;
  assert.equal(after.uidValidity, before.uidValidity);
  assert.equal(after.uidNext, 3);
  assert.deepEqual(after.messages.map((m) => [m.uid, [...m.flags], m.raw.toString()]), [[1, ['\\Seen'], message('kept').toString()]]);
  assert.ok(b.listMailboxes('demo').includes('Projects/2026'));
  // Nothing is left in the temporary folder: every write was renamed into place.
  assert.deepEqual(await readdir(join(dir, 'store', '.tmp')), []);
});

test('disk store: a message file without an index entry (an interrupted delivery) is not shown', async (t) => {
  const dir = await tempDir(t);
  const opts = { dir: join(dir, 'store'), usersFile: join(dir, 'users.json') };
  const a = await openMailStore(opts);
  await a.append('demo', 'INBOX', message('whole'));
  const { writeFile } = await import('node:fs/promises');
  await writeFile(join(dir, 'store', 'demo', 'INBOX', 'msg', '2.eml'), 'From: half');
  const b = await openMailStore(opts);
  assert.deepEqual(b.mailbox('demo', 'INBOX')!.messages.map((m) => m.uid), [1]);
});

test('mailbox names cannot leave the store folder; wildcards, empty levels and too many mailboxes are refused', async (t) => {
  const dir = await tempDir(t);
  const s = await openMailStore({ dir: join(dir, 'store'), usersFile: join(dir, 'users.json'), maxMailboxes: 5 });
  await s.createMailbox('demo', '..');
  await s.createMailbox('demo', '.tmp');
  await s.append('demo', '..', message('dots'));
  assert.deepEqual((await readdir(join(dir, 'store'))).sort(), ['.tmp', 'demo']);
  assert.ok((await readdir(join(dir, 'store', 'demo'))).includes('%2E%2E'));
  for (const bad of ['a*b', 'a%', 'a//b', '', 'x'.repeat(300), 'tab\there']) {
    await assert.rejects(s.createMailbox('demo', bad), { code: 'WL_ERR_MAIL_NOT_ALLOWED' }, JSON.stringify(bad));
  }
  await assert.rejects(s.createMailbox('demo', 'sixth'), { code: 'WL_ERR_MAIL_NOT_ALLOWED' });
  const again = await openMailStore({ dir: join(dir, 'store'), usersFile: join(dir, 'users.json') });
  assert.equal(again.mailbox('demo', '..')!.messages.length, 1);
});

test('maxMailboxNameBytes is an option of the store, checked when it opens; on disk a name must fit one file name', async (t) => {
  const dir = await tempDir(t);
  const disk = await openMailStore({ dir: join(dir, 'store'), usersFile: join(dir, 'users.json') });
  // 100 x 'é' is 200 octets (within the default 200) but 600 bytes percent-encoded: more than a file name holds (255).
  await assert.rejects(disk.createMailbox('demo', 'é'.repeat(100)), { code: 'WL_ERR_MAIL_NOT_ALLOWED' });
  await disk.createMailbox('demo', 'é'.repeat(42));
  const s = await openMailStore({ memory: true, maxMailboxNameBytes: 16 });
  await s.createMailbox('demo', 'x'.repeat(16));
  await assert.rejects(s.createMailbox('demo', 'y'.repeat(17)), { code: 'WL_ERR_MAIL_NOT_ALLOWED' });
  await assert.rejects(openMailStore({ memory: true, maxMailboxNameBytes: 8 }), { code: 'WL_ERR_INVALID_OPTION' });
});
