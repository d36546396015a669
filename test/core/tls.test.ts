import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { connectTcp } from '../../clients/tcp.ts';
import { getTlsMaterial } from '../../core/tls/index.ts';
import { createTracer, MemorySink } from '../../core/trace/index.ts';
import { startTcpServer } from '../../servers/tcp/index.ts';

const dir = await mkdtemp(join(tmpdir(), 'wl-tls-'));
const certDir = join(dir, 'tls');

test('a CA and a localhost certificate are made once, cached and reused', async () => {
  const a = await getTlsMaterial({ dir: certDir });
  const mtime = (await stat(a.certPath)).mtimeMs;
  const b = await getTlsMaterial({ dir: certDir });
  assert.equal(a.cert, b.cert);
  assert.equal((await stat(a.certPath)).mtimeMs, mtime);
  const leaf = new X509Certificate(a.cert);
  const ca = new X509Certificate(a.caCert);
  assert.ok(leaf.verify(ca.publicKey), 'the leaf is signed by the CA');
  assert.ok(leaf.checkHost('localhost'));
  assert.ok(leaf.checkIP('127.0.0.1'));
  assert.equal(ca.ca, true);
  assert.equal((await stat(a.keyPath)).mode & 0o777, 0o600);
});

for (const version of ['1.2', '1.3'] as const) {
  test(`TLS ${version} is selectable, the handshake is traced, the certificate verifies`, async (t) => {
    const mem = new MemorySink();
    const tracer = createTracer([mem]);
    const server = await startTcpServer({ framing: 'line', tls: { certDir, minVersion: version, maxVersion: version }, tracer });
    t.after(() => server.close());
    const c = await connectTcp({ port: server.port, framing: 'line', tls: { certDir, alpn: ['wirelab'] }, tracer });
    await c.send('secret-free hello');
    assert.equal(String(await c.next()), 'secret-free hello');
    assert.equal(c.tls?.version, `TLSv${version}`);
    assert.equal(c.tls?.subject, 'CN=localhost');
    assert.equal(c.tls?.resumed, false);
    await c.end();
    const hs = mem.find({ proto: 'tls', kind: 'handshake' });
    assert.equal(hs.length, 1);
    assert.match(hs[0]!.summary, new RegExp(`server: TLSv${version} \\S+ alpn=none cert=CN=localhost full`));
  });
}

test('a client that does not trust the CA is refused and the server keeps serving', async (t) => {
  const server = await startTcpServer({ framing: 'line', tls: { certDir } });
  t.after(() => server.close());
  const { default: tls } = await import('node:tls');
  const err = await new Promise<Error>((resolve) => {
    const s = tls.connect({ port: server.port, host: '127.0.0.1', servername: 'localhost' });
    s.once('error', resolve);
  });
  assert.match(err.message, /self-signed|unable to (get|verify)/i);
  const c = await connectTcp({ port: server.port, framing: 'line', tls: { certDir } });
  await c.send('ok');
  assert.equal(String(await c.next()), 'ok');
  await c.end();
});

test('SSLKEYLOGFILE gets NSS key log lines from both ends', async (t) => {
  const keylogFile = join(dir, 'keys.log');
  const server = await startTcpServer({ tls: { certDir, keylogFile } });
  t.after(() => server.close());
  const c = await connectTcp({ port: server.port, tls: { certDir, keylogFile, maxVersion: '1.3' } });
  await c.send('x');
  await c.readBytes(1);
  await c.end();
  await new Promise((r) => setTimeout(r, 50));
  const lines = (await readFile(keylogFile, 'utf8')).trim().split('\n');
  assert.ok(lines.some((l) => l.startsWith('CLIENT_HANDSHAKE_TRAFFIC_SECRET ')));
  assert.ok(lines.every((l) => /^[A-Z_0-9]+ [0-9a-f]+ [0-9a-f]+$/.test(l)));
});

test('a bad TLS version option is a TypeError naming it', async () => {
  await assert.rejects(startTcpServer({ tls: { certDir, minVersion: '1.1' as never } }), { code: 'WL_ERR_INVALID_OPTION', option: 'tls.minVersion' });
});
