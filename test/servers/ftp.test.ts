import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { FtpClient } from '../../clients/ftp.ts';
import { InvalidOptionError } from '../../core/options.ts';
import { startFtpServer, WELCOME_TEXT } from '../../servers/ftp/index.ts';
import { RawFtp, readAll, startTestFtp } from '../helpers/ftp.ts';

test('greeting, login, PWD/CWD/CDUP, SYST, NOOP, FEAT lists the extensions', async (t) => {
  const { server } = await startTestFtp(t);
  const c = await RawFtp.connect(server.port);
  t.after(() => c.close());
  await c.login();
  assert.equal((await c.cmd('PWD')).text, '257 "/" is the current directory.');
  assert.equal((await c.cmd('CWD docs')).code, 250);
  assert.match((await c.cmd('PWD')).text, /"\/docs"/);
  assert.equal((await c.cmd('CDUP')).code, 250);
  assert.match((await c.cmd('XMKD made')).text, /^257 "\/made" created/);
  assert.equal((await c.cmd('XRMD made')).code, 250);
  assert.match((await c.cmd('PWD')).text, /^257 "\/"/);
  assert.equal((await c.cmd('SYST')).text, '215 UNIX Type: L8');
  assert.equal((await c.cmd('NOOP')).code, 200);
  const feat = await c.cmd('FEAT');
  assert.equal(feat.code, 211);
  for (const f of ['AUTH TLS', 'EPSV', 'EPRT', 'MDTM', 'SIZE', 'REST STREAM', 'MLST', 'UTF8']) assert.ok(feat.text.includes(f), f);
  assert.equal((await c.cmd('QUIT')).code, 221);
});

test('HELP lists the commands and HELP <verb> gives its syntax (the server side of remotehelp)', async (t) => {
  const { server } = await startTestFtp(t);
  const c = await RawFtp.connect(server.port);
  t.after(() => c.close());
  await c.reply();
  const help = await c.cmd('HELP');
  assert.equal(help.code, 214);
  for (const v of ['RETR', 'STOR', 'MLSD', 'EPSV', 'AUTH', 'STRU']) assert.ok(help.text.includes(v), v);
  assert.equal((await c.cmd('HELP RETR')).text, '214 Syntax: RETR <path>');
  assert.equal((await c.cmd('HELP XYZZY')).code, 502);
});

test('TYPE A converts LF to CRLF on the wire both ways; TYPE I keeps the bytes; STRU R/P and MODE B answer 504', async (t) => {
  const { server, sink } = await startTestFtp(t);
  const c = await RawFtp.connect(server.port);
  t.after(() => c.close());
  await c.login();
  assert.equal((await c.cmd('TYPE A')).code, 200);
  let data = await c.passive();
  assert.equal((await c.cmd('RETR readme.txt')).code, 150);
  const ascii = await readAll(data);
  assert.equal((await c.reply()).code, 226);
  assert.equal(ascii.toString(), WELCOME_TEXT.replace(/\n/g, '\r\n'));
  // The data connection is traced: who connected to whom, then bytes on the wire and the TYPE.
  const open = sink.find({ proto: 'ftp-data', kind: 'open' }).at(-1);
  assert.match(String(open?.meta?.route), /^client 127\.0\.0\.1:\d+ → server 127\.0\.0\.1:\d+$/);
  const closed = sink.find({ proto: 'ftp-data', kind: 'close' }).at(-1);
  assert.deepEqual([closed?.bytes, closed?.meta?.type, closed?.meta?.mode, closed?.meta?.verb], [ascii.length, 'A', 'passive', 'RETR']);
  assert.equal((await c.cmd('SIZE readme.txt')).text, `213 ${ascii.length}`);
  assert.equal((await c.cmd('TYPE I')).code, 200);
  assert.equal((await c.cmd('SIZE readme.txt')).text, `213 ${Buffer.byteLength(WELCOME_TEXT)}`);
  data = await c.passive(false);
  await c.cmd('RETR readme.txt');
  assert.equal((await readAll(data)).toString(), WELCOME_TEXT);
  assert.equal((await c.reply()).code, 226);
  // Upload in ASCII: CRLF on the wire is stored as LF.
  await c.cmd('TYPE A');
  data = await c.passive();
  assert.equal((await c.cmd('STOR up.txt')).code, 150);
  data.end('one\r\ntwo\r\n');
  assert.equal((await c.reply()).code, 226);
  assert.equal(await readFile(join(server.root, 'up.txt'), 'utf8'), 'one\ntwo\n');
  assert.equal((await c.cmd('STRU F')).code, 200);
  assert.equal((await c.cmd('STRU R')).code, 504);
  assert.equal((await c.cmd('STRU P')).code, 504);
  assert.equal((await c.cmd('MODE S')).code, 200);
  assert.equal((await c.cmd('MODE B')).code, 504);
  assert.equal((await c.cmd('TYPE E')).code, 504);
});

test('MLSD, MLST, MDTM, SIZE, NLST, LIST with options', async (t) => {
  const { server } = await startTestFtp(t);
  const c = await RawFtp.connect(server.port);
  t.after(() => c.close());
  await c.login();
  await c.cmd('TYPE I');
  let data = await c.passive();
  await c.cmd('MLSD');
  const mlsd = (await readAll(data)).toString();
  await c.reply();
  assert.match(mlsd, /^type=dir;modify=\d{14};perm=\w+; docs\r$/m);
  assert.match(mlsd, new RegExp(`^type=file;size=${Buffer.byteLength(WELCOME_TEXT)};modify=\\d{14};perm=\\w+; readme\\.txt\\r$`, 'm'));
  const mlst = await c.cmd('MLST readme.txt');
  assert.equal(mlst.code, 250);
  assert.match(mlst.text, /\n type=file;size=\d+;.* \/readme\.txt\n250 End/);
  assert.match((await c.cmd('MDTM readme.txt')).text, /^213 \d{14}$/);
  data = await c.passive();
  await c.cmd('NLST');
  assert.deepEqual((await readAll(data)).toString().split('\r\n').filter(Boolean), ['docs', 'readme.txt']);
  await c.reply();
  data = await c.passive();
  await c.cmd('LIST -la');
  assert.match((await readAll(data)).toString(), /^-rw.* 1 ftp ftp +\d+ \w{3} [ \d]\d [\d:]+ readme\.txt\r$/m);
  assert.equal((await c.reply()).code, 226);
  assert.equal((await c.cmd('MLSD readme.txt')).code, 501);
});

test('MKD, RNFR/RNTO, APPE, STOU, DELE, RMD through basic-ftp and raw commands', async (t) => {
  const { server } = await startTestFtp(t);
  const client = await FtpClient.connect({ port: server.port });
  t.after(() => client.close());
  await client.basic.ensureDir('/new/deeper');
  await client.basic.cd('/');
  await client.upload('abc', '/new/a.txt');
  await client.basic.appendFrom((await import('node:stream')).Readable.from([Buffer.from('def')]), '/new/a.txt');
  assert.equal(await readFile(join(server.root, 'new/a.txt'), 'utf8'), 'abcdef');
  await client.basic.rename('/new/a.txt', '/new/b.txt');
  assert.equal((await client.download('/new/b.txt')).toString(), 'abcdef');
  const stou = await client.active('STOU', { upload: Buffer.from('unique') });
  assert.equal(stou.final.code, 226);
  const names = (await client.list('/')).map((f) => f.name);
  const made = names.find((n) => n.startsWith('stou-'));
  assert.ok(made, names.join());
  assert.equal((await client.download(made)).toString(), 'unique');
  await client.basic.remove('/new/b.txt');
  assert.equal((await client.sendIgnoringError('RMD /new')).code, 550, 'not empty');
  await client.send('RMD /new/deeper');
  await client.send('RMD /new');
  await assert.rejects(stat(join(server.root, 'new')));
  assert.equal((await client.sendIgnoringError('RNTO x')).code, 503, 'RNTO without RNFR');
});

test('REST: RETR from an offset, STOR at an offset (REST STREAM)', async (t) => {
  const { server } = await startTestFtp(t);
  const client = await FtpClient.connect({ port: server.port });
  t.after(() => client.close());
  const body = Buffer.from('0123456789abcdef');
  await client.upload(body, 'r.bin');
  assert.equal((await client.download('r.bin', 10)).toString(), 'abcdef');
  await client.send('REST 4');
  const r = await client.active('STOR r.bin', { upload: Buffer.from('XY') });
  assert.equal(r.final.code, 226);
  assert.equal(await readFile(join(server.root, 'r.bin'), 'utf8'), '0123XY');
  assert.equal((await client.sendIgnoringError('REST abc')).code, 501);
});

test('explicit FTPS (AUTH TLS, PBSZ, PROT P) and implicit FTPS, passive and active', async (t) => {
  const { server, rootDir, sink } = await startTestFtp(t);
  const implicit = await startFtpServer({ rootDir, implicitTls: true });
  t.after(() => implicit.close());
  for (const [port, secure] of [[server.port, true], [implicit.port, 'implicit']] as const) {
    const client = await FtpClient.connect({ port, secure });
    t.after(() => client.close());
    assert.equal((await client.download('readme.txt')).toString(), WELCOME_TEXT);
    const a = await client.active('RETR readme.txt');
    assert.equal(a.data.toString(), WELCOME_TEXT);
  }
  assert.ok(sink.events.some((e) => e.proto === 'ftp-data' && e.kind === 'open' && e.meta?.tls === true));
  // PROT before PBSZ, PBSZ before AUTH: 503.
  const c = await RawFtp.connect(server.port);
  t.after(() => c.close());
  await c.reply();
  assert.equal((await c.cmd('PBSZ 0')).code, 503);
  await c.startTls();
  assert.equal((await c.cmd('PROT P')).code, 503);
  assert.equal((await c.cmd('PBSZ 0')).code, 200);
  assert.equal((await c.cmd('PROT S')).code, 536);
  assert.equal((await c.cmd('PROT P')).code, 200);
  assert.equal((await c.cmd('AUTH TLS')).code, 503);
});

test('the passive port range is honoured', async (t) => {
  // A random range, so parallel test runs rarely share it; a taken port in it is skipped over.
  const min = 45000 + Math.floor(Math.random() * 10000);
  const { server } = await startTestFtp(t, { pasvPortMin: min, pasvPortMax: min + 20 });
  const c = await RawFtp.connect(server.port);
  t.after(() => c.close());
  await c.login();
  for (let i = 0; i < 3; i++) {
    const port = Number(/\|\|\|(\d+)\|/.exec((await c.cmd('EPSV')).text)?.[1]);
    assert.ok(port >= min && port <= min + 20, String(port));
  }
  await assert.rejects(startFtpServer({ pasvPortMin: 3000, pasvPortMax: 2000 }), InvalidOptionError);
});

test('bad options throw a TypeError naming the option', async () => {
  await assert.rejects(startFtpServer({ maxLineLength: 1 }), (e: InvalidOptionError) => e.option === 'maxLineLength');
  await assert.rejects(startFtpServer({ users: [{ name: '../x', password: 'p' }] }), (e: InvalidOptionError) => e.option === 'users[0].name');
  await assert.rejects(startFtpServer({ tls: false, implicitTls: true }), (e: InvalidOptionError) => e.option === 'tls');
});

test('the demo root is seeded once and the readme has LF endings', async (t) => {
  const { server } = await startTestFtp(t);
  assert.equal(await readFile(join(server.root, 'readme.txt'), 'utf8'), WELCOME_TEXT);
  await writeFile(join(server.root, 'readme.txt'), 'changed');
  const again = await startFtpServer({ rootDir: join(server.root, '..') });
  await again.close();
  assert.equal(await readFile(join(server.root, 'readme.txt'), 'utf8'), 'changed');
});

test('requireTls: no login in the clear (534), no transfer over a clear data connection (521)', async (t) => {
  const { server } = await startTestFtp(t, { requireTls: true });
  const c = await RawFtp.connect(server.port);
  t.after(() => c.close());
  await c.reply();
  assert.equal((await c.cmd('USER demo')).code, 534);
  await c.startTls();
  assert.equal((await c.cmd('USER demo')).code, 331);
  assert.equal((await c.cmd('PASS demo')).code, 230);
  assert.equal((await c.cmd('LIST')).code, 521);
  assert.equal((await c.cmd('RETR readme.txt')).code, 521);
  const client = await FtpClient.connect({ port: server.port, secure: true });
  t.after(() => client.close());
  assert.equal((await client.download('readme.txt')).toString(), WELCOME_TEXT, 'PBSZ 0 + PROT P: allowed');
  await assert.rejects(FtpClient.connect({ port: server.port, secure: false }), (e: { code?: number }) => e.code === 534);
});
