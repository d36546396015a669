import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { connectImap } from '../../../clients/imap.ts';
import { MemorySink, createTracer } from '../../../core/trace/index.ts';
import { startImapServer } from '../../../servers/imap/index.ts';
import { parseCommand } from '../../../servers/imap/parser.ts';
import { ImapReader } from '../../../servers/imap/reader.ts';
import { lineTalk } from '../../helpers/linetalk.ts';
import { memoryStore, message, waitFor } from '../../helpers/mail.ts';

const MULTIPART = Buffer.from(
  'From: "Ann, A." <ann@localhost>\r\nTo: demo@localhost, Bob <bob@example.com>\r\nSubject: parts\r\nDate: Sun, 22 Nov 2026 03:00:00 +0000\r\n' +
    'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\npreamble\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello body\r\n' +
    '--b1\r\nContent-Type: text/html\r\nContent-Disposition: attachment; filename="a.html"\r\n\r\n<p>hi</p>\r\n--b1--\r\n',
);

test('reader: literals split at every byte boundary come out as one command; sync literals ask for continuation', () => {
  const cmd = Buffer.from('a1 APPEND INBOX (\\Seen) {5}\r\nhello\r\n');
  for (let cut = 1; cut < cmd.length; cut++) {
    const r = new ImapReader({ maxLineLength: 1000, maxLiteralSize: 100, maxCommandSize: 1000 });
    const evs = [...r.push(cmd.subarray(0, cut)), ...r.push(cmd.subarray(cut))];
    assert.deepEqual(evs.map((e) => e.type), ['continue', 'command'], `cut at ${cut}`);
    const parsed = parseCommand((evs[1] as { data: Buffer }).data, 8);
    assert.equal(parsed.name, 'APPEND');
    assert.deepEqual(parsed.args.map((a) => a.type), ['atom', 'list', 'string']);
  }
  const plus = new ImapReader({ maxLineLength: 1000, maxLiteralSize: 100, maxCommandSize: 1000 });
  assert.deepEqual(plus.push(Buffer.from('a LOGIN {4+}\r\ndemo {4+}\r\ndemo\r\n')).map((e) => e.type), ['command']);
  const big = new ImapReader({ maxLineLength: 1000, maxLiteralSize: 10, maxCommandSize: 1000 });
  assert.deepEqual(big.push(Buffer.from('a APPEND INBOX {11}\r\n')).map((e) => e.type), ['too-big']);
});

test('parser: sections with spaces, nesting limits, bad quoting', () => {
  const c = parseCommand(Buffer.from('x UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100>)\r\n'), 8);
  assert.deepEqual(c.args[2], { type: 'list', items: [{ type: 'atom', value: 'UID' }, { type: 'atom', value: 'BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100>' }] });
  assert.throws(() => parseCommand(Buffer.from('x SEARCH ((((((((((ALL))))))))))'), 8), { code: 'WL_ERR_MAIL_PROTOCOL' });
  assert.throws(() => parseCommand(Buffer.from('x LOGIN "demo'), 8));
  assert.throws(() => parseCommand(Buffer.from('x LOGIN "a\\b" c'), 8));
});

test('imapflow: STARTTLS, LIST, ENVELOPE, BODYSTRUCTURE, partial BODY.PEEK, flags, search, append, copy, move, mailboxes', async (t) => {
  const store = await memoryStore();
  await store.append('demo', 'INBOX', MULTIPART);
  await store.append('demo', 'INBOX', message('second'));
  const sink = new MemorySink();
  const srv = await startImapServer({ store, tracer: createTracer([sink]) });
  t.after(() => srv.close());
  const c = await connectImap({ port: srv.port, auth: { user: 'demo', pass: 'demo' } });
  t.after(() => c.close());
  assert.equal(sink.find({ proto: 'tls', kind: 'handshake' }).length, 1, 'imapflow upgraded with STARTTLS');
  const boxes = (await c.list()).map((b) => b.path);
  assert.deepEqual(boxes.sort(), ['INBOX', 'Sent', 'Trash']);
  const lock = await c.getMailboxLock('INBOX');
  try {
    const m = await c.fetchOne('1', { envelope: true, bodyStructure: true, size: true, internalDate: true, flags: true, uid: true });
    assert.ok(m);
    assert.equal(m.envelope?.subject, 'parts');
    assert.deepEqual(m.envelope?.from, [{ name: 'Ann, A.', address: 'ann@localhost' }]);
    assert.equal(m.envelope?.to?.length, 2);
    assert.equal(m.bodyStructure?.type, 'multipart/mixed');
    assert.deepEqual(m.bodyStructure?.childNodes?.map((p) => p.type), ['text/plain', 'text/html']);
    assert.equal(m.bodyStructure?.childNodes?.[1]?.disposition, 'attachment');
    assert.equal(m.size, MULTIPART.length);
    const partial = await c.fetchOne('1', { bodyParts: ['1'], source: { start: 0, maxLength: 20 } });
    assert.ok(partial);
    assert.equal(partial.source?.toString(), MULTIPART.subarray(0, 20).toString());
    assert.equal(partial.bodyParts?.get('1')?.toString(), 'hello body');
    const after = await c.fetchOne('1', { flags: true });
    assert.ok(after);
    assert.deepEqual([...after.flags!], [], 'BODY.PEEK does not set \\Seen');
    await c.messageFlagsAdd('2', ['\\Flagged', '$Important']);
    assert.deepEqual(await c.search({ flagged: true }), [2]);
    assert.deepEqual(await c.search({ subject: 'parts' }), [1]);
    assert.deepEqual(await c.search({ from: 'ann' }), [1, 2]);
    assert.deepEqual(await c.search({ keyword: '$Important' }), [2]);
    const copied = await c.messageCopy('1', 'Trash');
    assert.ok(copied);
    const moved = await c.messageMove('2', 'Sent');
    assert.ok(moved);
    assert.equal(store.mailbox('demo', 'INBOX')!.messages.length, 1);
    assert.deepEqual([...store.mailbox('demo', 'Sent')!.messages[0]!.flags].sort(), ['$Important', '\\Flagged']);
    await c.messageFlagsAdd('1', ['\\Deleted']);
    await c.messageDelete('1');
    assert.equal(store.mailbox('demo', 'INBOX')!.messages.length, 0);
  } finally {
    lock.release();
  }
  const appended = await c.append('INBOX', message('appended'), ['\\Seen'], new Date('2026-01-02T03:04:05Z'));
  assert.ok(appended && appended.uid);
  assert.equal(store.mailbox('demo', 'INBOX')!.messages.at(-1)!.internalDate.toISOString(), '2026-01-02T03:04:05.000Z');
  await c.mailboxCreate('Work/2026');
  await c.mailboxRename('Work', 'Jobs');
  const st = await c.status('Jobs/2026', { messages: true, uidNext: true, uidValidity: true, unseen: true });
  assert.ok(st);
  assert.equal(st.messages, 0);
  await c.mailboxDelete('Jobs/2026');
  assert.deepEqual(store.listMailboxes('demo'), ['INBOX', 'Jobs', 'Sent', 'Trash']);
  await c.logout();
});

test('two sessions: IDLE pushes EXISTS and another session\'s flag change; EXPUNGE reaches the other view', async (t) => {
  const store = await memoryStore();
  await store.append('demo', 'INBOX', message('one'));
  const srv = await startImapServer({ store });
  t.after(() => srv.close());
  const a = await connectImap({ port: srv.port, auth: { user: 'demo', pass: 'demo' } });
  const b = await connectImap({ port: srv.port, auth: { user: 'demo', pass: 'demo' } });
  t.after(() => Promise.allSettled([a.close(), b.close()]));
  await a.mailboxOpen('INBOX');
  await b.mailboxOpen('INBOX');
  const flags = new Promise<{ uid?: number; flags?: Set<string> }>((resolve) => b.once('flags', resolve));
  const exists = new Promise<{ count: number }>((resolve) => b.once('exists', resolve));
  const idling = b.idle();
  await new Promise((r) => setTimeout(r, 50));
  await a.messageFlagsAdd('1', ['\\Seen']);
  const f = await flags;
  assert.ok(f.flags?.has('\\Seen'));
  await store.append('demo', 'INBOX', message('two'));
  assert.equal((await exists).count, 2);
  const expunge = new Promise<{ seq: number }>((resolve) => b.once('expunge', resolve));
  await a.messageDelete('1');
  assert.equal((await expunge).seq, 1);
  await b.noop();
  void idling;
});

test('bad input: garbage, wrong state, bad base64, oversized literal and line, deep nesting, wrong passwords; the server keeps serving', async (t) => {
  const store = await memoryStore();
  const sink = new MemorySink();
  const srv = await startImapServer({ store, allowInsecureAuth: true, maxLiteralSize: 100, maxLineLength: 1024, maxNesting: 4, maxUnknownCommands: 50, authFailureDelayMs: 10, tracer: createTracer([sink]) });
  t.after(() => srv.close());
  const r = await lineTalk(srv.port, [
    'garbage',
    'a1 FROBNICATE',
    'a2 SELECT INBOX',
    'a3 AUTHENTICATE PLAIN %%%%',
    'a4 LOGIN demo wrong',
    'a5 APPEND INBOX {1000}',
    'a6 SEARCH (((((ALL)))))',
    'a7 LOGIN demo "unterminated',
    'a8 LOGIN demo demo',
    'a9 FETCH 99 FLAGS',
    'b1 SELECT INBOX',
    'b2 FETCH 99 FLAGS',
    'b3 FETCH 1 (FLAGS',
    'b4 STORE 1 FLAGS (\\Seen)',
    'b5 SEARCH FROBKEY',
    `b5a SEARCH ${'NOT '.repeat(200)}ALL`,
    'b6 UID FROB 1',
    'b7 LOGOUT',
  ]);
  const [greet, garbage, unknown, state, b64, wrong, big, deep, unterminated, login, nosel, sel, range, paren, store1, search, nots, uidBad, logout] = r.replies;
  assert.match(greet!, /^\* OK/);
  assert.match(garbage!, /^garbage BAD|^\* BAD/);
  assert.match(unknown!, /^a1 BAD Unknown command/);
  assert.match(state!, /^a2 BAD SELECT is not allowed in the not-authenticated state/);
  assert.match(b64!, /^a3 BAD Invalid base64/);
  assert.match(wrong!, /^a4 NO \[AUTHENTICATIONFAILED\]/);
  assert.match(big!, /^a5 BAD \[TOOBIG\]/);
  assert.match(deep!, /^a6 BAD/);
  assert.match(unterminated!, /^a7 BAD/);
  assert.match(login!, /^a8 OK/);
  assert.match(nosel!, /^a9 BAD FETCH is not allowed in the authenticated state/);
  assert.match(sel!, /b1 OK/);
  assert.match(range!, /^b2 BAD/);
  assert.match(paren!, /^b3 BAD/);
  assert.match(store1!, /^b4 BAD/, 'no message 1 in an empty INBOX');
  assert.match(search!, /^b5 BAD SEARCH: unknown search key/);
  assert.match(nots!, /^b5a BAD SEARCH: search keys nested deeper than 64/);
  assert.match(uidBad!, /^b6 BAD/);
  assert.match(logout!, /\* BYE/);
  assert.equal(sink.find({ kind: 'auth-failed' }).length, 1);
  assert.ok(sink.find({ kind: 'limit' }).length >= 1);
  assert.ok(!JSON.stringify(sink.events).includes('a8 LOGIN demo demo'), 'the password is not traced');

  const long = await lineTalk(srv.port, ['x'.repeat(5000)]);
  assert.match(long.replies[1]!, /^\* BAD \[TOOBIG\]/);
  assert.ok(long.closed);

  // A client vanishing in the middle of an APPEND literal stores nothing.
  const sock = net.connect(srv.port, '127.0.0.1');
  await new Promise((res) => sock.once('data', res));
  let heard = '';
  sock.on('data', (d: Buffer) => (heard += d.toString()));
  sock.write('a LOGIN demo demo\r\nb APPEND INBOX {50}\r\nSubject: half\r\n');
  await waitFor(() => heard.includes('+ Ready'), 'the continuation request');
  sock.destroy();
  await waitFor(() => sink.events.some((e) => e.kind === 'close' && /unread \(discarded\)/.test(e.summary)), 'the close event');
  assert.equal(store.mailbox('demo', 'INBOX')!.messages.length, 0);
  const again = await lineTalk(srv.port, ['c CAPABILITY']);
  assert.match(again.replies[1]!, /c OK/);
});

test('STARTTLS: commands pipelined in clear after STARTTLS are discarded, not run inside TLS; bad mailbox names get NO [CANNOT]', async (t) => {
  const store = await memoryStore();
  const srv = await startImapServer({ store });
  t.after(() => srv.close());
  const { default: tls } = await import('node:tls');
  const { tlsClientOptions } = await import('../../../core/tls/index.ts');
  const sock = net.connect(srv.port, '127.0.0.1');
  await new Promise((res) => sock.once('data', res));
  sock.write('a STARTTLS\r\nb LOGIN demo demo\r\n');
  await new Promise<void>((res) => {
    let seen = '';
    const on = (d: Buffer): void => {
      seen += d.toString();
      if (/^a OK/m.test(seen)) {
        sock.off('data', on);
        res();
      }
    };
    sock.on('data', on);
  });
  const secure = tls.connect({ socket: sock, ...(await tlsClientOptions()) });
  await new Promise((res) => secure.once('secureConnect', res));
  let got = '';
  secure.on('data', (d: Buffer) => (got += d.toString()));
  secure.write('c CAPABILITY\r\n');
  await waitFor(() => /^c OK/m.test(got), 'c OK');
  assert.doesNotMatch(got, /^b /m, 'the injected LOGIN was not answered');
  assert.match(got, /^c OK/m);
  assert.doesNotMatch(got, /STARTTLS/);
  secure.write('d LOGIN demo demo\r\ne CREATE ..\r\nf CREATE "a*b"\r\ng CREATE "x//y"\r\n');
  await waitFor(() => /^g /m.test(got), 'the answer to g');
  assert.match(got, /^d OK/m);
  assert.match(got, /^e OK/m, '".." is a legal IMAP name, stored safely');
  assert.match(got, /^f NO \[CANNOT\]/m);
  assert.match(got, /^g BAD|^g NO/m);
  secure.destroy();
});

test('an oversized LITERAL+ is refused and its bytes skipped; the next command on the connection is served', async (t) => {
  const store = await memoryStore();
  const srv = await startImapServer({ store, allowInsecureAuth: true, maxLiteralSize: 100 });
  t.after(() => srv.close());
  const r = await lineTalk(srv.port, ['a LOGIN demo demo', Buffer.from(`b APPEND INBOX {1000+}\r\n${'x'.repeat(1000)}\r\nc NOOP\r\n`)]);
  assert.match(r.replies[1]!, /^a OK/);
  assert.match(r.replies[2]!, /^b BAD \[TOOBIG\]/m);
  assert.match(r.replies[2]!, /^c OK NOOP/m);
  assert.doesNotMatch(r.replies[2]!, /^\* BAD/m, 'the rest of the refused command is not read as a new one');
  assert.equal(store.mailbox('demo', 'INBOX')!.messages.length, 0);
});

test('flow control: a client pipelining FETCHes without reading pauses the server, then gets every answer', async (t) => {
  const store = await memoryStore();
  await store.append('demo', 'INBOX', message('big', 'y'.repeat(200_000) + '\r\n'));
  const srv = await startImapServer({ store, allowInsecureAuth: true, maxPipelinedCommands: 5 });
  t.after(() => srv.close());
  const sock = net.connect(srv.port, '127.0.0.1');
  await new Promise((res) => sock.once('data', res));
  sock.pause();
  const cmds = ['a LOGIN demo demo', 'b SELECT INBOX', ...Array.from({ length: 150 }, (_, i) => `f${i} FETCH 1 BODY.PEEK[]`), 'z LOGOUT'];
  sock.write(cmds.join('\r\n') + '\r\n');
  await new Promise((res) => setTimeout(res, 200));
  // While we do not read, the server stops once the kernel's buffers are full: it wrote far less than 150 × 200 KB.
  const stalled = srv.stats.bytesOut;
  assert.ok(stalled < 20_000_000, `${stalled} B written while the client read nothing`);
  let got = '';
  sock.on('data', (d: Buffer) => (got += d.toString('latin1')));
  sock.resume();
  await new Promise((res) => sock.once('close', res));
  for (let i = 0; i < 150; i++) assert.match(got, new RegExp(`^f${i} OK`, 'm'));
  assert.match(got, /^z OK/m);
});
