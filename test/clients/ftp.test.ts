import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connectFtp, FtpClient } from '../../clients/ftp.ts';
import { InvalidOptionError } from '../../core/options.ts';
import { createTracer, MemorySink } from '../../core/trace/index.ts';
import { startTestFtp } from '../helpers/ftp.ts';

test("basic-ftp's verbose log becomes ftp-client trace events, with PASS redacted", async (t) => {
  const f = await startTestFtp(t, { users: [{ name: 'bob', password: 'hunter2-secret' }] });
  const sink = new MemorySink();
  const client = await FtpClient.connect({ port: f.server.port, user: 'bob', password: 'hunter2-secret', tracer: createTracer([sink]) });
  t.after(() => client.close());
  await client.list();
  const ev = sink.find({ proto: 'ftp-client' });
  assert.ok(ev.some((e) => e.dir === '>' && e.kind === 'command' && e.summary === 'USER bob'));
  assert.ok(ev.some((e) => e.dir === '>' && e.summary === 'PASS ****'));
  assert.ok(ev.some((e) => e.dir === '<' && e.kind === 'reply' && e.summary.startsWith('230')));
  assert.ok(ev.some((e) => e.kind === 'data-open' && /passive: client .* → server /.test(e.summary)));
  assert.ok(!sink.events.some((e) => e.summary.includes('hunter2')));
});

test('active mode: PORT and EPRT with a listening data socket; a refused inbound connection gives 425', async (t) => {
  const f = await startTestFtp(t);
  const client = await connectFtp({ port: f.server.port });
  t.after(() => client.close());
  for (const eprt of [false, true]) {
    const r = await client.active('NLST', { eprt });
    assert.equal(r.final.code, 226);
    assert.deepEqual(r.data.toString().split('\r\n').filter(Boolean), ['docs', 'readme.txt']);
    assert.equal(r.connection?.openedBy, 'server');
  }
  await assert.rejects(client.active('RETR readme.txt', { inbound: 'refuse' }), (e: { code?: number }) => e.code === 425);
  assert.equal((await client.send('NOOP')).code, 200, 'the control connection is still usable');
  const up = await client.active('STOR act.txt', { upload: Buffer.from('active upload') });
  assert.equal(up.final.code, 226);
  assert.equal((await client.download('act.txt')).toString(), 'active upload');
});

test('client options are checked', async () => {
  await assert.rejects(FtpClient.connect({ port: 70000 }), InvalidOptionError);
  await assert.rejects(FtpClient.connect({ port: 21, timeoutMs: 0 }), InvalidOptionError);
});
