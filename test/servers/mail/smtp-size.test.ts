import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../../helpers/mail.ts';

const MiB = 1024 * 1024;

/** The peak resident set size of a process so far (VmHWM in /proc/<pid>/status), in bytes. */
async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(status)![1]) * 1024;
}

/** An SMTP conversation on one socket: `say` sends a line and resolves with the next complete reply. */
async function smtpSession(port: number) {
  const sock = net.connect(port, '127.0.0.1');
  sock.on('error', () => undefined);
  let buf = '';
  let wake: (() => void) | null = null;
  sock.on('data', (d: Buffer) => {
    buf += d.toString('latin1');
    wake?.();
  });
  const reply = async (): Promise<string> => {
    for (;;) {
      const m = /^(\d{3}) .*\r\n/m.exec(buf);
      if (m) {
        const r = buf.slice(0, m.index + m[0].length);
        buf = buf.slice(m.index + m[0].length);
        return r.trimEnd();
      }
      if (sock.destroyed) return 'closed';
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 100);
      });
    }
  };
  return {
    sock,
    reply,
    say: async (line: string): Promise<string> => {
      sock.write(`${line}\r\n`);
      return reply();
    },
    /** Writes `total` bytes of message body in 64 KiB lines, waiting whenever the socket buffer is full. */
    async body(total: number): Promise<void> {
      const line = Buffer.from(`${'x'.repeat(64 * 1024 - 2)}\r\n`);
      for (let sent = 0; sent < total; sent += line.length) {
        if (!sock.write(line)) await new Promise((r) => sock.once('drain', r));
      }
    },
  };
}

// The bound: nothing past the limit is kept, but V8 frees dead Buffers only after tens of MB of them (external memory
// triggers a collection at about 64 MB), so peak RSS still rises by a constant: measured +33 MiB for 20 MB of DATA,
// +38 to +42 MiB for 100 MB and +41 MiB for 300 MB. Before the fix, which kept every chunk, 100 MB cost +117 MiB.
test('a 100 MB DATA against a 1 MiB limit: 552 at the end, the server process (peak RSS) grows by less than 64 MiB, and it keeps serving', async (t) => {
  const dir = await tempDir(t, 'wirelab-smtp-size-');
  // The server runs in a child process so its peak RSS (VmHWM) is its own, not this test's.
  const child = spawn(process.execPath, ['--import', 'tsx', new URL('../../fixtures/smtp-server.ts', import.meta.url).pathname, dir, String(MiB)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  child.on('error', () => undefined);
  t.after(() => {
    child.stdin.end();
    if (child.exitCode === null) process.kill(child.pid!, 'SIGTERM');
  });
  const { port, pid } = await new Promise<{ port: number; pid: number }>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!));
    });
    child.once('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
  const before = await peakRss(pid);

  const s = await smtpSession(port);
  assert.match(await s.reply(), /^220/);
  assert.match(await s.say('EHLO me'), /^250/);
  assert.match(await s.say('MAIL FROM:<ann@localhost>'), /^250/);
  assert.match(await s.say('RCPT TO:<demo@localhost>'), /^250/);
  assert.match(await s.say('DATA'), /^354/);
  s.sock.write('Subject: huge\r\n\r\n');
  await s.body(100 * MiB);
  assert.match(await s.say('.'), /^552 /);
  const growth = (await peakRss(pid)) - before;
  assert.ok(growth < 64 * MiB, `peak RSS grew ${(growth / MiB).toFixed(1)} MiB while receiving 100 MiB`);

  // The same connection, then a small message: accepted, whole on disk, and no spool file left behind.
  assert.match(await s.say('MAIL FROM:<ann@localhost>'), /^250/);
  assert.match(await s.say('RCPT TO:<demo@localhost>'), /^250/);
  assert.match(await s.say('DATA'), /^354/);
  assert.match(await s.say('Subject: small\r\n\r\nhello\r\n.'), /^250 /);
  s.sock.end('QUIT\r\n');
  const msg = await readFile(join(dir, 'demo', 'INBOX', 'msg', '1.eml'), 'utf8');
  assert.equal(msg, 'Subject: small\r\n\r\nhello\r\n');
  assert.deepEqual((await readdir(join(dir, '.tmp'))).filter((f) => f.endsWith('.spool')), []);
  t.diagnostic(`server peak RSS ${(before / MiB).toFixed(1)} MiB before, +${(growth / MiB).toFixed(1)} MiB after 100 MiB of DATA`);
});
