import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FtpClient } from '../../clients/ftp.ts';
import { getTlsMaterial } from '../../core/tls/index.ts';
import { createTracer, MemorySink } from '../../core/trace/index.ts';
import { requirePeer } from '../helpers/peers.ts';

// Our client (basic-ftp plus our active mode) against a server nobody here wrote: Debian's pure-ftpd, with a virtual
// user made by pure-pw, started on 127.0.0.1 on free high ports and stopped by its PID.

function runWithInput(cmd: string, args: string[], input: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code} ${err}`))));
    // pure-pw may exit before it has read everything (EPIPE): its exit code says whether it worked.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, ms: number): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`pure-ftpd did not listen on ${port} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('basic-ftp client against pure-ftpd (pure-pw virtual user): passive, our active mode, and FTPS', async (t) => {
  if (!requirePeer(t, 'pure-ftpd', 'pure-ftpd') || !requirePeer(t, 'pure-pw', 'pure-ftpd')) return;
  const dir = await mkdtemp(join(tmpdir(), 'wirelab-pureftpd-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const home = join(dir, 'home');
  await mkdir(home);
  // pure-ftpd logs virtual users in only when it was started as root ("421 Sorry, but I can't trust you" otherwise),
  // and never as uid 0: the files belong to nobody (65534).
  if (process.getuid?.() !== 0) {
    const message = 'pure-ftpd serves pure-pw virtual users only when started as root';
    if (process.env.CI === 'true') throw new Error(`CI=true and ${message}`);
    return t.skip(message);
  }
  const uid = 65534;
  const gid = 65534;
  await chmod(dir, 0o755);
  await chown(home, uid, gid);
  const password = 'wirelab-interop-pw';
  const passwd = join(dir, 'pureftpd.passwd');
  const pdb = join(dir, 'pureftpd.pdb');
  await runWithInput('pure-pw', ['useradd', 'tester', '-u', String(uid), '-g', String(gid), '-d', home, '-f', passwd], `${password}\n${password}\n`);
  await runWithInput('pure-pw', ['mkdb', pdb, '-f', passwd], '');
  const m = await getTlsMaterial();
  const cert = join(dir, 'cert.pem');
  await writeFile(cert, m.key + m.cert, { mode: 0o600 });

  const port = await freePort();
  const pasvMin = 47000 + Math.floor(Math.random() * 10000);
  const child = spawn('pure-ftpd', ['-S', `127.0.0.1,${port}`, '-l', `puredb:${pdb}`, '-p', `${pasvMin}:${pasvMin + 30}`, '-E', '-A', '-H', '-Y', '1', '-2', cert], {
    stdio: 'ignore',
  });
  t.after(() => {
    if (child.exitCode === null && child.pid) process.kill(child.pid, 'SIGTERM');
  });
  await waitForPort(port, 5000);

  const sink = new MemorySink();
  const tracer = createTracer([sink]);
  const client = await FtpClient.connect({ port, user: 'tester', password, tracer, timeoutMs: 15_000 });
  t.after(() => client.close());
  const body = Buffer.from('hello pure-ftpd\n'.repeat(1000));
  await client.upload(body, 'from-wirelab.txt');
  assert.ok((await readFile(join(home, 'from-wirelab.txt'))).equals(body));
  assert.ok((await client.list()).some((f) => f.name === 'from-wirelab.txt'));
  assert.ok((await client.download('from-wirelab.txt')).equals(body));
  // Our active path (basic-ftp has none) against a server we did not write.
  const active = await client.active('RETR from-wirelab.txt', { eprt: false });
  assert.equal(active.final.code, 226);
  assert.ok(active.data.equals(body));
  assert.equal(active.connection?.openedBy, 'server');
  assert.ok(client.dataConnections.some((d) => d.mode === 'passive' && d.openedBy === 'client'));
  const events = sink.events.filter((e) => e.proto === 'ftp-client');
  assert.ok(events.some((e) => e.kind === 'command' && e.summary === 'USER tester'));
  assert.ok(events.some((e) => e.kind === 'reply' && e.summary.startsWith('230')));
  assert.ok(!sink.events.some((e) => e.summary.includes(password)), 'the password never reaches the trace');

  const secure = await FtpClient.connect({ port, user: 'tester', password, secure: true, timeoutMs: 15_000 });
  t.after(() => secure.close());
  assert.ok(secure.basic.ftp.hasTLS);
  assert.ok((await secure.download('from-wirelab.txt')).equals(body));
});
