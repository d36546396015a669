import { connect } from 'node:net';
import { once } from 'node:events';
import { createSmtpClient } from '../clients/smtp.ts';
import { defineLab } from '../core/lab/index.ts';
import { openMailStore } from '../servers/mail/store/index.ts';
import { startPop3Server } from '../servers/pop3/index.ts';
import { startSmtpServer, type RelayOutcome } from '../servers/smtp/index.ts';

/**
 * Sends each command on one plain-text connection and returns the first reply line each got (after the greeting and
 * the `hello` commands, whose replies are skipped). `multiline` says which answers go on until a "." line (POP3).
 */
async function talk(port: number, commands: string[], hello: string[] = [], multiline: (command: string, first: string) => boolean = () => false): Promise<string[]> {
  const socket = connect({ host: '127.0.0.1', port });
  socket.on('error', () => undefined);
  let buffered = '';
  const waiters: Array<(line: string) => void> = [];
  const lines: string[] = [];
  socket.on('data', (c: Buffer) => {
    buffered += c.toString('latin1');
    for (let i = buffered.indexOf('\r\n'); i >= 0; i = buffered.indexOf('\r\n')) {
      const line = buffered.slice(0, i);
      buffered = buffered.slice(i + 2);
      // Multi-line SMTP replies ("250-...") end with the line that has a space after the code; POP3 lines are one each.
      if (/^\d{3}-/.test(line)) continue;
      const w = waiters.shift();
      if (w) w(line);
      else lines.push(line);
    }
  });
  const next = (): Promise<string> =>
    new Promise((resolve) => {
      const l = lines.shift();
      if (l !== undefined) resolve(l);
      else waiters.push(resolve);
    });
  await once(socket, 'connect');
  await next();
  for (const h of hello) {
    socket.write(`${h}\r\n`);
    await next();
  }
  const out: string[] = [];
  for (const c of commands) {
    socket.write(`${c}\r\n`);
    const first = await next();
    out.push(first);
    // A POP3 multi-line answer ends with a line holding only "."
    if (multiline(c, first)) while ((await next()) !== '.');
  }
  socket.end('QUIT\r\n');
  return out;
}

const headerBlock = (raw: Buffer): string => {
  const s = raw.toString('utf8');
  return s.slice(0, s.indexOf('\r\n\r\n'));
};

/** The `Received:` headers of a message, top (newest) first, each unfolded to one line. */
function receivedLines(raw: Buffer): string[] {
  return headerBlock(raw)
    .replace(/\r\n[ \t]+/g, ' ')
    .split('\r\n')
    .filter((l) => /^received:/i.test(l));
}

export default defineLab({
  id: 'smtp-mta',
  title: 'SMTP only sends: a message crosses two MTAs, and a failure comes back as a bounce',
  concept: 'SMTP moves mail from server to server (each hop stamps a Received: line, and a later refusal returns to the sender as a bounce); reading mail is POP3/IMAP.',
  protocols: ['smtp', 'pop3'],
  timeoutMs: 30_000,
  async run(ctx) {
    const tracer = ctx.tracer;
    // Two mail domains, each with its own store and MTA: hop 1 (hop1.test, user ann) relays to hop 2 (hop2.test, bob).
    const store1 = await openMailStore({ memory: true, users: [{ name: 'ann', password: 'ann-pw' }], domains: ['hop1.test'] });
    const store2 = await openMailStore({ memory: true, users: [{ name: 'bob', password: 'bob-pw' }], domains: ['hop2.test'] });
    const hop2 = await ctx.start(startSmtpServer({ store: store2, tracer, hostname: 'mx.hop2.test', addReceived: true }));
    const hop1 = await ctx.start(startSmtpServer({ store: store1, tracer, hostname: 'mx.hop1.test', relay: { port: hop2.port, retryDelayMs: 100 } }));
    // Plain-text login on POP3 (USER / PASS without STLS) is allowed here only to put both answers side by side.
    const pop3 = await ctx.start(startPop3Server({ store: store2, tracer, allowInsecureAuth: true }));
    const relay = hop1.relay!;

    // A message through two hops.
    const client = await createSmtpClient({ port: hop1.port, tracer });
    ctx.defer(() => client.close());
    const first = once(relay, 'done') as Promise<[RelayOutcome]>;
    const sent = await client.send({ from: 'ann@hop1.test', to: 'bob@hop2.test', subject: 'across two hops', text: 'Hello Bob, via two MTAs.\r\n' });
    const [relayed] = await first;
    const inbox = store2.mailbox('bob', 'INBOX')?.messages ?? [];
    const got = inbox[inbox.length - 1];
    const received = got ? receivedLines(got.raw) : [];
    ctx.table('Received: headers of the message in bob\'s INBOX at hop 2, newest first', ['#', 'header'], received.map((r, i) => [i + 1, r]));
    ctx.claim(
      'hop 1 took the message for a domain it does not serve and forwarded it: the next hop accepted it',
      sent.response.startsWith('250') && relayed.accepted.includes('bob@hop2.test') && inbox.length === 1,
      `client got "${sent.response}"; hop 2 accepted ${relayed.accepted.join(', ')}; bob's INBOX holds ${inbox.length}`,
    );
    ctx.claim(
      'each hop added its own Received: line on top: hop 2\'s (from mx.hop1.test) above hop 1\'s (from the client)',
      received.length === 2 &&
        /from mx\.hop1\.test .*by mx\.hop2\.test/.test(received[0]!) &&
        /from client\.wirelab\.test .*by mx\.hop1\.test/.test(received[1]!),
      `${received.length} Received: lines; by ${received.map((r) => /by (\S+)/.exec(r)?.[1]).join(' ← ')}`,
    );

    // A bounce: hop 1 accepts, hop 2 refuses the recipient with 550, hop 1 returns a DSN to ann.
    const annBefore = store1.mailbox('ann', 'INBOX')?.messages.length ?? 0;
    const second = once(relay, 'done') as Promise<[RelayOutcome]>;
    const queued = await client.send({ from: 'ann@hop1.test', to: 'nobody@hop2.test', subject: 'to a mailbox that does not exist', text: 'Will this arrive?\r\n' });
    const [failed] = await second;
    const annInbox = store1.mailbox('ann', 'INBOX')?.messages ?? [];
    const dsn = annInbox.length > annBefore ? annInbox[annInbox.length - 1]!.raw.toString('utf8') : '';
    const diag = /Diagnostic-Code: smtp; (.*)/.exec(dsn)?.[1] ?? '(none)';
    ctx.claim(
      'the client was told 250 at hop 1: the refusal happened later, one hop on, with 550',
      queued.response.startsWith('250') && failed.bounced.some((b) => b.recipient === 'nobody@hop2.test' && b.code === 550),
      `client: "${queued.response}"; hop 2 to hop 1: ${failed.bounced.map((b) => `${b.code} for ${b.recipient}`).join(', ')}`,
    );
    ctx.claim(
      'the bounce reached the sender: a delivery status notification in ann\'s INBOX at hop 1, naming the recipient, the 550 and the original subject',
      annInbox.length === annBefore + 1 &&
        /Content-Type: multipart\/report; report-type=delivery-status/.test(dsn) &&
        /Final-Recipient: rfc822; nobody@hop2\.test/.test(dsn) &&
        diag.startsWith('550') &&
        dsn.includes('Subject: to a mailbox that does not exist'),
      `ann's INBOX ${annBefore} → ${annInbox.length}; Diagnostic-Code: ${diag}`,
    );

    // Sends only: retrieval commands on the SMTP port, the same commands on the POP3 port of the same mail.
    const retrieval = ['RETR 1', 'LIST', 'STAT', 'TOP 1 0', 'UIDL'];
    const onSmtp = await talk(hop2.port, retrieval, ['EHLO lab.wirelab.test']);
    const multi = (c: string, first: string): boolean => first.startsWith('+OK') && (/^(RETR|TOP) /.test(c) || c === 'LIST' || c === 'UIDL');
    const onPop3 = await talk(pop3.port, retrieval, ['USER bob', 'PASS bob-pw'], multi);
    ctx.table(
      'retrieval commands on the SMTP port and on the POP3 port of the same mail store (POP3 logged in as bob, who now holds the relayed message)',
      ['command', 'SMTP answer', 'POP3 answer'],
      retrieval.map((c, i) => [c, onSmtp[i]!, onPop3[i]!]),
    );
    const smtpCodes = onSmtp.map((l) => Number(l.slice(0, 3)));
    ctx.claim(
      'SMTP sends only: every retrieval command is refused as unknown (500 / 502), while POP3 knows each one',
      smtpCodes.every((c) => c === 500 || c === 502) && onPop3.every((l) => l.startsWith('+OK')),
      `SMTP: ${smtpCodes.join(' ')}; POP3: ${onPop3.map((l) => l.split(' ')[0]).join(' ')}`,
    );

    // No open relay: a sender hop 1 does not serve may not use it to reach another domain.
    const stranger = await talk(hop1.port, ['MAIL FROM:<eve@elsewhere.test>', 'RCPT TO:<bob@hop2.test>'], ['EHLO eve.wirelab.test']);
    ctx.claim(
      'hop 1 is not an open relay: a foreign sender to a foreign domain gets 550 at RCPT',
      stranger[0]!.startsWith('250') && stranger[1]!.startsWith('550'),
      `MAIL FROM: ${stranger[0]}; RCPT TO: ${stranger[1]}`,
    );
    ctx.measure('messages relayed by hop 1', relay.stats.relayed, 'messages');
    ctx.measure('bounces hop 1 delivered', relay.stats.bounced, 'messages');
  },
});
