import type { LabContext } from '../../core/lab/index.ts';
import { startFlightTap, type FlightTap } from '../_flights.ts';
import { CountingTalk } from '../mail/talk.ts';
import { startMailLab } from '../mail/setup.ts';
import type { HandshakeRow, HandshakeRows } from './types.ts';
import { round } from '../../core/stats.ts';

const SMTP_DONE = /^\d{3} .*\r\n/m;
const POP3_DONE = /^(\+OK|-ERR).*\r\n/m;
const POP3_MULTI_DONE = /\r\n\.\r\n$/;
const imapDone = (tag: string): RegExp => new RegExp(`^${tag} (OK|NO|BAD).*\\r\\n`, 'm');
const PLAIN = Buffer.from('\0demo\0demo').toString('base64');

/** TLS 1.3 answers the ClientHello with one flight; a full TLS 1.2 handshake needs two. */
const expectedFlights = (version: string): number => (version === 'TLSv1.3' ? 1 : 2);

async function row(
  ctx: LabContext,
  port: number,
  handshake: string,
  script: (t: CountingTalk) => Promise<boolean>,
  claim: string,
  tap?: FlightTap,
): Promise<HandshakeRow> {
  const t0 = performance.now();
  const talk = await CountingTalk.open(port, tap);
  try {
    // A TLS row holds only if the handshake's server flights were counted on the wire and match the version.
    const ok = (await script(talk)) && (talk.tls === undefined || talk.tls.flights === expectedFlights(talk.tls.version));
    const ms = round(performance.now() - t0, 2);
    ctx.claim(`${claim} (${talk.roundTrips} round trips counted)`, ok, talk.steps.join(', '));
    return { handshake, roundTrips: talk.roundTrips, ms, steps: talk.steps.join(' · ') };
  } finally {
    talk.close();
  }
}

/** The mail rows of the `handshakes` lab: what each protocol exchanges before mail can flow. */
const mailRows: HandshakeRows = async (ctx) => {
  // The plain rows log in over plain TCP beside their TLS rows, so this lab's servers allow it (the default refuses).
  const { smtp, imap, pop3 } = await startMailLab(ctx, { allowInsecureAuth: true });
  // The TLS rows go through a relay that sees every chunk, so the handshake's round trips are counted, not assumed.
  const [smtpTap, imapTap, pop3Tap] = await Promise.all([startFlightTap(ctx, smtp.port), startFlightTap(ctx, imap.port), startFlightTap(ctx, pop3.port)]);
  return [
    await row(ctx, smtp.port, 'SMTP greeting to EHLO 250', async (t) => {
      const g = await t.greeting(SMTP_DONE, '220');
      const e = await t.command('EHLO client.wirelab.test', SMTP_DONE);
      if (t.greetingMs >= 90) {
        ctx.note(`smtp-server held its 220 greeting ${t.greetingMs} ms: it waits ~100 ms to catch clients that talk before the greeting (early talkers, as MTAs do against spam bots).`);
      }
      return g.startsWith('220') && /^250 /m.test(e);
    }, 'SMTP: the 220 greeting, then EHLO answered 250'),
    await row(ctx, smtp.port, 'SMTP STARTTLS to EHLO 250 (TLS)', async (t) => {
      await t.greeting(SMTP_DONE, '220');
      const e = await t.command('EHLO client.wirelab.test', SMTP_DONE);
      const s = await t.command('STARTTLS', SMTP_DONE);
      await t.startTls();
      const e2 = await t.command('EHLO client.wirelab.test', SMTP_DONE);
      return /STARTTLS/.test(e) && s.startsWith('220') && /^250 /m.test(e2) && !/STARTTLS/.test(e2);
    }, 'SMTP: STARTTLS answered 220, TLS, and EHLO again (STARTTLS no longer offered)', smtpTap),
    await row(ctx, smtp.port, 'SMTP greeting to AUTH PLAIN 235', async (t) => {
      await t.greeting(SMTP_DONE, '220');
      await t.command('EHLO client.wirelab.test', SMTP_DONE);
      const a = await t.command(`AUTH PLAIN ${PLAIN}`, SMTP_DONE, 'AUTH PLAIN ****');
      return a.startsWith('235');
    }, 'SMTP: AUTH PLAIN with the initial response answered 235'),
    await row(ctx, imap.port, 'IMAP greeting, CAPABILITY, LOGIN', async (t) => {
      const g = await t.greeting(/^\* OK.*\r\n/m, '* OK');
      const c = await t.command('a1 CAPABILITY', imapDone('a1'), 'CAPABILITY');
      const l = await t.command('a2 LOGIN demo demo', imapDone('a2'), 'LOGIN demo ****');
      return g.startsWith('* OK') && /^\* CAPABILITY /m.test(c) && /^a2 OK/m.test(l);
    }, 'IMAP: greeting, CAPABILITY and LOGIN OK'),
    await row(ctx, imap.port, 'IMAP STARTTLS to LOGIN (TLS)', async (t) => {
      await t.greeting(/^\* OK.*\r\n/m, '* OK');
      const s = await t.command('a1 STARTTLS', imapDone('a1'), 'STARTTLS');
      await t.startTls();
      const c = await t.command('a2 CAPABILITY', imapDone('a2'), 'CAPABILITY');
      const l = await t.command('a3 LOGIN demo demo', imapDone('a3'), 'LOGIN demo ****');
      return /^a1 OK/m.test(s) && !/STARTTLS/.test(c) && /^a3 OK/m.test(l);
    }, 'IMAP: STARTTLS, TLS, CAPABILITY (asked again, as RFC 3501 requires) and LOGIN OK', imapTap),
    await row(ctx, pop3.port, 'POP3 greeting, USER, PASS', async (t) => {
      const g = await t.greeting(POP3_DONE, '+OK');
      const u = await t.command('USER demo', POP3_DONE);
      const p = await t.command('PASS demo', POP3_DONE, 'PASS ****');
      await t.command('QUIT', POP3_DONE);
      t.roundTrips--;
      t.steps.pop();
      return g.startsWith('+OK') && u.startsWith('+OK') && p.startsWith('+OK');
    }, 'POP3: greeting, USER and PASS +OK'),
    await row(ctx, pop3.port, 'POP3 CAPA, STLS to PASS (TLS)', async (t) => {
      await t.greeting(POP3_DONE, '+OK');
      const c = await t.command('CAPA', POP3_MULTI_DONE);
      const s = await t.command('STLS', POP3_DONE);
      await t.startTls();
      await t.command('USER demo', POP3_DONE);
      const p = await t.command('PASS demo', POP3_DONE, 'PASS ****');
      await t.command('QUIT', POP3_DONE);
      t.roundTrips--;
      t.steps.pop();
      return /^STLS\r$/m.test(c) && s.startsWith('+OK') && p.startsWith('+OK');
    }, 'POP3: CAPA lists STLS, STLS, TLS, then USER and PASS +OK', pop3Tap),
  ];
};

export default mailRows;
