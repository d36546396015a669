import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { createSmtpClient } from '../../../clients/smtp.ts';
import { MemorySink, createTracer } from '../../../core/trace/index.ts';
import { startSmtpServer } from '../../../servers/smtp/index.ts';
import { memoryStore, waitFor } from '../../helpers/mail.ts';

/** A raw SMTP conversation: sends each line after the previous reply, returns every reply. */
export async function smtpTalk(port: number, lines: string[], wait = 'end'): Promise<string[]> {
  const sock = net.connect(port, '127.0.0.1');
  let buf = '';
  sock.on('data', (d) => (buf += d.toString('latin1')));
  const replies: string[] = [];
  const reply = async (): Promise<string> => {
    for (let i = 0; i < 200; i++) {
      const m = /^(\d{3}) .*\r\n/m.exec(buf);
      if (m) {
        const end = m.index + m[0].length;
        const r = buf.slice(0, end);
        buf = buf.slice(end);
        return r.trim();
      }
      if (sock.destroyed && buf === '') return 'closed';
      await new Promise((r) => setTimeout(r, 10));
    }
    return 'timeout';
  };
  replies.push(await reply());
  for (const l of lines) {
    sock.write(l + '\r\n');
    replies.push(await reply());
  }
  void wait;
  sock.destroy();
  return replies;
}

test('nodemailer over STARTTLS with AUTH PLAIN delivers into the INBOX; the trace has C:/S: lines and no password', async (t) => {
  const store = await memoryStore();
  const sink = new MemorySink();
  const srv = await startSmtpServer({ store, tracer: createTracer([sink]) });
  t.after(() => srv.close());
  const client = await createSmtpClient({ port: srv.port, requireTls: true, auth: { user: 'demo', pass: 'demo' } });
  const info = await client.send({ from: 'demo@localhost', to: ['ann@localhost', 'demo@wirelab.test'], subject: 'hi', text: 'body' });
  client.close();
  assert.deepEqual(info.accepted.sort(), ['ann@localhost', 'demo@wirelab.test']);
  assert.equal(store.mailbox('ann', 'INBOX')!.messages.length, 1);
  assert.equal(store.mailbox('demo', 'INBOX')!.messages.length, 1);
  assert.match(store.mailbox('ann', 'INBOX')!.messages[0]!.raw.toString(), /Subject: hi/);
  const commands = sink.find({ proto: 'smtp', kind: 'command' }).map((e) => e.summary);
  assert.ok(commands.some((c) => /^EHLO/.test(c)), commands.join('\n'));
  assert.ok(commands.some((c) => /^STARTTLS/.test(c)));
  assert.ok(sink.find({ proto: 'tls' }).length >= 0);
  const all = JSON.stringify(sink.events);
  assert.ok(!all.includes(Buffer.from('\0demo\0demo').toString('base64')), 'the AUTH PLAIN secret is not traced');
});

test('implicit TLS (smtps) with AUTH LOGIN', async (t) => {
  const store = await memoryStore();
  const srv = await startSmtpServer({ store, secure: true });
  t.after(() => srv.close());
  const client = await createSmtpClient({ port: srv.port, secure: true, auth: { user: 'ann', pass: 'secret' } });
  const info = await client.send({ from: 'ann@localhost', to: 'demo@localhost', subject: 'tls', text: 'x' });
  client.close();
  assert.deepEqual(info.accepted, ['demo@localhost']);
  assert.equal(store.mailbox('demo', 'INBOX')!.messages.length, 1);
});

test('unknown recipient 550, oversized message 552, nothing stored; unknown commands 500 then 421', async (t) => {
  const store = await memoryStore();
  const srv = await startSmtpServer({ store, maxMessageSize: 1000 });
  t.after(() => srv.close());
  const r = await smtpTalk(srv.port, ['EHLO me', 'MAIL FROM:<a@localhost>', 'RCPT TO:<nobody@localhost>', 'RCPT TO:<demo@localhost>', 'DATA', 'Subject: big\r\n\r\n' + 'x'.repeat(2000) + '\r\n.']);
  assert.match(r[3]!, /^550/);
  assert.match(r[4]!, /^250/);
  assert.match(r[6]!, /^552/);
  assert.equal(store.mailbox('demo', 'INBOX')!.messages.length, 0);
  const size = await smtpTalk(srv.port, ['EHLO me', 'MAIL FROM:<a@localhost> SIZE=5000']);
  assert.match(size[2]!, /^552/);
  const junk = await smtpTalk(srv.port, Array.from({ length: 11 }, () => 'FOO'));
  assert.match(junk[1]!, /^500/);
  assert.ok(junk.some((l) => /^421/.test(l)), junk.join('\n'));
  // The server keeps serving.
  const ok = await smtpTalk(srv.port, ['EHLO me', 'QUIT']);
  assert.match(ok[1]!, /^250/);
});

test('bad base64 in AUTH, wrong passwords slowed down, commands out of order, vanishing mid-DATA', async (t) => {
  const store = await memoryStore();
  const sink = new MemorySink();
  const srv = await startSmtpServer({ store, allowInsecureAuth: true, authFailureDelayMs: 20, tracer: createTracer([sink]) });
  t.after(() => srv.close());
  const r = await smtpTalk(srv.port, ['EHLO me', 'AUTH PLAIN !!!notbase64', `AUTH PLAIN ${Buffer.from('\0demo\0wrong').toString('base64')}`, 'RCPT TO:<demo@localhost>', 'DATA']);
  assert.match(r[2]!, /^5\d\d/);
  assert.match(r[3]!, /^535/);
  assert.match(r[4]!, /^503/);
  assert.match(r[5]!, /^503/);
  assert.equal(sink.find({ kind: 'auth-failed' }).length, 1);
  assert.ok(!JSON.stringify(sink.events).includes(Buffer.from('\0demo\0wrong').toString('base64')));
  // A client that vanishes in the middle of DATA leaves nothing stored.
  const sock = net.connect(srv.port, '127.0.0.1');
  await new Promise((res) => sock.once('data', res));
  let heard = '';
  sock.on('data', (d: Buffer) => (heard += d.toString()));
  sock.write('EHLO me\r\nMAIL FROM:<a@localhost>\r\nRCPT TO:<demo@localhost>\r\nDATA\r\nSubject: half\r\n\r\nsome text');
  await waitFor(() => /^354 /m.test(heard), '354');
  sock.destroy();
  await waitFor(() => sink.find({ proto: 'smtp', kind: 'close' }).length >= 2, 'the close event');
  assert.equal(store.mailbox('demo', 'INBOX')!.messages.length, 0);
  const ok = await smtpTalk(srv.port, ['EHLO me']);
  assert.match(ok[1]!, /^250/);
});

test('chaos: rules are checked when set; an overlong command line gets an answer and the server keeps serving', async (t) => {
  const store = await memoryStore();
  await assert.rejects(startSmtpServer({ store, chaos: { data: { code: 200, probability: 1 } } }), { code: 'WL_ERR_INVALID_OPTION' });
  const srv = await startSmtpServer({ store, chaos: { recipient: { code: 451, probability: 1, times: 1 } } });
  t.after(() => srv.close());
  assert.throws(() => srv.setChaos({ sender: { code: 550, probability: 2 } }), { code: 'WL_ERR_INVALID_OPTION' });
  const r = await smtpTalk(srv.port, ['EHLO me', 'MAIL FROM:<a@localhost>', 'RCPT TO:<demo@localhost>', 'RCPT TO:<demo@localhost>']);
  assert.match(r[3]!, /^451/);
  assert.match(r[4]!, /^250/);
  const long = await smtpTalk(srv.port, ['EHLO ' + 'x'.repeat(20_000)]);
  assert.match(long[1]!, /^[45]\d\d/);
  const ok = await smtpTalk(srv.port, ['EHLO me']);
  assert.match(ok[1]!, /^250/);
});
