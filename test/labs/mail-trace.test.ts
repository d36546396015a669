import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runLab } from '../../core/lab/index.ts';
import { MemorySink, createTracer } from '../../core/trace/index.ts';
import mailFlow from '../../labs/mail-flow.ts';

// With tracing on, every protocol of the mail lab is traced from both ends, and no credential reaches a trace.
test('mail-flow traced: SMTP, IMAP, POP3 and TLS events from both sides, no password or AUTH secret in any event', async () => {
  const sink = new MemorySink();
  const r = await runLab(mailFlow, { tracer: createTracer([sink]) });
  assert.ok(r.ok, r.error);
  const seen = new Set(sink.events.map((e) => `${e.proto} ${e.cid.replace(/#\d+$/, '')}`));
  // Servers (smtp#, imap#, pop3#) and clients (smtpc#, imapc#, pop3c#) of each protocol.
  for (const p of ['smtp smtp', 'smtp smtpc', 'imap imap', 'imap imapc', 'pop3 pop3', 'pop3 pop3c']) assert.ok(seen.has(p), `${p} traced: ${[...seen].join(', ')}`);
  assert.ok(sink.find({ proto: 'imap', kind: 'continuation' }).every((e) => e.summary === '****' || e.summary === 'DONE'));
  const all = JSON.stringify(sink.events);
  for (const secret of ['demo demo', Buffer.from('\0demo\0demo').toString('base64'), 'PASS demo']) assert.ok(!all.includes(secret), secret);
});
