import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdir, readFile, realpath, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { FtpClient } from '../../clients/ftp.ts';
import { createTracer, MemorySink } from '../../core/trace/index.ts';
import { RawFtp, readAll, startTestFtp } from '../helpers/ftp.ts';

const ESCAPES = [
  '..',
  '../..',
  '/..',
  '../../../../../../etc/passwd',
  'docs/../../x',
  '/etc/passwd',
  '%2e%2e',
  '..%2fetc%2fpasswd',
  '%2E%2E%2F%2E%2E',
  '..\\..\\etc',
  'C:\\Windows',
  '~root',
  'a\0b',
  'to-root',
  'to-root/etc/passwd',
  'to-etc/passwd',
  'dangling',
  'docs/up/etc',
];

test('every path escape is refused with 550 and no reply holds the real path (symlink to / inside the root)', async (t) => {
  const { server, sink, rootDir } = await startTestFtp(t);
  await symlink('/', join(server.root, 'to-root'));
  await symlink('/etc', join(server.root, 'to-etc'));
  await symlink(join(rootDir, 'outside-never-made'), join(server.root, 'dangling'));
  await symlink('../..', join(server.root, 'docs', 'up'));
  await symlink('docs', join(server.root, 'inner'));
  const c = await RawFtp.connect(server.port);
  t.after(() => c.close());
  await c.login();
  for (const path of ESCAPES) {
    for (const verb of ['CWD', 'RETR', 'SIZE', 'MDTM', 'MLST', 'LIST', 'NLST', 'MLSD', 'STOR', 'APPE', 'DELE', 'MKD', 'RMD', 'RNFR']) {
      if (['LIST', 'NLST', 'MLSD', 'RETR', 'STOR', 'APPE'].includes(verb)) await c.cmd('EPSV');
      const r = await c.cmd(`${verb} ${path}`);
      assert.equal(r.code, 550, `${verb} ${JSON.stringify(path)} → ${r.text}`);
    }
  }
  assert.match((await c.cmd('PWD')).text, /^257 "\/"/, 'still in the root');
  // A symlink that stays inside the root is fine.
  assert.equal((await c.cmd('CWD inner')).code, 250);
  assert.equal((await c.cmd('CWD /')).code, 250);
  // The link to / is listed (as a link, no target shown) but never followed.
  const data = await c.passive();
  await c.cmd('LIST');
  const listing = (await readAll(data)).toString();
  await c.reply();
  assert.match(listing, /^l\S+ .* to-root\r$/m);
  assert.ok(!listing.includes('->'));
  await assert.rejects(stat(join(rootDir, 'outside-never-made')), 'STOR through a dangling link made nothing outside');
  const real = await realpath(rootDir);
  const replies = sink.events.filter((e) => e.kind === 'reply').map((e) => e.summary);
  for (const r of replies) {
    assert.ok(!r.includes(rootDir) && !r.includes(real) && !r.includes('/etc') && !r.includes('root:'), r);
  }
  assert.ok(sink.events.some((e) => e.kind === 'refused' && /outside your root/.test(e.summary)), 'refusals are traced');
});

test('PORT / EPRT only to the client itself (no FTP bounce), and PASV takes no connection from another address', async (t) => {
  const { server, sink } = await startTestFtp(t);
  const victim = net.createServer();
  let victimHits = 0;
  victim.on('connection', (s) => {
    victimHits++;
    s.destroy();
  });
  await new Promise<void>((r) => victim.listen(0, '127.0.0.2', r));
  t.after(() => victim.close());
  const vp = (victim.address() as net.AddressInfo).port;
  const c = await RawFtp.connect(server.port);
  t.after(() => c.close());
  await c.login();
  assert.equal((await c.cmd(`PORT 127,0,0,2,${vp >> 8},${vp & 255}`)).code, 504);
  assert.equal((await c.cmd(`EPRT |1|127.0.0.2|${vp}|`)).code, 504);
  assert.equal((await c.cmd('PORT 127,0,0,1,0,80')).code, 504, 'privileged port');
  assert.equal((await c.cmd(`EPRT |1|127.0.0.1|${server.port}|`)).code, 504, 'our own control port');
  assert.equal((await c.cmd('RETR readme.txt')).code, 150);
  assert.equal((await c.reply()).code, 425, 'no data connection was set up');
  assert.equal(victimHits, 0);
  assert.ok(!sink.events.some((e) => e.proto === 'ftp-data' && e.kind === 'open'));

  // Someone else racing to a PASV port is turned away; the real client still gets the file.
  const port = Number(/\|\|\|(\d+)\|/.exec((await c.cmd('EPSV')).text)?.[1]);
  const thief = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' });
  thief.on('error', () => {});
  await new Promise<void>((r) => thief.once('close', () => r()));
  const data = net.connect(port, '127.0.0.1');
  await c.cmd('RETR readme.txt');
  assert.ok((await readAll(data)).length > 0);
  assert.equal((await c.reply()).code, 226);
  assert.ok(sink.events.some((e) => e.kind === 'refused' && /127\.0\.0\.2 refused/.test(e.summary)));
});

test('STOR past the quota is cut off with 552 and the file put back; within it the upload works', async (t) => {
  const { server } = await startTestFtp(t, { quotaBytes: 20_000 });
  const client = await FtpClient.connect({ port: server.port });
  t.after(() => client.close());
  await assert.rejects(client.upload(Buffer.alloc(50_000, 1), 'big.bin'), (e: { code?: number }) => e.code === 552);
  await assert.rejects(stat(join(server.root, 'big.bin')), 'the over-quota file is gone');
  await client.upload(Buffer.alloc(10_000, 2), 'ok.bin');
  await assert.rejects(client.basic.appendFrom((await import('node:stream')).Readable.from([Buffer.alloc(15_000, 3)]), 'ok.bin'));
  assert.equal((await stat(join(server.root, 'ok.bin'))).size, 10_000, 'APPE past the quota leaves the old bytes');
  assert.equal((await client.send('NOOP')).code, 200, 'still serving');
});

test('two uploads at once share the quota: one is cut with 552, the total stays within it', async (t) => {
  const { server } = await startTestFtp(t, { quotaBytes: 20_000 });
  const sessions = await Promise.all([RawFtp.connect(server.port), RawFtp.connect(server.port)]);
  t.after(() => sessions.forEach((c) => c.close()));
  const datas = [];
  for (const [i, c] of sessions.entries()) {
    await c.login();
    await c.cmd('TYPE I');
    datas.push(await c.passive());
    assert.equal((await c.cmd(`STOR up${i}.bin`)).code, 150);
  }
  // Both uploads have started (and checked the quota) before either sends a byte.
  datas.forEach((d) => d.end(Buffer.alloc(15_000, 9)));
  const codes = (await Promise.all(sessions.map((c) => c.reply()))).map((r) => r.code).sort();
  assert.deepEqual(codes, [226, 552]);
  const sizes = await Promise.all([0, 1].map((i) => stat(join(server.root, `up${i}.bin`)).then((s) => s.size, () => 0)));
  assert.deepEqual(sizes.sort(), [0, 15_000]);
});

test('wrong passwords are answered ever more slowly, then 421; PASS never reaches a trace', async (t) => {
  const sink = new MemorySink();
  const { server, sink: serverSink } = await startTestFtp(t, {
    users: [{ name: 'alice', password: 'right-password' }],
    authFailureDelayMs: 30,
    maxAuthFailures: 5,
  });
  const c = await RawFtp.connect(server.port);
  t.after(() => c.close());
  await c.reply();
  const codes: number[] = [];
  const waits: number[] = [];
  for (let i = 1; i <= 10 && !c.closed; i++) {
    await c.cmd('USER alice').catch(() => undefined);
    const t0 = performance.now();
    const r = await c.cmd(`PASS wrong-${i}`).catch(() => undefined);
    if (!r) break;
    waits.push(performance.now() - t0);
    codes.push(r.code);
  }
  assert.deepEqual(codes, [530, 530, 530, 530, 421]);
  // setTimeout never fires early: the k-th refusal waited at least k × authFailureDelayMs.
  waits.slice(0, 4).forEach((w, k) => assert.ok(w >= 30 * (k + 1) - 1, `wait ${k + 1}: ${w} ms`));
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(c.closed, 'the connection is closed after 421');
  // Reconnecting does not reset the slow-down: the next wrong guess from this address waits 6 × the delay.
  const again = await RawFtp.connect(server.port);
  t.after(() => again.close());
  await again.reply();
  await again.cmd('USER alice');
  const t1 = performance.now();
  assert.equal((await again.cmd('PASS wrong-again')).code, 530);
  await again.cmd('USER alice');
  assert.equal((await again.cmd(' \tPASS wrong-with-leading-blanks')).code, 530);
  assert.ok(performance.now() - t1 >= 30 * 6 - 1, 'the count follows the address');
  // The right password on a new connection still works (and clears the count); the client's trace is checked too.
  const client = await FtpClient.connect({ port: server.port, user: 'alice', password: 'right-password', tracer: createTracer([sink]) });
  client.close();
  const all = [...serverSink.events, ...sink.events].map((e) => `${e.summary} ${JSON.stringify(e.meta ?? {})}`).join('\n');
  assert.ok(!/wrong-|right-password/.test(all), 'no password in any trace');
  assert.ok(all.includes('PASS ****'));
});

test('a FIFO inside the root is neither read nor written (it would block the transfer)', async (t) => {
  const { server } = await startTestFtp(t);
  await promisify(execFile)('mkfifo', [join(server.root, 'pipe')]);
  const c = await RawFtp.connect(server.port);
  t.after(() => c.close());
  await c.login();
  await c.cmd('EPSV');
  assert.equal((await c.cmd('RETR pipe')).code, 550);
  await c.cmd('EPSV');
  assert.equal((await c.cmd('STOR pipe')).code, 550);
  assert.equal((await c.cmd('NOOP')).code, 200);
});

test('RNTO onto a directory is refused and nothing moves', async (t) => {
  const { server } = await startTestFtp(t);
  await mkdir(join(server.root, 'dir'));
  await writeFile(join(server.root, 'dir', 'keep.txt'), 'keep');
  const c = await RawFtp.connect(server.port);
  t.after(() => c.close());
  await c.login();
  assert.equal((await c.cmd('RNFR readme.txt')).code, 350);
  assert.equal((await c.cmd('RNTO dir')).code, 550);
  assert.equal((await c.cmd('RNFR docs')).code, 350);
  assert.equal((await c.cmd('RNTO /dir')).code, 550);
  assert.equal((await c.cmd('RNFR readme.txt')).code, 350);
  assert.equal((await c.cmd('NOOP')).code, 200);
  assert.equal((await c.cmd('RNTO moved.txt')).code, 503, 'RNTO must follow RNFR directly');
  assert.equal(await readFile(join(server.root, 'dir', 'keep.txt'), 'utf8'), 'keep');
  assert.ok((await stat(join(server.root, 'readme.txt'))).isFile());
  assert.ok((await stat(join(server.root, 'docs'))).isDirectory());
});

test('a client dropping the data connection mid-STOR: 426, the partial file stays for REST, nothing else changes', async (t) => {
  const { server } = await startTestFtp(t);
  const readme = await readFile(join(server.root, 'readme.txt'));
  const body = Buffer.alloc(2 * 1024 * 1024);
  for (let i = 0; i < body.length; i++) body[i] = i % 251;
  const c = await RawFtp.connect(server.port);
  t.after(() => c.close());
  await c.login();
  await c.cmd('TYPE I');
  const data = await c.passive();
  assert.equal((await c.cmd('STOR part.bin')).code, 150);
  data.write(body.subarray(0, 300_000));
  for (let i = 0; i < 200; i++) {
    const size = await stat(join(server.root, 'part.bin')).then((s) => s.size, () => 0);
    if (size >= 100_000) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  data.resetAndDestroy();
  const cut = await c.reply();
  assert.equal(cut.code, 426, cut.text);
  const partial = Number((await c.cmd('SIZE part.bin')).text.slice(4));
  assert.ok(partial > 0 && partial < body.length, String(partial));
  assert.ok((await readFile(join(server.root, 'part.bin'))).equals(body.subarray(0, partial)), 'the partial file is a prefix');
  // Resume: REST + STOR the rest.
  assert.equal((await c.cmd(`REST ${partial}`)).code, 350);
  const more = await c.passive();
  assert.equal((await c.cmd('STOR part.bin')).code, 150);
  more.end(body.subarray(partial));
  const done = await c.reply();
  assert.equal(done.code, 226, done.text);
  const whole = await readFile(join(server.root, "part.bin"));
  let at = 0;
  while (at < whole.length && whole[at] === body[at]) at++;
  assert.ok(whole.equals(body), `size ${whole.length} vs ${body.length}, first difference at ${at}, partial ${partial}, ${done.text}`);
  assert.ok((await readFile(join(server.root, 'readme.txt'))).equals(readme));
});

test('a client dropping the data connection mid-RETR gets 426 and the server keeps serving', async (t) => {
  const { server } = await startTestFtp(t);
  await writeFile(join(server.root, 'big.bin'), Buffer.alloc(16 * 1024 * 1024, 7));
  const c = await RawFtp.connect(server.port);
  t.after(() => c.close());
  await c.login();
  const data = await c.passive();
  await c.cmd('RETR big.bin');
  await new Promise<void>((r) => data.once('data', () => r()));
  data.resetAndDestroy();
  assert.equal((await c.reply()).code, 426);
  assert.equal((await c.cmd('NOOP')).code, 200);
  assert.equal((await stat(join(server.root, 'big.bin'))).size, 16 * 1024 * 1024);
});

test('ABOR during a transfer: 426 for the transfer, then 226; ABOR with a Telnet IP/DM prefix is understood', async (t) => {
  const { server } = await startTestFtp(t);
  await writeFile(join(server.root, 'big.bin'), Buffer.alloc(16 * 1024 * 1024, 7));
  const c = await RawFtp.connect(server.port);
  t.after(() => c.close());
  await c.login();
  const data = await c.passive();
  data.pause(); // read nothing: the transfer cannot finish on its own
  assert.equal((await c.cmd('RETR big.bin')).code, 150);
  c.write(Buffer.concat([Buffer.from([0xff, 0xf4, 0xff, 0xf2]), Buffer.from('ABOR\r\n')]));
  assert.equal((await c.reply()).code, 426);
  assert.equal((await c.reply()).code, 226);
  data.destroy();
  assert.equal((await c.cmd('ABOR')).code, 225, 'nothing to abort');
});

test('read-only anonymous login: RETR works, writes are refused', async (t) => {
  const { server, rootDir } = await startTestFtp(t, { anonymous: true });
  await writeFile(join(rootDir, 'anonymous', 'pub.txt'), 'public');
  const client = await FtpClient.connect({ port: server.port, user: 'anonymous', password: 'guest@example.org' });
  t.after(() => client.close());
  assert.equal((await client.download('pub.txt')).toString(), 'public');
  for (const cmd of ['STOR x', 'DELE pub.txt', 'MKD d', 'RNFR pub.txt', 'APPE pub.txt', 'STOU']) {
    assert.equal((await client.sendIgnoringError(cmd)).code, 550, cmd);
  }
});
