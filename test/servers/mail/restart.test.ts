import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { connectImap } from '../../../clients/imap.ts';
import { createSmtpClient } from '../../../clients/smtp.ts';
import { CLI } from '../../helpers/cli.ts';
import { tempDir } from '../../helpers/mail.ts';

interface UpRow {
  name: string;
  port: number;
  try: string;
}

/** `wirelab up` as a user runs it, on free ports, with its data dir in `dataDir`; resolves with its table. */
function up(dataDir: string): Promise<{ rows: UpRow[]; stop: () => Promise<number | null> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'up', '--port-base', '0', '--json', '--only', 'smtp,imap,pop3'], {
      env: { ...process.env, WIRELAB_DATA_DIR: dataDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.stderr.on('data', (d) => (err += d));
    child.stdout.on('data', (d) => {
      out += d;
      if (!out.includes('\n')) return;
      resolve({
        rows: JSON.parse(out.split('\n')[0]!) as UpRow[],
        stop: () => {
          child.kill('SIGTERM');
          return exited;
        },
      });
    });
    void exited.then((code) => reject(new Error(`wirelab up exited ${code}: ${err}`)));
  });
}

test('wirelab up: a message delivered over SMTP survives a restart and is read over IMAP; the demo user works out of the box', async (t) => {
  const dir = await tempDir(t);
  const first = await up(dir);
  const port = (name: string, rows: UpRow[]): number => rows.find((r) => r.name === name)!.port;
  try {
    assert.deepEqual(first.rows.map((r) => r.name).sort(), ['imap', 'pop3', 'smtp', 'submission']);
    for (const r of first.rows) assert.match(r.try, new RegExp(`curl .*(--cacert ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/tls/ca\\.pem).*:${r.port}`), r.try);
    const smtp = await createSmtpClient({ port: port('submission', first.rows), auth: { user: 'demo', pass: 'demo' }, tls: { certDir: join(dir, 'tls') } });
    await smtp.send({ from: 'demo@localhost', to: 'demo@localhost', subject: 'kept across restarts', text: 'still here' });
    smtp.close();
  } finally {
    assert.equal(await first.stop(), 0);
  }
  const second = await up(dir);
  try {
    const imap = await connectImap({ port: port('imap', second.rows), auth: { user: 'demo', pass: 'demo' }, tls: { certDir: join(dir, 'tls') } });
    await imap.mailboxOpen('INBOX');
    const m = await imap.fetchOne('1', { envelope: true, source: true });
    assert.ok(m);
    assert.equal(m.envelope?.subject, 'kept across restarts');
    assert.match(m.source!.toString(), /still here/);
    await imap.logout();
  } finally {
    assert.equal(await second.stop(), 0);
  }
});
