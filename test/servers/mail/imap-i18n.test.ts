import assert from 'node:assert/strict';
import tls from 'node:tls';
import { test } from 'node:test';
import { connectImap } from '../../../clients/imap.ts';
import { tlsClientOptions } from '../../../core/tls/index.ts';
import { createTracer, MemorySink } from '../../../core/trace/index.ts';
import { decodeHeaderValue, decodeQuotedPrintable, fold } from '../../../servers/imap/decode.ts';
import { startImapServer } from '../../../servers/imap/index.ts';
import { decodeMailboxName, encodeMailboxName } from '../../../servers/imap/mutf7.ts';
import { expectedSeqs, I18N_MESSAGES } from '../../helpers/i18n-mail.ts';
import { memoryStore } from '../../helpers/mail.ts';

/**
 * A raw IMAPS conversation (implicit TLS, so a login never depends on the cleartext policy): `cmd` sends one command,
 * as bytes, answering `+` continuations by sending the next literal piece, and resolves with the lines up to the
 * tagged reply.
 */
async function rawImaps(port: number): Promise<{ cmd(parts: Array<string | Buffer>): Promise<string>; close(): void }> {
  const socket = tls.connect({ ...(await tlsClientOptions()), port, host: '127.0.0.1', servername: 'localhost' });
  socket.on('error', () => undefined);
  let buf = Buffer.alloc(0);
  let wake: (() => void) | null = null;
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    wake?.();
  });
  const until = async (re: RegExp): Promise<string> => {
    for (;;) {
      const text = buf.toString('latin1');
      const m = re.exec(text);
      if (m) {
        buf = buf.subarray(Buffer.byteLength(text.slice(0, m.index + m[0].length), 'latin1'));
        return text.slice(0, m.index + m[0].length);
      }
      await new Promise<void>((r) => (wake = r));
    }
  };
  await until(/^\* OK .*\r\n/m);
  let n = 0;
  return {
    async cmd(parts) {
      const tag = `t${++n}`;
      // Each part after the first follows a synchronizing literal's `+`.
      for (const [i, p] of parts.entries()) {
        socket.write(i === 0 ? Buffer.concat([Buffer.from(`${tag} `), Buffer.from(p)]) : p);
        if (i < parts.length - 1) await until(/^\+ .*\r\n/m);
      }
      return until(new RegExp(`^${tag} (OK|NO|BAD).*\\r\\n`, 'm'));
    },
    close: () => socket.destroy(),
  };
}

test('modified UTF-7: RFC 3501 examples, round trips, and what is refused', () => {
  assert.equal(encodeMailboxName('~peter/mail/台北/日本語'), '~peter/mail/&U,BTFw-/&ZeVnLIqe-');
  assert.equal(decodeMailboxName('~peter/mail/&U,BTFw-/&ZeVnLIqe-'), '~peter/mail/台北/日本語');
  assert.equal(encodeMailboxName('A&B'), 'A&-B');
  assert.equal(decodeMailboxName('A&-B'), 'A&B');
  for (const name of ['Köln', 'Entwürfe/Grüße', 'Ελληνικά', 'emoji 😀 & co', 'ASCII only', '&', '&&', 'ä&ö', 'x/日本/y']) {
    const wire = encodeMailboxName(name);
    assert.match(wire, /^[\x20-\x7e]*$/, name);
    assert.equal(decodeMailboxName(wire), name, name);
  }
  // Raw 8-bit, unterminated, encoded ASCII, two runs back to back, odd bytes, a lone surrogate, base64 with '/'.
  for (const bad of ['K\xc3\xb6ln', '&APY', '&AGE-', '&APY-&APY-', '&AP-', '&2D0-', '&U/BTFw-']) {
    assert.equal(decodeMailboxName(bad), null, JSON.stringify(bad));
  }
});

test('decoding for SEARCH: encoded words, quoted-printable, charsets, Unicode case folding', () => {
  assert.equal(decodeHeaderValue('=?UTF-8?B?R3LDvMOfZQ==?= aus =?iso-8859-1?Q?K=F6ln?='), 'Grüße aus Köln');
  assert.equal(decodeHeaderValue('=?UTF-8?Q?a?= \r\n =?UTF-8?Q?b?= c'), 'ab c');
  // A character cut across two words of one charset.
  assert.equal(decodeHeaderValue('=?UTF-8?B?w7w=?= =?UTF-8?B?w7w=?='), 'üü');
  assert.equal(decodeHeaderValue(Buffer.from('Grüße raw 8-bit', 'utf8').toString('latin1')), 'Grüße raw 8-bit');
  assert.equal(decodeHeaderValue('\xe9t\xe9 (not UTF-8: Latin-1)'), 'été (not UTF-8: Latin-1)');
  assert.equal(decodeQuotedPrintable('K=F6ln =\r\nHbf  \r\n').toString('latin1'), 'K\xf6ln Hbf\r\n');
  assert.ok(fold('KÖLN').includes(fold('köln')));
  assert.ok(fold('Ko\u0308ln').includes(fold('Köln')), 'composed and decomposed forms compare equal');
});

test('SEARCH finds non-ASCII text in decoded headers and bodies: imapflow (CHARSET UTF-8) and raw literals', async (t) => {
  const store = await memoryStore();
  for (const m of I18N_MESSAGES) await store.append('demo', 'INBOX', m.raw);
  const srv = await startImapServer({ store, secure: true });
  t.after(() => srv.close());
  const c = await connectImap({ port: srv.port, secure: true, auth: { user: 'demo', pass: 'demo' } });
  t.after(() => c.close());
  const lock = await c.getMailboxLock('INBOX');
  try {
    assert.deepEqual(await c.search({ body: 'Köln' }), expectedSeqs((m) => m.kolnInBody));
    assert.deepEqual(await c.search({ body: 'KÖLN' }), expectedSeqs((m) => m.kolnInBody));
    assert.deepEqual(await c.search({ subject: 'Grüße' }), expectedSeqs((m) => m.grusseInSubject));
    assert.deepEqual(await c.search({ subject: 'grüße' }), expectedSeqs((m) => m.grusseInSubject));
    assert.deepEqual(await c.search({ body: 'Koln' }), expectedSeqs((m) => m.label.startsWith('ASCII')));
  } finally {
    lock.release();
  }

  const raw = await rawImaps(srv.port);
  t.after(() => raw.close());
  assert.match(await raw.cmd(['LOGIN demo demo\r\n']), /OK/);
  assert.match(await raw.cmd(['SELECT INBOX\r\n']), /OK/);
  const koln = Buffer.from('Köln');
  // A synchronizing literal, then LITERAL+, then a quoted string with the 8-bit bytes in it (accepted, as Dovecot does).
  const sync = await raw.cmd([`SEARCH CHARSET UTF-8 BODY {${koln.length}}\r\n`, Buffer.concat([koln, Buffer.from('\r\n')])]);
  assert.match(sync, new RegExp(`^\\* SEARCH ${expectedSeqs((m) => m.kolnInBody).join(' ')}\\r\\n`, 'm'));
  const plus = await raw.cmd([Buffer.concat([Buffer.from(`SEARCH CHARSET UTF-8 SUBJECT {${Buffer.byteLength('Grüße')}+}\r\n`), Buffer.from('Grüße\r\n')])]);
  assert.match(plus, new RegExp(`^\\* SEARCH ${expectedSeqs((m) => m.grusseInSubject).join(' ')}\\r\\n`, 'm'));
  const quoted = await raw.cmd([Buffer.from('SEARCH CHARSET UTF-8 TEXT "Köln"\r\n')]);
  assert.match(quoted, new RegExp(`^\\* SEARCH ${expectedSeqs((m) => m.kolnInBody).join(' ')}\\r\\n`, 'm'));
  assert.match(await raw.cmd(['SEARCH CHARSET KOI8-R BODY x\r\n']), /NO \[BADCHARSET/);
});

test('mailbox names: raw 8-bit CREATE gets BAD; modified UTF-7 names round-trip through CREATE, LIST, SELECT, STATUS, RENAME, APPEND', async (t) => {
  const store = await memoryStore();
  const sink = new MemorySink();
  const srv = await startImapServer({ store, secure: true, tracer: createTracer([sink]) });
  t.after(() => srv.close());
  const raw = await rawImaps(srv.port);
  t.after(() => raw.close());
  assert.match(await raw.cmd(['LOGIN demo demo\r\n']), /OK/);
  // Raw UTF-8 bytes, quoted and as a literal: BAD, nothing created.
  assert.match(await raw.cmd([Buffer.from('CREATE "Köln"\r\n')]), /^t2 BAD .*modified UTF-7/m);
  const name8 = Buffer.from('Grüße');
  assert.match(await raw.cmd([`CREATE {${name8.length}}\r\n`, Buffer.concat([name8, Buffer.from('\r\n')])]), /^t3 BAD /m);
  assert.match(await raw.cmd(['CREATE "&APY"\r\n']), /^t4 BAD .*malformed/m);
  assert.equal(store.listMailboxes('demo').some((n) => /[^\x20-\x7e]/.test(n) || n.includes('&')), false);
  assert.ok(sink.events.some((e) => e.kind === 'bad-mailbox-name'));

  assert.match(await raw.cmd(['CREATE "K&APY-ln/Gr&APwA3w-e"\r\n']), /OK CREATE/);
  assert.match(await raw.cmd(['CREATE "A&-B"\r\n']), /OK CREATE/);
  assert.deepEqual(store.listMailboxes('demo').filter((n) => !['INBOX', 'Sent', 'Trash'].includes(n)).sort(), ['A&B', 'Köln', 'Köln/Grüße']);
  const listed = [...(await raw.cmd(['LIST "" "*"\r\n'])).matchAll(/^\* LIST \([^)]*\) "\/" (.*)\r\n/gm)].map((m) => m[1]!);
  assert.ok(listed.every((n) => /^"[\x20-\x7e]*"$/.test(n)), `every name is a quoted 7-bit string: ${listed.join(', ')}`);
  assert.ok(listed.includes('"K&APY-ln/Gr&APwA3w-e"'));
  assert.ok(listed.includes('"A&-B"'));
  // Whatever LIST shows, SELECT opens.
  for (const n of listed) assert.match(await raw.cmd([`SELECT ${n}\r\n`]), /OK \[READ-WRITE\]/, n);
  // LIST patterns are modified UTF-7 too.
  assert.match(await raw.cmd(['LIST "" "K&APY-ln/%"\r\n']), /^\* LIST \(\\HasNoChildren\) "\/" "K&APY-ln\/Gr&APwA3w-e"\r\n/m);
  assert.match(await raw.cmd(['STATUS "K&APY-ln" (MESSAGES)\r\n']), /^\* STATUS "K&APY-ln" \(MESSAGES 0\)/m);
  assert.match(await raw.cmd(['RENAME "K&APY-ln" "M&APw-nchen"\r\n']), /OK RENAME/);
  assert.match(await raw.cmd(['LIST "" "M*"\r\n']), /"M&APw-nchen\/Gr&APwA3w-e"/);
  assert.match(await raw.cmd(['APPEND "M&APw-nchen" {5}\r\n', 'hello\r\n']), /OK \[APPENDUID/);
  assert.equal(store.mailbox('demo', 'München')?.messages.length, 1);

  // imapflow encodes and decodes paths itself: the same names come back as Unicode.
  const c = await connectImap({ port: srv.port, secure: true, auth: { user: 'demo', pass: 'demo' } });
  t.after(() => c.close());
  await c.mailboxCreate('Entwürfe/日本語');
  const paths = (await c.list()).map((b) => b.path);
  assert.ok(paths.includes('Entwürfe/日本語'), paths.join(', '));
  assert.ok(paths.includes('München/Grüße'), paths.join(', '));
  const opened = await c.mailboxOpen('München');
  assert.equal(opened.exists, 1);
});
