import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FtpClient } from '../clients/ftp.ts';
import { connectImap } from '../clients/imap.ts';
import { connectPop3 } from '../clients/pop3.ts';
import { createSmtpClient } from '../clients/smtp.ts';
import { defineLab, type LabContext } from '../core/lab/index.ts';
import { startTcpRelay } from '../core/relay.ts';
import { startFtpServer } from '../servers/ftp/index.ts';
import { startImapServer } from '../servers/imap/index.ts';
import { openMailStore } from '../servers/mail/store/index.ts';
import { startPop3Server } from '../servers/pop3/index.ts';
import { startSmtpServer } from '../servers/smtp/index.ts';
import { CountingTalk } from './mail/talk.ts';

const USER = 'ann';

/** What crossed a relay from client to server on one or more connections. */
interface Tap {
  port: number;
  /** Connections so far (each row opens new ones and reads only those). */
  mark(): number;
  /** Client-to-server bytes of the connections opened after `mark`. */
  sentSince(mark: number): Buffer;
}

/** A relay in front of `targetPort` that keeps every byte the client sends: the wire as an eavesdropper sees it. */
async function tapRelay(ctx: LabContext, targetPort: number): Promise<Tap> {
  const chunks: Array<{ conn: number; chunk: Buffer }> = [];
  let conns = 0;
  const relay = await ctx.start(
    startTcpRelay({
      target: { port: targetPort },
      onForward: (dir, chunk, conn) => {
        conns = Math.max(conns, conn);
        if (dir === '>') chunks.push({ conn, chunk: Buffer.from(chunk) });
      },
    }),
  );
  return {
    port: relay.port,
    mark: () => conns,
    sentSince: (mark) => Buffer.concat(chunks.filter((c) => c.conn > mark).map((c) => c.chunk)),
  };
}

/**
 * Where the secret shows in the bytes, or null: as text (LOGIN, PASS, USER/PASS) or inside a base64 token (AUTH PLAIN
 * and LOGIN, AUTHENTICATE). Every whitespace-separated token that looks like base64 is decoded and searched.
 */
function findSecret(bytes: Buffer, secret: string): string | null {
  const text = bytes.toString('latin1');
  // Names the line by its command, never by its content (a SASL line is the secret itself, in base64).
  const lineOf = (i: number): string => {
    const line = text.slice(text.lastIndexOf('\n', i) + 1, i);
    const verb = /\b(AUTHENTICATE|AUTH|LOGIN|PASS|USER|APOP)\b/i.exec(line)?.[1];
    return verb ? `the ${verb.toUpperCase()} line` : 'a SASL continuation line';
  };
  const at = text.indexOf(secret);
  if (at !== -1) return `as text, in ${lineOf(at)}`;
  for (const m of text.matchAll(/[A-Za-z0-9+/]{8,}={0,2}/g)) {
    if (Buffer.from(m[0], 'base64').toString('latin1').includes(secret)) return `as base64, in ${lineOf(m.index!)}`;
  }
  return null;
}

/** A TLS record carrying a handshake (ClientHello) among the client's bytes: the connection switched to TLS. */
function sawTls(bytes: Buffer): boolean {
  for (let i = 0; i + 2 < bytes.length; i++) if (bytes[i] === 0x16 && bytes[i + 1] === 0x03 && bytes[i + 2]! <= 0x04) return true;
  return false;
}

/** The outcome of one login attempt: what the server answered (code or status) and whether it let the client in. */
interface Attempt {
  answer: string;
  loggedIn: boolean;
}

async function attempt(fn: () => Promise<Attempt>): Promise<Attempt> {
  try {
    return await fn();
  } catch (err) {
    const e = err as { responseCode?: number; code?: number | string; message?: string };
    const code = e.responseCode ?? (typeof e.code === 'number' ? e.code : undefined);
    return { answer: code !== undefined ? String(code) : (e.message ?? String(err)).slice(0, 60), loggedIn: false };
  }
}

export default defineLab({
  id: 'cleartext-auth',
  title: 'Passwords in clear: what an eavesdropper on the wire reads before and after STARTTLS',
  concept:
    'SMTP AUTH, IMAP LOGIN, POP3 USER/PASS and FTP USER/PASS carry the password as text or base64, readable by anyone on the path unless TLS comes first; secure servers refuse them before STARTTLS / STLS / AUTH TLS.',
  protocols: ['smtp', 'imap', 'pop3', 'ftp', 'tls'],
  timeoutMs: 60_000,
  async run(ctx) {
    // A fresh password each run: finding it in the relay's bytes can only mean it crossed the wire.
    const secret = `wl-${randomBytes(6).toString('hex')}`;
    const auth = { user: USER, pass: secret };
    const store = await openMailStore({ memory: true, users: [{ name: USER, password: secret }] });
    const tracer = ctx.tracer;
    const rootDir = await mkdtemp(join(tmpdir(), 'wirelab-cleartext-'));
    ctx.defer(() => rm(rootDir, { recursive: true, force: true }));
    const ftpUsers = [{ name: USER, password: secret }];

    // Each protocol twice: a server that allows a login in clear (the explicit option) and one with the default.
    const servers = {
      smtp: [await ctx.start(startSmtpServer({ store, tracer, allowInsecureAuth: true })), await ctx.start(startSmtpServer({ store, tracer }))],
      imap: [await ctx.start(startImapServer({ store, tracer, allowInsecureAuth: true })), await ctx.start(startImapServer({ store, tracer }))],
      pop3: [await ctx.start(startPop3Server({ store, tracer, allowInsecureAuth: true })), await ctx.start(startPop3Server({ store, tracer }))],
      ftp: [
        await ctx.start(startFtpServer({ rootDir, users: ftpUsers, tracer, allowInsecureAuth: true })),
        await ctx.start(startFtpServer({ rootDir, users: ftpUsers, tracer })),
      ],
    };
    const taps = {
      smtp: [await tapRelay(ctx, servers.smtp[0]!.port), await tapRelay(ctx, servers.smtp[1]!.port)],
      imap: [await tapRelay(ctx, servers.imap[0]!.port), await tapRelay(ctx, servers.imap[1]!.port)],
      pop3: [await tapRelay(ctx, servers.pop3[0]!.port), await tapRelay(ctx, servers.pop3[1]!.port)],
      ftp: [await tapRelay(ctx, servers.ftp[0]!.port), await tapRelay(ctx, servers.ftp[1]!.port)],
    };

    const rows: string[][] = [];
    /**
     * Runs one login through a tap and checks what the wire showed: `expect` 'seen' (the password crossed in clear),
     * 'refused' (the server said no before the password was sent) or 'tls' (the login worked, inside TLS only).
     */
    const row = async (
      proto: string,
      server: string,
      client: string,
      tap: Tap,
      expect: 'seen' | 'refused' | 'sent-anyway' | 'tls',
      expectedAnswer: RegExp,
      fn: (port: number) => Promise<Attempt>,
    ): Promise<void> => {
      const mark = tap.mark();
      const a = await attempt(() => fn(tap.port));
      // Every byte sent before the server's last answer was tapped before the server saw it; this pause only catches
      // a client that would send more after that answer without waiting for another (none of these should).
      await new Promise((r) => setTimeout(r, 200));
      const sent = tap.sentSince(mark);
      const where = findSecret(sent, secret);
      const tlsSeen = sawTls(sent);
      const seen = where !== null;
      const evidence = `answer ${a.answer}, ${sent.length} B sent by the client, secret ${where ?? 'not found'}${tlsSeen ? ', TLS handshake seen' : ''}`;
      if (expect === 'seen') {
        ctx.claim(`${proto}, ${server}, ${client}: logged in, and the password crossed the wire readable`, a.loggedIn && seen && !tlsSeen, evidence);
      } else if (expect === 'sent-anyway') {
        ctx.claim(`${proto}, ${server}, ${client}: refused (${expectedAnswer.source}), but only after the password had crossed the wire`, !a.loggedIn && expectedAnswer.test(a.answer) && seen, evidence);
      } else if (expect === 'refused') {
        ctx.claim(`${proto}, ${server}, ${client}: refused (${expectedAnswer.source}) before the password was sent`, !a.loggedIn && expectedAnswer.test(a.answer) && !seen, evidence);
      } else {
        ctx.claim(`${proto}, ${server}, ${client}: logged in over TLS; the password is nowhere in the bytes on the wire`, a.loggedIn && tlsSeen && !seen, evidence);
      }
      rows.push([proto, server, client, a.answer, a.loggedIn ? 'yes' : 'no', where ?? 'no', tlsSeen ? 'yes' : 'no']);
    };
    const insecure = 'allowInsecureAuth: true';
    const secure = 'default';

    // SMTP: nodemailer told not to STARTTLS, then with its default (STARTTLS required before AUTH).
    await row('SMTP', insecure, 'nodemailer, ignoreTls', taps.smtp[0]!, 'seen', /^235$/, async (port) => {
      const c = await createSmtpClient({ port, ignoreTls: true, auth });
      try {
        return { answer: (await c.verify()) ? '235' : '?', loggedIn: true };
      } finally {
        c.close();
      }
    });
    await row('SMTP', secure, 'raw: EHLO, AUTH LOGIN', taps.smtp[1]!, 'refused', /^538$/, async (port) => {
      const t = await CountingTalk.open(port);
      try {
        await t.greeting(/^\d{3} .*\r\n/m, '220');
        await t.command('EHLO client.wirelab.test', /^\d{3} .*\r\n/m);
        // AUTH LOGIN asks for the user name and password only after the server's 334: a 538 comes first.
        const r = await t.command('AUTH LOGIN', /^\d{3} .*\r\n/m);
        const code = r.trimEnd().split('\r\n').at(-1)!.slice(0, 3);
        if (code === '334') await t.command(Buffer.from(USER).toString('base64'), /^\d{3} .*\r\n/m);
        return { answer: code, loggedIn: false };
      } finally {
        t.close();
      }
    });
    // smtp-server still lists AUTH in EHLO before STARTTLS: a client that sends AUTH PLAIN with its initial response
    // has sent the password by the time the 538 arrives. Only the client can prevent that (require TLS first).
    await row('SMTP', secure, 'raw: EHLO, AUTH PLAIN <initial response>', taps.smtp[1]!, 'sent-anyway', /^538$/, async (port) => {
      const t = await CountingTalk.open(port);
      try {
        await t.greeting(/^\d{3} .*\r\n/m, '220');
        await t.command('EHLO client.wirelab.test', /^\d{3} .*\r\n/m);
        const r = await t.command(`AUTH PLAIN ${Buffer.from(`\0${USER}\0${secret}`).toString('base64')}`, /^\d{3} .*\r\n/m, 'AUTH PLAIN ****');
        return { answer: r.trimEnd().split('\r\n').at(-1)!.slice(0, 3), loggedIn: r.startsWith('235') };
      } finally {
        t.close();
      }
    });
    await row('SMTP', secure, 'nodemailer, default', taps.smtp[1]!, 'tls', /^235$/, async (port) => {
      const c = await createSmtpClient({ port, auth });
      try {
        return { answer: (await c.verify()) ? '235' : '?', loggedIn: true };
      } finally {
        c.close();
      }
    });

    // IMAP: imapflow without STARTTLS; a raw client that reads CAPABILITY and asks for AUTHENTICATE without SASL-IR.
    await row('IMAP', insecure, 'imapflow, noStartTls', taps.imap[0]!, 'seen', /^OK$/, async (port) => {
      const c = await connectImap({ port, auth, noStartTls: true });
      await c.logout();
      return { answer: 'OK', loggedIn: true };
    });
    await row('IMAP', secure, 'raw: CAPABILITY, AUTHENTICATE PLAIN', taps.imap[1]!, 'refused', /LOGINDISABLED.*PRIVACYREQUIRED/, async (port) => {
      const t = await CountingTalk.open(port);
      const done = (tag: string): RegExp => new RegExp(`^(${tag} (OK|NO|BAD)|\\+).*\\r\\n`, 'm');
      try {
        await t.greeting(/^\* OK.*\r\n/m, '* OK');
        const caps = await t.command('a1 CAPABILITY', done('a1'));
        // Without an initial response the password would follow the server's `+`; a NO comes instead.
        const r = await t.command('a2 AUTHENTICATE PLAIN', done('a2'));
        if (r.startsWith('+')) await t.command(Buffer.from(`\0${USER}\0${secret}`).toString('base64'), done('a2'));
        const status = /^a2 (\w+) (\[\w+\])?/m.exec(r);
        return { answer: `${/LOGINDISABLED/.test(caps) ? 'LOGINDISABLED, ' : ''}${status?.[1] ?? r.slice(0, 3)} ${status?.[2] ?? ''}`.trim(), loggedIn: status?.[1] === 'OK' };
      } finally {
        t.close();
      }
    });
    await row('IMAP', secure, 'imapflow, default', taps.imap[1]!, 'tls', /^OK$/, async (port) => {
      const c = await connectImap({ port, auth });
      await c.logout();
      return { answer: 'OK', loggedIn: true };
    });

    // POP3: wirelab's client without STLS (USER, then PASS), then with its default (STLS first).
    const popLogin = async (port: number, startTls: boolean): Promise<Attempt> => {
      const c = await connectPop3({ port, startTls });
      try {
        await c.login(USER, secret);
        await c.quit();
        return { answer: '+OK', loggedIn: true };
      } catch (err) {
        c.destroy();
        return { answer: /^\w+: -ERR (\[\w+\])?/.exec((err as Error).message)?.[0]?.split(': ')[1] ?? (err as Error).message.slice(0, 40), loggedIn: false };
      }
    };
    await row('POP3', insecure, 'wirelab pop3, startTls: false', taps.pop3[0]!, 'seen', /^\+OK$/, (port) => popLogin(port, false));
    await row('POP3', secure, 'wirelab pop3, startTls: false', taps.pop3[1]!, 'refused', /^-ERR \[AUTH\]$/, (port) => popLogin(port, false));
    await row('POP3', secure, 'wirelab pop3, default', taps.pop3[1]!, 'tls', /^\+OK$/, (port) => popLogin(port, true));

    // FTP: basic-ftp in clear (USER, then PASS), then with the client's default (AUTH TLS first).
    const ftpLogin = async (port: number, secure: boolean): Promise<Attempt> => {
      const c = await FtpClient.connect({ port, user: USER, password: secret, secure });
      c.close();
      return { answer: '230', loggedIn: true };
    };
    await row('FTP', insecure, 'basic-ftp, secure: false', taps.ftp[0]!, 'seen', /^230$/, (port) => ftpLogin(port, false));
    await row('FTP', secure, 'basic-ftp, secure: false', taps.ftp[1]!, 'refused', /^530$/, (port) => ftpLogin(port, false));
    await row('FTP', secure, 'basic-ftp, default', taps.ftp[1]!, 'tls', /^230$/, (port) => ftpLogin(port, true));

    ctx.table('What a relay between client and server read (client → server bytes, searched for the password as text and inside base64)', ['protocol', 'server', 'client', 'answer', 'logged in', 'password on the wire', 'TLS'], rows);
  },
});
