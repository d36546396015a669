import assert from 'node:assert/strict';
import { once } from 'node:events';
import tls from 'node:tls';
import { test } from 'node:test';
import { FtpClient } from '../../clients/ftp.ts';
import { InvalidOptionError } from '../../core/options.ts';
import { tlsClientOptions } from '../../core/tls/index.ts';
import { startFtpServer } from '../../servers/ftp/index.ts';
import { RawFtp, startTestFtp } from '../helpers/ftp.ts';

test('FTP secure default: USER before AUTH TLS gets 530 (PASS is never asked for); anonymous works in clear; after AUTH TLS the login works', async (t) => {
  const { server, sink } = await startTestFtp(t, { allowInsecureAuth: false, anonymous: true });
  const c = await RawFtp.connect(server.port);
  t.after(() => c.close());
  await c.reply();
  assert.equal((await c.cmd('USER demo')).code, 530);
  assert.equal((await c.cmd('PASS demo')).code, 503, 'no USER was accepted, so PASS is out of order');
  assert.equal(sink.find({ kind: 'auth-refused' }).length, 1);
  const anon = await RawFtp.connect(server.port);
  t.after(() => anon.close());
  await anon.login('anonymous', 'me@example.org');
  await c.startTls();
  assert.equal((await c.cmd('USER demo')).code, 331);
  assert.equal((await c.cmd('PASS demo')).code, 230);
  // wirelab's client: AUTH TLS by default; in clear it gets the 530.
  const client = await FtpClient.connect({ port: server.port });
  t.after(() => client.close());
  assert.equal((await client.send('PWD')).code, 257);
  await assert.rejects(FtpClient.connect({ port: server.port, secure: false }), (e: { code?: number }) => e.code === 530);
});

test('FTP options: allowInsecureAuth must be a boolean; tls: false without it (and without anonymous) is refused', async () => {
  await assert.rejects(startFtpServer({ allowInsecureAuth: 'no' as never }), (e: InvalidOptionError) => e.option === 'allowInsecureAuth');
  await assert.rejects(startFtpServer({ tls: false }), (e: InvalidOptionError) => e.option === 'allowInsecureAuth');
});

test('AUTH TLS: a command pipelined in clear behind it is discarded, not run inside TLS (STARTTLS injection)', async (t) => {
  const { server, sink } = await startTestFtp(t, { allowInsecureAuth: false });
  const c = await RawFtp.connect(server.port);
  t.after(() => c.close());
  await c.reply();
  // In one segment: whatever follows AUTH TLS before the handshake was sent in clear, so it must not count.
  c.write('AUTH TLS\r\nUSER demo\r\n');
  assert.equal((await c.reply()).code, 234);
  c.socket.removeAllListeners('data');
  const secure = tls.connect({ ...(await tlsClientOptions()), socket: c.socket });
  secure.on('error', () => {});
  t.after(() => secure.destroy());
  await once(secure, 'secureConnect');
  let text = '';
  secure.on('data', (d: Buffer) => (text += d.toString()));
  secure.write('PASS demo\r\n');
  while (!/\r\n/.test(text)) await new Promise((r) => setTimeout(r, 10));
  assert.match(text, /^503 /, 'USER was discarded, so PASS is out of order');
  assert.equal(sink.find({ kind: 'discarded' }).length, 1);
});
