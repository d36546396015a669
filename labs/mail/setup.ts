import type { LabContext } from '../../core/lab/index.ts';
import type { MailServerStats } from '../../servers/mail/conn.ts';
import { startImapServer, type RunningImapServer } from '../../servers/imap/index.ts';
import { openMailStore, type MailStore } from '../../servers/mail/store/index.ts';
import { startPop3Server, type RunningPop3Server } from '../../servers/pop3/index.ts';
import { startSmtpServer, type RunningSmtpServer } from '../../servers/smtp/index.ts';
import { round } from '../../core/stats.ts';

export interface MailLab {
  store: MailStore;
  smtp: RunningSmtpServer;
  imap: RunningImapServer;
  pop3: RunningPop3Server;
}

/**
 * SMTP, IMAP and POP3 on free loopback ports over one in-memory store (demo / demo), closed when the lab ends.
 * `allowInsecureAuth` is passed to all three: labs that log in over plain TCP on purpose set it (the default refuses).
 */
export async function startMailLab(ctx: LabContext, options: { allowInsecureAuth?: boolean } = {}): Promise<MailLab> {
  const store = await openMailStore({ memory: true });
  const tracer = ctx.tracer;
  const allowInsecureAuth = options.allowInsecureAuth ?? false;
  const smtp = await ctx.start(startSmtpServer({ store, tracer, allowInsecureAuth }));
  const imap = await ctx.start(startImapServer({ store, tracer, allowInsecureAuth }));
  const pop3 = await ctx.start(startPop3Server({ store, tracer, allowInsecureAuth }));
  return { store, smtp, imap, pop3 };
}

export interface Traffic {
  commands: number;
  bytesIn: number;
  bytesOut: number;
  ms: number;
}

/**
 * Runs `fn` and returns what the server counted meanwhile (only one client talks to it at a time in these labs),
 * with what `fn` returned as `value`.
 */
export async function measure<T>(stats: MailServerStats, fn: () => Promise<T>): Promise<Traffic & { value: T }> {
  const before = { ...stats };
  const t0 = performance.now();
  const value = await fn();
  return {
    value,
    commands: stats.commands - before.commands,
    bytesIn: stats.bytesIn - before.bytesIn,
    bytesOut: stats.bytesOut - before.bytesOut,
    ms: round(performance.now() - t0, 1),
  };
}

/** A message with a text part and a base64 attachment of `attachmentBytes`. */
export function messageWithAttachment(subject: string, attachmentBytes: number): string {
  const payload = Buffer.alloc(attachmentBytes, 0x61).toString('base64').replace(/.{76}/g, '$&\r\n');
  return [
    'From: Ann <ann@localhost>',
    'To: Demo <demo@localhost>',
    `Subject: ${subject}`,
    'Date: Sun, 22 Nov 2026 03:00:00 +0000',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="wl-boundary"',
    '',
    '--wl-boundary',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'The report is attached.',
    '--wl-boundary',
    'Content-Type: application/octet-stream; name="report.bin"',
    'Content-Disposition: attachment; filename="report.bin"',
    'Content-Transfer-Encoding: base64',
    '',
    payload,
    '--wl-boundary--',
    '',
  ].join('\r\n');
}
