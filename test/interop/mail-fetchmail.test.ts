import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { getTlsMaterial } from '../../core/tls/index.ts';
import { startImapServer } from '../../servers/imap/index.ts';
import { startPop3Server } from '../../servers/pop3/index.ts';
import { memoryStore, message, tempDir } from '../helpers/mail.ts';
import { requirePeer } from '../helpers/peers.ts';
import { run } from '../helpers/run.ts';

// fetchmail, the classic retrieval client, against our IMAP and POP3 servers: STARTTLS / STLS with the certificate
// checked against the local CA, every message fetched, then deleted on the server (fetchmail's default).

for (const proto of ['IMAP', 'POP3'] as const) {
  test(`fetchmail over ${proto}: fetches every message through TLS and deletes them on the server`, async (t) => {
    if (!requirePeer(t, 'fetchmail', 'fetchmail')) return;
    const store = await memoryStore();
    await store.append('demo', 'INBOX', message('first', 'one\r\n.leading dot\r\n'));
    await store.append('demo', 'INBOX', message('second'));
    const srv = proto === 'IMAP' ? await startImapServer({ store }) : await startPop3Server({ store });
    t.after(() => srv.close());
    const dir = await tempDir(t, 'wirelab-fetchmail-');
    const { caCertPath } = await getTlsMaterial();
    const rc = join(dir, 'fetchmailrc');
    await writeFile(
      rc,
      `set no syslog
poll 127.0.0.1 with proto ${proto} port ${srv.port} timeout 10
  user "demo" there with password "demo" is "nobody" here
  sslproto "tls1.2+" sslcertck sslcertfile "${caCertPath}" sslcommonname "localhost"
  mda "/bin/sh -c 'cat > ${dir}/msg-$$.eml'"
`,
      { mode: 0o600 },
    );
    const r = await run('fetchmail', ['--nodetach', '--nosyslog', '-f', rc, '-v'], { env: { FETCHMAILHOME: dir, HOME: dir }, timeoutMs: 30_000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stderr + r.stdout, proto === 'IMAP' ? /STARTTLS/ : /STLS/);
    const files = (await readdir(dir)).filter((f) => f.startsWith('msg-'));
    assert.equal(files.length, 2);
    const texts = await Promise.all(files.map((f) => readFile(join(dir, f), 'utf8')));
    assert.ok(texts.some((x) => x.includes('Subject: first') && x.includes('\n.leading dot')), texts.join('\n---\n'));
    assert.equal(store.mailbox('demo', 'INBOX')!.messages.length, 0, 'fetchmail deleted what it fetched');
  });
}
