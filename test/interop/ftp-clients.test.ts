import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { getTlsMaterial } from '../../core/tls/index.ts';
import { startFtpServer, WELCOME_TEXT } from '../../servers/ftp/index.ts';
import { startTestFtp, type TestFtp } from '../helpers/ftp.ts';
import { requirePeer } from '../helpers/peers.ts';

// Our FTP server against clients nobody here wrote: curl, lftp and Python's ftplib. The server runs in this process,
// so the clients run asynchronously (a sync spawn would block the server's event loop).
const run = promisify(execFile);
const opts = { timeout: 30_000 };

const dataOpens = (f: TestFtp, mode: 'active' | 'passive', tls?: boolean): number =>
  f.sink.events.filter((e) => e.proto === 'ftp-data' && e.kind === 'open' && e.meta?.mode === mode && (tls === undefined || e.meta?.tls === tls)).length;

test('curl: a login in clear is refused (530); list, download, upload (passive), --ftp-port (active) with --ssl-reqd; ftps://', async (t) => {
  if (!requirePeer(t, 'curl', 'curl')) return;
  // The secure default: USER before AUTH TLS gets 530, so curl without --ssl-reqd never sends the password.
  const f = await startTestFtp(t, { allowInsecureAuth: false });
  const { caCertPath } = await getTlsMaterial();
  const base = `ftp://demo:demo@127.0.0.1:${f.server.port}`;
  await assert.rejects(run('curl', ['-sS', `${base}/`], opts), (e: { code?: number; stderr?: string }) => e.code === 67 && /530/.test(e.stderr ?? ''));
  assert.ok(!f.sink.events.some((e) => e.kind === 'command' && /^PASS/.test(e.summary)), 'PASS was never sent');
  const tlsArgs = ['-sS', '--ssl-reqd', '--cacert', caCertPath];
  const list = await run('curl', [...tlsArgs, `${base}/`], opts);
  assert.match(list.stdout, /readme\.txt/);
  assert.equal((await run('curl', [...tlsArgs, `${base}/readme.txt`], opts)).stdout, WELCOME_TEXT);
  const local = join(f.rootDir, 'local-upload.bin');
  const body = Buffer.alloc(300_000);
  for (let i = 0; i < body.length; i++) body[i] = (i * 31) & 0xff;
  await writeFile(local, body);
  await run('curl', [...tlsArgs, '-T', local, `${base}/docs/up.bin`], opts);
  assert.ok((await readFile(join(f.server.root, 'docs', 'up.bin'))).equals(body));
  // Active mode with the control connection in TLS and the data in clear (--ftp-ssl-control): curl 7.88's active mode
  // with PROT P fails on its own side ("sa_addr inet_ntop() failed with errno 97") before its TLS handshake.
  const controlOnly = ['-sS', '--ftp-ssl-control', '--cacert', caCertPath, '--ftp-port', '127.0.0.1'];
  assert.equal((await run('curl', [...controlOnly, `${base}/readme.txt`], opts)).stdout, WELCOME_TEXT);
  assert.ok(dataOpens(f, 'active', false) >= 1, 'curl --ftp-port made the server connect to it');
  assert.ok(dataOpens(f, 'passive', true) >= 1, 'the data connection was TLS too (PROT P)');
  assert.ok(f.sink.events.some((e) => e.kind === 'command' && /^AUTH (SSL|TLS)$/.test(e.summary)));

  const implicit = await startFtpServer({ rootDir: f.rootDir, implicitTls: true });
  t.after(() => implicit.close());
  const r = await run('curl', ['-sS', '--cacert', caCertPath, `ftps://demo:demo@localhost:${implicit.port}/readme.txt`], opts);
  assert.equal(r.stdout, WELCOME_TEXT);
});

test('lftp: AUTH TLS, then ls, get, put in passive and active mode (clear data), and with the data protected too', async (t) => {
  if (!requirePeer(t, 'lftp', 'lftp')) return;
  const f = await startTestFtp(t, { allowInsecureAuth: false });
  const { caCertPath } = await getTlsMaterial();
  const out = join(f.rootDir, 'lftp-got.txt');
  const up = join(f.rootDir, 'lftp-put.txt');
  await writeFile(up, 'from lftp\n');
  const lftp = (settings: string, script: string) =>
    run('lftp', ['-u', 'demo,demo', '-p', String(f.server.port), '-e', `${settings}; ${script}; bye`, '127.0.0.1'], opts);
  const common = 'set net:max-retries 1; set net:timeout 10; set cmd:fail-exit yes';
  // AUTH TLS on the control connection (the server refuses USER in clear); data in clear (PROT C) unless asked.
  const plain = `${common}; set ftp:ssl-force yes; set ftp:ssl-protect-data no; set ssl:ca-file ${caCertPath}`;
  const ls = await lftp(`${plain}; set ftp:passive-mode on`, `ls; get readme.txt -o ${out}; put ${up} -o docs/lftp.txt`);
  assert.match(ls.stdout, /readme\.txt/);
  assert.equal(await readFile(out, 'utf8'), WELCOME_TEXT);
  assert.equal(await readFile(join(f.server.root, 'docs', 'lftp.txt'), 'utf8'), 'from lftp\n');
  const activeBefore = dataOpens(f, 'active');
  await lftp(`${plain}; set ftp:passive-mode off; set ftp:port-ipv4 127.0.0.1`, `cls -1 /docs; get readme.txt -o ${out}.2`);
  assert.equal(await readFile(`${out}.2`, 'utf8'), WELCOME_TEXT);
  assert.ok(dataOpens(f, 'active') > activeBefore, 'lftp in active mode');
  await lftp(`${common}; set ftp:ssl-force yes; set ftp:ssl-protect-data yes; set ssl:ca-file ${caCertPath}`, `get readme.txt -o ${out}.3`);
  assert.equal(await readFile(`${out}.3`, 'utf8'), WELCOME_TEXT);
  assert.ok(dataOpens(f, 'passive', true) >= 1, 'lftp with TLS on the data connection');
});

const PY = `
import ftplib, io, json, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
out = {}
p = ftplib.FTP()
p.connect('127.0.0.1', port, timeout=10)
try:
    p.login('demo', 'demo'); out['clear_login'] = 'accepted'
except ftplib.error_perm as e:
    out['clear_login'] = str(e)[:3]
p.close()
f = ftplib.FTP_TLS(context=ssl.create_default_context(cafile=ca))
f.connect('127.0.0.1', port, timeout=10)
f.login('demo', 'demo')
f.set_pasv(False)
buf = io.BytesIO(); f.retrbinary('RETR readme.txt', buf.write); out['active_retr'] = buf.getvalue().decode()
lines = []; f.retrlines('LIST', lines.append); out['active_list'] = lines
f.storbinary('STOR docs/py-active.bin', io.BytesIO(b'a' * 5000))
lines = []; f.retrlines('RETR readme.txt', lines.append); out['ascii_lines'] = lines
f.sendcmd('TYPE I'); out['help'] = f.sendcmd('HELP RETR')
f.quit()
g = ftplib.FTP_TLS(context=ssl.create_default_context(cafile=ca))
g.connect('127.0.0.1', port, timeout=10)
g.login('demo', 'demo')
g.prot_p()
buf = io.BytesIO(); g.retrbinary('RETR readme.txt', buf.write); out['tls_pasv_retr'] = buf.getvalue().decode()
g.storbinary('STOR docs/py-tls.bin', io.BytesIO(b't' * 7000))
g.set_pasv(False)
buf = io.BytesIO(); g.retrbinary('RETR readme.txt', buf.write); out['tls_active_retr'] = buf.getvalue().decode()
g.quit()
print(json.dumps(out))
`;

test("Python's ftplib: FTP refused in clear (530); FTP_TLS with PROT C in active mode, retrlines in ASCII; with PROT P", async (t) => {
  if (!requirePeer(t, 'python3', 'python3')) return;
  const f = await startTestFtp(t, { allowInsecureAuth: false });
  const { caCertPath } = await getTlsMaterial();
  const r = await run('python3', ['-c', PY, String(f.server.port), caCertPath], opts);
  const out = JSON.parse(r.stdout);
  assert.equal(out.clear_login, '530');
  assert.equal(out.active_retr, WELCOME_TEXT);
  assert.ok(out.active_list.some((l: string) => l.endsWith(' readme.txt')));
  assert.deepEqual(out.ascii_lines, WELCOME_TEXT.trimEnd().split('\n'));
  assert.equal(out.help, '214 Syntax: RETR <path>');
  assert.equal(out.tls_pasv_retr, WELCOME_TEXT);
  assert.equal(out.tls_active_retr, WELCOME_TEXT);
  assert.equal((await readFile(join(f.server.root, 'docs', 'py-active.bin'))).length, 5000);
  assert.equal((await readFile(join(f.server.root, 'docs', 'py-tls.bin'))).length, 7000);
  assert.ok(dataOpens(f, 'active', false) >= 3 && dataOpens(f, 'active', true) >= 1);
});
