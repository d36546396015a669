import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CommandChaosPolicy, FTP_CHAOS_CODES, IMAP_CHAOS_CODES, POP3_CHAOS_CODES } from '../../servers/line/chaos.ts';
import { startFtpServer, type RunningFtpServer } from '../../servers/ftp/index.ts';
import { startImapServer, type RunningImapServer } from '../../servers/imap/index.ts';
import { startPop3Server, type RunningPop3Server } from '../../servers/pop3/index.ts';
import { openMailStore } from '../../servers/mail/store/index.ts';

/** A raw line client: send a line, read the reply lines until `done` says the reply is complete, or the close. */
async function talk(port: number) {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  let buf = '';
  let closed = false;
  const waiters: Array<() => void> = [];
  socket.on('data', (d) => {
    buf += d.toString('latin1');
    waiters.splice(0).forEach((w) => w());
  });
  socket.on('close', () => {
    closed = true;
    waiters.splice(0).forEach((w) => w());
  });
  const until = async (done: (text: string) => boolean): Promise<string | null> => {
    while (!done(buf)) {
      if (closed) return null;
      await new Promise<void>((r) => waiters.push(r));
    }
    const text = buf;
    buf = '';
    return text;
  };
  return {
    until,
    send: (line: string, done: (text: string) => boolean) => {
      socket.write(`${line}\r\n`);
      return until(done);
    },
    closed: () => until(() => false).then(() => closed),
    end: () => socket.destroy(),
  };
}
const line = (t: string): boolean => t.endsWith('\r\n');

let pop3: RunningPop3Server;
let imap: RunningImapServer;
let ftp: RunningFtpServer;
let root: string;
before(async () => {
  const store = await openMailStore({ memory: true });
  await store.append('demo', 'INBOX', Buffer.from('Subject: one\r\n\r\nbody\r\n'));
  root = await mkdtemp(join(tmpdir(), 'wl-chaos-'));
  [pop3, imap, ftp] = await Promise.all([
    startPop3Server({ store, allowInsecureAuth: true, chaos: { rules: [{ command: 'STAT', times: 1 }] } }),
    startImapServer({ store, allowInsecureAuth: true }),
    startFtpServer({ rootDir: root, allowInsecureAuth: true }),
  ]);
});
after(async () => {
  await Promise.all([pop3.close(), imap.close(), ftp.close()]);
  await rm(root, { recursive: true, force: true });
});

test('chaos rules: checked fields, first matching rule wins, times, and a seed that replays the same draws', () => {
  assert.throws(() => new CommandChaosPolicy(FTP_CHAOS_CODES, { rules: [{ command: 'RETR', code: 200 }] }), /chaos\.rules\[0\]\.code/);
  assert.throws(() => new CommandChaosPolicy(IMAP_CHAOS_CODES, { rules: [{ command: 'FETCH', code: 'OK' }] }), /NO or BAD/);
  assert.throws(() => new CommandChaosPolicy(POP3_CHAOS_CODES, { rules: [{ command: 'RETR', probability: 2 }] }), /probability/);
  assert.throws(() => new CommandChaosPolicy(POP3_CHAOS_CODES, { rules: [{ command: 'RE TR' }] }), /command/);
  assert.throws(() => new CommandChaosPolicy(POP3_CHAOS_CODES, { rules: [{ command: 'RETR', action: 'explode' as never }] }), /action/);
  const p = new CommandChaosPolicy(FTP_CHAOS_CODES, { rules: [{ command: 'retr', code: 550, times: 1 }, { command: '*', action: 'disconnect', times: 1 }] });
  assert.deepEqual(p.check('RETR'), { action: 'reply', code: 550, text: 'chaos: injected failure', rule: 0 });
  assert.equal(p.check('RETR')?.action, 'disconnect');
  assert.equal(p.check('RETR'), null);
  assert.deepEqual(p.toJSON().fired, [1, 1]);
  const draws = (seed: number): string => {
    const q = new CommandChaosPolicy(POP3_CHAOS_CODES, { seed, rules: [{ command: 'RETR', probability: 0.5 }] });
    return Array.from({ length: 40 }, () => (q.check('RETR') ? 'x' : '.')).join('');
  };
  assert.equal(draws(7), draws(7));
  assert.notEqual(draws(7), draws(8));
  assert.ok(/x/.test(draws(7)) && /\./.test(draws(7)));
});

test('POP3 chaos: -ERR [SYS/TEMP] instead of the command (the session goes on), then a cut with no reply', async () => {
  const c = await talk(pop3.port);
  await c.until(line);
  await c.send('USER demo', line);
  await c.send('PASS demo', line);
  assert.match((await c.send('STAT', line))!, /^-ERR \[SYS\/TEMP\] chaos: injected failure\r\n$/);
  assert.match((await c.send('STAT', line))!, /^\+OK 1 /);
  pop3.setChaos({ rules: [{ command: 'NOOP', action: 'abrupt' }] });
  c.send('NOOP', line).catch(() => undefined);
  assert.equal(await c.closed(), true);
  pop3.setChaos({});
  const d = await talk(pop3.port);
  assert.match((await d.until(line))!, /^\+OK/, 'the server keeps serving');
  d.end();
});

test('IMAP chaos: NO / BAD tagged, a UID FETCH hit by a FETCH rule, BYE and close', async () => {
  imap.setChaos({ rules: [{ command: 'NOOP', code: 'BAD', times: 1 }, { command: 'FETCH', times: 1 }, { command: 'CHECK', action: 'disconnect' }] });
  const c = await talk(imap.port);
  await c.until(line);
  const tagged = (tag: string) => (t: string) => new RegExp(`^${tag} `, 'm').test(t);
  await c.send('a LOGIN demo demo', tagged('a'));
  assert.match((await c.send('b NOOP', tagged('b')))!, /^b BAD chaos: injected failure/m);
  await c.send('c SELECT INBOX', tagged('c'));
  assert.match((await c.send('d UID FETCH 1:* (FLAGS)', tagged('d')))!, /^d NO \[UNAVAILABLE\] chaos/m);
  assert.match((await c.send('e FETCH 1 (FLAGS)', tagged('e')))!, /^e OK/m);
  assert.match((await c.send('f CHECK', (t) => /BYE/.test(t)))!, /^\* BYE \[UNAVAILABLE\] chaos: injected failure/m);
  assert.equal(await c.closed(), true);
  assert.equal(imap.chaos.injected, 3);
  imap.setChaos({});
});

test('FTP chaos: a chosen reply code instead of the command, then 421 and a close; set at run time', async () => {
  ftp.setChaos({ rules: [{ command: 'PWD', code: 550, text: 'no such luck' }, { command: 'SYST', action: 'disconnect' }] });
  const c = await talk(ftp.port);
  await c.until(line);
  await c.send('USER demo', line);
  await c.send('PASS demo', line);
  assert.equal(await c.send('PWD', line), '550 no such luck.\r\n');
  assert.match((await c.send('TYPE I', line))!, /^200 /);
  assert.match((await c.send('SYST', line))!, /^421 chaos: injected failure, closing control connection\.\r\n$/);
  assert.equal(await c.closed(), true);
  assert.throws(() => ftp.setChaos({ rules: [{ command: 'PWD', code: 'NO' }] }), /400 to 599/);
  assert.equal(ftp.chaos.toJSON().rules!.length, 2, 'a bad setting leaves the rules in force');
  ftp.setChaos({});
});
