import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defineLab, runLab } from '../../core/lab/index.ts';
import mailRows from '../../labs/handshakes/mail.ts';

// The mail rows of the handshakes lab, run through the lab runner on their own (the lab itself is the lead's).
test('handshakes mail rows: every claim holds, round trips counted', async () => {
  let rows: Awaited<ReturnType<typeof mailRows>> = [];
  const lab = defineLab({
    id: 'handshakes-mail',
    title: 'mail rows',
    concept: 'mail handshakes',
    protocols: ['smtp', 'imap', 'pop3'],
    async run(ctx) {
      rows = await mailRows(ctx);
    },
  });
  const r = await runLab(lab);
  assert.equal(r.error, undefined);
  assert.ok(r.ok, JSON.stringify(r.findings.filter((f) => f.type === 'claim' && !f.holds)));
  const byName = Object.fromEntries(rows.map((x) => [x.handshake, x.roundTrips]));
  assert.equal(byName['SMTP greeting to EHLO 250'], 2);
  assert.equal(byName['IMAP greeting, CAPABILITY, LOGIN'], 3);
  assert.equal(byName['POP3 greeting, USER, PASS'], 3);
  assert.ok(byName['SMTP STARTTLS to EHLO 250 (TLS)']! >= 5);
  assert.ok(!JSON.stringify(rows).includes('demo demo'), 'no password in the steps');
});
