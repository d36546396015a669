import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { connectImap } from '../../clients/imap.ts';
import { getTlsMaterial } from '../../core/tls/index.ts';
import { startImapServer } from '../../servers/imap/index.ts';
import { startDovecot } from '../helpers/dovecot.ts';
import { I18N_MESSAGES } from '../helpers/i18n-mail.ts';
import { memoryStore, tempDir } from '../helpers/mail.ts';
import { requirePeer } from '../helpers/peers.ts';

/**
 * Non-ASCII SEARCH and mailbox names against a server nobody here wrote: the same messages go into Dovecot and into
 * wirelab's IMAP server, the same searches run against both with imapflow and with Python's imaplib (a literal with
 * CHARSET UTF-8), and both must find the same messages. Both are reached over STARTTLS.
 */

const SEARCHES: Array<{ label: string; query: Record<string, string>; key: string; text: string }> = [
  { label: 'BODY Köln', query: { body: 'Köln' }, key: 'BODY', text: 'Köln' },
  { label: 'BODY KÖLN (case)', query: { body: 'KÖLN' }, key: 'BODY', text: 'KÖLN' },
  { label: 'SUBJECT Grüße', query: { subject: 'Grüße' }, key: 'SUBJECT', text: 'Grüße' },
  { label: 'SUBJECT grüße (case)', query: { subject: 'grüße' }, key: 'SUBJECT', text: 'grüße' },
  { label: 'TEXT Köln', query: { text: 'Köln' }, key: 'TEXT', text: 'Köln' },
  { label: 'BODY Koln (ASCII)', query: { body: 'Koln' }, key: 'BODY', text: 'Koln' },
];

interface Target {
  port: number;
  user: string;
  pass: string;
}

async function viaImapflow(target: Target): Promise<Record<string, number[]>> {
  const c = await connectImap({ port: target.port, auth: { user: target.user, pass: target.pass } });
  const out: Record<string, number[]> = {};
  try {
    const lock = await c.getMailboxLock('INBOX');
    try {
      for (const s of SEARCHES) out[s.label] = ((await c.search(s.query)) || []).sort((a, b) => a - b);
    } finally {
      lock.release();
    }
  } finally {
    await c.logout();
  }
  return out;
}

function run(cmd: string, args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => resolve({ code, out, err }));
  });
}

/** Python's imaplib: STARTTLS, then each search as `SEARCH CHARSET UTF-8 <key> {n}` with the text as a literal. */
async function viaImaplib(target: Target, ca: string): Promise<Record<string, number[]>> {
  const code = [
    'import imaplib, json, ssl, sys',
    `m = imaplib.IMAP4('127.0.0.1', ${target.port})`,
    `m.starttls(ssl.create_default_context(cafile=${JSON.stringify(ca)}))`,
    `m.login(${JSON.stringify(target.user)}, ${JSON.stringify(target.pass)})`,
    "m.select('INBOX')",
    'out = {}',
    `for label, key, text in ${JSON.stringify(SEARCHES.map((s) => [s.label, s.key, s.text]))}:`,
    "    m.literal = text.encode('utf-8')",
    "    typ, data = m.search('UTF-8', key)",
    "    assert typ == 'OK', (typ, data)",
    '    out[label] = sorted(int(x) for x in data[0].split())',
    'm.logout()',
    'print(json.dumps(out))',
  ].join('\n');
  const r = await run('python3', ['-c', code]);
  assert.equal(r.code, 0, r.err);
  return JSON.parse(r.out) as Record<string, number[]>;
}

test('SEARCH with non-ASCII text and modified UTF-7 mailbox names: wirelab and Dovecot agree (imapflow, imaplib)', async (t) => {
  if (!requirePeer(t, 'dovecot', 'dovecot-imapd')) return;
  if (!requirePeer(t, 'python3', 'python3')) return;
  const dir = await tempDir(t, 'wirelab-dovecot-search-');
  const dovecot = await startDovecot(dir);
  t.after(async () => {
    if (process.env.WIRELAB_DEBUG_DOVECOT) process.stderr.write(await dovecot.log());
    await dovecot.stop();
  });
  const store = await memoryStore();
  for (const m of I18N_MESSAGES) await store.append('demo', 'INBOX', m.raw);
  const wirelab = await startImapServer({ store });
  t.after(() => wirelab.close());

  const dovecotTarget: Target = { port: dovecot.imapPort, user: dovecot.user, pass: dovecot.password };
  const wirelabTarget: Target = { port: wirelab.port, user: 'demo', pass: 'demo' };
  const seed = await connectImap({ port: dovecot.imapPort, auth: { user: dovecot.user, pass: dovecot.password } });
  try {
    for (const m of I18N_MESSAGES) await seed.append('INBOX', m.raw);
    // A mailbox with a non-ASCII name, created through imapflow (which encodes it). No hierarchy: Dovecot's Maildir
    // separator is '.', ours is '/'.
    await seed.mailboxCreate('Entwürfe 日本語');
  } finally {
    await seed.logout();
  }

  const ca = (await getTlsMaterial()).caCertPath;
  const expected = await viaImapflow(dovecotTarget);
  // Sanity: Dovecot found something for the non-ASCII searches, so agreeing is not agreeing on nothing.
  assert.ok(expected['BODY Köln']!.length >= 3 && expected['SUBJECT Grüße']!.length >= 2, JSON.stringify(expected));
  assert.deepEqual(await viaImapflow(wirelabTarget), expected, 'imapflow: wirelab vs Dovecot');
  assert.deepEqual(await viaImaplib(dovecotTarget, ca), expected, 'imaplib against Dovecot');
  assert.deepEqual(await viaImaplib(wirelabTarget, ca), expected, 'imaplib: wirelab vs Dovecot');

  const ours = await connectImap({ port: wirelab.port, auth: { user: 'demo', pass: 'demo' } });
  try {
    await ours.mailboxCreate('Entwürfe 日本語');
  } finally {
    await ours.logout();
  }
  // imaplib LIST on both: the raw wire names, modified UTF-7, the same on both servers.
  const listCode = (target: Target): string[] => [
    'import imaplib, ssl',
    `m = imaplib.IMAP4('127.0.0.1', ${target.port})`,
    `m.starttls(ssl.create_default_context(cafile=${JSON.stringify(ca)}))`,
    `m.login(${JSON.stringify(target.user)}, ${JSON.stringify(target.pass)})`,
    "typ, data = m.list('\"\"', '\"Entw*\"')",
    'for line in data: print(line.decode("ascii"))',
    "typ, data = m.select('\"Entw&APw-rfe &ZeVnLIqe-\"')",
    "print(typ)",
    'm.logout()',
  ];
  for (const target of [dovecotTarget, wirelabTarget]) {
    const r = await run('python3', ['-c', listCode(target).join('\n')]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /"Entw&APw-rfe &ZeVnLIqe-"/, `${target.port}: ${r.out}`);
    assert.match(r.out, /^OK$/m, `${target.port}: SELECT of the listed name`);
  }
});
